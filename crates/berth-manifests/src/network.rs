//! Network policies: who may reach the environment's pods.

use super::Context;
use berth_core::environment::Isolation;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
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

/// Link-local networks: where clouds serve instance metadata (and its
/// credentials) to whatever asks from the node.
const LINK_LOCAL: [&str; 2] = ["169.254.0.0/16", "fe80::/10"];

fn same_namespace_peer() -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    }
}

/// Every IPv4 and IPv6 address except link-local and `blocked` (each CIDR
/// goes with the family it is written in).
fn anywhere_but(blocked: &[String]) -> Vec<NetworkPolicyPeer> {
    let except = |v6: bool| -> Vec<String> {
        LINK_LOCAL
            .iter()
            .map(|c| (*c).to_owned())
            .chain(blocked.iter().cloned())
            .filter(|c| c.contains(':') == v6)
            .collect()
    };
    [("0.0.0.0/0", false), ("::/0", true)]
        .into_iter()
        .map(|(cidr, v6)| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.to_owned(),
                except: Some(except(v6)),
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect()
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
            let same_namespace = same_namespace_peer();
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
                // DNS is named on its own so that it stays allowed whatever
                // the blocked networks hold (the cluster's DNS may be in one).
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
                            NetworkPolicyEgressRule {
                                to: Some(vec![same_namespace_peer()]),
                                ..NetworkPolicyEgressRule::default()
                            },
                            NetworkPolicyEgressRule {
                                to: Some(anywhere_but(&ctx.options.blocked_egress_cidrs)),
                                ..NetworkPolicyEgressRule::default()
                            },
                        ]),
                        ..NetworkPolicySpec::default()
                    },
                ),
            ]
        }
    }
}
