//! What an environment means, in words for people who do not read YAML, and
//! what in it will probably not work as hoped.

use super::apps::ingress_host;
use super::{BuildOptions, Object, build, to_yaml};
use berth_core::environment::{
    ByteQuantity, CpuQuantity, Expose, Isolation, MemberRole, PodSecurity, ResolvedSpec,
};
use serde::Serialize;

/// The answer of `POST /api/v1/environments/preview`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Every object the environment consists of, as one YAML stream.
    pub yaml: String,
    /// The same objects as Kubernetes JSON.
    #[schema(value_type = Vec<Object>)]
    pub objects: Vec<serde_json::Value>,
    /// What the environment means, a sentence each ("Pods may use at most 2 CPUs in total").
    pub summary: Vec<String>,
    /// What will probably not work as hoped, and what the policy will say
    /// ("Needs an admin's approval: ...", "Will be refused: ...").
    pub warnings: Vec<String>,
}

/// Everything a preview shows; nothing is created.
pub fn preview(spec: &ResolvedSpec, options: &BuildOptions) -> Preview {
    let objects = build(spec, options);
    Preview {
        yaml: to_yaml(&objects),
        objects: objects.iter().map(Object::to_json).collect(),
        summary: summary(spec, options),
        warnings: warnings(spec),
    }
}

fn cpus(cpu: CpuQuantity) -> String {
    cpus_from_millis(u128::from(cpu.millis()))
}

fn cpus_from_millis(millis: u128) -> String {
    let whole = millis / 1000;
    let text = if millis.is_multiple_of(1000) {
        whole.to_string()
    } else {
        let fraction = format!("{:03}", millis % 1000);
        format!("{whole}.{}", fraction.trim_end_matches('0'))
    };
    let unit = if millis == 1000 { "CPU" } else { "CPUs" };
    format!("{text} {unit}")
}

/// Sizes in the units people know: `4Gi` reads as "4 GiB".
fn size(bytes: ByteQuantity) -> String {
    size_of(u128::from(bytes.bytes()))
}

