//! Configuration: flags override `BERTH_*` environment variables, which
//! override an optional TOML file (`--config`), which overrides the defaults.

use anyhow::Context;
use berth_core::environment::{DEFAULT_INGRESS_NAMESPACE, ReservedNames};
use clap::Args;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where the environments' Kubernetes API listens (HTTPS) by default.
pub const DEFAULT_KUBE_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.berth/berth.db";
pub const DEFAULT_INGRESS_DOMAIN: &str = "berth.localhost";
pub const DEFAULT_KUBECONFIG_TTL: &str = "8h";
/// The apiserver refuses service account tokens that expire sooner.
const MIN_KUBECONFIG_TTL: Duration = Duration::from_secs(600);
const MAX_KUBECONFIG_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Flags of `berth serve`, each also read from its environment variable.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// `sqlite://PATH` or `postgres://...`.
    #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Kubeconfig of the cluster to manage (else in-cluster, else the local cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Email of the first admin, created when the store has no user.
    #[arg(long, env = "BERTH_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Password of the first admin (environment only, so it stays out of `ps`).
    #[arg(skip)]
    pub admin_password: Option<String>,
    /// Prometheus that holds the environments' metrics.
    #[arg(long, env = "BERTH_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// The URL people reach Berth at; `https://` makes cookies Secure.
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Address of the HTTPS listener of the environments' Kubernetes API,
    /// which kubeconfigs reach; port 0 picks a free port.
    #[arg(long, env = "BERTH_KUBE_LISTEN")]
    pub kube_listen: Option<SocketAddr>,
    /// Address of a plain HTTP listener serving `/metrics` alone, for
    /// Prometheus; with it the main listener answers 404 at `/metrics`, so
    /// that an Ingress publishing Berth does not publish its metrics.
    #[arg(long, env = "BERTH_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The `https://` URL kubeconfigs reach that listener at (else the host
    /// a kubeconfig was asked of, at the listener's port).
    #[arg(long, env = "BERTH_KUBE_PUBLIC_URL")]
    pub kube_public_url: Option<String>,
    /// PEM certificate chain and key: the main listener serves HTTPS with
    /// them, and so does the kube listener (else it serves a certificate of
    /// a CA Berth makes at start, which kubeconfigs carry). Reloaded when
    /// the files change.
    #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Apps exposed by ingress are served at `<app>.<environment>.<domain>`.
    #[arg(long, env = "BERTH_INGRESS_DOMAIN")]
    pub ingress_domain: Option<String>,
    /// How long a downloaded kubeconfig's token works, e.g. `8h` (10m to 168h).
    #[arg(long, env = "BERTH_KUBECONFIG_TTL")]
    pub kubeconfig_ttl: Option<String>,
    /// Namespace of the ingress controller: isolated environments accept
    /// traffic from it, and no environment may take its name.
    #[arg(long, env = "BERTH_INGRESS_NAMESPACE")]
    pub ingress_namespace: Option<String>,
    /// More names no environment may take, comma-separated (`ops-*` for a prefix).
    #[arg(long, env = "BERTH_RESERVED_NAMES", value_delimiter = ',')]
    pub reserved_names: Option<Vec<String>>,
    /// CIDRs isolated environments may not send to, comma-separated, beyond
    /// link-local (always blocked): say the nodes' network.
    #[arg(long, env = "BERTH_BLOCKED_EGRESS_CIDRS", value_delimiter = ',')]
    pub blocked_egress_cidrs: Option<Vec<String>>,
    /// Ingress controller annotations tenants' Ingresses may carry beyond
    /// the default allow-list, comma-separated.
    #[arg(long, env = "BERTH_INGRESS_ANNOTATIONS", value_delimiter = ',')]
    pub ingress_annotations: Option<Vec<String>>,
    /// Priority classes tenants' pods may name, comma-separated (default: none).
    #[arg(long, env = "BERTH_PRIORITY_CLASSES", value_delimiter = ',')]
    pub priority_classes: Option<Vec<String>>,
    /// Do not run the controller in this process (it runs as `berth controller`).
    #[arg(long, env = "BERTH_NO_CONTROLLER")]
    pub no_controller: bool,
    /// Do not write the admission policies and guardrails; only check the
    /// installed ones (the Helm chart renders them, so that Berth needs no
    /// right to change them).
    #[arg(long, env = "BERTH_NO_INSTALL_ADMISSION_POLICIES")]
    pub no_install_admission_policies: bool,
    /// Splunk HTTP Event Collector that audit entries, the events of
    /// Berth's namespaces and Berth's warnings go to (`https://splunk:8088`).
    #[arg(long, env = "BERTH_SPLUNK_HEC_URL")]
    pub splunk_hec_url: Option<String>,
    /// Its token (environment only: `BERTH_SPLUNK_HEC_TOKEN`, out of `ps`).
    #[arg(skip)]
    pub splunk_hec_token: Option<String>,
    /// Index of the events (else the token's default index).
    #[arg(long, env = "BERTH_SPLUNK_INDEX")]
    pub splunk_index: Option<String>,
    /// `source` of the events (default `berth`).
    #[arg(long, env = "BERTH_SPLUNK_SOURCE")]
    pub splunk_source: Option<String>,
    /// `sourcetype` of the events (default `_json`).
    #[arg(long, env = "BERTH_SPLUNK_SOURCETYPE")]
    pub splunk_sourcetype: Option<String>,
    #[command(flatten)]
    pub sentry: crate::reporting::SentryArgs,
    #[command(flatten)]
    pub sso: crate::sso::SsoArgs,
    /// Mail server of verification and password-reset links:
    /// `smtp://host:port` (plain, local catchers), `smtp+starttls://` or
    /// `smtps://`, credentials as `user:password@`. Without it addresses
    /// count as verified.
    #[arg(long, env = "BERTH_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The mails' sender (default `Berth <berth@localhost>`).
    #[arg(long, env = "BERTH_SMTP_FROM")]
    pub smtp_from: Option<String>,
}

