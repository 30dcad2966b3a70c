//! Invariants of the built objects, the tenant ClusterRoles, the CRD, the
//! install manifests and the preview.

mod support;

use berth_manifests::{
    BuildOptions, ENVIRONMENT_LABEL, Environment, GuardrailOptions, MANAGED_BY_LABEL, Object,
    build, cluster_roles, install_manifests, preview, to_yaml, warnings,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

fn owned() -> BuildOptions {
    BuildOptions {
        owner_uid: Some("uid-1".into()),
        ..BuildOptions::default()
    }
}

#[test]
fn every_object_is_labelled_and_owned_by_its_environment() {
    let spec = support::resolved(support::many_apps(3));
    for object in build(&spec, &owned()) {
        let meta = object.metadata();
        let labels = meta.labels.as_ref().expect("labels");
        assert_eq!(labels[MANAGED_BY_LABEL], "berth", "{}", object.name());
        assert_eq!(labels[ENVIRONMENT_LABEL], "bench-env", "{}", object.name());
        let owner = &meta.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("berth.dev/v1alpha1", "Environment", "bench-env", "uid-1")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        if !matches!(object, Object::Namespace(_)) {
            assert_eq!(meta.namespace.as_deref(), Some("bench-env"));
        }
    }
    let unowned = build(&spec, &BuildOptions::default());
    assert!(
        unowned
            .iter()
            .all(|o| o.metadata().owner_references.is_none())
    );
}

#[test]
fn building_is_deterministic() {
    let spec = support::resolved(support::many_apps(20));
    assert_eq!(
        to_yaml(&build(&spec, &owned())),
        to_yaml(&build(&spec.clone(), &owned()))
    );
}

#[test]
fn deployments_meet_the_restricted_pod_security_standard() {
    let spec = support::resolved(support::example());
    let objects = build(&spec, &owned());
    let deployment = objects
        .iter()
        .find(|o| o.kind() == "Deployment")
        .expect("deployment")
        .to_json();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for container in pod["containers"].as_array().unwrap() {
        let sc = &container["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["runAsNonRoot"], true);
        assert!(sc.get("privileged").is_none() && pod.get("hostNetwork").is_none());
        assert_eq!(
            container["resources"]["limits"],
            json!({"cpu": "100m", "memory": "128Mi"})
        );
    }
}

#[test]
fn members_are_bound_by_their_own_identity_outside_the_namespace() {
    use berth_core::account::Email;
    use berth_manifests::{
        EMAIL_ANNOTATION, USERS_NAMESPACE, user_service_account, user_service_account_name,
    };
    let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let email = Email::parse("e", "Ada@Example.com").unwrap();
    let account = user_service_account(a, &email);
    assert_eq!(account.metadata.name, Some(format!("user-{a}")));
    assert_eq!(account.metadata.namespace.as_deref(), Some(USERS_NAMESPACE));
    assert_eq!(
        account.metadata.annotations.unwrap()[EMAIL_ANNOTATION],
        "ada@example.com"
    );
    assert_ne!(user_service_account_name(a), user_service_account_name(b));

    let spec = support::resolved(json!({
        "name": "team",
        "members": [{"email": "ada@example.com", "role": "owner"},
                    {"email": "bob@example.com", "role": "editor"},
                    {"email": "nobody@example.com", "role": "viewer"}]
    }));
    let options = BuildOptions {
        identities: [
            (
                "ada@example.com".to_owned(),
                vec![user_service_account_name(a)],
            ),
            (
                "bob@example.com".to_owned(),
                vec![user_service_account_name(b)],
            ),
        ]
        .into(),
        ..owned()
    };
    let objects = build(&spec, &options);
    assert!(objects.iter().all(|o| o.kind() != "ServiceAccount"));
    let bindings: Vec<Value> = objects
        .iter()
        .filter(|o| o.kind() == "RoleBinding")
        .map(Object::to_json)
        .collect();
    // The member without an account gets nothing; the others one binding each.
    assert_eq!(bindings.len(), 2);
    for (binding, id, role) in [(&bindings[0], a, "owner"), (&bindings[1], b, "editor")] {
        assert_eq!(binding["metadata"]["name"], format!("user-{id}"));
        assert_eq!(binding["metadata"]["namespace"], "team");
        assert_eq!(binding["roleRef"]["name"], format!("berth-tenant-{role}"));
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": format!("user-{id}"), "namespace": USERS_NAMESPACE}])
        );
    }
}

#[test]
fn tenant_roles_cannot_touch_bounds_access_or_escalate() {
    let roles = cluster_roles();
    let names: Vec<&str> = roles
        .iter()
        .map(|r| r.metadata.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "berth-tenant-owner",
            "berth-tenant-editor",
            "berth-tenant-viewer"
        ]
    );
    let protected = [
        "resourcequotas",
        "limitranges",
        "networkpolicies",
        "namespaces",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ];
    let reads = ["get", "list", "watch"];
    for role in &roles {
        let name = role.metadata.name.as_deref().unwrap();
        for rule in role.rules.as_ref().unwrap() {
            let resources = rule.resources.as_ref().unwrap();
            assert!(
                !resources.iter().any(|r| r == "*") && !rule.verbs.iter().any(|v| v == "*"),
                "{name}: wildcard"
            );
            assert!(
                !rule
                    .verbs
                    .iter()
                    .any(|v| ["escalate", "bind", "impersonate"].contains(&v.as_str())),
                "{name}"
            );
            if resources.iter().any(|r| protected.contains(&r.as_str())) {
                assert!(
                    rule.verbs.iter().all(|v| reads.contains(&v.as_str())),
                    "{name} writes {resources:?}"
                );
            }
            if name == "berth-tenant-viewer" {
                assert!(
                    rule.verbs.iter().all(|v| reads.contains(&v.as_str())),
                    "viewer writes {resources:?}"
                );
                assert!(
                    !resources.iter().any(|r| r == "secrets"),
                    "viewer reads secrets"
                );
            }
        }
    }
    let editor = serde_json::to_value(&roles[1]).unwrap().to_string();
    assert!(
        editor.contains("pods/exec")
            && editor.contains("secrets")
            && editor.contains("deployments")
    );
}