fn size_of(bytes: u128) -> String {
    const UNITS: [(&str, u32); 5] = [
        ("PiB", 50),
        ("TiB", 40),
        ("GiB", 30),
        ("MiB", 20),
        ("KiB", 10),
    ];
    for (unit, exp) in UNITS {
        let one = 1u128 << exp;
        if bytes >= one {
            let tenths = bytes * 10 / one;
            return if tenths.is_multiple_of(10) {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Plain sentences describing what the environment allows and forbids.
pub fn summary(spec: &ResolvedSpec, options: &BuildOptions) -> Vec<String> {
    let (q, l) = (spec.quota, spec.limits);
    let mut out = vec![
        format!("Pods may use at most {} in total", cpus(q.cpu)),
        format!("Pods may use at most {} of memory in total", size(q.memory)),
        format!(
            "Volumes may claim at most {} of storage in total",
            size(q.storage)
        ),
        format!("At most {} pods may run at once", q.pods.get()),
        format!(
            "Containers may write at most {} of scratch space (logs, emptyDir) in total",
            size(q.ephemeral_storage)
        ),
        format!(
            "At most {} ConfigMaps, {} Secrets, {} Services and {} volume claims",
            q.objects.configmaps.get(),
            q.objects.secrets.get(),
            q.objects.services.get(),
            q.objects.persistent_volume_claims.get()
        ),
        format!(
            "A container that does not say how much it needs gets {} and {} of memory; none may use more than {} or {} of memory",
            cpus(l.default_cpu),
            size(l.default_memory),
            cpus(q.cpu),
            size(q.memory)
        ),
        "Apps cannot be published through load balancers or node ports; use expose: ingress"
            .to_owned(),
    ];
    match spec.isolation {
        Isolation::Isolated => {
            out.push("Other namespaces cannot reach your pods; only your own pods and the ingress controller can".to_owned());
            out.push("Your pods can reach other services and the internet, but not the cloud's metadata service (169.254.0.0/16) or the networks the platform blocks".to_owned());
        }
        Isolation::Open => out.push(
            "Any pod in the cluster can reach your pods, and your pods can reach anything"
                .to_owned(),
        ),
    }
    out.push(match spec.pod_security {
        PodSecurity::Restricted => "Containers must run as a non-root user, without privilege escalation or extra Linux capabilities (Pod Security: restricted)".to_owned(),
        PodSecurity::Baseline => "Containers may not run privileged or use the node's network, processes or files (Pod Security: baseline)".to_owned(),
    });
    out.push(match spec.ttl {
        Some(ttl) => {
            format!("The environment is deleted {ttl} after it is created, unless renewed")
        }
        None => "The environment does not expire".to_owned(),
    });
    for member in &spec.members {
        let can = match member.role {
            MemberRole::Owner => "owns the environment: manages its members and workloads",
            MemberRole::Editor => "can change workloads",
            MemberRole::Viewer => "can look at workloads but not change them, nor read secrets",
        };
        out.push(format!("{} {can}", member.email));
    }
    for app in &spec.apps {
        let copies = match app.replicas.get() {
            1 => "1 copy".to_owned(),
            n => format!("{n} copies"),
        };
        let reach = match (app.expose, app.port) {
            (Expose::Cluster, Some(port)) => format!(
                "reachable inside the cluster at {}.{}:{}",
                app.name,
                spec.name,
                port.get()
            ),
            (Expose::Ingress, Some(_)) => format!(
                "reachable at http://{}",
                ingress_host(app, spec.name.as_str(), &options.ingress_domain)
            ),
            _ => "not reachable over the network".to_owned(),
        };
        out.push(format!(
            "{} runs {copies} of {}, {reach}",
            app.name,
            app.image.as_str()
        ));
    }
    out
}

/// Things in the spec that will likely not work: apps that do not fit the quota.
pub fn warnings(spec: &ResolvedSpec) -> Vec<String> {
    let q = spec.quota;
    let mut out = Vec::new();
    let (mut total_cpu, mut total_memory, mut total_pods) = (0u128, 0u128, 0u128);
    for app in &spec.apps {
        let (cpu, memory, replicas) = (
            app.resources.cpu,
            app.resources.memory,
            u128::from(app.replicas.get()),
        );
        if cpu > q.cpu || memory > q.memory {
            out.push(format!(
                "{} asks for {} and {} of memory per container, more than one container may use ({} and {}); its pods will be refused",
                app.name, cpus(cpu), size(memory), cpus(q.cpu), size(q.memory)
            ));
        }
        if replicas == 0 {
            out.push(format!("{} has 0 replicas, so it will not run", app.name));
        }
        total_cpu += u128::from(cpu.millis()) * replicas;
        total_memory += u128::from(memory.bytes()) * replicas;
        total_pods += replicas;
    }
    if total_cpu > u128::from(q.cpu.millis()) {
        out.push(format!(
            "Together the apps ask for {} but the quota allows {}; some pods will not start",
            cpus_from_millis(total_cpu),
            cpus(q.cpu)
        ));
    }
    if total_memory > u128::from(q.memory.bytes()) {
        out.push(format!("Together the apps ask for {} of memory but the quota allows {}; some pods will not start", size_of(total_memory), size(q.memory)));
    }
    if total_pods > u128::from(q.pods.get()) {
        out.push(format!(
            "Together the apps run {total_pods} pods but the quota allows {}; some will not start",
            q.pods.get()
        ));
    }
    // Rolling updates start a new pod before stopping an old one.
    if total_pods > 0 && total_pods == u128::from(q.pods.get()) {
        out.push(
            "The apps use every pod the quota allows, so rolling updates will stall".to_owned(),
        );
    }
    out
}
