//! The crate's one error type, and how the controller waits after each kind.
//!
//! Messages are written for people: an apiserver's answer is told by its
//! own message and reason ([`plain`]), never by kube's `Display`, which
//! appends a `Debug` dump of the whole `Status`.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {}", plain(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("waiting for namespace {0} to be deleted")]
    NamespaceTerminating(String),
    #[error("namespace {0} appeared while Berth was about to create it")]
    NamespaceRace(String),
    #[error("the Environment CRD did not become established: {0}")]
    CrdNotEstablished(String),
    #[error("the watch of users' identities stopped")]
    IdentitiesGone,
    #[error("{kind} {name}: {}", plain(.source))]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the selector {selector:?} was refused: {}", plain(.source))]
    Selector {
        selector: String,
        #[source]
        source: kube::Error,
    },
}

/// A kube error in words: an apiserver's answer as its message and reason
/// (`pods "web" is forbidden: exceeded quota (Forbidden)`), anything else
/// (transport, decoding) as kube says it.
pub fn plain(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                format!("the apiserver answered {}", status.code)
            } else {
                status.message.clone()
            };
            if status.reason.is_empty() {
                message
            } else {
                format!("{message} ({})", status.reason)
            }
        }
        other => other.to_string(),
    }
}

/// Shortest and longest wait after a failed reconcile.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

impl Error {
    /// A short, bounded label for the errors metric.
    pub fn reason(&self) -> String {
        match self {
            Error::Kube(e) | Error::Apply { source: e, .. } => kube_reason(e),
            Error::Selector { .. } => "selector".to_owned(),
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                _ => "finalizer".to_owned(),
            },
            Error::NamespaceTerminating(_) => "namespace_terminating".to_owned(),
            Error::NamespaceRace(_) => "namespace_race".to_owned(),
            Error::CrdNotEstablished(_) => "crd".to_owned(),
            Error::IdentitiesGone => "identities".to_owned(),
        }
    }

    /// Waiting for the namespace to go is expected, not a failure: the
    /// namespace watch wakes the controller, this is only a safety net.
    pub fn is_waiting(&self) -> bool {
        match self {
            Error::NamespaceTerminating(_) => true,
            Error::Finalizer(e) => matches!(
                e.as_ref(),
                kube::runtime::finalizer::Error::CleanupFailed(inner) if inner.is_waiting()
            ),
            _ => false,
        }
    }
}

impl Error {
    /// Whether the controller knows this failure for what it is: an answer
    /// that passes with time or that the Environment's status tells (a
    /// conflict 409, not found 404, too many requests 429, a policy's refusal
    /// 403 or 422), the apiserver out of reach for a while (a restart, the
    /// network), waiting for a namespace to go, a namespace taken in a race.
    /// Anything else (the apiserver failing with a 5xx, an answer Berth
    /// cannot read, a bad request Berth made, a CRD that never became
    /// established) is a failure it cannot classify: it is reported to
    /// Sentry, as someone has to look.
    pub fn is_classified(&self) -> bool {
        match self {
            Error::Kube(e) | Error::Apply { source: e, .. } => kube_classified(e),
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.is_classified(),
                kube::runtime::finalizer::Error::AddFinalizer(e)
                | kube::runtime::finalizer::Error::RemoveFinalizer(e) => kube_classified(e),
                _ => false,
            },
            Error::NamespaceTerminating(_) | Error::NamespaceRace(_) => true,
            Error::CrdNotEstablished(_) | Error::IdentitiesGone | Error::Selector { .. } => false,
        }
    }
}

/// Expected answers and the apiserver out of reach; see [`Error::is_classified`].
fn kube_classified(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => [403, 404, 409, 422, 429].contains(&status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("api_{}", status.code),
        _ => "transport".to_owned(),
    }
}

/// The wait after the `failures`-th consecutive failure (1-based): doubling
/// from [`BACKOFF_BASE`] up to [`BACKOFF_CAP`], scaled by `jitter` in
/// `[0, 1]` into the upper half so that environments failing together
/// (an apiserver restart) do not retry in lockstep.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let full = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_CAP);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(30, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        assert_eq!(backoff(3, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(30, 0.0), BACKOFF_CAP / 2);
        assert!(backoff(3, 0.5) > backoff(3, 0.0));
    }

    #[test]
    fn an_apiserver_answer_is_told_by_its_message_and_reason() {
        let status = kube::core::Status::failure(
            "services \"db\" is forbidden: exceeded quota: hold, requested: services=1",
            "Forbidden",
        )
        .with_code(403);
        let error = Error::Apply {
            kind: "Service",
            name: "db".into(),
            source: kube::Error::Api(status.boxed()),
        };
        assert_eq!(
            error.to_string(),
            "Service db: services \"db\" is forbidden: exceeded quota: hold, requested: services=1 (Forbidden)"
        );
        let bare = kube::Error::Api(kube::core::Status::default().with_code(500).boxed());
        assert_eq!(
            Error::Kube(bare).to_string(),
            "Kubernetes API: the apiserver answered 500"
        );
    }

    #[test]
    fn expected_answers_are_classified_and_the_rest_is_not() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("some message", "SomeReason")
                    .with_code(code)
                    .boxed(),
            )
        };
        let apply = |code| Error::Apply {
            kind: "ResourceQuota",
            name: "quota".into(),
            source: api(code),
        };
        for code in [403, 404, 409, 422, 429] {
            assert!(apply(code).is_classified(), "{code}");
        }
        for code in [400, 401, 500, 503] {
            assert!(!apply(code).is_classified(), "{code}");
        }
        let wrapped = |inner| {
            Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
                inner,
            )))
        };
        assert!(wrapped(apply(409)).is_classified());
        assert!(!wrapped(apply(500)).is_classified());
        assert!(Error::NamespaceRace("a".into()).is_classified());
        assert!(!Error::CrdNotEstablished("late".into()).is_classified());
        let unreadable = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!Error::Kube(kube::Error::SerdeError(unreadable)).is_classified());
    }

    #[test]
    fn waiting_is_seen_through_the_finalizer() {
        let inner = Error::NamespaceTerminating("a".into());
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::CleanupFailed(
            inner,
        )));
        assert!(wrapped.is_waiting());
        assert_eq!(wrapped.reason(), "namespace_terminating");
    }
}