/// The optional TOML file: the same settings, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    kubeconfig: Option<PathBuf>,
    admin_email: Option<String>,
    admin_password: Option<String>,
    prometheus_url: Option<String>,
    public_url: Option<String>,
    kube_listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    kube_public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    ingress_domain: Option<String>,
    kubeconfig_ttl: Option<String>,
    ingress_namespace: Option<String>,
    reserved_names: Option<Vec<String>>,
    blocked_egress_cidrs: Option<Vec<String>>,
    ingress_annotations: Option<Vec<String>>,
    priority_classes: Option<Vec<String>>,
    no_controller: Option<bool>,
    no_install_admission_policies: Option<bool>,
    splunk_hec_url: Option<String>,
    splunk_hec_token: Option<String>,
    splunk_index: Option<String>,
    splunk_source: Option<String>,
    splunk_sourcetype: Option<String>,
    encryption_keys: Option<String>,
    sentry_dsn: Option<String>,
    sentry_environment: Option<String>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_name: Option<String>,
    oidc_admin_group: Option<String>,
    oidc_groups_claim: Option<String>,
    oidc_allow_sign_up: Option<bool>,
    local_login: Option<bool>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
}

/// The configuration in effect.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub kubeconfig: Option<PathBuf>,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub prometheus_url: Option<String>,
    pub public_url: Option<String>,
    pub kube_listen: SocketAddr,
    /// `/metrics` on a listener of its own instead of the main one.
    pub metrics_listen: Option<SocketAddr>,
    pub kube_public_url: Option<String>,
    /// Certificate chain and key files of both listeners, reloaded when
    /// they change.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub ingress_domain: String,
    pub kubeconfig_ttl: Duration,
    pub network: Network,
    pub no_controller: bool,
    pub no_install_admission_policies: bool,
    /// Where events go, with `BERTH_SPLUNK_HEC_URL`.
    pub splunk: Option<berth_splunk::HecConfig>,
    /// Where errors are reported; `None` without `BERTH_SENTRY_DSN`.
    pub sentry: Option<crate::reporting::SentrySettings>,
    /// Single sign-on and local login.
    pub sso: crate::sso::SsoSettings,
    /// The key ring secrets are stored under (`BERTH_ENCRYPTION_KEYS`);
    /// without it none can be stored.
    pub encryption_keys: Option<berth_keyring::KeyRing>,
    /// Sends verification and reset links; `None` without `BERTH_SMTP_URL`.
    pub mailer: Option<berth_auth::Mailer>,
}

