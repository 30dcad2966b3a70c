//! The web UI, embedded at compile time from `web/dist`, served as a single
//! page application: hashed assets cached for a year, `index.html` for every
//! other page path, and never anything for the API's own paths.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub etag: &'static str,
    pub body: &'static [u8],
}

/// The policy the UI is built to satisfy: nothing inline, nothing remote.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'self'; form-action 'self'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const NOT_FOUND_BODY: &str = r#"{"error":{"code":"not_found","message":"not found"}}"#;

/// The UI as a router to mount as the API router's fallback. Paths the API
/// owns (`/api/*`, `/healthz`, `/readyz`, `/metrics`) answer the contract's
/// 404 here, so an unknown API path never gets an HTML page.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
        serve(embedded::FILES, &method, &uri, &headers)
    })
}

/// Whether a path belongs to the API rather than to the UI.
pub fn is_api_path(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

fn serve(files: &'static [Asset], method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path();
    if is_api_path(path) || !(method == Method::GET || method == Method::HEAD) {
        return not_found();
    }
    let (asset, cache) = match find(files, path) {
        Some(asset) if path.starts_with("/assets/") => (asset, IMMUTABLE),
        Some(asset) if path != "/index.html" => (asset, NO_CACHE),
        // A missing hashed asset is a stale page asking for an old build:
        // answering index.html would hand it HTML where it expects JS.
        None if path.starts_with("/assets/") => return not_found(),
        _ => match find(files, "/index.html") {
            Some(index) => (index, NO_CACHE),
            None => return not_found(),
        },
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == asset.etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    security_headers(h);
    response
}

fn find(files: &'static [Asset], path: &str) -> Option<&'static Asset> {
    files
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .map(|i| &files[i])
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        NOT_FOUND_BODY,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    static FILES: &[Asset] = &[
        Asset {
            path: "/assets/index-abc123.js",
            content_type: "text/javascript; charset=utf-8",
            etag: "\"js\"",
            body: b"console.log(1)",
        },
        Asset {
            path: "/favicon.svg",
            content_type: "image/svg+xml",
            etag: "\"svg\"",
            body: b"<svg/>",
        },
        Asset {
            path: "/index.html",
            content_type: "text/html; charset=utf-8",
            etag: "\"index\"",
            body: b"<!doctype html><title>Berth</title>",
        },
    ];

    /// The UI mounted as the fallback of a router with API routes, as the
    /// binary mounts it.
    fn app() -> Router {
        Router::new()
            .route("/api/v1/me", get(|| async { "me" }))
            .route("/healthz", get(|| async { "ok" }))
            .fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
                serve(FILES, &method, &uri, &headers)
            })
    }

    async fn call(method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    async fn body(response: Response) -> String {
        String::from_utf8(
            to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_for_a_year() {
        let response = call(Method::GET, "/assets/index-abc123.js", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, header::CACHE_CONTROL), IMMUTABLE);
        assert_eq!(
            header(&response, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(body(response).await, "console.log(1)");
    }

    #[tokio::test]
    async fn index_and_page_paths_are_revalidated() {
        for path in [
            "/",
            "/index.html",
            "/environments/team-a",
            "/admin/users?x=1",
        ] {
            let response = call(Method::GET, path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, header::CACHE_CONTROL), NO_CACHE, "{path}");
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(body(response).await, "<!doctype html><title>Berth</title>");
        }
    }

    #[tokio::test]
    async fn other_root_files_are_served_as_themselves() {
        let response = call(Method::GET, "/favicon.svg", &[]).await;
        assert_eq!(header(&response, header::CONTENT_TYPE), "image/svg+xml");
        assert_eq!(header(&response, header::CACHE_CONTROL), NO_CACHE);
    }

    #[tokio::test]
    async fn missing_hashed_asset_is_404_not_html() {
        let response = call(Method::GET, "/assets/index-old.js", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(&response, header::CONTENT_TYPE), "application/json");
    }

    #[tokio::test]
    async fn every_ui_answer_carries_the_strict_policy() {
        for path in ["/", "/assets/index-abc123.js", "/somewhere"] {
            let response = call(Method::GET, path, &[]).await;
            assert_eq!(
                header(&response, header::CONTENT_SECURITY_POLICY),
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
            );
            assert_eq!(header(&response, header::X_FRAME_OPTIONS), "DENY");
            assert_eq!(header(&response, header::REFERRER_POLICY), "same-origin");
        }
    }

    #[tokio::test]
    async fn api_paths_are_not_swallowed() {
        let response = call(Method::GET, "/api/v1/me", &[]).await;
        assert_eq!(body(response).await, "me");
        let response = call(Method::GET, "/healthz", &[]).await;
        assert_eq!(body(response).await, "ok");
        for path in ["/api/v1/nope", "/api", "/readyz", "/metrics"] {
            let response = call(Method::GET, path, &[]).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header(&response, header::CONTENT_TYPE), "application/json");
            assert_eq!(body(response).await, NOT_FOUND_BODY);
        }
    }

    #[tokio::test]
    async fn writes_never_get_the_page() {
        let response = call(Method::POST, "/environments", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn matching_etag_answers_304() {
        let response = call(Method::GET, "/", &[("if-none-match", "\"index\"")]).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&response, header::ETAG), "\"index\"");
    }

    #[tokio::test]
    async fn the_embedded_build_has_an_index() {
        let index = find(embedded::FILES, "/index.html").expect("index.html is embedded");
        assert!(index.body.starts_with(b"<!doctype html>"));
    }
}
