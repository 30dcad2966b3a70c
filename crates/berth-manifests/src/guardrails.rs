//! Tenant guardrails: ValidatingAdmissionPolicies (CEL, in the apiserver,
//! no webhook) on the namespaces Berth manages, refusing what the tenant
//! ClusterRoles would otherwise allow a member to reach beyond their
//! environment with:
//! - Ingresses: hosts outside the environment's own subdomain
//!   (`*.<environment>.<ingress domain>`) unless an admin allowed them on the
//!   namespace, rules without a host, a default backend, and ingress
//!   controller annotations outside an allow-list (snippets and external
//!   auth never);
//! - Services with `externalIPs` (CVE-2020-8554) or of type `ExternalName`
//!   (CVE-2021-25740) unless an admin allowed it on the namespace;
//! - Secrets of type `kubernetes.io/service-account-token`, which would mint
//!   a token for any ServiceAccount of the namespace;
//! - pods, and the pod templates of workloads, running as a Berth member
//!   identity or another namespace's ServiceAccount, with a priority class
//!   outside an allow-list, tolerating control-plane or critical taints,
//!   naming their node or another scheduler (either skips the taints);
//! - PersistentVolumeClaims naming a volume or a data source in another
//!   namespace.
//!
//! Every writer is judged: system controllers, since they create a
//! tenant's pods from the tenant's templates, and Berth's own identity,
//! whose writes (its apps' Deployments, Services and Ingresses, built from
//! a spec its API judged) keep to the same rules, so that whoever took over
//! Berth's pod gets no further with its token than a tenant. Every refusal
//! starts with the field it is about and says the rule.

use crate::{BuildOptions, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::{Value, json};

/// Annotation on an environment's Namespace, set by an admin (tenants
/// cannot edit Namespaces): more Ingress hosts the environment may serve,
/// comma-separated; `*.example.com` allows every name under `example.com`.
pub const ALLOWED_INGRESS_HOSTS_ANNOTATION: &str = "berth.dev/allowed-ingress-hosts";
/// Annotation on an environment's Namespace, set by an admin: `"true"` lets
/// its Services be of type `ExternalName`.
pub const ALLOW_EXTERNAL_NAME_ANNOTATION: &str = "berth.dev/allow-external-name";
/// Every guardrail policy's name, and its binding's, starts with this.
pub const GUARDRAIL_POLICY_PREFIX: &str = "berth-guardrails-";

/// Annotations of the usual ingress controllers' that stay allowed: they
/// shape the tenant's own traffic, unlike snippets (arbitrary controller
/// configuration) and external auth (requests made by the controller).
const DEFAULT_INGRESS_ANNOTATIONS: &[&str] = &[
    "nginx.ingress.kubernetes.io/rewrite-target",
    "nginx.ingress.kubernetes.io/use-regex",
    "nginx.ingress.kubernetes.io/app-root",
    "nginx.ingress.kubernetes.io/proxy-body-size",
    "nginx.ingress.kubernetes.io/proxy-connect-timeout",
    "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-send-timeout",
    "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/force-ssl-redirect",
    "nginx.ingress.kubernetes.io/backend-protocol",
    "nginx.ingress.kubernetes.io/enable-cors",
    "nginx.ingress.kubernetes.io/cors-allow-origin",
    "nginx.ingress.kubernetes.io/cors-allow-methods",
    "nginx.ingress.kubernetes.io/cors-allow-headers",
    "nginx.ingress.kubernetes.io/limit-rps",
    "nginx.ingress.kubernetes.io/limit-connections",
];
/// Annotation keys containing one of these are refused even when
/// allow-listed: they hand the ingress controller configuration or
/// requests of the tenant's choosing.
const FORBIDDEN_ANNOTATION_PARTS: &[&str] = &["snippet", "auth-url", "auth-signin"];
/// Annotation prefixes (before the `/`) read by ingress controllers: keys
/// under them must be allow-listed. Prefixes ending in
/// `ingress.kubernetes.io` (nginx's, AWS's, Traefik's, the legacy one) are
/// matched too.
const CONTROLLER_ANNOTATION_PREFIXES: &[&str] = &["nginx.org", "haproxy.org"];

/// ServiceAccount name prefixes a tenant's pod may not run as: Berth's own
/// (`berth-*`), its users' identities (`user-*`, which live in
/// `berth-users`: a same-named account in a tenant namespace could only be
/// a decoy), and `member-*`, the identities namespaces made before they
/// moved out of tenant namespaces still hold until pruned.
const BERTH_SERVICE_ACCOUNT_PREFIXES: &[&str] = &["berth-", "member-", "user-"];

/// Taints of control-plane (and other dedicated) nodes.
const NODE_ROLE_TAINT_PREFIX: &str = "node-role.kubernetes.io/";
/// Taints of nodes in trouble (not ready, unschedulable, under pressure):
/// tolerating them lands pods where the scheduler keeps others away.
const NODE_CONDITION_TAINT_PREFIX: &str = "node.kubernetes.io/";
/// Taints of nodes reserved for critical add-ons or not yet initialized.
const CRITICAL_TAINT_KEYS: &[&str] = &[
    "CriticalAddonsOnly",
    "node.cloudprovider.kubernetes.io/uninitialized",
];
/// The node-condition taints every pod may tolerate for a while: the
/// apiserver itself adds these (`DefaultTolerationSeconds`), with
/// `NoExecute` and a `tolerationSeconds`.
const TIMED_TOLERATIONS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];
/// Longest a pod may stay on a node in trouble, in seconds: the apiserver's
/// default is 300 (`DefaultTolerationSeconds`); an hour lets a tenant ride
/// out a short outage without pinning pods to a dead node for good.
pub const MAX_TOLERATION_SECONDS: i64 = 3600;
/// The one scheduler tenants' pods may name: the cluster's own, which keeps
/// pods off control-plane and tainted nodes.
const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// The identities that bind a claim to a volume: the controller-manager's
/// persistent-volume binder (with per-controller credentials, and without).
const VOLUME_BINDERS: &[&str] = &[
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:kube-controller-manager",
];

