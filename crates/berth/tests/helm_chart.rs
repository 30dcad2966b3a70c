//! The Helm chart (`deploy/helm/berth`) against Berth itself: its CRDs are
//! the ones Berth generates, its RBAC names the objects Berth installs, and
//! Berth's API and controller do a whole environment's life under exactly
//! the chart's rules without one refusal.
//!
//! The least-privilege run: the chart's ClusterRoles and Roles, rendered by
//! `helm template`, are bound to a user of its own, and `berth serve` (API
//! only) and `berth controller` run as that user with a client certificate
//! the local cluster's CA signs. The user is `berth-admin`, the name the
//! admin kubeconfig (and so every other test's Berth) has, but without the
//! `system:masters` group: RBAC grants it only the chart's rules, while the
//! admission policies (the admin policy's exempts the identity Berth runs
//! as by name) stay exactly as every other test's Berth installs them in
//! the shared cluster. Any API call the code makes and the chart
//! does not allow fails the environment's progress or shows as `forbidden`
//! in Berth's logs, and the test with it.

use anyhow::{Context, Result, bail, ensure};
use berth_manifests::Environment;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, CustomResourceExt};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHART: &str = "deploy/helm/berth";
/// The user the restricted certificate names (see the module's note).
const USER: &str = "berth-admin";
const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";
const RUN_LABEL: &str = "berth.dev/test-run";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `helm template RELEASE deploy/helm/berth --namespace NAMESPACE ARGS...`,
/// as YAML documents.
fn helm_template(release: &str, namespace: &str, args: &[&str]) -> Result<Vec<Yaml>> {
    let helm = repo_root().join(".berth/bin/helm");
    ensure!(
        helm.exists(),
        "{} is missing: `scripts/localcluster.sh build` builds helm (make test does)",
        helm.display()
    );
    let out = Command::new(&helm)
        .current_dir(repo_root())
        .args(["template", release, CHART, "--namespace", namespace])
        .args(args)
        .output()
        .context("running helm template")?;
    ensure!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = Yaml::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn kind(doc: &Yaml) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Yaml) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The objects of `berth install-manifests`, as (kind, name).
fn installed_by_berth() -> Result<BTreeSet<(String, String)>> {
    let text = berth_manifests::install_manifests(
        "system:serviceaccount:berth:berth",
        &berth_manifests::GuardrailOptions::default(),
    );
    let mut objects = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = Yaml::deserialize(doc)?;
        if !value.is_null() {
            objects.insert((kind(&value).to_owned(), name(&value).to_owned()));
        }
    }
    Ok(objects)
}

