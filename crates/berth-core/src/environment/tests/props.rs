use crate::environment::{
    AppInput, EnvironmentSpec, EnvironmentSpecInput, LimitsInput, MemberInput, NetworkInput,
    Policy, QuotaInput, ResourcesInput, builtin_templates, resolve,
};
use proptest::prelude::*;
use serde_json::Value;

fn env_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1}[a-z0-9-]{1,37}[a-z0-9]{1}".prop_filter("reserved", |n| {
        n != "default" && !n.starts_with("kube-") && !n.starts_with("berth-")
    })
}

fn cpu() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u64..=64).prop_map(|n| n.to_string()),
        (1u64..=64_000).prop_map(|n| format!("{n}m")),
        (0u64..=63, 1u64..=9).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

fn bytes() -> impl Strategy<Value = String> {
    let suffix = prop::sample::select(vec!["", "k", "M", "G", "Ki", "Mi", "Gi"]);
    (1u64..=512, suffix).prop_map(|(n, s)| format!("{n}{s}"))
}

fn ttl() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u64..=8760).prop_map(|h| format!("{h}h")),
        (1u64..=100, 1u64..=59).prop_map(|(h, m)| format!("{h}h{m}m")),
        (1u64..=600).prop_map(|m| format!("{m}m")),
    ]
}

fn app(index: usize) -> impl Strategy<Value = AppInput> {
    let image = prop::sample::select(vec![
        "nginx",
        "nginx:1.27",
        "ghcr.io/acme/api:v2",
        "registry.local:5000/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    let env = prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,10}", "[ -~]{0,20}", 0..4);
    let expose = prop::option::of(prop::sample::select(vec!["none", "cluster", "ingress"]));
    (
        image,
        0i64..=20,
        1i64..=65535,
        env,
        prop::option::of((prop::option::of(cpu()), prop::option::of(bytes()))),
        expose,
    )
        .prop_map(
            move |(image, replicas, port, env, resources, expose)| AppInput {
                name: Some(format!("app{index}")),
                image: Some(image.to_owned()),
                replicas: Some(replicas),
                port: Some(port),
                env: Some(env),
                resources: resources.map(|(cpu, memory)| ResourcesInput { cpu, memory }),
                expose: expose.map(str::to_owned),
            },
        )
}

fn spec() -> impl Strategy<Value = EnvironmentSpecInput> {
    let quota = prop::option::of((
        prop::option::of(cpu()),
        prop::option::of(bytes()),
        prop::option::of(bytes()),
        prop::option::of(1i64..=1000),
    ));
    let apps = (0usize..5).prop_flat_map(|n| (0..n).map(app).collect::<Vec<_>>());
    let members = prop::collection::btree_set("[a-z]{1,8}@[a-z]{1,8}\\.(com|dev)", 0..4)
        .prop_flat_map(|emails| {
            let n = emails.len();
            (
                Just(emails),
                prop::collection::vec(prop::sample::select(vec!["owner", "editor", "viewer"]), n),
            )
        })
        .prop_map(|(emails, roles)| {
            emails
                .into_iter()
                .zip(roles)
                .map(|(e, r)| MemberInput {
                    email: Some(e),
                    role: Some(r.to_owned()),
                })
                .collect::<Vec<_>>()
        });
    (
        env_name(),
        prop::option::of("[ -~]{0,40}"),
        prop::option::of(prop::sample::select(vec!["small", "medium", "large"])),
        quota,
        prop::option::of(prop::sample::select(vec!["isolated", "open"])),
        prop::option::of(prop::sample::select(vec!["restricted", "baseline"])),
        prop::option::of(ttl()),
        apps,
        members,
    )
        .prop_map(
            |(name, description, template, quota, isolation, pod_security, ttl, apps, members)| {
                EnvironmentSpecInput {
                    name: Some(name),
                    description,
                    template: template.map(str::to_owned),
                    quota: quota.map(|(cpu, memory, storage, pods)| QuotaInput {
                        cpu,
                        memory,
                        storage,
                        pods,
                        ..QuotaInput::default()
                    }),
                    // Limits are left out: an arbitrary pair could exceed an arbitrary quota.
                    limits: None::<LimitsInput>,
                    network: isolation.map(|i| NetworkInput {
                        isolation: Some(i.to_owned()),
                    }),
                    pod_security: pod_security.map(str::to_owned),
                    ttl,
                    apps: Some(apps),
                    members: Some(members),
                    exceptions: None,
                }
            },
        )
}

proptest! {
    #[test]
    fn every_valid_spec_parses_and_round_trips(input in spec()) {
        let json = serde_json::to_value(&input).unwrap();
        let parsed = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(json).unwrap()).unwrap();
        let again = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(serde_json::to_value(&parsed).unwrap()).unwrap()).unwrap();
        prop_assert_eq!(&again, &parsed);

        let resolved = resolve(parsed, &builtin_templates(), &Policy::default()).unwrap();
        let stored = serde_json::to_value(&resolved).unwrap();
        let reparsed = EnvironmentSpec::parse(&EnvironmentSpecInput::from_json(stored).unwrap()).unwrap();
        prop_assert_eq!(resolve(reparsed, &builtin_templates(), &Policy::default()).unwrap(), resolved);
    }

    #[test]
    fn every_rejected_input_names_a_field(input in spec(), field in 0usize..9, junk in junk()) {
        let mut json = serde_json::to_value(&input).unwrap();
        let keys = ["name", "description", "template", "quota", "network", "podSecurity", "ttl", "apps", "members"];
        json[keys[field]] = junk;
        let outcome = EnvironmentSpecInput::from_json(json)
            .and_then(|i| EnvironmentSpec::parse(&i))
            .and_then(|s| resolve(s, &builtin_templates(), &Policy::default()));
        if let Err(errors) = outcome {
            prop_assert!(!errors.is_empty());
            for error in errors.errors() {
                prop_assert!(error.field.starts_with(keys[field]), "{} not under {}", error.field, keys[field]);
                prop_assert!(!error.message.is_empty());
            }
        }
    }
}

fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