#[test]
fn the_crd_is_cluster_scoped_with_status_and_printer_columns() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(Environment::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "environments.berth.dev");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Phase", "Owner", "Age"]);
    assert!(
        version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            .get("name")
            .is_none()
    );
}

#[test]
fn an_environment_resource_round_trips_through_the_parser() {
    let spec = support::resolved(support::example());
    let resource = Environment::for_spec(&spec);
    let json = serde_json::to_value(&resource).unwrap();
    assert_eq!(json["metadata"]["name"], "team-a-dev");
    assert!(json["spec"].get("name").is_none());
    let back: Environment = serde_json::from_value(json).unwrap();
    let parsed = back.parse_spec().unwrap();
    assert_eq!(parsed.name.as_str(), "team-a-dev");
    let mut broken = back;
    broken.spec.ttl = Some("soon".into());
    assert_eq!(broken.parse_spec().unwrap_err().errors()[0].field, "ttl");
}

#[test]
fn preview_explains_and_warns() {
    let spec = support::resolved(support::example());
    let p = preview(&spec, &BuildOptions::default());
    assert!(
        p.summary
            .contains(&"Pods may use at most 2 CPUs in total".to_owned()),
        "{:?}",
        p.summary
    );
    assert!(
        p.summary
            .iter()
            .any(|s| s.starts_with("Other namespaces cannot reach your pods"))
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // No RoleBinding: the preview knows no member's identity.
    assert_eq!(p.objects.len(), 9);
    assert!(p.objects.iter().all(|o| o["kind"] != "RoleBinding"));
    assert_eq!(p.objects[0]["kind"], "Namespace");
    assert!(p.yaml.starts_with("---\napiVersion: v1\nkind: Namespace\n"));
    let answer = serde_json::to_value(&p).unwrap();
    assert!(
        ["yaml", "objects", "summary", "warnings"]
            .iter()
            .all(|k| answer.get(k).is_some())
    );

    let mut greedy = support::example();
    greedy["apps"][0]["replicas"] = json!(20);
    greedy["apps"][0]["resources"] = json!({"cpu": "3", "memory": "128Mi"});
    let w = warnings(&support::resolved(greedy));
    assert!(
        w.iter()
            .any(|s| s.contains("more than one container may use")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|s| s.contains("Together the apps ask for 60 CPUs")),
        "{w:?}"
    );
    assert!(w.iter().any(|s| s.contains("rolling updates")), "{w:?}");
}

fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

proptest! {
    #[test]
    fn any_accepted_spec_builds_well_formed_objects(
        apps in 0usize..6,
        emails in prop::collection::btree_set("[a-z0-9._%+-]{1,30}@[a-z]{1,20}\\.[a-z]{2,6}", 0..5),
        isolation in prop::sample::select(vec!["isolated", "open"]),
        pod_security in prop::sample::select(vec!["restricted", "baseline"]),
    ) {
        let mut value = support::many_apps(apps);
        value["network"] = json!({"isolation": isolation});
        value["podSecurity"] = json!(pod_security);
        value["members"] = Value::Array(emails.iter().map(|e| json!({"email": e, "role": "editor"})).collect());
        let spec = support::resolved(value);
        let options = BuildOptions {
            identities: emails.iter().enumerate().map(|(i, e)| (e.clone(), vec![format!("user-{i}")])).collect(),
            ..owned()
        };
        let objects = build(&spec, &options);
        let mut seen = std::collections::BTreeSet::new();
        for object in &objects {
            prop_assert!(is_dns_label(object.name()), "{}", object.name());
            prop_assert!(seen.insert((object.kind(), object.name().to_owned())), "duplicate {} {}", object.kind(), object.name());
        }
        let services = objects.iter().filter(|o| o.kind() == "Service").count();
        prop_assert_eq!(services, apps);
        prop_assert_eq!(objects.iter().filter(|o| o.kind() == "RoleBinding").count(), emails.len());
    }
}

#[test]
fn install_manifests_hold_the_crds_roles_and_the_admission_policy_exempting_berth() {
    let username = r#"system:serviceaccount:berth:it's "berth""#;
    let documents: Vec<Value> = serde_yaml::Deserializer::from_str(&install_manifests(
        username,
        &GuardrailOptions::default(),
    ))
    .map(|document| Value::deserialize(document).expect("a YAML document"))
    .collect();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().expect("a kind"))
        .collect();
    assert_eq!(
        kinds[..7],
        [
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    // Then the tenant guardrails, each a policy with its binding.
    assert!(kinds.len() > 7, "{kinds:?}");
    for pair in kinds[7..].chunks(2) {
        assert_eq!(
            pair,
            [
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding"
            ]
        );
    }
    let policy = &documents[5];
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        r#"request.userInfo.username != "system:serviceaccount:berth:it's \"berth\"""#
    );
    assert_eq!(
        documents[6]["spec"]["paramRef"],
        json!({"name": "default", "parameterNotFoundAction": "Deny"})
    );
}

#[test]
fn isolated_egress_skips_link_local_and_the_blocked_networks() {
    let spec = support::resolved(support::example());
    let options = BuildOptions {
        blocked_egress_cidrs: vec!["10.0.0.0/8".into(), "fd00::/8".into()],
        ..BuildOptions::default()
    };
    let egress = build(&spec, &options)
        .into_iter()
        .find_map(|o| match o {
            Object::NetworkPolicy(p)
                if p.metadata.name.as_deref() == Some("berth-allow-egress") =>
            {
                p.spec
            }
            _ => None,
        })
        .expect("an isolated environment has an egress policy");
    let blocks: Vec<(String, Vec<String>)> = egress
        .egress
        .unwrap()
        .iter()
        .flat_map(|rule| rule.to.clone().unwrap_or_default())
        .filter_map(|peer| peer.ip_block)
        .map(|b| (b.cidr, b.except.unwrap_or_default()))
        .collect();
    assert_eq!(
        blocks,
        [
            (
                "0.0.0.0/0".to_owned(),
                vec!["169.254.0.0/16".to_owned(), "10.0.0.0/8".to_owned()]
            ),
            (
                "::/0".to_owned(),
                vec!["fe80::/10".to_owned(), "fd00::/8".to_owned()]
            ),
        ],
        "no rule lets everything out"
    );
}

#[test]
fn granted_exceptions_reach_the_namespace_where_the_guardrails_read_them() {
    use berth_manifests::{ALLOW_EXTERNAL_NAME_ANNOTATION, ALLOWED_INGRESS_HOSTS_ANNOTATION};
    let annotations = |value: Value| {
        build(&support::resolved(value), &owned())
            .into_iter()
            .find_map(|o| match o {
                Object::Namespace(ns) => Some(ns.metadata.annotations.unwrap_or_default()),
                _ => None,
            })
            .expect("a namespace")
    };
    let mut spec = support::example();
    let none = annotations(spec.clone());
    assert!(
        !none.contains_key(ALLOWED_INGRESS_HOSTS_ANNOTATION),
        "{none:?}"
    );
    assert!(
        !none.contains_key(ALLOW_EXTERNAL_NAME_ANNOTATION),
        "{none:?}"
    );
    spec["exceptions"] =
        json!({"ingressHosts": ["Shop.Example.com.", "*.bücher.example"], "externalName": true});
    let granted = annotations(spec);
    assert_eq!(
        granted[ALLOWED_INGRESS_HOSTS_ANNOTATION],
        "shop.example.com,*.xn--bcher-kva.example"
    );
    assert_eq!(granted[ALLOW_EXTERNAL_NAME_ANNOTATION], "true");
}