/// Where environments meet the rest of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The ingress controller's namespace.
    pub ingress_namespace: String,
    /// Every name no environment may take, the platform's included.
    pub reserved_names: ReservedNames,
    /// CIDRs isolated environments may not send to, beyond link-local.
    pub blocked_egress_cidrs: Vec<String>,
    /// Ingress annotations tenants may use beyond the default allow-list.
    pub ingress_annotations: Vec<String>,
    /// Priority classes tenants' pods may name.
    pub priority_classes: Vec<String>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            ingress_namespace: DEFAULT_INGRESS_NAMESPACE.to_owned(),
            reserved_names: ReservedNames::default(),
            blocked_egress_cidrs: Vec::new(),
            ingress_annotations: Vec::new(),
            priority_classes: Vec::new(),
        }
    }
}

impl Network {
    /// Errors name the setting and the value refused.
    pub fn new(
        ingress_namespace: Option<String>,
        reserved_names: Vec<String>,
        blocked_egress_cidrs: Vec<String>,
    ) -> anyhow::Result<Self> {
        let ingress_namespace =
            ingress_namespace.unwrap_or_else(|| DEFAULT_INGRESS_NAMESPACE.to_owned());
        berth_core::environment::EnvironmentName::parse("ingress_namespace", &ingress_namespace)?;
        for pattern in &reserved_names {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= 63
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "reserved_names: {pattern:?} must be a name of lowercase letters, digits and '-', \
                 optionally ending in '*' for a prefix"
            );
        }
        for cidr in &blocked_egress_cidrs {
            cidr.parse::<ipnet::IpNet>().map_err(|e| {
                anyhow::anyhow!(
                    "blocked_egress_cidrs: {cidr:?} is not a CIDR such as 10.0.0.0/8: {e}"
                )
            })?;
        }
        Ok(Self {
            reserved_names: ReservedNames::new(&ingress_namespace, &reserved_names),
            ingress_namespace,
            blocked_egress_cidrs,
            ingress_annotations: Vec::new(),
            priority_classes: Vec::new(),
        })
    }

    /// Names allowed to tenants beyond the guardrails' defaults: ingress
    /// annotation keys and priority classes. Errors name the setting.
    pub fn allowing(
        mut self,
        ingress_annotations: Vec<String>,
        priority_classes: Vec<String>,
    ) -> anyhow::Result<Self> {
        for (setting, values) in [
            ("ingress_annotations", &ingress_annotations),
            ("priority_classes", &priority_classes),
        ] {
            for value in values {
                anyhow::ensure!(
                    !value.is_empty()
                        && value.len() <= 253
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b)),
                    "{setting}: {value:?} must be a Kubernetes name or annotation key"
                );
            }
        }
        self.ingress_annotations = ingress_annotations;
        self.priority_classes = priority_classes;
        Ok(self)
    }

    /// The controller's view of it: the builder's options and the guardrails'.
    pub fn apply_to(&self, options: &mut berth_controller::ControllerOptions) {
        options.build.ingress_controller_namespace = self.ingress_namespace.clone();
        options.build.blocked_egress_cidrs = self.blocked_egress_cidrs.clone();
        options
            .guardrails
            .ingress_annotations
            .extend(self.ingress_annotations.iter().cloned());
        options.guardrails.priority_classes = self.priority_classes.clone();
    }
}

/// The mailer of `BERTH_SMTP_URL`, if set. Links point at the public URL,
/// else at the listen address (as `make run` serves).
fn mailer(
    url: Option<String>,
    from: Option<String>,
    public_url: Option<&str>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<Option<berth_auth::Mailer>> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let base = match public_url {
        Some(public) => public.to_owned(),
        None => format!(
            "http://{}",
            listen.map_or_else(|| DEFAULT_LISTEN.to_owned(), |l| l.to_string())
        ),
    };
    let from = from.unwrap_or_else(|| berth_auth::DEFAULT_MAIL_FROM.to_owned());
    Ok(Some(berth_auth::Mailer::new(&url, &from, &base)?))
}

