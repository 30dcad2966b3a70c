//! Errors to Sentry: the client, made at start when `BERTH_SENTRY_DSN` is set.
//! What is reported, and what is scrubbed from it, is `berth_api::error_reports`
//! (HTTP) and the controller's `error_policy`; panics anywhere are reported by
//! the SDK's panic hook.

use clap::Args;
use sentry::transports::UreqHttpTransportOptions;
use sentry::types::Dsn;
use sentry::{ClientInitGuard, ClientOptions, Hub, Transport, TransportFactory, TransportOptions};
use std::sync::Arc;
use std::time::Duration;

/// Sentry's `environment` when none is configured.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// How long stopping waits for queued events to be sent.
pub const FLUSH_AT_STOP: Duration = Duration::from_secs(2);
/// Longest a single send may take: a Sentry that stalls holds the sending
/// thread (never a request) this long, then the thread moves on.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `berth serve` and `berth controller`, each also read from its
/// environment variable.
#[derive(Debug, Default, Clone, Args)]
pub struct SentryArgs {
    /// Sentry DSN (`https://KEY@HOST/PROJECT`) that panics, 5xx answers and
    /// unclassified reconcile failures are reported to; unset, none are.
    #[arg(long, env = "BERTH_SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// The events' Sentry environment, e.g. `staging` (default `production`).
    #[arg(long, env = "BERTH_SENTRY_ENVIRONMENT")]
    pub sentry_environment: Option<String>,
}

/// Where errors go, as configured.
#[derive(Clone, PartialEq)]
pub struct SentrySettings {
    pub dsn: Dsn,
    /// Sentry's deployment environment of every event.
    pub environment: String,
}

/// Only the host and environment: the DSN's key stays out of logs.
impl std::fmt::Debug for SentrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentrySettings")
            .field("host", &self.dsn.host())
            .field("environment", &self.environment)
            .finish()
    }
}

impl SentrySettings {
    /// `None` without a DSN; errors name the setting.
    pub fn new(dsn: Option<String>, environment: Option<String>) -> anyhow::Result<Option<Self>> {
        let Some(dsn) = dsn.filter(|d| !d.trim().is_empty()) else {
            return Ok(None);
        };
        let dsn = dsn.trim().parse::<Dsn>().map_err(|e| {
            anyhow::anyhow!("sentry_dsn: not a Sentry DSN such as https://KEY@HOST/PROJECT: {e}")
        })?;
        let environment = environment
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        anyhow::ensure!(
            environment.len() <= 64 && !environment.contains(['/', '\n', '\r', '\t']),
            "sentry_environment: {environment:?} must be at most 64 characters without slashes \
             or line breaks, as Sentry accepts"
        );
        Ok(Some(Self { dsn, environment }))
    }
}

impl SentryArgs {
    /// The settings, the file's values under the flags'.
    pub fn settings(
        self,
        file_dsn: Option<String>,
        file_environment: Option<String>,
    ) -> anyhow::Result<Option<SentrySettings>> {
        SentrySettings::new(
            self.sentry_dsn.or(file_dsn),
            self.sentry_environment.or(file_environment),
        )
    }
}

/// `berth@<version>`, with `+<sha>` when `BERTH_GIT_SHA` was set at build.
pub fn release() -> String {
    match option_env!("BERTH_GIT_SHA").filter(|sha| !sha.is_empty()) {
        Some(sha) => format!("berth@{}+{sha}", env!("CARGO_PKG_VERSION")),
        None => format!("berth@{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Makes the Sentry client and binds it to the process's hub, from which
/// every thread's and request's hub starts. [`stop`] ends reporting.
pub fn start(settings: &SentrySettings) -> anyhow::Result<ClientInitGuard> {
    let mut options = ClientOptions::default();
    options.dsn = Some(settings.dsn.clone());
    options.release = Some(release().into());
    options.environment = Some(settings.environment.clone().into());
    options.send_default_pii = false;
    // Breadcrumbs would carry what happened before the error: log lines with
    // emails and paths.
    options.max_breadcrumbs = 0;
    options.shutdown_timeout = FLUSH_AT_STOP;
    options.before_send = Some(Arc::new(berth_api::error_reports::scrub));
    options.transport = Some(Arc::new(TimedTransport));
    let guard = sentry::init(options);
    anyhow::ensure!(guard.is_enabled(), "sentry_dsn: the client did not start");
    // `init` binds the client to this thread's hub only; threads that have
    // not used Sentry yet, tokio's workers among them, start from the main one.
    Hub::main().bind_client(Hub::current().client());
    Ok(guard)
}

/// Ends reporting: sends what is queued, waiting at most [`FLUSH_AT_STOP`]
/// (the SDK's own close can wait on a send in flight beyond that, so it runs
/// on a thread of its own that is left behind). Whether all was sent.
pub fn stop(guard: ClientInitGuard) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name("sentry-stop".into())
        .spawn(move || {
            drop(guard);
            let _ = done.send(());
        });
    closing.is_ok() && finished.recv_timeout(FLUSH_AT_STOP).is_ok()
}

/// The SDK's ureq transport (its own thread, a bounded queue that drops when
/// full) with a deadline on each send, so that a Sentry which accepts
/// connections and never answers delays nothing but its own events.
struct TimedTransport;

impl TransportFactory for TimedTransport {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(SEND_TIMEOUT))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .build(),
            )
            .build()
            .new_agent();
        Arc::new(
            UreqHttpTransportOptions::from(options)
                .with_agent(agent)
                .build(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_need_a_dsn_and_name_what_is_wrong() {
        assert!(
            SentrySettings::new(None, Some("staging".into()))
                .unwrap()
                .is_none()
        );
        let settings = SentrySettings::new(Some("https://key@sentry.example.com/42".into()), None)
            .unwrap()
            .unwrap();
        assert_eq!(settings.environment, DEFAULT_ENVIRONMENT);
        let unset = SentrySettings::new(
            Some("https://key@sentry.example.com/42".into()),
            Some(String::new()),
        );
        assert_eq!(unset.unwrap().unwrap().environment, DEFAULT_ENVIRONMENT);
        assert_eq!(settings.dsn.project_id().value(), "42");
        assert!(!format!("{settings:?}").contains("key"));
        let error = SentrySettings::new(Some("not a dsn".into()), None).unwrap_err();
        assert!(error.to_string().contains("sentry_dsn"), "{error}");
        let error = SentrySettings::new(
            Some("https://key@sentry.example.com/42".into()),
            Some("a/b".into()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("sentry_environment"), "{error}");
        assert!(release().starts_with(&format!("berth@{}", env!("CARGO_PKG_VERSION"))));
    }
}
