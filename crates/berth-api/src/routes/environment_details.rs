//! What runs in an environment and what happened there, read from the cluster
//! for members; and kubeconfigs to reach it.

use crate::audit::{Action, RequestId};
use crate::cluster::Connection;
use crate::environments::access::Permission;
use crate::environments::{self as envs, kubeconfig};
use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use berth_manifests::{Environment, is_environments_namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::json;

#[utoipa::path(get, operation_id = "environment_details_get_kubeconfig", path = "/api/v1/environments/{name}/kubeconfig", tag = "environments", params(("name" = String, Path)), responses(
    (status = 200, description = "A kubeconfig carrying the caller's own identity, limited to the environment's namespace (its server is Berth's `/api/v1/environments/{name}/kube`) and to what the caller's role there allows; open watches and sessions end when that access is taken away; it expires after the configured time (8 h by default)", content_type = "application/yaml"),
    (status = 403, description = "Admins who are not members have no identity in the environment", body = crate::error::ErrorBody),
    (status = 404, description = "Absent or not visible", body = crate::error::ErrorBody),
), security(("session" = []), ("token" = [])))]
pub async fn get_kubeconfig(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    request_id: RequestId,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let connection = state.cluster.connection().await?;
    envs::permitted(connection, &name, &caller, Permission::Kubeconfig).await?;
    let expires_in = state.settings.kubeconfig_ttl.as_secs();
    // Kubeconfigs reach the cluster through Berth's HTTPS listener, at the
    // address users know it by.
    let base = match &state.settings.kube_public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let authority = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
            let host = authority.as_ref().map_or("127.0.0.1", |a| a.host());
            format!("https://{host}:{}", state.settings.kube_port)
        }
    };
    let server = format!("{base}{}", crate::kube_proxy::server_path(&name));
    let config = kubeconfig::kubeconfig(
        connection,
        &name,
        &caller.user,
        expires_in,
        &server,
        state.settings.kube_ca_pem.as_deref(),
    )
    .await?;
    let action = Action {
        actor: caller.user.email.as_str(),
        action: "environment.kubeconfig",
        target: format!("environment/{name}"),
        environment: Some(&name),
        details: json!({ "expiresInSeconds": expires_in }),
    };
    state.audit(action, "success", &request_id).await;
    let disposition = format!("attachment; filename=\"{name}.kubeconfig.yaml\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        config,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    #[serde(rename = "type")]
    type_: String,
    reason: String,
    message: String,
    /// `Kind/name` of the object the event is about.
    object: String,
    count: i32,
    last_seen: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventList {
    items: Vec<EventView>,
}

#[utoipa::path(get, operation_id = "environment_details_events", path = "/api/v1/environments/{name}/events", tag = "environments", params(("name" = String, Path)), responses(
    (status = 200, description = "Kubernetes events of the namespace and the Environment, newest first", body = EventList),
), security(("session" = []), ("token" = [])))]
pub async fn events(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
) -> Result<ApiJson<EventList>, ApiError> {
    let connection = state.cluster.connection().await?;
    let (env, _) = envs::visible(connection, &name, &caller).await?;
    let mut events = if owns_namespace(connection, &env).await? {
        let in_namespace: Api<Event> = Api::namespaced(connection.client.clone(), &name);
        all_pages(&in_namespace, ListParams::default()).await?
    } else {
        Vec::new()
    };
    // Events about the (cluster-scoped) Environment land in `default`.
    let about_environment: Api<Event> = Api::namespaced(connection.client.clone(), "default");
    let selector = format!("involvedObject.kind=Environment,involvedObject.name={name}");
    events.extend(all_pages(&about_environment, ListParams::default().fields(&selector)).await?);
    Ok(ApiJson(EventList {
        items: newest(events, MAX_EVENTS),
    }))
}

/// Whether the namespace named after `env` is its own. One of that name
/// that Berth did not make for this very Environment (someone else's, the
/// platform's, a predecessor's still going) is never read with Berth's
/// credentials on a tenant's behalf.
pub(crate) async fn owns_namespace(
    connection: &Connection,
    env: &Environment,
) -> Result<bool, ApiError> {
    let name = env.metadata.name.as_deref().unwrap_or_default();
    let uid = env.metadata.uid.as_deref().unwrap_or_default();
    let namespaces: Api<Namespace> = Api::all(connection.client.clone());
    Ok(namespaces
        .get_opt(name)
        .await
        .map_err(envs::kube_error)?
        .is_some_and(|ns| is_environments_namespace(&ns, name, uid)))
}

/// Most events one answer lists: the newest this many.
const MAX_EVENTS: usize = 500;
/// Events read per page, and most pages read: a namespace flooded with
/// more than this many events answers from the first ones the apiserver
/// lists rather than without end.
const PAGE: u32 = 500;
const MAX_PAGES: usize = 40;

/// Every event `api` lists under `params`, page by page. The apiserver lists
/// in name order, not time order, so the newest can be on any page.
async fn all_pages(api: &Api<Event>, params: ListParams) -> Result<Vec<Event>, ApiError> {
    let mut params = params.limit(PAGE);
    let mut events = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = api.list(&params).await.map_err(envs::kube_error)?;
        events.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(events)
}

/// The `limit` newest of `events`, newest first.
fn newest(events: Vec<Event>, limit: usize) -> Vec<EventView> {
    let mut timed: Vec<(Option<Timestamp>, Event)> =
        events.into_iter().map(|e| (last_seen(&e), e)).collect();
    timed.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    timed.truncate(limit);
    timed.into_iter().map(|(_, e)| event_view(e)).collect()
}