/// What the guardrails allow beyond their fixed rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardrailOptions {
    /// Hosts of an environment's Ingresses are under
    /// `<environment>.<ingress_domain>` (as [`BuildOptions::ingress_domain`]).
    pub ingress_domain: String,
    /// Annotation keys of ingress controllers (`nginx.ingress.kubernetes.io/…`
    /// and the like) an Ingress may carry; other keys of theirs are refused.
    pub ingress_annotations: Vec<String>,
    /// `priorityClassName`s pods may use; empty: none.
    pub priority_classes: Vec<String>,
}

impl Default for GuardrailOptions {
    fn default() -> Self {
        Self {
            ingress_domain: BuildOptions::default().ingress_domain,
            ingress_annotations: DEFAULT_INGRESS_ANNOTATIONS
                .iter()
                .map(|&a| a.to_owned())
                .collect(),
            priority_classes: Vec::new(),
        }
    }
}

/// One guardrail: a policy and the binding that makes it act.
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrail {
    pub policy: ValidatingAdmissionPolicy,
    pub binding: ValidatingAdmissionPolicyBinding,
}

/// Every guardrail, in a fixed order.
pub fn guardrails(options: &GuardrailOptions) -> Vec<Guardrail> {
    let make = guardrail;
    vec![
        make(
            "ingresses",
            vec![writes("networking.k8s.io", &["ingresses"])],
            ingress_rules(options),
        ),
        make("services", vec![writes("", &["services"])], service_rules()),
        make("secrets", vec![writes("", &["secrets"])], secret_rules()),
        // Berth writes no pods: the pods of its apps come from the ReplicaSet
        // controller, and are judged like every other writer's.
        make(
            "pods",
            vec![writes("", &["pods"])],
            pod_rules("object.spec", "spec", options),
        ),
        // Pod templates are judged too, so that a refused pod spec is told at
        // once to whoever wrote the workload, not left to a controller's
        // events when it tries to create the pods.
        make(
            "workloads",
            vec![
                writes(
                    "apps",
                    &["deployments", "replicasets", "statefulsets", "daemonsets"],
                ),
                writes("batch", &["jobs"]),
                writes("", &["replicationcontrollers"]),
            ],
            pod_rules("object.spec.template.spec", "spec.template.spec", options),
        ),
        make(
            "cronjobs",
            vec![writes("batch", &["cronjobs"])],
            pod_rules(
                "object.spec.jobTemplate.spec.template.spec",
                "spec.jobTemplate.spec.template.spec",
                options,
            ),
        ),
        make(
            "configmaps",
            vec![writes("", &["configmaps"])],
            config_map_rules(),
        ),
        make(
            "persistentvolumeclaims",
            vec![writes("", &["persistentvolumeclaims"])],
            claim_rules(),
        ),
        // A StatefulSet's claims are made by its controller; judged here
        // too, its writer hears of a refusal at once.
        make(
            "statefulsets",
            vec![writes("apps", &["statefulsets"])],
            Rules {
                variables: vec![],
                validations: vec![check(
                    "object.spec.?volumeClaimTemplates.orValue([]).all(c, c.spec.?volumeName.orValue('') == '' && c.spec.?dataSourceRef.?namespace.orValue('') == '')",
                    "'spec.volumeClaimTemplates[].spec: volumeName and a dataSourceRef namespace are not allowed: claims get volumes the cluster provisions for them, filled only from their own namespace'",
                )],
            },
        ),
    ]
}

