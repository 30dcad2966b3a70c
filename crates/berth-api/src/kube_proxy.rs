//! The Kubernetes API of one environment, as its members' kubeconfigs reach
//! it: `/api/v1/environments/{name}/kube/...` forwards to the apiserver.
//!
//! Why a proxy: Kubernetes authorizes a request when it starts, so an open
//! watch, log stream or `exec` session would outlive a member's removal or
//! a disabled account until the apiserver's own timeouts. Here every
//! request of a kubeconfig is tracked, and ended the moment a RoleBinding
//! naming its identity changes or goes (a role change, a removal, a
//! disable, the environment's deletion: every path that takes access
//! away ends in one). Reconnecting is authorized afresh.
//!
//! How: kubeconfig tokens are TokenRequest tokens of the member's identity
//! (`berth-users/user-<id>`) for the audience [`TOKEN_AUDIENCE`], which
//! the apiserver itself refuses; Berth checks them (a TokenReview for that
//! audience), keeps requests to the environment's namespace (and
//! discovery, and the caller's own access reviews), and forwards them
//! impersonating that identity, so the apiserver's RBAC, admission and
//! guardrails judge them exactly as before. Berth needs `tokenreviews`
//! `create` and `impersonate` on ServiceAccounts and groups.

use crate::cluster::Connection;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_manifests::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, USERS_NAMESPACE};
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The audience of kubeconfig tokens: Berth's, not the apiserver's, so a
/// token taken out of a kubeconfig reaches the cluster only through here.
pub const TOKEN_AUDIENCE: &str = "berth.dev/kube-proxy";

/// The path under an environment where its Kubernetes API answers.
pub fn server_path(environment: &str) -> String {
    format!("/api/v1/environments/{environment}/kube")
}

/// What ends open requests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Revoked {
    /// Access taken from the identity `account` (of `berth-users`) in
    /// `namespace`: its open requests there end.
    Access { namespace: String, account: String },
    /// The server is stopping: every open request ends, so that stopping
    /// does not wait on watches that would never finish.
    Everything,
}

/// The member identities each of Berth's RoleBindings names, by namespace
/// and binding name: who is a member of which environment, as RBAC has it.
type Bound = HashMap<String, HashMap<String, BTreeSet<String>>>;

/// Every replica's revocations, fed by its watch of member RoleBindings,
/// and what that watch saw bound.
#[derive(Clone)]
pub struct Revocations {
    sender: broadcast::Sender<Revoked>,
    bound: Arc<std::sync::RwLock<Bound>>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            // A request that falls this far behind ends, as if revoked.
            sender: broadcast::channel(1024).0,
            bound: Arc::default(),
        }
    }
}

impl Revocations {
    /// A future resolving when access of `account` in `namespace` is
    /// revoked from now on, or when revocations were missed (the receiver
    /// lagged): then no one can say the request is still allowed, so it
    /// ends too.
    fn revoked(
        &self,
        namespace: String,
        account: String,
    ) -> impl Future<Output = ()> + Send + 'static {
        // Subscribed now, not when first polled: a revocation while the
        // request is on its way to the apiserver still counts.
        let mut receiver = self.sender.subscribe();
        let wanted = Revoked::Access { namespace, account };
        async move {
            loop {
                match receiver.recv().await {
                    Ok(revoked) if revoked == wanted || revoked == Revoked::Everything => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        }
    }

    /// Watches Berth's member RoleBindings in every namespace for as long
    /// as the process runs, revoking each identity a binding stops naming
    /// (or that goes with a deleted binding). Restarts with the watch.
    pub fn watch(&self, cluster: Arc<crate::cluster::Cluster>) -> tokio::task::JoinHandle<()> {
        let revocations = self.clone();
        tokio::spawn(async move {
            let client = loop {
                match cluster.connection().await {
                    Ok(connection) => break connection.client.clone(),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
                }
            };
            let api: Api<RoleBinding> = Api::all(client);
            let config = watcher::Config::default()
                .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(binding) | watcher::Event::InitApply(binding)) => {
                        let ((namespace, name), now) = identities_of(&binding);
                        let before = revocations
                            .bound()
                            .entry(namespace.clone())
                            .or_default()
                            .insert(name, now.clone())
                            .unwrap_or_default();
                        revocations.send(&namespace, before.difference(&now));
                    }
                    Ok(watcher::Event::Delete(binding)) => {
                        let ((namespace, name), _) = identities_of(&binding);
                        let before = revocations
                            .bound()
                            .get_mut(&namespace)
                            .and_then(|bindings| bindings.remove(&name));
                        if let Some(before) = before {
                            revocations.send(&namespace, before.iter());
                        }
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                    Err(e) => tracing::warn!(error = %e, "watching member RoleBindings"),
                }
            }
        })
    }

    fn bound(&self) -> std::sync::RwLockWriteGuard<'_, Bound> {
        // A panic while holding the lock leaves the map as consistent as
        // any single insert or remove: keep using it.
        self.bound.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the watch saw a RoleBinding of Berth's in `namespace` name
    /// the identity `account`: whether it is a member there.
    fn binds(&self, namespace: &str, account: &str) -> bool {
        self.bound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .is_some_and(|bindings| bindings.values().any(|a| a.contains(account)))
    }

    fn send<'a>(&self, namespace: &str, accounts: impl Iterator<Item = &'a String>) {
        for account in accounts {
            // No receiver means no open request: nothing to end.
            let _ = self.sender.send(Revoked::Access {
                namespace: namespace.to_owned(),
                account: account.clone(),
            });
        }
    }

    /// A future resolving when the server stops ([`Revocations::end_all`]):
    /// long-lived answers other than the proxy's (live views) end with it.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            loop {
                match receiver.recv().await {
                    Ok(Revoked::Everything) => return,
                    // The stop is the last message sent: still to come.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }

    /// Ends every open request: the server is stopping.
    pub fn end_all(&self) {
        let _ = self.sender.send(Revoked::Everything);
    }
}