impl Config {
    pub fn load(args: ServeArgs, file: Option<&Path>) -> anyhow::Result<Self> {
        let file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mailer = mailer(
            args.smtp_url.or(file.smtp_url),
            args.smtp_from.or(file.smtp_from),
            args.public_url.as_deref().or(file.public_url.as_deref()),
            args.listen.or(file.listen),
        )?;
        // Environment or file only, as the other secrets: out of `ps`.
        let encryption_keys = std::env::var(berth_keyring::VARIABLE)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .or(file.encryption_keys.clone())
            .map(|raw| berth_keyring::KeyRing::parse(&raw))
            .transpose()?;
        let admin_password = std::env::var("BERTH_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .or(args.admin_password)
            .or(file.admin_password);
        // The callback's base URL, taken before `public_url` moves below.
        let sso_public_url = args.public_url.clone().or(file.public_url.clone());
        Ok(Self {
            mailer,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address parses")),
            database_url: args
                .database_url
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            kubeconfig: args.kubeconfig.or(file.kubeconfig),
            admin_email: args.admin_email.or(file.admin_email),
            admin_password,
            prometheus_url: args.prometheus_url.or(file.prometheus_url),
            public_url: args.public_url.or(file.public_url),
            kube_listen: args
                .kube_listen
                .or(file.kube_listen)
                .unwrap_or_else(|| DEFAULT_KUBE_LISTEN.parse().expect("a valid address")),
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            kube_public_url: match args.kube_public_url.or(file.kube_public_url) {
                Some(url) if !url.starts_with("https://") => {
                    anyhow::bail!(
                        "BERTH_KUBE_PUBLIC_URL: must be an https:// URL, as kubectl sends credentials only over TLS"
                    )
                }
                url => url,
            },
            tls: match (
                args.tls_cert.or(file.tls_cert),
                args.tls_key.or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => anyhow::bail!("BERTH_TLS_CERT and BERTH_TLS_KEY: set both or neither"),
            },
            ingress_domain: args
                .ingress_domain
                .or(file.ingress_domain)
                .unwrap_or_else(|| DEFAULT_INGRESS_DOMAIN.to_owned()),
            kubeconfig_ttl: kubeconfig_ttl(
                args.kubeconfig_ttl
                    .or(file.kubeconfig_ttl)
                    .as_deref()
                    .unwrap_or(DEFAULT_KUBECONFIG_TTL),
            )?,
            network: Network::new(
                args.ingress_namespace.or(file.ingress_namespace),
                args.reserved_names
                    .or(file.reserved_names)
                    .unwrap_or_default(),
                args.blocked_egress_cidrs
                    .or(file.blocked_egress_cidrs)
                    .unwrap_or_default(),
            )?
            .allowing(
                args.ingress_annotations
                    .or(file.ingress_annotations)
                    .unwrap_or_default(),
                args.priority_classes
                    .or(file.priority_classes)
                    .unwrap_or_default(),
            )?,
            no_controller: args.no_controller || file.no_controller.unwrap_or(false),
            no_install_admission_policies: args.no_install_admission_policies
                || file.no_install_admission_policies.unwrap_or(false),
            splunk: splunk(
                args.splunk_hec_url.or(file.splunk_hec_url),
                std::env::var("BERTH_SPLUNK_HEC_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .or(args.splunk_hec_token)
                    .or(file.splunk_hec_token),
                args.splunk_index.or(file.splunk_index),
                args.splunk_source.or(file.splunk_source),
                args.splunk_sourcetype.or(file.splunk_sourcetype),
                encryption_keys.is_some(),
            )?,
            sentry: args
                .sentry
                .settings(file.sentry_dsn, file.sentry_environment)?,
            sso: args.sso.settings(
                crate::sso::SsoFile {
                    oidc_issuer: file.oidc_issuer,
                    oidc_client_id: file.oidc_client_id,
                    oidc_client_secret: file.oidc_client_secret,
                    oidc_name: file.oidc_name,
                    oidc_admin_group: file.oidc_admin_group,
                    oidc_groups_claim: file.oidc_groups_claim,
                    oidc_allow_sign_up: file.oidc_allow_sign_up,
                    local_login: file.local_login,
                },
                sso_public_url.as_deref(),
            )?,
            encryption_keys,
        })
    }

    /// Cookies are `Secure` (and `__Host-` named) when Berth terminates
    /// TLS, or is reached at an `https://` public URL (TLS ended by a proxy).
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some()
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }
}

/// Shows the configuration with every secret redacted, for the start-up log.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("kubeconfig", &self.kubeconfig)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "prometheus_url",
                &self.prometheus_url.as_deref().map(redact_url),
            )
            .field("public_url", &self.public_url)
            .field("ingress_domain", &self.ingress_domain)
            .field("kubeconfig_ttl", &self.kubeconfig_ttl)
            .field("network", &self.network)
            .field("no_controller", &self.no_controller)
            .field(
                "no_install_admission_policies",
                &self.no_install_admission_policies,
            )
            .field("splunk", &self.splunk)
            .field("sentry", &self.sentry)
            .field("local_login", &self.sso.local_login)
            .field("oidc_issuer", &self.sso.oidc.as_ref().map(|o| &o.issuer))
            .field("encryption_keys", &self.encryption_keys)
            .finish()
    }
}

