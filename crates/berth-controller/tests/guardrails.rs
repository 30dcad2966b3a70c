//! The tenant guardrails against the real local cluster: a tenant-escape
//! suite. The controller's leader installs the guardrail policies; each test
//! reconciles an Environment of its own (so its namespace is labelled as
//! Berth labels them) and acts in it as a member would: a ServiceAccount of
//! another namespace, bound there to a `berth-tenant-*` ClusterRole, with a
//! client holding its token. Every attack of a kind (an Ingress for another
//! environment's host, a Service with external IPs, a token Secret, a pod
//! running as a member identity or tolerating every taint, ...) is refused
//! with a message naming the field; the legitimate neighbour of each is
//! admitted; Berth's own objects, and the pods the ReplicaSet controller
//! makes of them, are too; what an admin allows on the namespace is
//! admitted.
//!
//! Checks are by server-side dry run wherever the object need not exist:
//! nothing is created.

mod support;

use anyhow::{Context, Result, anyhow, bail, ensure};
use berth_manifests::{
    ALLOW_EXTERNAL_NAME_ANNOTATION, ALLOWED_INGRESS_HOSTS_ANNOTATION, APP_LABEL, Environment,
    GUARDRAIL_POLICY_PREFIX, Phase,
};
use berth_testkit::{TestNamespace, api_status, eventually, unique_name};
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};
use std::time::Duration;
use support::{apply_env, client, delete_env, wait_phase};

/// Admission policies and RBAC reach the apiserver's checks through
/// informers: a fresh policy or binding may take a moment to act.
const PROPAGATION: Duration = Duration::from_secs(60);
const READY_WITHIN: Duration = Duration::from_secs(90);
/// The ingress domain the test controller builds with (the default).
const DOMAIN: &str = "berth.localhost";

/// A member of a fresh environment: a ServiceAccount of the namespace
/// `home`, bound in the environment's namespace to `berth-tenant-<role>`.
struct Tenant {
    admin: Client,
    client: Client,
    /// The environment's name, which is its namespace's.
    env: String,
    home: TestNamespace,
}

impl Tenant {
    /// Reconciles an environment with one app exposed by ingress and binds
    /// a member of `role` in it.
    async fn new(prefix: &str, role: &str) -> Result<Self> {
        let admin = client().await;
        let cluster = berth_testkit::cluster().await?;
        let env = unique_name(prefix);
        apply_env(
            &admin,
            &env,
            json!({
                "template": "small",
                "apps": [{"name": "web", "image": "nginx:1.27", "replicas": 1, "port": 8080, "expose": "ingress"}],
                "members": [{"email": "ada@example.com", "role": "owner"}],
            }),
        )
        .await?;
        let home = match TestNamespace::create(&cluster, "bc-gr-home").await {
            Ok(home) => home,
            Err(e) => {
                delete_env(&admin, &env).await?;
                return Err(e);
            }
        };
        match bind(&admin, &cluster, &env, &home, role).await {
            Ok(client) => Ok(Self {
                admin,
                client,
                env,
                home,
            }),
            Err(e) => {
                let removed = delete_env(&admin, &env).await;
                home.delete().await?;
                removed?;
                Err(e)
            }
        }
    }

    async fn cleanup(self) -> Result<()> {
        let removed = delete_env(&self.admin, &self.env).await;
        let home = self.home.delete().await;
        removed.and(home)
    }

    /// An environment's host: `<label>.<env>.<domain>`.
    fn host(&self, label: &str) -> String {
        format!("{label}.{}.{DOMAIN}", self.env)
    }

