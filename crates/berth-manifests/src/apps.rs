//! Per app: a Deployment that passes the `restricted` Pod Security Standard, and
//! a Service and an Ingress as its `expose` asks.

use super::{Context, Object};
use berth_core::environment::{Expose, Port, ResolvedApp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Label that selects an app's pods.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
const PORT_NAME: &str = "http";

/// The host an app exposed by ingress is served at.
pub fn ingress_host(app: &ResolvedApp, ctx_env: &str, domain: &str) -> String {
    format!("{}.{ctx_env}.{domain}", app.name)
}

pub(crate) fn app_objects(ctx: &Context<'_>) -> Vec<Object> {
    let mut objects = Vec::new();
    for app in &ctx.spec.apps {
        objects.push(Object::Deployment(deployment(ctx, app)));
        if let (Some(port), Expose::Cluster | Expose::Ingress) = (app.port, app.expose) {
            objects.push(Object::Service(service(ctx, app, port)));
            if app.expose == Expose::Ingress {
                objects.push(Object::Ingress(ingress(ctx, app, port)));
            }
        }
    }
    objects
}

fn selector(app: &ResolvedApp) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_LABEL.to_owned(), app.name.to_string())])
}

fn app_meta(ctx: &Context<'_>, app: &ResolvedApp) -> ObjectMeta {
    let mut meta = ctx.meta(app.name.as_str(), true);
    meta.labels.get_or_insert_default().extend(selector(app));
    meta
}

fn deployment(ctx: &Context<'_>, app: &ResolvedApp) -> Deployment {
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity(app.resources.cpu.to_string())),
        (
            "memory".to_owned(),
            Quantity(app.resources.memory.to_string()),
        ),
    ]);
    let seccomp = || SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    };
    let container = Container {
        name: app.name.to_string(),
        image: Some(app.image.as_str().to_owned()),
        ports: app.port.map(|p| {
            vec![ContainerPort {
                name: Some(PORT_NAME.to_owned()),
                container_port: i32::from(p.get()),
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            }]
        }),
        env: (!app.env.is_empty()).then(|| {
            app.env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.to_string(),
                    value: Some(value.clone()),
                    ..EnvVar::default()
                })
                .collect()
        }),
        // Requests equal to limits: the quota counts both, and equal values
        // keep an app's share predictable (Guaranteed QoS).
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            run_as_non_root: Some(true),
            seccomp_profile: Some(seccomp()),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let mut pod_labels = ctx.labels();
    pod_labels.extend(selector(app));
    Deployment {
        metadata: app_meta(ctx, app),
        spec: Some(DeploymentSpec {
            replicas: Some(i32::from(app.replicas.get())),
            revision_history_limit: Some(3),
            selector: LabelSelector {
                match_labels: Some(selector(app)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    // Apps do not talk to the Kubernetes API; keep its token out of reach.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(seccomp()),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn service(ctx: &Context<'_>, app: &ResolvedApp, port: Port) -> Service {
    Service {
        metadata: app_meta(ctx, app),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector(app)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: i32::from(port.get()),
                target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn ingress(ctx: &Context<'_>, app: &ResolvedApp, port: Port) -> Ingress {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: app.name.to_string(),
            port: Some(ServiceBackendPort {
                number: Some(i32::from(port.get())),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    };
    Ingress {
        metadata: app_meta(ctx, app),
        spec: Some(IngressSpec {
            ingress_class_name: ctx.options.ingress_class.clone(),
            rules: Some(vec![IngressRule {
                host: Some(ingress_host(
                    app,
                    ctx.env().as_str(),
                    &ctx.options.ingress_domain,
                )),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend,
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}