/// A resource rule: CREATE and UPDATE (patches included) of `resources` of
/// the API group `group`, version `v1` (the apiserver converts the others).
fn writes(group: &str, resources: &[&str]) -> Value {
    json!({
        "apiGroups": [group],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": resources,
    })
}

/// A CEL string literal of `text`: JSON's escapes are a subset of CEL's.
fn cel_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// A CEL list literal of strings: a JSON array is one.
fn cel_strings<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&items).expect("strings serialize")
}

/// One refusal: `expression` must hold. An admission policy's validation
/// has no field path of its own, so each message starts with the field.
fn check(expression: &str, message_expression: &str) -> Value {
    json!({
        "expression": expression,
        "messageExpression": message_expression,
        "reason": "Forbidden",
    })
}

fn variable(name: &str, expression: &str) -> Value {
    json!({"name": name, "expression": expression})
}

/// A policy's variables and validations.
struct Rules {
    variables: Vec<Value>,
    validations: Vec<Value>,
}

/// The policy `berth-guardrails-<name>` on `resource_rules` in namespaces
/// Berth manages, for every writer, and its binding.
fn guardrail(name: &str, resource_rules: Vec<Value>, rules: Rules) -> Guardrail {
    let name = format!("{GUARDRAIL_POLICY_PREFIX}{name}");
    let policy = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "spec": {
            // A policy that cannot be evaluated refuses: a guardrail that
            // fails open is no guardrail.
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
                "resourceRules": resource_rules,
            },
            "variables": rules.variables,
            "validations": rules.validations,
        },
    }))
    .expect("a guardrail policy is well-formed");
    let binding = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }))
    .expect("a guardrail binding is well-formed");
    Guardrail { policy, binding }
}

