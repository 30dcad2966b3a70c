use super::example;
use crate::environment::{
    EnvironmentSpec, EnvironmentSpecInput, Isolation, Policy, builtin_templates, resolve,
};
use crate::validation::ValidationErrors;
use serde_json::{Value, json};

fn parse_and_resolve(value: Value) -> Result<(), ValidationErrors> {
    let input = EnvironmentSpecInput::from_json(value)?;
    let spec = EnvironmentSpec::parse(&input)?;
    resolve(spec, &builtin_templates(), &Policy::default()).map(|_| ())
}

/// Sets the value at a JSON pointer, creating objects on the way; `Null` removes it.
fn with(pointer: &str, value: Value) -> Value {
    let mut doc = example();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a slash");
    let target = doc.pointer_mut(parent).expect("parent exists");
    match (target, value) {
        (Value::Object(map), Value::Null) => {
            map.remove(key);
        }
        (Value::Object(map), value) => {
            map.insert(key.to_owned(), value);
        }
        (Value::Array(items), value) => {
            let index = key.parse::<usize>().expect("index");
            if index == items.len() {
                items.push(value);
            } else {
                items[index] = value;
            }
        }
        _ => panic!("{pointer} is not in an object or array"),
    }
    doc
}

#[test]
fn the_contract_example_parses() {
    let input = EnvironmentSpecInput::from_json(example()).unwrap();
    let spec = EnvironmentSpec::parse(&input).unwrap();
    assert_eq!(spec.settings.isolation, Some(Isolation::Isolated));
    assert_eq!(serde_json::to_value(&spec).unwrap(), example());
}

#[test]
fn each_bad_input_names_its_field() {
    let many_apps: Vec<Value> = (0..51)
        .map(|i| json!({"name": format!("a{i}"), "image": "nginx"}))
        .collect();
    let many_env: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("V{i}"), json!("x"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (with("/name", Value::Null), "name"),
        (with("/name", json!("ab")), "name"),
        (with("/name", json!("kube-public")), "name"),
        (with("/name", json!("berth-system")), "name"),
        (with("/name", json!("default")), "name"),
        (with("/name", json!("Team_A")), "name"),
        (with("/name", json!(42)), "name"),
        (with("/description", json!("x".repeat(501))), "description"),
        (with("/description", json!("bell\u{7}")), "description"),
        (with("/template", json!("tiny")), "template"),
        (with("/template", json!("Not A Name")), "template"),
        (with("/quota/cpu", json!("two")), "quota.cpu"),
        (with("/quota/cpu", json!("0")), "quota.cpu"),
        (with("/quota/cpu", json!(2)), "quota.cpu"),
        (with("/quota/memory", json!("4GB")), "quota.memory"),
        (with("/quota/storage", json!("-1Gi")), "quota.storage"),
        (with("/quota/pods", json!(0)), "quota.pods"),
        (with("/quota/pods", json!(5000)), "quota.pods"),
        (
            with("/quota/ephemeralStorage", json!("lots")),
            "quota.ephemeralStorage",
        ),
        (
            with("/quota/objects", json!({"secrets": 0})),
            "quota.objects.secrets",
        ),
        (
            with("/quota/objects", json!({"configmaps": 1001})),
            "quota.objects.configmaps",
        ),
        (
            with("/quota/objects", json!({"services": -1})),
            "quota.objects.services",
        ),
        (
            with("/quota/objects", json!({"persistentVolumeClaims": "x"})),
            "quota.objects.persistentVolumeClaims",
        ),
        (with("/quota/gpus", json!(1)), "quota.gpus"),
        (with("/limits/defaultCpu", json!("4")), "limits.defaultCpu"),
        (
            with("/limits/defaultMemory", json!("8Gi")),
            "limits.defaultMemory",
        ),
        (
            with("/limits/defaultMemory", json!("lots")),
            "limits.defaultMemory",
        ),
        (
            with("/network/isolation", json!("closed")),
            "network.isolation",
        ),
        (with("/podSecurity", json!("privileged")), "podSecurity"),
        (with("/ttl", json!("3 days")), "ttl"),
        (with("/ttl", json!("10000h")), "ttl"),
        (with("/unknown", json!(true)), "unknown"),
        (with("/apps/0/name", json!("Web")), "apps[0].name"),
        (with("/apps/0/name", Value::Null), "apps[0].name"),
        (
            with("/apps/0/image", json!("not an image")),
            "apps[0].image",
        ),
        (with("/apps/0/image", Value::Null), "apps[0].image"),
        (with("/apps/0/replicas", json!(21)), "apps[0].replicas"),
        (with("/apps/0/replicas", json!(-1)), "apps[0].replicas"),
        (with("/apps/0/port", json!(0)), "apps[0].port"),
        (with("/apps/0/port", json!(70000)), "apps[0].port"),
        (with("/apps/0/port", Value::Null), "apps[0].port"),
        (with("/apps/0/env", json!({"1BAD": "x"})), "apps[0].env"),
        (
            with("/apps/0/env", json!({"GOOD": "x".repeat(5000)})),
            "apps[0].env.GOOD",
        ),
        (with("/apps/0/env", Value::Object(many_env)), "apps[0].env"),
        (
            with("/apps/0/resources", json!({"cpu": "1x"})),
            "apps[0].resources.cpu",
        ),
        (
            with("/apps/0/resources", json!({"memory": "1m"})),
            "apps[0].resources.memory",
        ),
        (with("/apps/0/expose", json!("public")), "apps[0].expose"),
        (with("/apps/0/extra", json!(1)), "apps[0].extra"),
        (
            with("/apps/1", json!({"name": "web", "image": "nginx"})),
            "apps[1].name",
        ),
        (with("/apps", Value::Array(many_apps)), "apps"),
        (with("/members/0/email", json!("bob")), "members[0].email"),
        (with("/members/0/email", Value::Null), "members[0].email"),
        (with("/members/0/role", json!("admin")), "members[0].role"),
        (
            with(
                "/members/1",
                json!({"email": "BOB@example.com", "role": "viewer"}),
            ),
            "members[1].email",
        ),
    ];
    for (input, field) in cases {
        let shown = input.to_string();
        let err = parse_and_resolve(input).expect_err(&shown);
        let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&field),
            "{shown}: expected {field:?}, got {fields:?}"
        );
        assert!(err.errors().iter().all(|e| !e.message.is_empty()));
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let mut doc = with("/quota/cpu", json!("x"));
    doc["ttl"] = json!("forever");
    doc["members"][0]["role"] = json!("boss");
    let input = EnvironmentSpecInput::from_json(doc).unwrap();
    let err = EnvironmentSpec::parse(&input).unwrap_err();
    let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["quota.cpu", "ttl", "members[0].role"]);
}