    /// The API of `object`'s kind in the environment's namespace, for `client`.
    fn api(&self, client: &Client, object: &Value) -> Api<DynamicObject> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap_or_default();
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        Api::namespaced_with(client.clone(), &self.env, &resource)
    }

    /// Checks, until the guardrails act, that the member's creating
    /// `object` is refused with a message holding every one of `fields`.
    async fn refused(&self, attack: &str, object: Value, fields: &[&str]) -> Result<String> {
        let api = self.api(&self.client, &object);
        let object: DynamicObject = serde_json::from_value(object)?;
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let (api, object, params) = (&api, &object, &params);
        let message = eventually(PROPAGATION, || async move {
            refusal(api.create(params, object).await.map(drop), fields)
        })
        .await
        .with_context(|| format!("attack: {attack}"))?;
        eprintln!("refused: {attack}: {message}");
        Ok(message)
    }

    /// Checks that the member's patch of the existing `object` (its kind
    /// and name) is refused naming `fields`.
    async fn patch_refused(
        &self,
        attack: &str,
        object: &Value,
        patch: Value,
        fields: &[&str],
    ) -> Result<String> {
        let api = self.api(&self.client, object);
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let params = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        let (api, params, patch) = (&api, &params, &patch);
        let message = eventually(PROPAGATION, || async move {
            refusal(
                api.patch(name, params, &Patch::Merge(patch))
                    .await
                    .map(drop),
                fields,
            )
        })
        .await
        .with_context(|| format!("attack: {attack}"))?;
        eprintln!("refused: {attack}: {message}");
        Ok(message)
    }

    /// Checks that the member may create `object`, by dry run unless
    /// `for_real`. Polls, because what admission reads (a namespace's
    /// `default` ServiceAccount, its annotations) arrives through informers;
    /// a refusal came first, so the guardrails are known to act by then.
    async fn admitted(&self, neighbour: &str, object: Value, for_real: bool) -> Result<()> {
        let api = self.api(&self.client, &object);
        let object: DynamicObject = serde_json::from_value(object)?;
        let params = PostParams {
            dry_run: !for_real,
            ..PostParams::default()
        };
        let (api, object, params) = (&api, &object, &params);
        eventually(PROPAGATION, || async move {
            api.create(params, object)
                .await
                .map(drop)
                .map_err(|e| anyhow!("{e}"))
        })
        .await
        .with_context(|| format!("legitimate: {neighbour} was refused"))?;
        eprintln!("admitted: {neighbour}");
        Ok(())
    }
}

/// Waits for the environment `env`, binds the ServiceAccount `member` of
/// `home` in it to `berth-tenant-<role>`, and returns a client with its
/// token once RBAC lets it list pods there.
async fn bind(
    admin: &Client,
    cluster: &berth_testkit::Cluster,
    env: &str,
    home: &TestNamespace,
    role: &str,
) -> Result<Client> {
    wait_phase(admin, env, Phase::Ready, READY_WITHIN).await?;
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), home.name());
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "member"}}))?,
        )
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("test-{}", home.name())},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("berth-tenant-{role}")},
        "subjects": [{"kind": "ServiceAccount", "name": "member", "namespace": home.name()}],
    }))?;
    Api::<RoleBinding>::namespaced(admin.clone(), env)
        .create(&PostParams::default(), &binding)
        .await?;
    let client = cluster
        .service_account_client(home.name(), "member")
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), env);
    eventually(PROPAGATION, || async {
        pods.list(&ListParams::default().limit(1)).await?;
        Ok(())
    })
    .await
    .context("the member never got to list pods in its environment")?;
    Ok(client)
}

/// `Ok(message)` when `outcome` is a refusal whose message holds `fields`.
fn refusal(outcome: Result<(), kube::Error>, fields: &[&str]) -> Result<String> {
    match outcome {
        Ok(()) => bail!("admitted"),
        Err(e) => match api_status(&e) {
            Some((400..=499, _, message)) if fields.iter().all(|f| message.contains(f)) => {
                Ok(message.to_owned())
            }
            _ => bail!("refused, but not naming {fields:?}: {e}"),
        },
    }
}

fn ingress(name: &str, rules: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"rules": rules},
    })
}

/// An HTTP rule for `host` (none when `None`) to the Service `web`.
fn rule(host: Option<&str>) -> Value {
    let mut rule = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}});
    if let Some(host) = host {
        rule["host"] = json!(host);
    }
    rule
}

fn ingress_for(host: &str) -> Value {
    ingress(&unique_name("ing"), json!([rule(Some(host))]), json!({}))
}

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": unique_name("svc")}, "spec": spec})
}

fn cluster_ip_service() -> Value {
    service(json!({"ports": [{"port": 80, "targetPort": 8080}], "selector": {APP_LABEL: "web"}}))
}

fn secret(type_: &str, account: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
           "metadata": {"name": unique_name("sec"),
                        "annotations": {"kubernetes.io/service-account.name": account}},
           "stringData": {"note": "x"}})
}