fn kubeconfig_ttl(raw: &str) -> anyhow::Result<Duration> {
    let ttl = berth_core::environment::Ttl::parse("kubeconfig_ttl", raw)?.as_duration();
    anyhow::ensure!(
        (MIN_KUBECONFIG_TTL..=MAX_KUBECONFIG_TTL).contains(&ttl),
        "kubeconfig_ttl ({raw}) must be from 10m to 168h: the apiserver refuses tokens that \
         expire sooner, and a kubeconfig outliving a week outlives a member's removal for too long"
    );
    Ok(ttl)
}

/// The HEC settings: none without a URL; a URL needs a token, unless one
/// may be stored (`token_may_be_stored`: `BERTH_ENCRYPTION_KEYS` is set),
/// when the token is left empty for `berth serve` to read from the store;
/// errors name the variable.
fn splunk(
    url: Option<String>,
    token: Option<String>,
    index: Option<String>,
    source: Option<String>,
    sourcetype: Option<String>,
    token_may_be_stored: bool,
) -> anyhow::Result<Option<berth_splunk::HecConfig>> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        anyhow::ensure!(
            token.is_none(),
            "BERTH_SPLUNK_HEC_TOKEN is set without BERTH_SPLUNK_HEC_URL: set both or neither"
        );
        return Ok(None);
    };
    for (variable, value) in [
        ("BERTH_SPLUNK_INDEX", &index),
        ("BERTH_SPLUNK_SOURCE", &source),
        ("BERTH_SPLUNK_SOURCETYPE", &sourcetype),
    ] {
        anyhow::ensure!(
            value.as_ref().is_none_or(|v| !v.trim().is_empty()),
            "{variable}: must not be empty"
        );
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "berth".into());
    let config = berth_splunk::HecConfig {
        url,
        token: token.unwrap_or_default(),
        index,
        source: source.unwrap_or_else(|| "berth".into()),
        sourcetype: sourcetype.unwrap_or_else(|| "_json".into()),
        host,
    };
    if config.token.is_empty() && token_may_be_stored {
        // The URL is checked all the same; the token is the store's.
        berth_splunk::HecConfig {
            token: "stored".into(),
            ..config.clone()
        }
        .validate()?;
    } else {
        config.validate()?;
    }
    Ok(Some(config))
}

#[cfg(test)]
mod splunk_tests {
    use super::splunk;