/// The resourceNames of the chart's ClusterRole rules on `resource`.
fn named_in_rules(docs: &[Yaml], resource: &str) -> BTreeSet<String> {
    docs.iter()
        .filter(|d| kind(d) == "ClusterRole")
        .flat_map(|d| d["rules"].as_sequence().cloned().unwrap_or_default())
        .filter(|rule| {
            rule["resources"]
                .as_sequence()
                .is_some_and(|r| r.iter().any(|r| r.as_str() == Some(resource)))
        })
        .flat_map(|rule| {
            rule["resourceNames"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_charts_crds_are_the_ones_berth_generates() {
    let crds = repo_root().join(CHART).join("crds");
    for (file, generated) in [
        ("environments.berth.dev.yaml", berth_manifests::crd_yaml()),
        (
            "environmentpolicies.berth.dev.yaml",
            serde_yaml::to_string(&berth_manifests::EnvironmentPolicy::crd()).unwrap(),
        ),
    ] {
        let path = crds.join(file);
        let chart = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert_eq!(
            chart,
            generated,
            "{} differs from what Berth generates",
            path.display()
        );
    }
}

#[test]
fn the_charts_rules_name_every_object_berth_installs() -> Result<()> {
    let docs = helm_template("berth", "berth", &[])?;
    let installed = installed_by_berth()?;
    let of_kind = |k: &str| -> BTreeSet<String> {
        installed
            .iter()
            .filter(|(kind, _)| kind == k)
            .map(|(_, name)| name.clone())
            .collect()
    };
    assert_eq!(
        named_in_rules(&docs, "customresourcedefinitions"),
        of_kind("CustomResourceDefinition")
    );
    assert_eq!(
        named_in_rules(&docs, "clusterroles"),
        of_kind("ClusterRole")
    );
    // Admission policies are the chart's: Berth may write none of them.
    for resource in [
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ] {
        assert_eq!(
            named_in_rules(&docs, resource),
            BTreeSet::new(),
            "{resource}"
        );
    }
    assert_eq!(
        ADMISSION_POLICIES
            .iter()
            .map(|&n| n.to_owned())
            .collect::<BTreeSet<_>>(),
        of_kind("ValidatingAdmissionPolicy")
    );
    // The leader's Lease is the one `berth serve` takes by default.
    let lease = berth_controller::LeaseOptions::new("any");
    let leader = docs
        .iter()
        .find(|d| kind(d) == "Role" && name(d) == "berth-leader")
        .context("the chart has no leader Role")?;
    assert_eq!(
        leader["metadata"]["namespace"].as_str(),
        Some(lease.namespace.as_str())
    );
    assert!(
        serde_yaml::to_string(&leader["rules"])?.contains(&lease.name),
        "the leader Role does not name the Lease {}",
        lease.name
    );
    Ok(())
}

/// A process killed when dropped, its output in a file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(command: &mut Command, log: PathBuf) -> Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Self { child, log })
    }

    /// Stops the process as Kubernetes would (SIGTERM, then SIGKILL after
    /// 5 s), so that its log is complete.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A kubeconfig for `USER` without `system:masters`: a fresh key and a
/// certificate from the local cluster's CA, valid for a day.
fn restricted_kubeconfig(root: &Path, dir: &Path) -> Result<PathBuf> {
    let pki = root.join(".berth/cluster/pki");
    let (key, csr, cert) = (
        dir.join("user.key"),
        dir.join("user.csr"),
        dir.join("user.crt"),
    );
    let openssl = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .context("running openssl")?;
        ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={USER}"),
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
    ])?;
    let serial = format!("0x{}", uuid::Uuid::new_v4().simple());
    // Extensions make it an X.509 v3 certificate, the only version rustls takes.
    let extensions = dir.join("user.ext");
    std::fs::write(
        &extensions,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&pki.join("ca.crt")),
        "-CAkey",
        &path(&pki.join("ca.key")),
        "-set_serial",
        &serial,
        "-extfile",
        &path(&extensions),
        "-days",
        "1",
        "-out",
        &path(&cert),
    ])?;
    let admin: Yaml = serde_yaml::from_str(&std::fs::read_to_string(
        root.join(".berth/cluster/kubeconfig"),
    )?)?;
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": USER, "user": {
            "client-certificate": path(&cert),
            "client-key": path(&key),
        }}],
        "contexts": [{"name": "restricted", "context": {"cluster": "local", "user": USER}}],
        "current-context": "restricted",
    });
    let file = dir.join("restricted.kubeconfig");
    std::fs::write(&file, serde_yaml::to_string(&config)?)?;
    Ok(file)
}

/// The chart's RBAC objects and scope policy for release `release`, bound
/// to `USER` instead of the ServiceAccount, the leader Role moved to
/// `lease_namespace` (so that this run's controller elects itself on a
/// Lease no other Berth uses, under the chart's very rule). The policy
/// matches `USER` only without `system:masters`, so that every other
/// test's Berth, which is `USER` with it, goes on as before.
fn restricted_rbac(release: &str, lease_namespace: &str) -> Result<String> {
    let docs = helm_template(release, "berth", &[])?;
    let mut out = String::new();
    for mut doc in docs {
        match kind(&doc) {
            // The tenant roles and the admission policies are the shared
            // cluster's, which every other test's Berth binds and installs:
            // applied apart and never deleted.
            "ClusterRole" if name(&doc).starts_with("berth-tenant-") => continue,
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"
                if ADMISSION_POLICIES.contains(&name(&doc)) =>
            {
                continue;
            }
            "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" => {}
            "ValidatingAdmissionPolicy" => {
                let conditions = &mut doc["spec"]["matchConditions"];
                ensure!(
                    conditions[0]["expression"]
                        .as_str()
                        .is_some_and(|e| e.contains("system:serviceaccount:berth:")),
                    "the scope policy does not match the chart's ServiceAccount: {conditions:?}"
                );
                conditions[0]["expression"] = Yaml::from(format!(
                    "request.userInfo.username == \"{USER}\" && \
                     !(\"system:masters\" in request.userInfo.groups)"
                ));
            }
            "ValidatingAdmissionPolicyBinding" => {}
            _ => continue,
        }
        if doc["subjects"].is_sequence() {
            doc["subjects"] = serde_yaml::to_value(json!([
                {"kind": "User", "name": USER, "apiGroup": "rbac.authorization.k8s.io"}
            ]))?;
        }
        if doc["metadata"]["namespace"].as_str() == Some("kube-system") {
            doc["metadata"]["namespace"] = Yaml::from(lease_namespace);
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc)?);
    }
    Ok(out)
}