/// Ingress hosts, default backend and annotations.
fn ingress_rules(options: &GuardrailOptions) -> Rules {
    let domain = options
        .ingress_domain
        .trim_end_matches('.')
        .to_ascii_lowercase();
    // A DNS name in ASCII (IDNs in punycode), lowercased before it is
    // matched, without a trailing dot, a wildcard only as its first label.
    let dns_name = r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    let host_ok = format!(
        "h.lowerAscii().matches({dns}) && (h.lowerAscii().endsWith(variables.own) || variables.allowedHosts.exists(a, a == h.lowerAscii() || (a.startsWith('*.') && h.lowerAscii().endsWith(a.substring(1)))))",
        dns = cel_string(dns_name)
    );
    let rule_of_hosts = "'hosts must be under *' + variables.own + (size(variables.allowedHosts) == 0 ? '' : ' or among the hosts an admin allowed (' + variables.allowedHosts.join(', ') + ')') + ', in lowercase ASCII (IDNs in punycode), without a trailing dot'";
    let forbidden_parts = cel_strings(FORBIDDEN_ANNOTATION_PARTS);
    let prefixes = cel_strings(CONTROLLER_ANNOTATION_PREFIXES);
    let allowed_annotations = cel_strings(&options.ingress_annotations);
    Rules {
        variables: vec![
            variable(
                "own",
                &format!("'.' + request.namespace + '.' + {}", cel_string(&domain)),
            ),
            variable(
                "allowedHosts",
                &format!(
                    "namespaceObject.metadata.?annotations[?{}].orValue('').split(',').map(a, a.trim().lowerAscii()).filter(a, a != '')",
                    cel_string(ALLOWED_INGRESS_HOSTS_ANNOTATION)
                ),
            ),
            variable("rules", "object.spec.?rules.orValue([])"),
            variable(
                "badRuleHosts",
                &format!(
                    "variables.rules.filter(r, r.?host.orValue('') != '').map(r, r.host).filter(h, !({host_ok}))"
                ),
            ),
            variable(
                "badTls",
                &format!(
                    "object.spec.?tls.orValue([]).filter(t, t.?hosts.orValue([]).exists(h, !({host_ok})))"
                ),
            ),
            variable(
                "badAnnotations",
                &format!(
                    "object.metadata.?annotations.orValue({{}}).filter(k, {forbidden_parts}.exists(p, k.lowerAscii().contains(p)) || ((k.lowerAscii().split('/')[0].endsWith('ingress.kubernetes.io') || k.lowerAscii().split('/')[0] in {prefixes}) && !(k in {allowed_annotations})))"
                ),
            ),
        ],
        validations: vec![
            check(
                "variables.rules.all(r, r.?host.orValue('') != '')",
                "'spec.rules[].host: is required: a rule without a host would answer for every host the ingress controller serves'",
            ),
            check(
                "size(variables.badRuleHosts) == 0",
                &format!(
                    "'spec.rules[].host: ' + variables.badRuleHosts[0] + ' is outside this environment: ' + {rule_of_hosts}"
                ),
            ),
            check(
                "size(variables.badTls) == 0",
                &format!(
                    "'spec.tls[].hosts: ' + variables.badTls[0].hosts.filter(h, !({host_ok}))[0] + ' is outside this environment: ' + {rule_of_hosts}"
                ),
            ),
            check(
                "!has(object.spec.defaultBackend)",
                "'spec.defaultBackend: is not allowed: it would answer for every host of the ingress controller; route by spec.rules[].host instead'",
            ),
            check(
                "size(variables.badAnnotations) == 0",
                &format!(
                    "'metadata.annotations[' + variables.badAnnotations[0] + ']: is not allowed: snippets and external auth never are, other annotations of ingress controllers only from the allow-list (' + {allowed_annotations}.join(', ') + ')'"
                ),
            ),
            // After the key checks, so that a forbidden key is named as such.
            check(
                &format!(
                    "variables.rules.all(r, r.?http.?paths.orValue([]).all(p, !p.?path.orValue('').matches({UNSAFE_IN_CONFIG})))"
                ),
                "'spec.rules[].http.paths[].path: may not hold braces, semicolons, #, quotes, backslashes, whitespace or control characters: ingress controllers write paths into their configuration'",
            ),
            check(
                &format!(
                    "object.metadata.?annotations.orValue({{}}).all(k, !(k.lowerAscii().split('/')[0].endsWith('ingress.kubernetes.io') || k.lowerAscii().split('/')[0] in {prefixes}) || !object.metadata.annotations[k].matches({UNSAFE_IN_CONFIG}))"
                ),
                "'metadata.annotations: an ingress controller annotation may not hold braces, semicolons, #, quotes, backslashes, whitespace or control characters (write lists without spaces: GET,POST): its value is written into the controller\\'s configuration'",
            ),
        ],
    }
}

/// Characters that end, split or comment out a directive in an ingress
/// controller's generated configuration (ingress-nginx's CVE-2021-25742
/// kind): braces, `;`, `#`, quotes, backslashes, and any whitespace or
/// control character (a space splits `client_max_body_size 1m backlog;`
/// into two arguments, which stops the shared controller's reloads). A
/// CEL raw string of an RE2 class, matched anywhere in a value.
const UNSAFE_IN_CONFIG: &str = r#"r"[{};#'\\\x22\s\p{Z}\p{Cc}]""#;

