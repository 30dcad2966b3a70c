//! Access: each member's own identity (a ServiceAccount per Berth user in
//! [`USERS_NAMESPACE`], which tenants cannot reach) bound in the
//! environment's namespace to one of the `berth-tenant-*` ClusterRoles, and
//! those ClusterRoles.

use super::{Context, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object};
use berth_core::account::Email;
use berth_core::environment::MemberRole;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Annotation holding the member's email on their RoleBinding.
pub const MEMBER_ANNOTATION: &str = "berth.dev/member";
/// Annotation holding the user's email (as stored: NFC, case-folded) on
/// their ServiceAccount in [`USERS_NAMESPACE`]: how the controller finds a
/// member's identity without reading Berth's store.
pub const EMAIL_ANNOTATION: &str = "berth.dev/email";
/// Berth's own namespace holding one ServiceAccount per user. Outside every
/// tenant namespace (`berth*` names are reserved), so no member can mint a
/// token for another's identity or run a pod as it.
pub const USERS_NAMESPACE: &str = "berth-users";

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

/// The name of a user's ServiceAccount in [`USERS_NAMESPACE`]: from the id,
/// which never changes and never collides, unlike anything made of the email.
pub fn user_service_account_name(id: Uuid) -> String {
    format!("user-{id}")
}

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())])
}

/// The namespace of users' identities, with the `restricted` pod security
/// level: nothing is meant to run there.
pub fn users_namespace() -> Namespace {
    let mut labels = managed_labels();
    for mode in ["enforce", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(USERS_NAMESPACE.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// A user's identity in the cluster: kubeconfigs carry short-lived tokens of
/// it, and deleting it ends every one of them at once.
pub fn user_service_account(id: Uuid, email: &Email) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(user_service_account_name(id)),
            namespace: Some(USERS_NAMESPACE.to_owned()),
            labels: Some(managed_labels()),
            annotations: Some(BTreeMap::from([(
                EMAIL_ANNOTATION.to_owned(),
                email.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        // Tokens are requested per kubeconfig (TokenRequest), never mounted.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn cluster_role_name(role: MemberRole) -> String {
    format!("berth-tenant-{role}")
}

/// A RoleBinding per member whose identity is known
/// ([`crate::BuildOptions::identities`]), named like the (first) identity,
/// which no other member's can be; members without an account get none.
pub(crate) fn member_bindings(ctx: &Context<'_>) -> Vec<Object> {
    let mut objects = Vec::with_capacity(ctx.spec.members.len());
    for member in &ctx.spec.members {
        let Some(accounts) = ctx.options.identities.get(member.email.as_str()) else {
            continue;
        };
        let Some(first) = accounts.first() else {
            continue;
        };
        let mut meta = ctx.meta(first, true);
        meta.annotations = Some(BTreeMap::from([(
            MEMBER_ANNOTATION.to_owned(),
            member.email.to_string(),
        )]));
        let subjects = accounts
            .iter()
            .map(|account| Subject {
                kind: "ServiceAccount".to_owned(),
                name: account.clone(),
                namespace: Some(USERS_NAMESPACE.to_owned()),
                ..Subject::default()
            })
            .collect();
        objects.push(Object::RoleBinding(RoleBinding {
            metadata: meta,
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: cluster_role_name(member.role),
            },
            subjects: Some(subjects),
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
            labels: Some(managed_labels()),
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