fn kubectl(root: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(root.join(".berth/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// A personal access token of the admin, logged in as the web UI does.
async fn admin_token(http: &reqwest::Client, base: &str) -> Result<String> {
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    ensure!(
        login.status() == StatusCode::OK,
        "login: {}",
        login.status()
    );
    let cookie = |name: &str| {
        login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{name}="))
                    .map(|r| r.split(';').next().unwrap_or("").to_owned())
            })
    };
    let (session, csrf) = (cookie("berth_session"), cookie("berth_csrf"));
    let (Some(session), Some(csrf)) = (session, csrf) else {
        bail!("login set no session or CSRF cookie");
    };
    let token: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .header(
            "cookie",
            format!("berth_session={session}; berth_csrf={csrf}"),
        )
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "helm-chart-test"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    token["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the answer")
}

#[tokio::test]
async fn berth_does_an_environments_life_under_the_charts_rules_alone() -> Result<()> {
    let cluster = berth_testkit::cluster()
        .await
        .context("the local cluster is needed")?;
    let root = cluster.repo_root().to_owned();
    let admin_kubeconfig = cluster.kubeconfig();
    let lease_namespace = berth_testkit::TestNamespace::create(&cluster, "chart-lease").await?;
    let run = berth_testkit::unique_name("chart");
    let dir = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&dir)?;

    // What the chart installs before Berth starts, as every Berth's leader
    // applies it too: the CRDs, the tenant roles (from the same function as
    // the chart's file, which another test compares), and berth-users,
    // where the chart's Role is.
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    for crd in [
        Environment::crd(),
        berth_manifests::EnvironmentPolicy::crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply("berth").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    let roles = Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(cluster.client());
    for role in berth_manifests::cluster_roles() {
        let name = role.metadata.name.clone().unwrap_or_default();
        let mut body = serde_json::to_value(&role)?;
        body["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
        body["kind"] = "ClusterRole".into();
        roles
            .patch(
                &name,
                &PatchParams::apply("berth").force(),
                &Patch::Apply(&body),
            )
            .await?;
    }
    // The admission policies, exempting the restricted user as every
    // other test's Berth (also `berth-admin`) installs them.
    let policies = Api::<ValidatingAdmissionPolicy>::all(cluster.client());
    let bindings = Api::<ValidatingAdmissionPolicyBinding>::all(cluster.client());
    for (policy, binding) in
        berth_manifests::admission_policies(USER, &berth_manifests::GuardrailOptions::default())
    {
        let apply = PatchParams::apply("berth").force();
        let name = policy.metadata.name.clone().unwrap_or_default();
        policies
            .patch(&name, &apply, &Patch::Apply(&policy))
            .await?;
        bindings
            .patch(&name, &apply, &Patch::Apply(&binding))
            .await?;
    }
    let namespace = berth_manifests::users_namespace();
    let mut body = serde_json::to_value(&namespace)?;
    body["apiVersion"] = "v1".into();
    body["kind"] = "Namespace".into();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client())
        .patch(
            "berth-users",
            &PatchParams::apply("berth"),
            &Patch::Apply(&body),
        )
        .await?;
    let rbac = restricted_rbac(&run, lease_namespace.name())?;
    kubectl(
        &root,
        &admin_kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(&rbac),
    )?;
    let kubeconfig = restricted_kubeconfig(&root, &dir)?;
    let mut result = life_of_an_environment(
        &cluster,
        &root,
        &dir,
        &run,
        &kubeconfig,
        lease_namespace.name(),
    )
    .await;
    if result.is_ok() {
        let managed = berth_testkit::TestNamespace::create_with_labels(
            &cluster,
            "chart-managed",
            &[
                ("app.kubernetes.io/managed-by", "berth"),
                ("pod-security.kubernetes.io/enforce", "restricted"),
            ],
        )
        .await?;
        result = nothing_outside_its_namespaces(
            &root,
            &kubeconfig,
            lease_namespace.name(),
            managed.name(),
        );
        managed.delete().await?;
    }
    let _ = kubectl(
        &root,
        &admin_kubeconfig,
        &["delete", "--ignore-not-found", "-f", "-"],
        Some(&rbac),
    );
    lease_namespace.delete().await?;
    result
}

async fn life_of_an_environment(
    cluster: &berth_testkit::Cluster,
    root: &Path,
    dir: &Path,
    run: &str,
    kubeconfig: &Path,
    lease_namespace: &str,
) -> Result<()> {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let restricted = Client::try_from(config)?;
    // The bindings are in force once the user may list Environments.
    berth_testkit::eventually(Duration::from_secs(10), || async {
        Api::<Environment>::all(restricted.clone())
            .list_metadata(&Default::default())
            .await
            .map(|_| ())
            .context("listing Environments as the restricted user")
    })
    .await?;

    let berth = env!("CARGO_BIN_EXE_berth");
    let controller_metrics = free_port()?;
    let mut controller = Process::start(
        Command::new(berth)
            .arg("controller")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--identity", run, "--lease-namespace", lease_namespace])
            // As the chart runs it: the policies are the chart's.
            .arg("--no-install-admission-policies")
            .args(["--selector", &format!("{RUN_LABEL}={run}")])
            .args([
                "--metrics-listen",
                &format!("127.0.0.1:{controller_metrics}"),
            ]),
        dir.join("controller.log"),
    )?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Process::start(
        Command::new(berth)
            .arg("serve")
            .env("KUBECONFIG", kubeconfig)
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_KUBE_LISTEN", format!("127.0.0.1:{}", free_port()?))
            .env(
                "BERTH_DATABASE_URL",
                format!("sqlite://{}", dir.join("berth.db").display()),
            )
            .env("BERTH_NO_CONTROLLER", "true")
            .env("BERTH_NO_INSTALL_ADMISSION_POLICIES", "true")
            .env("BERTH_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        dir.join("serve.log"),
    )?;
    let outcome = exercise(cluster, root, dir, run, &base).await;
    controller.stop();
    server.stop();
    let logs = format!(
        "controller log:\n{}\nserve log:\n{}",
        controller.log(),
        server.log()
    );
    outcome.with_context(|| logs.clone())?;
    // Its log is where a refusal would show: it must have been written.
    ensure!(
        controller.log().contains("reconciling environments"),
        "the controller's log does not say it led:\n{logs}"
    );
    let forbidden: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .collect();
    ensure!(
        forbidden.is_empty(),
        "Berth was refused under the chart's rules:\n{}",
        forbidden.join("\n")
    );
    // The policies it found are the ones it enforces: no drift reported.
    let drift: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("differs from what this version") || l.contains("not installed"))
        .collect();
    ensure!(
        drift.is_empty(),
        "Berth reported the admission policies as drifted:\n{}",
        drift.join("\n")
    );
    Ok(())
}

/// What whoever took over Berth's pod would try first, as Berth under the
/// chart's rules: each is refused, by RBAC (a token of a kube-system
/// ServiceAccount) or by the scope policy (writes in, or to, namespaces
/// Berth does not manage; anything but ServiceAccounts in berth-users;
/// taking a namespace of its own out of the guardrails or making it
/// privileged; a role binding for anyone but a member's identity).
/// Server-side dry runs: admission judges them as it would the real
/// writes, and nothing is changed if one gets through. `plain` is a
/// namespace Berth does not manage (kube-system may not be deleted by
/// anyone), `managed` one labelled as Berth's.
fn nothing_outside_its_namespaces(
    root: &Path,
    kubeconfig: &Path,
    plain: &str,
    managed: &str,
) -> Result<()> {
    const POLICY: &str = "Berth writes only";
    const BINDING: &str = "Berth's role bindings grant a berth-tenant-*";
    let dry = "--dry-run=server";
    let privileged = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {managed}-x\n  labels:\n    \
         app.kubernetes.io/managed-by: berth\n    pod-security.kubernetes.io/enforce: privileged\n"
    );
    let external_ips = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: takeover\n  namespace: {managed}\n\
         spec:\n  ports: [{{port: 80}}]\n  externalIPs: [203.0.113.7]\n"
    );
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: kube-scheduler\n  namespace: {plain}\n"
    );
    let attempts: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        // The leader's Role may create Leases (RBAC cannot name them).
        (vec!["create", "-f", "-", dry], Some(lease.as_str()), POLICY),
        (
            vec!["create", "token", "default", "-n", "kube-system"],
            None,
            "forbidden",
        ),
        (
            vec![
                "create",
                "deployment",
                "takeover",
                "--image=nginx:1.27",
                "-n",
                "kube-system",
                dry,
            ],
            None,
            POLICY,
        ),
        (
            vec![
                "create",
                "deployment",
                "takeover",
                "--image=nginx:1.27",
                "-n",
                "berth-users",
                dry,
            ],
            None,
            POLICY,
        ),
        (
            vec![
                "create",
                "rolebinding",
                "takeover",
                "--clusterrole=berth-tenant-owner",
                "--user=mallory",
                "-n",
                "kube-system",
                dry,
            ],
            None,
            POLICY,
        ),
        (vec!["delete", "namespace", plain, dry], None, POLICY),
        (
            vec![
                "label",
                "namespace",
                "default",
                "app.kubernetes.io/managed-by=berth",
                dry,
            ],
            None,
            POLICY,
        ),
        (
            vec!["apply", "-f", "-", dry],
            Some(privileged.as_str()),
            POLICY,
        ),
        (
            vec![
                "label",
                "namespace",
                managed,
                "app.kubernetes.io/managed-by-",
                dry,
            ],
            None,
            POLICY,
        ),
        (
            vec![
                "label",
                "namespace",
                managed,
                "--overwrite",
                "pod-security.kubernetes.io/enforce=privileged",
                dry,
            ],
            None,
            POLICY,
        ),
        (
            vec![
                "create",
                "rolebinding",
                "takeover",
                "--clusterrole=berth-tenant-owner",
                "--user=mallory",
                "-n",
                managed,
                dry,
            ],
            None,
            BINDING,
        ),
        // Berth's own writes meet the guardrails: no Service that takes
        // over an outside address (CVE-2020-8554).
        (
            vec!["apply", "-f", "-", dry],
            Some(external_ips.as_str()),
            "spec.externalIPs",
        ),
        // A conversion webhook would see every Environment.
        (
            vec![
                "patch",
                "crd",
                "environments.berth.dev",
                "--type=merge",
                "-p",
                r#"{"spec":{"conversion":{"strategy":"Webhook","webhook":{"conversionReviewVersions":["v1"],"clientConfig":{"url":"https://takeover.example.com/convert"}}}}}"#,
                dry,
            ],
            None,
            "without a conversion webhook",
        ),
        // No admission policy can guard admission policies: only RBAC
        // keeps the guardrails from being switched to Audit or deleted.
        (
            vec![
                "patch",
                "validatingadmissionpolicybinding",
                "berth-guardrails-pods",
                "--type=merge",
                "-p",
                r#"{"spec":{"validationActions":["Audit"]}}"#,
                dry,
            ],
            None,
            "forbidden",
        ),
        (
            vec![
                "delete",
                "validatingadmissionpolicy",
                "berth-guardrails-ingresses",
                dry,
            ],
            None,
            "forbidden",
        ),
    ];
    for (args, stdin, refusal) in &attempts {
        match kubectl(root, kubeconfig, args, *stdin) {
            Ok(out) => bail!("kubectl {args:?} was let through: {out}"),
            Err(error) => ensure!(
                format!("{error:#}").contains(refusal),
                "kubectl {args:?} failed, but not with {refusal:?}: {error:#}"
            ),
        }
    }
    // What Berth does there still passes.
    kubectl(
        root,
        kubeconfig,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "-n",
            managed,
            dry,
        ],
        None,
    )?;
    kubectl(
        root,
        kubeconfig,
        &[
            "create",
            "rolebinding",
            "member",
            "--clusterrole=berth-tenant-owner",
            "--serviceaccount=berth-users:user-x",
            "-n",
            managed,
            dry,
        ],
        None,
    )?;
    Ok(())
}