/// No `externalIPs`, no `ExternalName` unless an admin allowed it.
fn service_rules() -> Rules {
    Rules {
        variables: vec![],
        validations: vec![
            check(
                "object.spec.?externalIPs.orValue([]).size() == 0",
                "'spec.externalIPs: is not allowed: a Service with external IPs intercepts traffic to those addresses cluster-wide (CVE-2020-8554)'",
            ),
            check(
                &format!(
                    "object.spec.?type.orValue('') != 'ExternalName' || namespaceObject.metadata.?annotations[?{}].orValue('') == 'true'",
                    cel_string(ALLOW_EXTERNAL_NAME_ANNOTATION)
                ),
                "'spec.type: ExternalName is not allowed in this environment: it lets the ingress controller reach any name, another environment\\'s Services included (CVE-2021-25740); an admin may allow it'",
            ),
        ],
    }
}

/// Most bytes of data one Secret or ConfigMap may hold. The quota counts
/// objects, not bytes; without this, a tenant's count of Secrets times the
/// apiserver's 1 MiB per object is etcd space every tenant shares. Half of
/// that limit still holds a Helm release of a large chart.
pub const MAX_DATA_BYTES: u64 = 512 * 1024;

/// How a data field of a Secret or ConfigMap holds its values.
#[derive(Clone, Copy)]
enum Values {
    Strings,
    Bytes,
}

