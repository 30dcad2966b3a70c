//! Access: a ServiceAccount per member, bound to one of the `berth-tenant-*`
//! ClusterRoles in the environment's namespace, and those ClusterRoles.

use super::{Context, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object};
use berth_core::account::Email;
use berth_core::environment::MemberRole;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Annotation holding the member's email on their ServiceAccount and RoleBinding.
pub const MEMBER_ANNOTATION: &str = "berth.dev/member";
const MAX_READABLE_PART: usize = 40;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// The ServiceAccount name of a member: readable, a valid DNS label, and
/// distinct for distinct emails (a hash settles what sanitising merges).
pub fn service_account_name(email: &Email) -> String {
    let mut readable = String::with_capacity(MAX_READABLE_PART);
    for c in email.as_str().chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
        if readable.len() == MAX_READABLE_PART {
            break;
        }
    }
    let readable = readable.trim_end_matches('-');
    let digest = Sha256::digest(email.as_str().as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("member-{readable}-{hash}")
}

fn cluster_role_name(role: MemberRole) -> String {
    format!("berth-tenant-{role}")
}

pub(crate) fn member_objects(ctx: &Context<'_>) -> Vec<Object> {
    let namespace = ctx.env().to_string();
    let mut objects = Vec::with_capacity(ctx.spec.members.len() * 2);
    for member in &ctx.spec.members {
        let name = service_account_name(&member.email);
        let mut meta = ctx.meta(&name, true);
        meta.annotations = Some(BTreeMap::from([(
            MEMBER_ANNOTATION.to_owned(),
            member.email.to_string(),
        )]));
        objects.push(Object::ServiceAccount(ServiceAccount {
            metadata: meta.clone(),
            // Tokens are requested per kubeconfig (TokenRequest), never mounted.
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        }));
        objects.push(Object::RoleBinding(RoleBinding {
            metadata: meta,
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: cluster_role_name(member.role),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name,
                namespace: Some(namespace.clone()),
                ..Subject::default()
            }]),
        }));
    }
    objects
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| Some(items.iter().map(|s| (*s).to_owned()).collect());
    PolicyRule {
        api_groups: strings(groups),
        resources: strings(resources),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// Rules every role has: seeing the environment's workloads and its bounds.
fn read_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/log",
                "services",
                "endpoints",
                "configmaps",
                "persistentvolumeclaims",
                "events",
                "serviceaccounts",
                "resourcequotas",
                "limitranges",
            ],
            READ,
        ),
        rule(
            &["apps"],
            &["deployments", "replicasets", "statefulsets"],
            READ,
        ),
        rule(&["batch"], &["jobs", "cronjobs"], READ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            READ,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], READ),
        rule(&["events.k8s.io"], &["events"], READ),
    ]
}

/// Rules for changing workloads. Nothing here touches the environment's bounds
/// (quota, limits, network policies, the namespace) or access (roles, bindings),
/// and no rule grants `escalate`, `bind` or `impersonate`.
fn write_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &[""],
            &[
                "pods",
                "services",
                "configmaps",
                "secrets",
                "persistentvolumeclaims",
            ],
            WRITE,
        ),
        rule(
            &[""],
            &["pods/exec", "pods/portforward", "pods/attach"],
            &["get", "create"],
        ),
        rule(
            &["apps"],
            &["deployments", "replicasets", "statefulsets"],
            WRITE,
        ),
        rule(
            &["apps"],
            &["deployments/scale", "statefulsets/scale"],
            &["get", "update", "patch"],
        ),
        rule(&["batch"], &["jobs", "cronjobs"], WRITE),
        rule(&["networking.k8s.io"], &["ingresses"], WRITE),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
    ]
}

/// The ClusterRoles members are bound to, shipped with Berth: owner and editor
/// manage workloads (secrets and exec included); viewer only reads, and never
/// secrets. Owners differ from editors outside the cluster (they manage members
/// through Berth), and inside it may also read who is bound to which role.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let role = |member: MemberRole, rules: Vec<PolicyRule>| ClusterRole {
        metadata: ObjectMeta {
            name: Some(cluster_role_name(member)),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_owned(),
                MANAGED_BY_VALUE.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    };
    let editor: Vec<PolicyRule> = read_rules().into_iter().chain(write_rules()).collect();
    let mut owner = editor.clone();
    owner.push(rule(
        &["rbac.authorization.k8s.io"],
        &["rolebindings", "roles"],
        READ,
    ));
    vec![
        role(MemberRole::Owner, owner),
        role(MemberRole::Editor, editor),
        role(MemberRole::Viewer, read_rules()),
    ]
}