/// Create, Ready, details, a kubeconfig used with kubectl, delete, gone: as
/// the admin of the restricted Berth, through its API.
async fn exercise(
    cluster: &berth_testkit::Cluster,
    root: &Path,
    dir: &Path,
    run: &str,
    base: &str,
) -> Result<()> {
    let http = reqwest::Client::new();
    berth_testkit::eventually(Duration::from_secs(20), || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    })
    .await
    .context("berth serve did not answer /healthz")?;
    let token = admin_token(&http, base).await?;
    let auth = format!("Bearer {token}");
    let name = run.to_owned();
    let environments = format!("{base}/api/v1/environments");
    let created = http
        .post(&environments)
        .header("authorization", &auth)
        .json(&json!({
            "name": name,
            "description": "the chart's rules alone",
            "ttl": "1h",
            "apps": [{"name": "web", "image": "nginx:1.27", "port": 8080, "expose": "ingress"}],
        }))
        .send()
        .await?;
    let status = created.status();
    ensure!(
        status == StatusCode::CREATED,
        "create: {status} {}",
        created.text().await?
    );
    // This run's controller reconciles only what carries its label.
    Api::<Environment>::all(cluster.client())
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {RUN_LABEL: run}}})),
        )
        .await?;
    let environment = format!("{environments}/{name}");
    berth_testkit::eventually(Duration::from_secs(60), || async {
        let body: Value = http
            .get(&environment)
            .header("authorization", &auth)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let phase = &body["status"]["phase"];
        ensure!(
            phase == "Ready",
            "phase {phase}: {}",
            body["status"]["conditions"]
        );
        Ok(())
    })
    .await?;
    for detail in ["workloads", "events"] {
        let answer = http
            .get(format!("{environment}/{detail}"))
            .header("authorization", &auth)
            .send()
            .await?;
        ensure!(
            answer.status() == StatusCode::OK,
            "{detail}: {}",
            answer.status()
        );
    }
    // A kubeconfig (a user ServiceAccount, a TokenRequest), used through
    // Berth's kube proxy (TokenReview, impersonation) once the controller
    // has bound the new identity.
    let tenant_kubeconfig = http
        .get(format!("{environment}/kubeconfig"))
        .header("authorization", &auth)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let tenant_kubeconfig_file = dir.join("tenant.kubeconfig");
    std::fs::write(&tenant_kubeconfig_file, tenant_kubeconfig)?;
    berth_testkit::eventually(Duration::from_secs(20), || async {
        kubectl(
            root,
            &tenant_kubeconfig_file,
            &["get", "deployments", "-o", "name"],
            None,
        )
        .and_then(|out| {
            ensure!(out.contains("deployment.apps/web"), "deployments: {out}");
            Ok(())
        })
    })
    .await?;
    let deleted = http
        .delete(&environment)
        .header("authorization", &auth)
        .send()
        .await?;
    ensure!(
        deleted.status().is_success(),
        "delete: {}",
        deleted.status()
    );
    berth_testkit::eventually(Duration::from_secs(60), || async {
        let status = http
            .get(&environment)
            .header("authorization", &auth)
            .send()
            .await?
            .status();
        ensure!(status == StatusCode::NOT_FOUND, "still there: {status}");
        Ok(())
    })
    .await
}