/// The check that the `fields` of the object hold at most
/// [`MAX_DATA_BYTES`] together, keys included, counted in bytes (a string's
/// `size` counts characters, and one character may take four bytes).
fn data_size(fields: &[(&str, Values)]) -> Value {
    let total = fields
        .iter()
        .map(|(f, values)| {
            let value = match values {
                Values::Strings => format!("size(bytes(object.{f}[k]))"),
                Values::Bytes => format!("size(object.{f}[k])"),
            };
            format!("object.?{f}.orValue({{}}).map(k, size(k) + {value}).sum()")
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    check(
        &format!("{total} <= {MAX_DATA_BYTES}"),
        &format!(
            "'{}: holds more than {} KiB: keep large files in a volume'",
            names.join(", "),
            MAX_DATA_BYTES / 1024
        ),
    )
}

/// No ServiceAccount token Secrets; no Secret over [`MAX_DATA_BYTES`].
fn secret_rules() -> Rules {
    Rules {
        variables: vec![],
        validations: vec![
            check(
                "object.?type.orValue('') != 'kubernetes.io/service-account-token'",
                "'type: kubernetes.io/service-account-token is not allowed: it would mint a lasting token for a ServiceAccount (' + object.metadata.?annotations[?'kubernetes.io/service-account.name'].orValue('unnamed') + '); request short-lived tokens through Berth instead'",
            ),
            data_size(&[("data", Values::Bytes), ("stringData", Values::Strings)]),
        ],
    }
}

/// No ConfigMap over [`MAX_DATA_BYTES`].
fn config_map_rules() -> Rules {
    Rules {
        variables: vec![],
        validations: vec![data_size(&[
            ("data", Values::Strings),
            ("binaryData", Values::Bytes),
        ])],
    }
}

/// ServiceAccount, priority class and tolerations of the pod spec at `spec`
/// (a CEL expression), reported as `path`.
fn pod_rules(spec: &str, path: &str, options: &GuardrailOptions) -> Rules {
    let berth_prefixes = cel_strings(BERTH_SERVICE_ACCOUNT_PREFIXES);
    let priority_classes = cel_strings(&options.priority_classes);
    let tolerations = format!(
        "{spec}.?tolerations.orValue([]).filter(t, t.?key.orValue('') == '' || t.key.startsWith({role}) || t.key in {critical} || (t.key.startsWith({condition}) && !(t.key in {timed} && t.?effect.orValue('') == 'NoExecute' && t.?tolerationSeconds.orValue({max} + 1) <= {max})))",
        role = cel_string(NODE_ROLE_TAINT_PREFIX),
        critical = cel_strings(CRITICAL_TAINT_KEYS),
        condition = cel_string(NODE_CONDITION_TAINT_PREFIX),
        timed = cel_strings(TIMED_TOLERATIONS),
        max = MAX_TOLERATION_SECONDS,
    );
    // On UPDATE the apiserver keeps a pod's placement as it was (the
    // scheduler binds through `pods/binding`, which no guardrail matches);
    // only a placement newly written is judged, so that controllers may
    // still label or adopt a scheduled pod.
    let old_spec = spec.replacen("object", "oldObject", 1);
    let unchanged = |field: &str| {
        format!(
            "(request.operation == 'UPDATE' && {old_spec}.?{field}.orValue('') == {spec}.?{field}.orValue(''))"
        )
    };
    Rules {
        variables: vec![
            // The deprecated `serviceAccount` is an alias the apiserver
            // keeps in step; both are judged so neither is a way around.
            variable(
                "serviceAccounts",
                &format!(
                    "[{spec}.?serviceAccountName.orValue(''), {spec}.?serviceAccount.orValue('')].filter(n, n != '' && n != 'default' && (n.contains(':') || {berth_prefixes}.exists(p, n.startsWith(p))))"
                ),
            ),
            variable(
                "priorityClass",
                &format!("{spec}.?priorityClassName.orValue('')"),
            ),
            variable("badTolerations", &tolerations),
        ],
        validations: vec![
            check(
                "size(variables.serviceAccounts) == 0",
                &format!(
                    "{} + variables.serviceAccounts[0] + {}",
                    cel_string(&format!("{path}.serviceAccountName: ")),
                    cel_string(
                        " is not allowed: pods run as a ServiceAccount of their own namespace (default or one an admin made), never as a Berth member identity or another namespace's"
                    ),
                ),
            ),
            check(
                &format!(
                    "variables.priorityClass == '' || variables.priorityClass in {priority_classes}"
                ),
                &format!(
                    "{} + variables.priorityClass + \" is not allowed: of the cluster's priority classes \" + (size({priority_classes}) == 0 ? 'none is' : 'only ' + {priority_classes}.join(', ') + ' are') + ' allowed in Berth environments'",
                    cel_string(&format!("{path}.priorityClassName: ")),
                ),
            ),
            check(
                "size(variables.badTolerations) == 0",
                &format!(
                    "{} + (variables.badTolerations[0].?key.orValue('') == '' ? 'a toleration without a key tolerates every taint' : variables.badTolerations[0].key + ' is a control-plane, critical or node-condition taint') + {}",
                    cel_string(&format!("{path}.tolerations: ")),
                    cel_string(&format!(
                        "; tolerations must name a key, none of {NODE_ROLE_TAINT_PREFIX}*, {} or {NODE_CONDITION_TAINT_PREFIX}* (but {} with NoExecute and a tolerationSeconds of at most {MAX_TOLERATION_SECONDS})",
                        CRITICAL_TAINT_KEYS.join(", "),
                        TIMED_TOLERATIONS.join(" or "),
                    )),
                ),
            ),
            check(
                &format!(
                    "{spec}.?nodeName.orValue('') == '' || {}",
                    unchanged("nodeName")
                ),
                &cel_string(&format!(
                    "{path}.nodeName: is not allowed: a pod naming its node skips the scheduler, and with it the taints that keep tenants off control-plane and reserved nodes; use nodeSelector or affinity"
                )),
            ),
            check(
                &format!(
                    "{spec}.?schedulerName.orValue({default}) == {default} || {}",
                    unchanged("schedulerName"),
                    default = cel_string(DEFAULT_SCHEDULER),
                ),
                &cel_string(&format!(
                    "{path}.schedulerName: only {DEFAULT_SCHEDULER} is allowed: another scheduler need not respect the taints that keep tenants off control-plane and reserved nodes"
                )),
            ),
        ],
    }
}

/// Claims only for volumes the cluster provisions for them: no binding to
/// a volume by name (a pre-provisioned volume may hold another tenant's
/// data, and a released one does), no data source in another namespace.
/// The binder's own write of `volumeName` is let through.
fn claim_rules() -> Rules {
    Rules {
        variables: vec![],
        validations: vec![
            check(
                &format!(
                    "object.spec.?volumeName.orValue('') == '' || (request.operation == 'UPDATE' && oldObject.spec.?volumeName.orValue('') == object.spec.volumeName) || request.userInfo.username in {}",
                    cel_strings(VOLUME_BINDERS)
                ),
                "'spec.volumeName: is not allowed: claims get volumes the cluster provisions for them, never an existing volume by name, which may hold another environment\\'s data'",
            ),
            check(
                "object.spec.?dataSourceRef.?namespace.orValue(request.namespace) == request.namespace",
                "'spec.dataSourceRef.namespace: is not allowed: a claim may only be filled from its own namespace'",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(guardrail: &Guardrail) -> (Value, Value) {
        (
            serde_json::to_value(&guardrail.policy).unwrap(),
            serde_json::to_value(&guardrail.binding).unwrap(),
        )
    }

    #[test]
    fn every_guardrail_binds_its_policy_to_berths_namespaces_for_every_writer() {
        let all = guardrails(&GuardrailOptions::default());
        let names: Vec<String> = all
            .iter()
            .map(|g| g.policy.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ingresses",
                "services",
                "secrets",
                "pods",
                "workloads",
                "cronjobs",
                "configmaps",
                "persistentvolumeclaims",
                "statefulsets"
            ]
            .map(|n| format!("{GUARDRAIL_POLICY_PREFIX}{n}"))
        );
        for guardrail in &all {
            let (policy, binding) = json_of(guardrail);
            let name = &policy["metadata"]["name"];
            assert_eq!(&binding["metadata"]["name"], name);
            assert_eq!(&binding["spec"]["policyName"], name);
            assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
            let spec = &policy["spec"];
            assert_eq!(spec["failurePolicy"], "Fail", "{name}");
            assert_eq!(
                spec["matchConstraints"]["namespaceSelector"],
                json!({"matchLabels": {"app.kubernetes.io/managed-by": "berth"}}),
                "{name}"
            );
            // Berth's own writes are judged too.
            assert!(spec["matchConditions"].is_null(), "{name}");
            for rule in spec["matchConstraints"]["resourceRules"]
                .as_array()
                .unwrap()
            {
                assert_eq!(rule["operations"], json!(["CREATE", "UPDATE"]), "{name}");
            }
            for validation in spec["validations"].as_array().unwrap() {
                let message = validation["messageExpression"].as_str().unwrap();
                // Every message names its field first, as a CEL string.
                assert!(
                    message.starts_with("'spec.")
                        || message.starts_with("\"spec.")
                        || message.starts_with("'type: ")
                        || message.starts_with("'data, ")
                        || message.starts_with("'metadata.annotations: ")
                        || message.starts_with("'metadata.annotations["),
                    "{name}: {message}"
                );
            }
        }
    }

    #[test]
    fn hosts_are_judged_under_the_configured_domain_in_lowercase() {
        let options = GuardrailOptions {
            ingress_domain: "Apps.Example.COM.".into(),
            ..GuardrailOptions::default()
        };
        let (policy, _) = json_of(&guardrails(&options)[0]);
        assert_eq!(
            policy["spec"]["variables"][0],
            json!({"name": "own", "expression": r#"'.' + request.namespace + '.' + "apps.example.com""#})
        );
    }

    #[test]
    fn pod_specs_are_judged_where_each_kind_keeps_them() {
        let options = GuardrailOptions {
            priority_classes: vec!["tenant-low".into()],
            ..GuardrailOptions::default()
        };
        let all = guardrails(&options);
        for (guardrail, path) in all[3..].iter().zip([
            "spec",
            "spec.template.spec",
            "spec.jobTemplate.spec.template.spec",
        ]) {
            let (policy, _) = json_of(guardrail);
            let text = policy["spec"].to_string();
            assert!(
                text.contains(&format!("object.{path}.?priorityClassName")),
                "{text}"
            );
            assert!(text.contains(r#"[\"tenant-low\"]"#), "{text}");
            assert!(
                text.contains(&format!("{path}.serviceAccountName: ")),
                "{text}"
            );
        }
    }
}