/// A pod spec that passes the `restricted` Pod Security level, with `extra`
/// fields merged in.
fn pod_spec(extra: Value) -> Value {
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app", "image": "nginx:1.27",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                          "limits": {"cpu": "10m", "memory": "16Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false,
                                "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": true, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
        }],
    });
    for (key, value) in extra.as_object().into_iter().flatten() {
        spec[key] = value.clone();
    }
    spec
}

fn pod(extra: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": unique_name("pod")},
           "spec": pod_spec(extra)})
}

/// A claim of 1 GiB, with `extra` fields merged into its spec.
fn claim(extra: Value) -> Value {
    let mut spec =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    for (key, value) in extra.as_object().into_iter().flatten() {
        spec[key] = value.clone();
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": unique_name("claim")}, "spec": spec})
}

fn deployment(extra: Value) -> Value {
    let name = unique_name("dep");
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"test": name}},
                    "template": {"metadata": {"labels": {"test": name}}, "spec": pod_spec(extra)}}})
}

fn cron_job(extra: Value) -> Value {
    let mut spec = pod_spec(extra);
    spec["restartPolicy"] = json!("Never");
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": unique_name("cron")},
           "spec": {"schedule": "0 0 1 1 *", "suspend": true,
                    "jobTemplate": {"spec": {"template": {"spec": spec}}}}})
}