/// The Ingress reaches the HTTP port, where `/metrics` answers 404 since
/// the chart sets `BERTH_METRICS_LISTEN` on another port, the one the
/// ServiceMonitor scrapes (the Ingress published every series).
#[test]
fn the_ingress_does_not_publish_the_metrics() -> Result<()> {
    let docs = helm_template(
        "berth",
        "berth",
        &[
            "--set",
            "ingress.enabled=true",
            "--set",
            "ingress.host=berth.example.com",
            "--set",
            "monitoring.serviceMonitor.enabled=true",
        ],
    )?;
    let find = |k: &str| {
        docs.iter()
            .find(|d| kind(d) == k && name(d) == "berth")
            .with_context(|| format!("no {k} berth"))
    };
    let container = &find("Deployment")?["spec"]["template"]["spec"]["containers"][0];
    let container_port = |port: &str| {
        container["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(port))
            .and_then(|p| p["containerPort"].as_u64())
    };
    let metrics_listen = container["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|e| e["name"].as_str() == Some("BERTH_METRICS_LISTEN"))
        .and_then(|e| e["value"].as_str())
        .context("the Deployment does not set BERTH_METRICS_LISTEN")?;
    let service = find("Service")?;
    // The container port a Service port of `name` leads to.
    let through_service = |name: &str| {
        service["spec"]["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["targetPort"].as_str())
            .and_then(container_port)
    };
    let ingress = &find("Ingress")?["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(ingress["name"].as_str(), Some("berth"));
    let published = through_service(ingress["port"]["name"].as_str().unwrap_or_default())
        .context("the Ingress's port leads to no container port")?;
    let scraped = through_service(
        find("ServiceMonitor")?["spec"]["endpoints"][0]["port"]
            .as_str()
            .unwrap_or_default(),
    )
    .context("the ServiceMonitor's port leads to no container port")?;
    assert!(
        metrics_listen.ends_with(&format!(":{scraped}")),
        "BERTH_METRICS_LISTEN {metrics_listen} is not the scraped port {scraped}"
    );
    assert_ne!(published, scraped, "the Ingress reaches the metrics port");
    Ok(())
}

/// The chart installs the tenant ClusterRoles Berth binds, exactly as this
/// version's `berth_manifests::cluster_roles`: the leader, holding only
/// `bind` on them under the chart, finds them so and writes nothing.
#[test]
fn the_charts_tenant_roles_are_the_ones_berth_binds() -> Result<()> {
    let docs = helm_template("berth", "berth", &[])?;
    for role in berth_manifests::cluster_roles() {
        let role_name = role.metadata.name.clone().unwrap_or_default();
        let doc = docs
            .iter()
            .find(|d| kind(d) == "ClusterRole" && name(d) == role_name)
            .with_context(|| format!("the chart does not install {role_name}"))?;
        assert_eq!(
            serde_json::to_value(&doc["rules"])?,
            serde_json::to_value(&role.rules)?,
            "{role_name}: regenerate templates/tenant-roles.yaml from `berth install-manifests`"
        );
        assert!(doc["aggregationRule"].is_null() && role.aggregation_rule.is_none());
    }
    Ok(())
}

/// Their names, which the chart's `admissionPolicies` value lists.
const ADMISSION_POLICIES: &[&str] = &[
    "berth-environments",
    "berth-guardrails-ingresses",
    "berth-guardrails-services",
    "berth-guardrails-secrets",
    "berth-guardrails-pods",
    "berth-guardrails-workloads",
    "berth-guardrails-cronjobs",
    "berth-guardrails-configmaps",
    "berth-guardrails-persistentvolumeclaims",
    "berth-guardrails-statefulsets",
];

const POLICIES_TEMPLATE: &str = "templates/admission-policies.yaml";

/// `templates/admission-policies.yaml` as Berth's own functions make it:
/// each policy rendered with stand-in options, which are then replaced by
/// the template expressions of the chart's values. The documents are JSON
/// (which is YAML), so that each stand-in sits in one known spelling.
fn admission_policies_template() -> String {
    const NAMESPACE: &str = "chart-stand-in-namespace";
    const ACCOUNT: &str = "chart-stand-in-account";
    const DOMAIN: &str = "chart-stand-in-domain.invalid";
    const ANNOTATION: &str = "chart-stand-in/annotation";
    const PRIORITY: &str = "chart-stand-in-priority";
    let options = berth_manifests::GuardrailOptions {
        ingress_domain: DOMAIN.into(),
        ingress_annotations: vec![ANNOTATION.into()],
        priority_classes: vec![PRIORITY.into()],
    };
    let defaults = berth_manifests::GuardrailOptions::default().ingress_annotations;
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = format!(
        r#"# Generated by crates/berth/tests/helm_chart.rs from Berth's own policies
# (berth_manifests::admission_policy and ::guardrails): regenerate with
#   BERTH_UPDATE_CHART=1 cargo test -p berth --test helm_chart admission_policies
# berth-environments exempts this release's ServiceAccount (the guardrails
# judge it like every writer), which may only read them
# (rbac.yaml): no admission policy can guard admission policies, so whoever
# took over Berth's pod could otherwise switch a guardrail to Audit.
# values.schema.json keeps the values to the names and DNS names the
# policies' CEL can quote as they are.
{{{{- $user := printf "system:serviceaccount:%s:%s" .Release.Namespace (include "berth.fullname" .) }}}}
{{{{- $domain := .Values.config.ingressDomain }}}}
{{{{- $annotations := concat (list {defaults}) .Values.config.ingressAnnotations | toJson | toJson | trimPrefix "\"" | trimSuffix "\"" }}}}
{{{{- $priorityClasses := .Values.config.priorityClasses | default (list) | toJson | toJson | trimPrefix "\"" | trimSuffix "\"" }}}}
"#,
        defaults = quoted(&defaults.iter().map(String::as_str).collect::<Vec<_>>()),
    );
    let user = format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}");
    for (policy, binding) in berth_manifests::admission_policies(&user, &options) {
        let name = policy.metadata.name.clone().unwrap_or_default();
        out.push_str(&format!(
            "{{{{- if has {name:?} .Values.admissionPolicies }}}}\n"
        ));
        for object in [
            serde_json::to_value(&policy).unwrap(),
            serde_json::to_value(&binding).unwrap(),
        ] {
            let json = object.to_string();
            assert!(!json.contains("{{"), "{name} holds a template's braces");
            let json = json
                .replace(&format!(r#"[\"{ANNOTATION}\"]"#), "{{ $annotations }}")
                .replace(&format!(r#"[\"{PRIORITY}\"]"#), "{{ $priorityClasses }}")
                .replace(DOMAIN, "{{ $domain }}")
                .replace(&user, "{{ $user }}");
            assert!(
                !json.contains("chart-stand-in"),
                "{name}: a stand-in is in a spelling the generator does not replace: {json}"
            );
            out.push_str("---\n");
            out.push_str(&json);
            out.push('\n');
        }
        out.push_str("{{- end }}\n");
    }
    out
}

#[test]
fn the_charts_admission_policies_template_is_the_one_berth_generates() {
    let path = repo_root().join(CHART).join(POLICIES_TEMPLATE);
    let generated = admission_policies_template();
    if std::env::var_os("BERTH_UPDATE_CHART").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let chart = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        chart == generated,
        "{} differs from what Berth generates: regenerate it with \
         BERTH_UPDATE_CHART=1 cargo test -p berth --test helm_chart admission_policies",
        path.display()
    );
}

/// What the chart renders, for default and for other values, is what
/// Berth's leader would have written with the same settings.
#[test]
fn the_charts_admission_policies_are_berths_for_its_values() -> Result<()> {
    let defaults = berth_manifests::GuardrailOptions::default();
    let mut annotations = defaults.ingress_annotations.clone();
    annotations.push("example.com/extra".into());
    let custom = berth_manifests::GuardrailOptions {
        ingress_domain: "apps.example.com".into(),
        ingress_annotations: annotations,
        priority_classes: vec!["tenant-low".into(), "tenant-high".into()],
    };
    for (release, namespace, args, options, left_out) in [
        ("berth", "berth", vec![], defaults, None),
        (
            "acme",
            "platform",
            vec![
                "--set",
                "config.ingressDomain=apps.example.com",
                "--set",
                "config.ingressAnnotations={example.com/extra}",
                "--set",
                "config.priorityClasses={tenant-low,tenant-high}",
                "--set",
                "admissionPolicies={berth-environments,berth-guardrails-ingresses,berth-guardrails-services,berth-guardrails-secrets,berth-guardrails-pods,berth-guardrails-workloads,berth-guardrails-cronjobs,berth-guardrails-configmaps,berth-guardrails-statefulsets}",
            ],
            custom,
            Some("berth-guardrails-persistentvolumeclaims"),
        ),
    ] {
        let docs = helm_template(release, namespace, &args)?;
        let fullname = if release.contains("berth") {
            release.to_owned()
        } else {
            format!("{release}-berth")
        };
        let user = format!("system:serviceaccount:{namespace}:{fullname}");
        for (policy, binding) in berth_manifests::admission_policies(&user, &options) {
            let policy_name = policy.metadata.name.clone().unwrap_or_default();
            let rendered = |k: &str| docs.iter().find(|d| kind(d) == k && name(d) == policy_name);
            if Some(policy_name.as_str()) == left_out {
                ensure!(
                    rendered("ValidatingAdmissionPolicy").is_none(),
                    "{policy_name} is rendered though left out of admissionPolicies"
                );
                continue;
            }
            for (k, wanted) in [
                ("ValidatingAdmissionPolicy", serde_json::to_value(&policy)?),
                (
                    "ValidatingAdmissionPolicyBinding",
                    serde_json::to_value(&binding)?,
                ),
            ] {
                let doc = rendered(k).with_context(|| {
                    format!("{release}: the chart renders no {k} {policy_name}")
                })?;
                ensure!(
                    serde_json::to_value(doc)? == wanted,
                    "{release}: the chart's {k} {policy_name} is not Berth's:\n{}\n{}",
                    serde_json::to_value(doc)?,
                    wanted
                );
            }
        }
    }
    let error = helm_template("berth-tenant-owner", "berth", &[])
        .err()
        .context("a release named like a tenant role rendered")?;
    ensure!(
        format!("{error:#}").contains("release name berth-tenant-owner"),
        "{error:#}"
    );
    // A careless value fails the install, naming itself
    // (values.schema.json): the policies quote the values as they are.
    for (value, named) in [
        (
            "admissionPolicies={berth-guardrails-pod}",
            "/admissionPolicies/0",
        ),
        ("config.priorityClasses={it's}", "/config/priorityClasses/0"),
        (
            "config.ingressAnnotations={example.com/a b}",
            "/config/ingressAnnotations/0",
        ),
        (
            "config.ingressDomain=Apps.Example.COM.",
            "/config/ingressDomain",
        ),
    ] {
        let error = helm_template("berth", "berth", &["--set", value])
            .err()
            .with_context(|| format!("--set {value} rendered"))?;
        ensure!(
            format!("{error:#}").contains(named),
            "--set {value}: {error:#}"
        );
    }
    Ok(())
}
