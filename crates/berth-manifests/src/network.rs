//! Network policies: who may reach the environment's pods.

use super::Context;
use berth_core::environment::Isolation;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The label every namespace carries with its own name (set by the apiserver).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn policy(ctx: &Context<'_>, name: &str, spec: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ctx.meta(name, true),
        spec: Some(spec),
    }
}

fn types(types: &[&str]) -> Option<Vec<String>> {
    Some(types.iter().map(|t| (*t).to_owned()).collect())
}

fn from_namespace(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_owned(),
                name.to_owned(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

pub(crate) fn policies(ctx: &Context<'_>) -> Vec<NetworkPolicy> {
    let all_pods = LabelSelector::default();
    match ctx.spec.isolation {
        Isolation::Open => vec![policy(
            ctx,
            "berth-allow-all",
            NetworkPolicySpec {
                pod_selector: Some(all_pods),
                policy_types: types(&["Ingress", "Egress"]),
                ingress: Some(vec![NetworkPolicyIngressRule::default()]),
                egress: Some(vec![NetworkPolicyEgressRule::default()]),
            },
        )],
        Isolation::Isolated => {
            let same_namespace = NetworkPolicyPeer {
                pod_selector: Some(LabelSelector::default()),
                ..NetworkPolicyPeer::default()
            };
            let dns_ports = ["UDP", "TCP"]
                .map(|protocol| NetworkPolicyPort {
                    protocol: Some(protocol.to_owned()),
                    port: Some(IntOrString::Int(53)),
                    ..NetworkPolicyPort::default()
                })
                .to_vec();
            vec![
                policy(
                    ctx,
                    "berth-default-deny-ingress",
                    NetworkPolicySpec {
                        pod_selector: Some(all_pods.clone()),
                        policy_types: types(&["Ingress"]),
                        ..NetworkPolicySpec::default()
                    },
                ),
                policy(
                    ctx,
                    "berth-allow-same-namespace",
                    NetworkPolicySpec {
                        pod_selector: Some(all_pods.clone()),
                        policy_types: types(&["Ingress"]),
                        ingress: Some(vec![NetworkPolicyIngressRule {
                            from: Some(vec![same_namespace]),
                            ..NetworkPolicyIngressRule::default()
                        }]),
                        ..NetworkPolicySpec::default()
                    },
                ),
                policy(
                    ctx,
                    "berth-allow-ingress-controller",
                    NetworkPolicySpec {
                        pod_selector: Some(all_pods.clone()),
                        policy_types: types(&["Ingress"]),
                        ingress: Some(vec![NetworkPolicyIngressRule {
                            from: Some(vec![from_namespace(
                                &ctx.options.ingress_controller_namespace,
                            )]),
                            ..NetworkPolicyIngressRule::default()
                        }]),
                        ..NetworkPolicySpec::default()
                    },
                ),
                // DNS is named on its own so that it stays allowed should the
                // catch-all egress rule ever be narrowed.
                policy(
                    ctx,
                    "berth-allow-egress",
                    NetworkPolicySpec {
                        pod_selector: Some(all_pods),
                        policy_types: types(&["Egress"]),
                        egress: Some(vec![
                            NetworkPolicyEgressRule {
                                ports: Some(dns_ports),
                                ..NetworkPolicyEgressRule::default()
                            },
                            NetworkPolicyEgressRule::default(),
                        ]),
                        ..NetworkPolicySpec::default()
                    },
                ),
            ]
        }
    }
}