#[test]
fn the_template_fills_what_the_spec_leaves_out_and_policy_the_rest() {
    let medium = json!({"name": "team-b", "template": "medium", "quota": {"cpu": "3"}});
    let spec = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(medium).unwrap()).unwrap();
    let resolved = resolve(spec, &builtin_templates(), &Policy::default()).unwrap();
    assert_eq!(resolved.quota.cpu.to_string(), "3");
    assert_eq!(resolved.quota.memory.to_string(), "8Gi");
    assert_eq!(resolved.ttl.map(|t| t.to_string()).as_deref(), Some("72h"));

    let bare = json!({"name": "team-c", "quota": {"cpu": "100m"}});
    let spec = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(bare).unwrap()).unwrap();
    let resolved = resolve(spec, &builtin_templates(), &Policy::default()).unwrap();
    assert_eq!(resolved.quota.memory.to_string(), "4Gi");
    assert_eq!(
        resolved.limits.default_cpu.to_string(),
        "100m",
        "a default shrinks to a smaller quota"
    );
}

#[test]
fn policy_reports_what_exceeds_it() {
    use crate::environment::{Approval, Decision};
    let big = json!({"name": "big-one", "quota": {"cpu": "64", "pods": 500}, "ttl": "8000h"});
    let spec = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(big).unwrap()).unwrap();
    let resolved = resolve(spec, &builtin_templates(), &Policy::default()).unwrap();
    let mut policy = Policy::default();
    let fields: Vec<String> = policy
        .check(&resolved)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["quota.cpu", "quota.pods", "ttl"]);
    assert!(
        matches!(policy.decide_create(&resolved, 0), Decision::NeedsApproval(v) if v.len() == 3)
    );
    policy.approval = Approval::Never;
    assert!(matches!(
        policy.decide_create(&resolved, 0),
        Decision::Deny(_)
    ));
    let within = resolve(
        EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(example()).unwrap()).unwrap(),
        &builtin_templates(),
        &policy,
    )
    .unwrap();
    assert_eq!(policy.decide_create(&within, 4), Decision::Allow);
    assert!(
        matches!(policy.decide_create(&within, 5), Decision::Deny(v) if v[0].field == "name"),
        "the fifth environment is the last one allowed"
    );
}