/// A binding's namespace and name, and the member identities it names.
fn identities_of(binding: &RoleBinding) -> ((String, String), BTreeSet<String>) {
    let key = (
        binding.metadata.namespace.clone().unwrap_or_default(),
        binding.metadata.name.clone().unwrap_or_default(),
    );
    let accounts = binding
        .subjects
        .iter()
        .flatten()
        .filter(|s| s.kind == "ServiceAccount" && s.namespace.as_deref() == Some(USERS_NAMESPACE))
        .map(|s| s.name.clone())
        .collect();
    (key, accounts)
}

/// Whether a kubeconfig of `namespace` may reach `path`: discovery and the
/// OpenAPI documents (kubectl needs them), the caller's own access reviews
/// (`kubectl auth can-i`, `whoami`), and anything in the namespace. Paths
/// that are not plain (empty, `.` or `..` segments, escapes) never are.
pub fn reaches(path: &str, namespace: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('%'))
    {
        return false;
    }
    match segments.as_slice() {
        ["version"] | ["api"] | ["apis"] | ["api", "v1"] | ["apis", _] | ["apis", _, _] => true,
        ["openapi", ..] => true,
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews",
        ]
        | ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"] => true,
        ["api", "v1", "namespaces", ns, ..] | ["apis", _, _, "namespaces", ns, ..] => {
            *ns == namespace
        }
        _ => false,
    }
}

/// A Kubernetes `Status` answer, as kubectl expects its errors.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

/// The identity a kubeconfig token stands for: a member identity's
/// username and groups, or `None` when the token is not one (expired,
/// another audience, another account, its account deleted).
async fn identity(
    connection: &Connection,
    token: &str,
) -> Result<Option<(String, Vec<String>)>, ApiError> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: Some(vec![TOKEN_AUDIENCE.to_owned()]),
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(connection.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(crate::environments::kube_error)?;
    let Some(status) = reviewed.status.filter(|s| s.authenticated == Some(true)) else {
        return Ok(None);
    };
    let Some(user) = status.user else {
        return Ok(None);
    };
    let username = user.username.unwrap_or_default();
    let prefix = format!("system:serviceaccount:{USERS_NAMESPACE}:");
    if !username.starts_with(&prefix) {
        return Ok(None);
    }
    Ok(Some((username, user.groups.unwrap_or_default())))
}

/// Headers not to forward: the connection's own (but for an upgrade's), and
/// credentials and impersonation a client might send.
fn forwardable(name: &HeaderName, upgrade: bool) -> bool {
    let n = name.as_str();
    let hop = matches!(
        n,
        "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "host"
            | "content-length"
    );
    let connection = matches!(n, "connection" | "upgrade");
    !(hop
        || (connection && !upgrade)
        || name == header::AUTHORIZATION
        || name == header::COOKIE
        || n.starts_with("impersonate-"))
}

pub async fn proxy_root(
    state: State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    forward(state, name, String::new(), request).await
}

