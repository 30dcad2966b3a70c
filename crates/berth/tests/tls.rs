//! `berth serve` with `BERTH_TLS_CERT` and `BERTH_TLS_KEY`: both listeners
//! speak TLS with that pair, every answer carries HSTS and the security
//! headers, cookies are `Secure` and `__Host-` named, and a renewed pair
//! written over the files is served without a restart (a bad one is not).

use berth::config::{Config, ServeArgs};
use berth::serve::Server;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "admin-password-1";

/// A CA and the certificates it signs for `localhost` and 127.0.0.1.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// One certificate and its key, PEM and DER.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Self { issuer }
    }

    fn leaf(&self) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// Writes a pair as a renewal would: each file replaced whole (a rename).
fn install(dir: &Path, cert_pem: &str, key_pem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    for (path, pem) in [(&cert, cert_pem), (&key, key_pem)] {
        let staged = path.with_extension("new");
        std::fs::write(&staged, pem).unwrap();
        std::fs::rename(&staged, path).unwrap();
    }
    (cert, key)
}

/// A client trusting only the test CA, on a new connection per client.
fn client(ca: &Ca) -> Client {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .https_only(true)
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The DER of the certificate `url` is served with, on a fresh connection.
async fn served_certificate(ca: &Ca, url: &str) -> Vec<u8> {
    let response = client(ca).get(url).send().await.unwrap();
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS answer names its certificate")
        .to_vec()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} on {}", response.url()))
        .to_str()
        .unwrap()
}

/// `berth serve` with TLS from `cert` and `key`, as `berth serve --config
/// FILE` loads it, without a cluster.
async fn tls_server(dir: &Path, cert: &Path, key: &Path) -> Server {
    let file = dir.join("berth.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nkube_listen = \"127.0.0.1:0\"\n\
             database_url = \"{}\"\nkubeconfig = \"{}\"\n\
             admin_email = \"{ADMIN_EMAIL}\"\nadmin_password = \"{ADMIN_PASSWORD}\"\n\
             no_controller = true\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            berth_store::testing::fresh_database_url(dir).await,
            dir.join("no-such-kubeconfig").display(),
            cert.display(),
            key.display(),
        ),
    )
    .unwrap();
    let config = Config::load(ServeArgs::default(), Some(&file)).unwrap();
    Server::build(config).await.expect("the server starts")
}

#[tokio::test]
async fn berth_serves_tls_with_secure_headers_and_cookies_and_reloads_its_certificate() {
    let dir = tempdir();
    let ca = Ca::new();
    let first = ca.leaf();
    let (cert, key) = install(&dir, &first.cert_pem, &first.key_pem);
    let server = tls_server(&dir, &cert, &key).await;
    let base = server.url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let kube = format!("https://{}/healthz", server.kube_local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    // Every answer, the API's and the UI's, carries the security headers;
    // JSON gets a policy that loads nothing, the UI keeps its own.
    let browser = client(&ca);
    for (path, csp) in [
        ("/healthz", "default-src 'none'; frame-ancestors 'none'"),
        ("/api/v1/me", "default-src 'none'; frame-ancestors 'none'"),
        (
            "/api/v1/no-such-thing",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("/", berth_web::CONTENT_SECURITY_POLICY),
    ] {
        let response = browser.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(
            header(&response, "strict-transport-security"),
            "max-age=63072000; includeSubDomains",
            "{path}"
        );
        assert_eq!(header(&response, "content-security-policy"), csp, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "x-frame-options"), "DENY");
        assert!(response.headers().contains_key("referrer-policy"), "{path}");
    }
    let api = browser.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(header(&api, "referrer-policy"), "no-referrer");

    // Cookies: Secure, `__Host-` named, for the whole site and no domain.
    let login = browser
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let find = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {cookies:?}"))
            .clone()
    };
    let (session, csrf) = (find("__Host-berth_session"), find("__Host-berth_csrf"));
    for cookie in [&session, &csrf] {
        let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
        assert!(attributes.contains(&"Secure"), "{cookie}");
        assert!(attributes.contains(&"Path=/"), "{cookie}");
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    }
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(!csrf.contains("HttpOnly"), "the UI reads it: {csrf}");
    assert!(
        !cookies.iter().any(|c| c.starts_with("berth_")),
        "{cookies:?}"
    );
    // The browser's session works, its writes with the CSRF cookie's value.
    let me = browser
        .get(format!("{base}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let csrf_value = csrf.split(';').next().unwrap().split_once('=').unwrap().1;
    let token = browser
        .post(format!("{base}/api/v1/tokens"))
        .header("x-csrf-token", csrf_value)
        .json(&json!({"name": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::CREATED);
    // The same session under the unprefixed name, as a sibling subdomain or
    // a plain-HTTP answer could plant it, is no session.
    let session_value = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let planted = client(&ca)
        .get(format!("{base}/api/v1/me"))
        .header("cookie", format!("berth_session={session_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), StatusCode::UNAUTHORIZED);
    let body: Value = planted.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");

    // Both listeners serve the configured pair.
    assert_eq!(
        served_certificate(&ca, &format!("{base}/healthz")).await,
        first.der
    );
    assert_eq!(served_certificate(&ca, &kube).await, first.der);

    // A renewal is served by both without a restart.
    let second = ca.leaf();
    install(&dir, &second.cert_pem, &second.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    for url in [format!("{base}/healthz"), kube.clone()] {
        loop {
            if served_certificate(&ca, &url).await == second.der {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url} still serves the first certificate 10 s after the renewal"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A pair whose key is not the certificate's is not served: the renewed
    // one stays. Watched over three of the watcher's one-second rounds.
    let third = ca.leaf();
    install(&dir, &third.cert_pem, &second.key_pem);
    let watched = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watched {
        assert_eq!(
            served_certificate(&ca, &format!("{base}/healthz")).await,
            second.der,
            "a mismatched pair replaced the served certificate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Once the matching key arrives, the new certificate is served.
    install(&dir, &third.cert_pem, &third.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(&ca, &kube).await != third.der {
        assert!(Instant::now() < deadline, "the repaired pair is not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client that connects and says nothing (a slowloris) is disconnected
/// on both listeners once the TLS handshake's 10 s are up; it held its
/// connection, and a task, for ever.
#[tokio::test]
async fn a_silent_client_is_disconnected_on_both_listeners() {
    use tokio::io::AsyncReadExt;
    let dir = tempdir();
    let ca = Ca::new();
    let leaf = ca.leaf();
    let (cert, key) = install(&dir, &leaf.cert_pem, &leaf.key_pem);
    let server = tls_server(&dir, &cert, &key).await;
    let main = server.local_addr();
    let kube = server.kube_local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let mut silent = Vec::new();
    for address in [main, kube] {
        silent.push((
            address,
            tokio::net::TcpStream::connect(address).await.unwrap(),
        ));
    }
    let started = Instant::now();
    for (address, mut stream) in silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "{address}: the silent connection is still open after {:?}: {read:?}",
            started.elapsed()
        );
    }
    eprintln!(
        "both silent connections closed after {:?}",
        started.elapsed()
    );
    // The listeners still serve everyone else (the kube listener answers
    // only environments' paths: 404 is its answer here).
    for (address, status) in [(main, StatusCode::OK), (kube, StatusCode::NOT_FOUND)] {
        let response = client(&ca)
            .get(format!("https://{address}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{address}");
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