fn resolved(value: Value) -> crate::environment::ResolvedSpec {
    let spec = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(value).unwrap()).unwrap();
    resolve(spec, &builtin_templates(), &Policy::default()).unwrap()
}

#[test]
fn changes_of_bounds_are_judged_as_creates_and_nothing_else_is() {
    use crate::environment::{Approval, Decision};
    let mut policy = Policy::default();
    let before = resolved(json!({"name": "team-a", "quota": {"cpu": "16"}}));
    let mut members = before.clone();
    members.members.clear();
    policy.approval = Approval::Never;
    assert_eq!(
        policy.decide_change(&before, &members),
        Decision::Allow,
        "a member change in an environment above the policy"
    );
    let mut baseline = before.clone();
    baseline.quota.cpu = resolved(json!({"name": "small-one", "quota": {"cpu": "2"}}))
        .quota
        .cpu;
    baseline.pod_security = crate::environment::PodSecurity::Baseline;
    assert_eq!(policy.decide_change(&before, &baseline), Decision::Allow);
    let mut more_memory = before.clone();
    more_memory.quota.memory = resolved(json!({"name": "big-mem", "quota": {"memory": "8Gi"}}))
        .quota
        .memory;
    assert_eq!(
        policy.decide_change(&before, &more_memory),
        Decision::Allow,
        "the CPU above the policy is as it was; the memory asked is within it"
    );
    let mut more_cpu = before.clone();
    more_cpu.quota.cpu = resolved(json!({"name": "big-cpu", "quota": {"cpu": "32"}}))
        .quota
        .cpu;
    assert!(matches!(
        policy.decide_change(&before, &more_cpu),
        Decision::Deny(v) if v[0].field == "quota.cpu"
    ));
    policy.approval = Approval::Always;
    assert!(matches!(
        policy.decide_change(&before, &baseline),
        Decision::NeedsApproval(_)
    ));
    assert_eq!(policy.decide_change(&before, &members), Decision::Allow);
}

#[test]
fn a_stored_spec_looks_nothing_up() {
    use crate::environment::ResolvedSpec;
    let gpu = json!({"name": "team-g", "template": "gpu", "quota": {"cpu": "12"}});
    let spec = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(gpu).unwrap()).unwrap();
    let stored = ResolvedSpec::stored(spec).expect("a template nobody knows is only a record");
    assert_eq!(stored.quota.cpu.to_string(), "12");
    assert_eq!(stored.quota.memory.to_string(), "4Gi", "built-in default");
    assert_eq!(stored.ttl, None, "no ttl never expires");
    let written = resolved(json!({"name": "team-h", "template": "large"}));
    let spec = EnvironmentSpec::parse(&written.to_input()).unwrap();
    assert_eq!(
        ResolvedSpec::stored(spec).unwrap(),
        written,
        "what the API writes reads back"
    );
}

#[test]
fn policy_round_trips_and_names_bad_fields() {
    let policy = Policy::default();
    assert_eq!(Policy::parse(&policy.to_input()).unwrap(), policy);
    let mut input = policy.to_input();
    input.max_quota.as_mut().unwrap().cpu = Some("lots".into());
    input.default_ttl = Some("9000h".into());
    input.approval = Some("sometimes".into());
    let err = Policy::parse(&input).unwrap_err();
    let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["approval", "maxQuota.cpu", "defaultTtl"]);
}

#[test]
fn templates_list_as_the_contract_says() {
    let listed = serde_json::to_value(builtin_templates()).unwrap();
    assert_eq!(listed[0]["name"], "small");
    assert_eq!(
        listed[0]["spec"]["quota"],
        json!({"cpu": "2", "memory": "4Gi", "storage": "10Gi", "pods": 20,
               "ephemeralStorage": "20Gi",
               "objects": {"configmaps": 50, "secrets": 50, "services": 20, "persistentVolumeClaims": 20}}),
        "the contract's example"
    );
    for template in builtin_templates() {
        assert_eq!(
            crate::environment::Template::parse(&template.to_input()).unwrap(),
            template
        );
    }
}

#[test]
fn the_creator_becomes_the_first_owner() {
    let input = EnvironmentSpecInput::from_json(example()).unwrap();
    let mut spec = EnvironmentSpec::parse(&input).unwrap();
    let bob = crate::account::Email::parse("email", "bob@example.com").unwrap();
    spec.set_creator(bob.clone()).unwrap();
    assert_eq!(spec.members.len(), 1);
    assert_eq!(
        (spec.members[0].email.clone(), spec.members[0].role.as_str()),
        (bob, "owner")
    );
}