    #[test]
    fn splunk_needs_a_url_and_a_token_together_and_names_what_is_wrong() {
        let some = |v: &str| Some(v.to_owned());
        assert!(
            splunk(None, None, None, None, None, false)
                .unwrap()
                .is_none()
        );
        // With BERTH_ENCRYPTION_KEYS, the token may be the store's.
        let stored = splunk(some("https://splunk:8088"), None, None, None, None, true)
            .unwrap()
            .unwrap();
        assert!(stored.token.is_empty());
        let error = splunk(some("splunk:8088"), None, None, None, None, true).unwrap_err();
        assert!(
            format!("{error:#}").contains("BERTH_SPLUNK_HEC_URL"),
            "{error:#}"
        );
        let config = splunk(
            some("https://splunk:8088"),
            some("t"),
            None,
            None,
            None,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (config.source.as_str(), config.sourcetype.as_str()),
            ("berth", "_json")
        );
        assert!(!config.host.is_empty());
        for (url, token, index, variable) in [
            (None, some("t"), None, "BERTH_SPLUNK_HEC_URL"),
            (
                some("https://splunk:8088"),
                None,
                None,
                "BERTH_SPLUNK_HEC_TOKEN",
            ),
            (some("splunk:8088"), some("t"), None, "BERTH_SPLUNK_HEC_URL"),
            (
                some("https://x:hec-url-password@splunk:8088"),
                some("t"),
                None,
                "BERTH_SPLUNK_HEC_URL",
            ),
            (
                some("https://splunk:8088"),
                some("t"),
                some(" "),
                "BERTH_SPLUNK_INDEX",
            ),
        ] {
            let error = splunk(url, token, index, None, None, false).unwrap_err();
            assert!(format!("{error:#}").contains(variable), "{error:#}");
            assert!(
                !format!("{error:#}").contains("hec-url-password"),
                "{error:#}"
            );
        }
    }
}

/// Hides the password of a `scheme://user:password@host` URL.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<redacted>@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://berth:s3cret@db:5432/berth"),
            "postgres://berth:<redacted>@db:5432/berth"
        );
        assert_eq!(
            redact_url("sqlite://.berth/berth.db"),
            "sqlite://.berth/berth.db"
        );
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("berth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("berth.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite://x.db\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::load(args, Some(&path)).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.database_url, "sqlite://x.db");
        let debug = format!(
            "{:?}",
            Config {
                admin_password: Some("pw-123".into()),
                ..config
            }
        );
        assert!(!debug.contains("pw-123"));
        assert_eq!(config.kubeconfig_ttl, Duration::from_secs(8 * 3600));
        std::fs::write(&path, "kubeconfig_ttl = \"1h30m\"\n").unwrap();
        let config = Config::load(ServeArgs::default(), Some(&path)).unwrap();
        assert_eq!(config.kubeconfig_ttl, Duration::from_secs(5400));
        for refused in ["5m", "169h", "8 hours"] {
            let args = ServeArgs {
                kubeconfig_ttl: Some(refused.into()),
                ..Default::default()
            };
            let error = Config::load(args, None).unwrap_err();
            assert!(format!("{error:#}").contains("kubeconfig_ttl"), "{error:#}");
        }
        std::fs::write(
            &path,
            "ingress_namespace = \"traefik\"\nreserved_names = [\"ops-*\"]\nblocked_egress_cidrs = [\"10.0.0.0/8\", \"fd00::/8\"]\n",
        )
        .unwrap();
        let config = Config::load(ServeArgs::default(), Some(&path)).unwrap();
        assert!(config.network.reserved_names.contains("traefik"));
        assert!(config.network.reserved_names.contains("ops-1"));
        assert!(!config.network.reserved_names.contains("ingress-nginx"));
        assert_eq!(
            config.network.blocked_egress_cidrs,
            ["10.0.0.0/8", "fd00::/8"]
        );
        for (key, value) in [
            ("blocked_egress_cidrs", "[\"10.0.0.0/33\"]"),
            ("reserved_names", "[\"Ops\"]"),
            ("ingress_namespace", "\"Not A Name\""),
            ("priority_classes", "[\"a b\"]"),
        ] {
            std::fs::write(&path, format!("{key} = {value}\n")).unwrap();
            let error = Config::load(ServeArgs::default(), Some(&path)).unwrap_err();
            assert!(format!("{error:#}").contains(key), "{error:#}");
        }
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nunknown = 1\n").unwrap();
        assert!(Config::load(ServeArgs::default(), Some(&path)).is_err());
    }
}