pub async fn proxy_path(
    state: State<AppState>,
    Path((name, path)): Path<(String, String)>,
    request: Request,
) -> Response {
    forward(state, name, path, request).await
}

async fn forward(
    State(state): State<AppState>,
    name: String,
    path: String,
    mut request: Request,
) -> Response {
    let unauthorized = || {
        status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized: download a fresh kubeconfig from Berth",
        )
    };
    let Some(token) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
    else {
        return unauthorized();
    };
    let connection = match state.cluster.connection().await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (username, groups) = match identity(connection, &token).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return unauthorized(),
        Err(e) => return e.into_response(),
    };
    // Only a member's kubeconfig reaches an environment: the one it was
    // made for, or another the same identity is a member of; the watch may
    // lag a binding made a moment ago, which the apiserver then confirms.
    let account = username.rsplit(':').next().unwrap_or_default().to_owned();
    let member = state.revocations.binds(&name, &account)
        || match crate::environments::kubeconfig::is_bound(connection, &name, &account).await {
            Ok(bound) => bound,
            Err(e) => return e.into_response(),
        };
    if !member {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("forbidden: you are not a member of environment {name}"),
        );
    }
    let path = format!("/{path}");
    if !reaches(&path, &name) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "forbidden: this kubeconfig reaches only the namespace {name} (and discovery); {path} is outside it"
            ),
        );
    }
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let on_client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let uri = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut upstream = axum::http::Request::builder().method(parts.method).uri(uri);
    let headers = upstream.headers_mut().expect("a fresh builder has headers");
    for (key, value) in parts
        .headers
        .iter()
        .filter(|(k, _)| forwardable(k, upgrade))
    {
        headers.append(key, value.clone());
    }
    let Ok(user) = HeaderValue::from_str(&username) else {
        return unauthorized();
    };
    headers.insert("impersonate-user", user);
    for group in &groups {
        if let Ok(group) = HeaderValue::from_str(group) {
            headers.append("impersonate-group", group);
        }
    }
    let upstream = match upstream.body(kube::client::Body::from(body.to_vec())) {
        Ok(r) => r,
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    let revoked = state.revocations.revoked(name.clone(), account);
    let mut response = match connection.client.send(upstream).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "forwarding to the apiserver");
            return ApiError::Unavailable {
                message: "the cluster did not answer; try again".into(),
                details: vec![],
                retry_after: std::time::Duration::from_secs(2),
            }
            .into_response();
        }
    };
    let code = response.status();
    let mut headers = HeaderMap::new();
    for (key, value) in response
        .headers()
        .iter()
        .filter(|(k, _)| forwardable(k, upgrade))
    {
        headers.append(key, value.clone());
    }
    if code == StatusCode::SWITCHING_PROTOCOLS
        && let Some(on_client) = on_client_upgrade
    {
        let on_server = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(server)) = (on_client.await, on_server.await) else {
                return;
            };
            let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                () = revoked => {}
            }
        });
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = code;
        *answer.headers_mut() = headers;
        return answer;
    }
    // A watch or a followed log is a body that does not end: it ends when
    // access is revoked.
    let stream = response
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other)
        .take_until(revoked);
    let mut answer = Response::new(Body::from_stream(stream));
    *answer.status_mut() = code;
    *answer.headers_mut() = headers;
    answer
}

#[cfg(test)]
mod tests {
    use super::reaches;

    #[test]
    fn a_kubeconfig_reaches_its_namespace_and_discovery_only() {
        for path in [
            "/version",
            "/api",
            "/apis",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v3",
            "/openapi/v3/apis/apps/v1",
            "/api/v1/namespaces/team",
            "/api/v1/namespaces/team/pods",
            "/api/v1/namespaces/team/pods/web-1/exec",
            "/apis/apps/v1/namespaces/team/deployments/web",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        ] {
            assert!(reaches(path, "team"), "{path}");
        }
        for path in [
            "",
            "/",
            "/api/v1/pods",
            "/api/v1/namespaces",
            "/api/v1/namespaces/other/pods",
            "/api/v1/namespaces/team-2/pods",
            "/api/v1/nodes",
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/namespaces/other/deployments",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "/api/v1/namespaces/team/../other/pods",
            "/api/v1/namespaces/team/./pods",
            "/api/v1/namespaces//pods",
            "/api/v1/namespaces/te%61m/pods",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "/apis/authentication.k8s.io/v1/tokenreviews",
        ] {
            assert!(!reaches(path, "team"), "{path}");
        }
    }
}