/// When an event last happened: its series' last observation, else its
/// last timestamp, else its event time, else when it was recorded.
fn last_seen(e: &Event) -> Option<Timestamp> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0)
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn event_view(e: Event) -> EventView {
    let last_seen = last_seen(&e).map(|t| t.to_string());
    EventView {
        type_: e.type_.unwrap_or_else(|| "Normal".into()),
        reason: e.reason.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object.kind.unwrap_or_default(),
            e.involved_object.name.unwrap_or_default()
        ),
        count: e.count.unwrap_or(1),
        last_seen,
    }
}

#[derive(Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workloads {
    deployments: Vec<WorkloadDeployment>,
    pods: Vec<WorkloadPod>,
    services: Vec<WorkloadService>,
    ingresses: Vec<WorkloadIngress>,
}

/// A Deployment of the namespace: an app, or one made with kubectl.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeployment {
    name: String,
    /// Pods wanted.
    replicas: i32,
    ready_replicas: i32,
    available_replicas: i32,
    /// The first container's image.
    image: Option<String>,
}

/// A Service of the namespace.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadService {
    name: String,
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type")]
    type_: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    /// The ports it listens on.
    ports: Vec<i32>,
}

/// An Ingress of the namespace.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIngress {
    name: String,
    /// The host names its rules answer, reachable over HTTP(S).
    hosts: Vec<String>,
}

/// A pod of the namespace, as the environment page lists it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPod {
    name: String,
    /// The pod's phase: Pending, Running, Succeeded, Failed or Unknown.
    phase: String,
    /// Whether it has containers and every one is ready.
    ready: bool,
    /// Restarts of its containers, summed.
    restarts: i32,
    /// The node it was scheduled to.
    node: Option<String>,
    /// Its containers' names, the app containers first, then the init
    /// containers: what the log viewer offers to read.
    containers: Vec<String>,
}

#[utoipa::path(get, operation_id = "environment_details_workloads", path = "/api/v1/environments/{name}/workloads", tag = "environments", params(("name" = String, Path)), responses(
    (status = 200, description = "Deployments, pods with phase, readiness and restarts, services, ingresses", body = Workloads),
), security(("session" = []), ("token" = [])))]
pub async fn workloads(
    State(state): State<AppState>,
    CurrentUser(caller): CurrentUser,
    Path(name): Path<String>,
) -> Result<ApiJson<Workloads>, ApiError> {
    let connection = state.cluster.connection().await?;
    let (env, _) = envs::visible(connection, &name, &caller).await?;
    if !owns_namespace(connection, &env).await? {
        return Ok(ApiJson(Workloads::default()));
    }
    let client = connection.client.clone();
    let params = ListParams::default();
    let deployments = Api::<Deployment>::namespaced(client.clone(), &name);
    let pods = Api::<Pod>::namespaced(client.clone(), &name);
    let services = Api::<Service>::namespaced(client.clone(), &name);
    let ingresses = Api::<Ingress>::namespaced(client, &name);
    let (deployments, pods, services, ingresses) = tokio::try_join!(
        deployments.list(&params),
        pods.list(&params),
        services.list(&params),
        ingresses.list(&params),
    )
    .map_err(envs::kube_error)?;
    Ok(ApiJson(Workloads {
        deployments: deployments
            .items
            .iter()
            .map(|d| {
                let status = d.status.clone().unwrap_or_default();
                WorkloadDeployment {
                    name: d.metadata.name.clone().unwrap_or_default(),
                    replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    ready_replicas: status.ready_replicas.unwrap_or(0),
                    available_replicas: status.available_replicas.unwrap_or(0),
                    image: d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.spec.as_ref())
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.clone()),
                }
            })
            .collect(),
        pods: pods
            .items
            .iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                let statuses = status.container_statuses.unwrap_or_default();
                WorkloadPod {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    phase: status.phase.unwrap_or_else(|| "Pending".into()),
                    ready: !statuses.is_empty() && statuses.iter().all(|c| c.ready),
                    restarts: statuses.iter().map(|c| c.restart_count).sum(),
                    node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                    containers: p
                        .spec
                        .iter()
                        .flat_map(|s| {
                            s.containers
                                .iter()
                                .chain(s.init_containers.iter().flatten())
                        })
                        .map(|c| c.name.clone())
                        .collect(),
                }
            })
            .collect(),
        services: services
            .items
            .iter()
            .map(|s| {
                let spec = s.spec.clone().unwrap_or_default();
                WorkloadService {
                    name: s.metadata.name.clone().unwrap_or_default(),
                    type_: spec.type_,
                    cluster_ip: spec.cluster_ip,
                    ports: spec
                        .ports
                        .unwrap_or_default()
                        .iter()
                        .map(|p| p.port)
                        .collect(),
                }
            })
            .collect(),
        ingresses: ingresses
            .items
            .iter()
            .map(|i| {
                let hosts: Vec<_> = i
                    .spec
                    .iter()
                    .flat_map(|s| s.rules.iter().flatten())
                    .filter_map(|r| r.host.clone())
                    .collect();
                WorkloadIngress {
                    name: i.metadata.name.clone().unwrap_or_default(),
                    hosts,
                }
            })
            .collect(),
    }))
}