#[tokio::test]
async fn ingresses_reach_only_the_environments_own_hosts() -> Result<()> {
    let tenant = Tenant::new("bc-gr-ing", "owner").await?;
    let outcome = async {
        let t = &tenant;
        let other = unique_name("bc-gr-other");
        let host = ["spec.rules[", "].host"];
        let other_hosts = [
            ("another environment's app", format!("web.{other}.{DOMAIN}")),
            (
                "another environment's app in capitals",
                format!("WEB.{}.{DOMAIN}", other.to_uppercase()),
            ),
            ("its own host in capitals", t.host("WEB").to_uppercase()),
            ("a trailing dot", format!("{}.", t.host("web"))),
            ("an IDN in Unicode", t.host("bücher")),
            (
                "an IDN in punycode under another environment",
                format!("xn--bcher-kva.{other}.{DOMAIN}"),
            ),
            ("a wildcard over every environment", format!("*.{DOMAIN}")),
            (
                "a wildcard under another environment",
                format!("*.{other}.{DOMAIN}"),
            ),
            (
                "the environment's bare subdomain",
                format!("{}.{DOMAIN}", t.env),
            ),
            (
                "a name that only ends like the environment's",
                format!("web.x{}.{DOMAIN}", t.env),
            ),
            (
                "the environment's host under another domain",
                format!("{}.evil.example", t.host("web")),
            ),
            ("a host outside Berth", "login.example.com".to_owned()),
        ];
        for (attack, name) in &other_hosts {
            t.refused(
                &format!("Ingress host {name} ({attack})"),
                ingress_for(name),
                &host,
            )
            .await?;
        }
        t.refused(
            "a rule without a host",
            ingress(&unique_name("ing"), json!([rule(None)]), json!({})),
            &host,
        )
        .await?;
        t.refused(
            "a host-less rule beside a good one",
            ingress(
                &unique_name("ing"),
                json!([rule(Some(&t.host("app"))), rule(None)]),
                json!({}),
            ),
            &host,
        )
        .await?;
        let mut default_backend = ingress_for(&t.host("app"));
        default_backend["spec"]["defaultBackend"] =
            json!({"service": {"name": "web", "port": {"number": 8080}}});
        t.refused(
            "a default backend",
            default_backend,
            &["spec.defaultBackend"],
        )
        .await?;
        let mut tls = ingress_for(&t.host("app"));
        tls["spec"]["tls"] =
            json!([{"hosts": [format!("web.{other}.{DOMAIN}")], "secretName": "stolen"}]);
        t.refused(
            "a TLS host of another environment",
            tls,
            &["spec.tls[].hosts"],
        )
        .await?;
        for annotation in [
            "nginx.ingress.kubernetes.io/configuration-snippet",
            "nginx.ingress.kubernetes.io/server-snippet",
            "nginx.ingress.kubernetes.io/auth-snippet",
            "nginx.ingress.kubernetes.io/auth-url",
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "nginx.org/server-snippets",
            "ingress.kubernetes.io/configuration-snippet",
        ] {
            t.refused(
                &format!("the annotation {annotation}"),
                ingress(
                    &unique_name("ing"),
                    json!([rule(Some(&t.host("app")))]),
                    json!({annotation: "proxy_pass http://10.0.0.1;"}),
                ),
                &[&format!("metadata.annotations[{annotation}]")],
            )
            .await?;
        }

        t.admitted(
            &format!("an Ingress for {}", t.host("app")),
            ingress_for(&t.host("app")),
            false,
        )
        .await?;
        let wildcard = format!("*.{}.{DOMAIN}", t.env);
        t.admitted(
            &format!("an Ingress for {wildcard}"),
            ingress_for(&wildcard),
            false,
        )
        .await?;
        t.admitted(
            "an IDN in punycode under the environment",
            ingress_for(&t.host("xn--bcher-kva")),
            false,
        )
        .await?;
        let mut own_tls = ingress_for(&t.host("app"));
        own_tls["spec"]["tls"] = json!([{"hosts": [t.host("app")], "secretName": "app-tls"}]);
        t.admitted("a TLS host of the environment", own_tls, false)
            .await?;
        t.admitted(
            "allow-listed and unrelated annotations",
            ingress(
                &unique_name("ing"),
                json!([rule(Some(&t.host("app")))]),
                json!({"nginx.ingress.kubernetes.io/rewrite-target": "/$2",
                       "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                       "example.com/owner": "team-a; anything {goes} here"}),
            ),
            false,
        )
        .await?;
        // Allowed annotations and paths still may not smuggle configuration
        // into the controller (ingress-nginx's CVE-2021-25742 kind).
        for (attack, value) in [
            (
                "a directive in rewrite-target",
                "/ last; } location /x { return 200 pwn; } #",
            ),
            ("an include in proxy-body-size", "1m; include /etc/passwd"),
            ("a line break", "8m\nmore_set_headers x"),
            ("a second argument", "1m backlog"),
            ("a tab", "8m\tx"),
            ("a line separator", "8m\u{2028}x"),
        ] {
            let key = if attack.contains("rewrite") {
                "nginx.ingress.kubernetes.io/rewrite-target"
            } else {
                "nginx.ingress.kubernetes.io/proxy-body-size"
            };
            t.refused(
                attack,
                ingress(
                    &unique_name("ing"),
                    json!([rule(Some(&t.host("app")))]),
                    json!({key: value}),
                ),
                &["metadata.annotations", "braces"],
            )
            .await?;
        }
        let mut path_attack = rule(Some(&t.host("app")));
        path_attack["http"]["paths"][0]["path"] = json!("/a { return 200 x; } location /b");
        path_attack["http"]["paths"][0]["pathType"] = json!("ImplementationSpecific");
        t.refused(
            "a directive in a path",
            ingress(&unique_name("ing"), json!([path_attack]), json!({})),
            &["spec.rules[].http.paths[].path"],
        )
        .await?;
        for path in ["/x ~* .*", "/x\ty"] {
            let mut spaced = rule(Some(&t.host("app")));
            spaced["http"]["paths"][0]["path"] = json!(path);
            t.refused(
                &format!("whitespace in a path ({path:?})"),
                ingress(&unique_name("ing"), json!([spaced]), json!({})),
                &["spec.rules[].http.paths[].path", "whitespace"],
            )
            .await?;
        }

        // Berth's own Ingress stands: it is Berth's to write.
        let ingresses = Api::<Ingress>::namespaced(t.admin.clone(), &t.env);
        let web = ingresses.get("web").await?;
        let hosts: Vec<_> = web
            .spec
            .iter()
            .flat_map(|s| s.rules.iter().flatten())
            .filter_map(|r| r.host.clone())
            .collect();
        ensure!(
            hosts == [t.host("web")],
            "Berth's Ingress has hosts {hosts:?}"
        );
        Ok(())
    }
    .await;
    let cleaned = tenant.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn services_reach_no_outside_address_and_no_token_secret_is_made() -> Result<()> {
    let tenant = Tenant::new("bc-gr-svc", "editor").await?;
    let outcome = async {
        let t = &tenant;
        let other = unique_name("bc-gr-other");
        t.refused(
            "a Service with externalIPs (CVE-2020-8554)",
            service(json!({"ports": [{"port": 53}], "externalIPs": ["10.96.0.10"]})),
            &["spec.externalIPs"],
        )
        .await?;
        t.refused(
            "an ExternalName Service naming another environment's Service",
            service(json!({"type": "ExternalName", "externalName": format!("web.{other}.svc.cluster.local")})),
            &["spec.type", "ExternalName"],
        )
        .await?;

        // Changes are judged like creations: a Service made legitimately
        // may not gain external IPs or become an ExternalName later.
        let existing = cluster_ip_service();
        t.admitted("a ClusterIP Service", existing.clone(), true).await?;
        t.patch_refused(
            "externalIPs added to an existing Service by PATCH",
            &existing,
            json!({"spec": {"externalIPs": ["10.96.0.10"]}}),
            &["spec.externalIPs"],
        )
        .await?;
        t.patch_refused(
            "an existing Service turned ExternalName by PATCH",
            &existing,
            json!({"spec": {"type": "ExternalName", "externalName": "example.com", "clusterIP": "", "clusterIPs": null, "ports": null, "selector": null}}),
            &["spec.type", "ExternalName"],
        )
        .await?;

        // Every ServiceAccount of the namespace (the default one and any
        // member identity Berth keeps there), one named as Berth names its
        // member identities, and the member's own.
        let mut accounts: Vec<String> =
            Api::<ServiceAccount>::namespaced(t.admin.clone(), &t.env)
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|a| a.metadata.name)
                .collect();
        accounts.extend([
            "berth-member-0000".to_owned(),
            "member".to_owned(),
            "user-00000000-0000-7000-8000-000000000000".to_owned(),
        ]);
        for account in &accounts {
            t.refused(
                &format!("a service-account-token Secret for {account}"),
                secret("kubernetes.io/service-account-token", account),
                &["type", "kubernetes.io/service-account-token"],
            )
            .await?;
        }
        t.admitted("an Opaque Secret", secret("Opaque", "default"), false)
            .await?;
        // The quota counts objects, not bytes: size is a guardrail's.
        let big = "x".repeat(900 * 1024);
        let mut large = secret("Opaque", "default");
        large["stringData"] = json!({"blob": big});
        t.refused("a 900 KB Secret", large, &["stringData", "512 KiB"])
            .await?;
        let config_map = |data: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": unique_name("cm")}, "data": {"blob": data}})
        };
        t.refused("a 900 KB ConfigMap", config_map(&big), &["data", "512 KiB"])
            .await?;
        t.admitted("a 100 KB ConfigMap", config_map(&"x".repeat(100 * 1024)), false)
            .await?;
        // Counted in bytes, keys included: 340,000 euro signs are 1,020,000 bytes.
        t.refused(
            "a ConfigMap of multi-byte characters",
            config_map(&"\u{20ac}".repeat(340_000)),
            &["data", "512 KiB"],
        )
        .await?;
        let many_keys: serde_json::Map<String, Value> = (0..3000)
            .map(|i| (format!("{i:0>240}"), json!("")))
            .collect();
        t.refused(
            "a ConfigMap of long keys",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": unique_name("cm")}, "data": many_keys}),
            &["data", "512 KiB"],
        )
        .await?;
        Ok(())
    }
    .await;
    let cleaned = tenant.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn pods_run_as_their_namespaces_accounts_on_ordinary_terms() -> Result<()> {
    let tenant = Tenant::new("bc-gr-pod", "editor").await?;
    let outcome = async {
        let t = &tenant;
        // A member identity living in the namespace, named as Berth names
        // them, and whatever other ServiceAccounts Berth keeps there.
        let member = "berth-member-0000";
        // And a decoy named as users' identities are (theirs live in
        // `berth-users`, out of any pod's reach).
        let decoy = "user-00000000-0000-7000-8000-000000000000";
        for name in [member, decoy] {
            Api::<ServiceAccount>::namespaced(t.admin.clone(), &t.env)
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": name}}))?,
                )
                .await?;
        }
        let accounts: Vec<String> =
            Api::<ServiceAccount>::namespaced(t.admin.clone(), &t.env)
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|a| a.metadata.name)
                .filter(|n| n != "default")
                .collect();
        ensure!(
            accounts.iter().any(|a| a == member) && accounts.iter().any(|a| a == decoy),
            "{accounts:?}"
        );
        let sa = ["spec.serviceAccountName"];
        for account in &accounts {
            t.refused(
                &format!("a pod running as {account}"),
                pod(json!({"serviceAccountName": account})),
                &sa,
            )
            .await?;
        }
        // A pod naming an account the namespace lacks never gets past the
        // apiserver's ServiceAccount admission; a template is judged as is.
        t.refused(
            "a Deployment whose pods would run as another namespace's account",
            deployment(json!({"serviceAccountName": "system:serviceaccount:kube-system:default"})),
            &["spec.template.spec.serviceAccountName"],
        )
        .await?;
        t.refused(
            "a pod running as a member identity through the deprecated serviceAccount",
            pod(json!({"serviceAccount": member})),
            &sa,
        )
        .await?;
        for class in ["system-node-critical", "system-cluster-critical"] {
            t.refused(
                &format!("a pod with priorityClassName {class}"),
                pod(json!({"priorityClassName": class})),
                &["spec.priorityClassName", class],
            )
            .await?;
        }
        let tolerations = [
            ("every taint", json!({"operator": "Exists"})),
            ("every NoSchedule taint", json!({"operator": "Exists", "effect": "NoSchedule"})),
            ("the control plane's taint", json!({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"})),
            ("the legacy master taint", json!({"key": "node-role.kubernetes.io/master", "operator": "Exists"})),
            ("CriticalAddonsOnly", json!({"key": "CriticalAddonsOnly", "operator": "Exists"})),
            ("unschedulable nodes", json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"})),
            ("not-ready nodes forever", json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"})),
        ];
        for (what, toleration) in tolerations {
            t.refused(
                &format!("a pod tolerating {what}"),
                pod(json!({"tolerations": [toleration]})),
                &["spec.tolerations"],
            )
            .await?;
        }
        t.refused(
            "a pod tolerating not-ready nodes for a day",
            pod(json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 86400}]})),
            &["spec.tolerations", "3600"],
        )
        .await?;
        // Naming a node or another scheduler skips the taints altogether.
        t.refused(
            "a pod naming its node",
            pod(json!({"nodeName": "berth-node-0"})),
            &["spec.nodeName"],
        )
        .await?;
        t.refused(
            "a pod naming another scheduler",
            pod(json!({"schedulerName": "my-scheduler"})),
            &["spec.schedulerName"],
        )
        .await?;
        t.refused(
            "a Deployment whose pods would name their node",
            deployment(json!({"nodeName": "berth-node-0"})),
            &["spec.template.spec.nodeName"],
        )
        .await?;
        t.refused(
            "a CronJob whose pods would name another scheduler",
            cron_job(json!({"schedulerName": "my-scheduler"})),
            &["spec.jobTemplate.spec.template.spec.schedulerName"],
        )
        .await?;
        // Workloads are judged at once, not only when their pods are made.
        t.refused(
            "a Deployment whose pods would be system-node-critical",
            deployment(json!({"priorityClassName": "system-node-critical"})),
            &["spec.template.spec.priorityClassName"],
        )
        .await?;
        t.refused(
            "a CronJob whose pods would run as a member identity",
            cron_job(json!({"serviceAccountName": member})),
            &["spec.jobTemplate.spec.template.spec.serviceAccountName"],
        )
        .await?;
        let existing = deployment(json!({}));
        t.admitted("a Deployment of the default account", existing.clone(), true)
            .await?;
        t.patch_refused(
            "a toleration of every taint added to a Deployment by PATCH",
            &existing,
            json!({"spec": {"template": {"spec": {"tolerations": [{"operator": "Exists"}]}}}}),
            &["spec.template.spec.tolerations"],
        )
        .await?;

        t.admitted("a pod of the default ServiceAccount", pod(json!({})), false)
            .await?;
        t.admitted(
            "a pod naming the default ServiceAccount",
            pod(json!({"serviceAccountName": "default"})),
            false,
        )
        .await?;
        t.admitted(
            "a pod with harmless tolerations",
            pod(json!({"tolerations": [
                {"key": "example.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            ]})),
            false,
        )
        .await?;
        t.admitted("a CronJob of the default account", cron_job(json!({})), false)
            .await?;
        t.admitted(
            "a pod choosing nodes by label, through the default scheduler",
            pod(json!({"schedulerName": "default-scheduler",
                       "nodeSelector": {"kubernetes.io/os": "linux"}})),
            false,
        )
        .await?;

        // The pods of Berth's own app are made by the ReplicaSet controller,
        // which the guardrails judge too, and admit.
        let pods = Api::<Pod>::namespaced(t.admin.clone(), &t.env);
        eventually(READY_WITHIN, || async {
            let list = pods
                .list(&ListParams::default().labels(&format!("{APP_LABEL}=web")))
                .await?;
            ensure!(!list.items.is_empty(), "no pod of the app web yet");
            Ok(())
        })
        .await
        .context("the ReplicaSet controller made no pod of Berth's app")?;
        // Once scheduled, a pod holds its node: changing anything else of
        // it (a member's label, a controller's adoption) stays allowed.
        let scheduled = eventually(READY_WITHIN, || async {
            let list = pods
                .list(&ListParams::default().labels(&format!("{APP_LABEL}=web")))
                .await?;
            list.items
                .into_iter()
                .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .and_then(|p| p.metadata.name)
                .ok_or_else(|| anyhow!("no pod of the app web is scheduled yet"))
        })
        .await?;
        Api::<Pod>::namespaced(t.client.clone(), &t.env)
            .patch(
                &scheduled,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"checked": "yes"}}})),
            )
            .await
            .context("a member could not label a scheduled pod")?;
        Ok(())
    }
    .await;
    let cleaned = tenant.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn claims_get_only_volumes_made_for_them() -> Result<()> {
    let tenant = Tenant::new("bc-gr-pvc", "editor").await?;
    let outcome = async {
        let t = &tenant;
        t.refused(
            "a claim of an existing volume by name",
            claim(json!({"volumeName": "pv-of-another-environment"})),
            &["spec.volumeName"],
        )
        .await?;
        let mut stateful_set = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": unique_name("sts")},
            "spec": {"replicas": 0, "serviceName": "db", "selector": {"matchLabels": {"test": "sts"}},
                     "template": {"metadata": {"labels": {"test": "sts"}}, "spec": pod_spec(json!({}))},
                     "volumeClaimTemplates": [claim(json!({"volumeName": "pv-of-another-environment"}))]}});
        t.refused(
            "a StatefulSet claiming an existing volume by name",
            stateful_set.clone(),
            &["spec.volumeClaimTemplates[].spec", "volumeName"],
        )
        .await?;
        stateful_set["spec"]["volumeClaimTemplates"] = json!([claim(json!({}))]);
        t.admitted("a StatefulSet with ordinary claims", stateful_set, false)
            .await?;
        // With the CrossNamespaceVolumeDataSource feature off (its default),
        // the apiserver drops the namespace before admission; with it on,
        // the guardrail refuses. Either way the claim stays home.
        let foreign_source = claim(json!({"dataSourceRef": {
            "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
            "name": "snap", "namespace": "kube-system"}}));
        let api = t.api(&t.client, &foreign_source);
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        match api
            .create(&dry_run, &serde_json::from_value(foreign_source)?)
            .await
        {
            Ok(made) => ensure!(
                made.data["spec"]["dataSourceRef"]["namespace"].is_null(),
                "a claim kept a data source in another namespace: {:?}",
                made.data["spec"]
            ),
            Err(e) => {
                refusal(Err(e), &["spec.dataSourceRef.namespace"])?;
            }
        }

        // The cluster's binder may still bind a claim to the volume made
        // for it: an admin's volume reserved for the claim gets Bound.
        let name = unique_name("claim");
        let volume: PersistentVolume =
            serde_json::from_value(json!({
                "metadata": {"name": format!("{}-{name}", t.env)},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": "", "hostPath": {"path": "/tmp/berth-test"},
                         "claimRef": {"namespace": t.env, "name": name}},
            }))?;
        let volumes = Api::<PersistentVolume>::all(t.admin.clone());
        volumes.create(&PostParams::default(), &volume).await?;
        let outcome = async {
            let mut ordinary = claim(json!({"storageClassName": ""}));
            ordinary["metadata"]["name"] = json!(name);
            t.admitted("an ordinary claim", ordinary, true).await?;
            let claims = Api::<PersistentVolumeClaim>::namespaced(
                t.admin.clone(),
                &t.env,
            );
            eventually(READY_WITHIN, || async {
                let c = claims.get(&name).await?;
                let phase = c.status.and_then(|s| s.phase).unwrap_or_default();
                ensure!(phase == "Bound", "the claim is {phase:?}, not Bound");
                Ok(())
            })
            .await
            .context("the binder could not bind the claim to its volume")
        }
        .await;
        volumes
            .delete(&volume.metadata.name.clone().unwrap_or_default(), &Default::default())
            .await?;
        outcome
    }
    .await;
    let cleaned = tenant.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn what_an_admin_grants_is_admitted_and_members_cannot_allow_it() -> Result<()> {
    let tenant = Tenant::new("bc-gr-adm", "owner").await?;
    let outcome = async {
        let t = &tenant;
        t.refused(
            "an Ingress for a host outside Berth, before an admin allows it",
            ingress_for("shop.example.com"),
            &["spec.rules[].host", "shop.example.com"],
        )
        .await?;
        // Tenants cannot edit their namespace, so cannot allow themselves.
        let allow = json!({"metadata": {"annotations": {
            ALLOWED_INGRESS_HOSTS_ANNOTATION: "shop.example.com",
            ALLOW_EXTERNAL_NAME_ANNOTATION: "true",
        }}});
        let as_member = Api::<Namespace>::all(t.client.clone())
            .patch(&t.env, &PatchParams::default(), &Patch::Merge(&allow))
            .await;
        match as_member {
            Ok(_) => bail!("a member annotated its own namespace"),
            Err(e) => ensure!(
                matches!(api_status(&e), Some((403, _, _))),
                "a member's annotating its namespace failed otherwise than forbidden: {e}"
            ),
        }
        // An admin grants exceptions in the Environment's spec (through
        // Berth, whose identity this is); the controller writes them onto
        // the namespace, where the guardrails read them.
        Api::<Environment>::all(t.admin.clone())
            .patch(
                &t.env,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"exceptions": {
                    "ingressHosts": ["Shop.Example.COM.", "*.preview.example.org"],
                    "externalName": true,
                }}})),
            )
            .await?;
        let namespaces = Api::<Namespace>::all(t.admin.clone());
        eventually(PROPAGATION, || async {
            let annotations = namespaces
                .get(&t.env)
                .await?
                .metadata
                .annotations
                .unwrap_or_default();
            ensure!(
                annotations
                    .get(ALLOWED_INGRESS_HOSTS_ANNOTATION)
                    .map(String::as_str)
                    == Some("shop.example.com,*.preview.example.org")
                    && annotations.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION),
                "{annotations:?}"
            );
            Ok(())
        })
        .await?;
        t.admitted(
            "an Ingress for a host an admin allowed",
            ingress_for("shop.example.com"),
            false,
        )
        .await?;
        t.admitted(
            "an Ingress under an allowed wildcard",
            ingress_for("pr-7.preview.example.org"),
            false,
        )
        .await?;
        t.refused(
            "an Ingress for a host the admin did not allow",
            ingress_for("checkout.example.com"),
            &["spec.rules[].host", "checkout.example.com"],
        )
        .await?;
        t.admitted(
            "an ExternalName Service where an admin allowed it",
            service(json!({"type": "ExternalName", "externalName": "db.example.com"})),
            false,
        )
        .await?;
        // External IPs stay refused: no annotation allows them.
        t.refused(
            "a Service with externalIPs where ExternalName is allowed",
            service(json!({"ports": [{"port": 53}], "externalIPs": ["10.96.0.10"]})),
            &["spec.externalIPs"],
        )
        .await?;
        Ok(())
    }
    .await;
    let cleaned = tenant.cleanup().await;
    outcome.and(cleaned)
}

#[tokio::test]
async fn the_guardrails_type_check() -> Result<()> {
    let admin = client().await;
    let api = Api::<ValidatingAdmissionPolicy>::all(admin);
    eventually(PROPAGATION, || async {
        let policies: Vec<_> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(GUARDRAIL_POLICY_PREFIX))
            })
            .collect();
        let expected = berth_manifests::guardrails(&Default::default()).len();
        ensure!(
            policies.len() == expected,
            "{} guardrail policies, not {expected}",
            policies.len()
        );
        for policy in policies {
            let status = policy.status.clone().unwrap_or_default();
            ensure!(
                status.observed_generation.is_some()
                    && status.observed_generation == policy.metadata.generation,
                "the type check of {:?} has not run yet",
                policy.metadata.name
            );
            let warnings = status
                .type_checking
                .and_then(|t| t.expression_warnings)
                .unwrap_or_default();
            ensure!(
                warnings.is_empty(),
                "{:?}: type warnings: {warnings:?}",
                policy.metadata.name
            );
        }
        Ok(())
    })
    .await
}
