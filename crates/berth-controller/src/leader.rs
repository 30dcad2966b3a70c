//! Leader election with a coordination.k8s.io/v1 Lease, written with
//! resourceVersion preconditions so that two candidates can never both
//! believe they won.
//!
//! Times are judged on the local monotonic clock only, never by comparing the
//! lease's timestamps with this machine's wall clock: a follower takes over
//! once it has seen the lease unchanged for a whole lease duration, and a
//! leader steps down once it has not renewed for `renew_deadline`, which is
//! shorter. So clocks that disagree cannot make two leaders.

use crate::Error;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio::time::{Instant, sleep, timeout};

#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub namespace: String,
    pub name: String,
    /// Who this replica is (`berth::replica_identity` by default); unique per replica.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_every: Duration,
    /// A leader that could not renew for this long stops reconciling.
    pub renew_deadline: Duration,
    /// How often a follower looks at the lease.
    pub retry_every: Duration,
}

impl LeaseOptions {
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: "berth-controller".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(7),
            retry_every: Duration::from_secs(1),
        }
    }
}

/// The part of a lease record whose change proves its holder alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renewed: Option<String>,
    transitions: i32,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Self {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            renewed: spec
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string()),
            transitions: spec.and_then(|s| s.lease_transitions).unwrap_or(0),
        }
    }
}

/// Whether `identity` may take a lease last seen as `record`, which has not
/// changed for `unchanged_for`.
fn may_take(
    record: &Record,
    identity: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> bool {
    match &record.holder {
        None => true,
        Some(holder) if holder == identity => true,
        Some(_) => unchanged_for >= lease_duration,
    }
}

pub struct Elector {
    api: Api<Lease>,
    options: LeaseOptions,
    /// The lease as this process last wrote it, while it leads.
    held: Option<Lease>,
    seen: Option<(Record, Instant)>,
}

impl Elector {
    pub fn new(client: kube::Client, options: LeaseOptions) -> Self {
        Self {
            api: Api::namespaced(client, &options.namespace),
            options,
            held: None,
            seen: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.options.identity
    }

    /// Returns once this process holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "reading or writing the leader lease failed"),
            }
            sleep(self.options.retry_every).await;
        }
    }

    async fn try_acquire(&mut self) -> Result<bool, Error> {
        let Some(current) = self.api.get_opt(&self.options.name).await? else {
            let lease = self.lease(ObjectMeta::default(), 0);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(written) => {
                    self.held = Some(written);
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let record = Record::of(&current);
        let now = Instant::now();
        let since = match &self.seen {
            Some((seen, at)) if *seen == record => *at,
            _ => {
                self.seen = Some((record.clone(), now));
                now
            }
        };
        if !may_take(
            &record,
            &self.options.identity,
            now - since,
            self.options.lease_duration,
        ) {
            return Ok(false);
        }
        let transitions = if record.holder.as_deref() == Some(&self.options.identity) {
            record.transitions
        } else {
            record.transitions + 1
        };
        // Keeping the resourceVersion makes the write conditional: if anyone
        // wrote the lease since we read it, the apiserver answers 409.
        let lease = self.lease(current.metadata.clone(), transitions);
        match self
            .api
            .replace(&self.options.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                tracing::info!(identity = %self.options.identity, "became the leader");
                self.held = Some(written);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the lease until it is lost, or a renewal fails; returns at
    /// once when either happens.
    pub async fn hold(&mut self) {
        let mut renewed_at = Instant::now();
        loop {
            sleep(self.options.renew_every).await;
            let attempt = Instant::now();
            let left = self
                .options
                .renew_deadline
                .saturating_sub(attempt - renewed_at);
            match timeout(left, self.renew()).await {
                Ok(Ok(())) => renewed_at = attempt,
                Ok(Err(Error::Kube(kube::Error::Api(e)))) if e.code == 409 => {
                    tracing::warn!("the leader lease was taken by another replica");
                    self.lost();
                    return;
                }
                // The apiserver refused or could not be reached: start over
                // (this replica takes the lease again at once when it
                // answers, its controller with fresh watches). Kept on, the
                // watches of an apiserver restarted within the renew
                // deadline stayed silent: nothing new was reconciled
                // (crates/berth/tests/faults.rs, the apiserver restart).
                Ok(Err(error)) => {
                    tracing::warn!(%error, "renewing the leader lease failed; starting over");
                    self.lost();
                    return;
                }
                Err(_) => {}
            }
            if Instant::now() - renewed_at >= self.options.renew_deadline {
                tracing::warn!("could not renew the leader lease in time; stepping down");
                self.lost();
                return;
            }
        }
    }

    async fn renew(&mut self) -> Result<(), Error> {
        let held = self.held.as_ref().expect("renew only while holding");
        let transitions = Record::of(held).transitions;
        let lease = self.lease(held.metadata.clone(), transitions);
        let written = self
            .api
            .replace(&self.options.name, &PostParams::default(), &lease)
            .await?;
        self.held = Some(written);
        Ok(())
    }

    fn lost(&mut self) {
        self.held = None;
        self.seen = None;
    }

    /// Gives the lease up so that another replica takes over at once.
    pub async fn release(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let mut lease = held.clone();
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
        }
        if let Err(error) = self
            .api
            .replace(&self.options.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "releasing the leader lease failed; another replica takes over when it expires");
        }
    }

    fn lease(&self, metadata: ObjectMeta, transitions: i32) -> Lease {
        let now = MicroTime(Timestamp::now());
        let acquire_time = self
            .held
            .as_ref()
            .and_then(|h| h.spec.as_ref())
            .and_then(|s| s.acquire_time.clone())
            .unwrap_or_else(|| now.clone());
        Lease {
            metadata: ObjectMeta {
                name: Some(self.options.name.clone()),
                namespace: Some(self.options.namespace.clone()),
                ..metadata
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.options.identity.clone()),
                lease_duration_seconds: i32::try_from(self.options.lease_duration.as_secs()).ok(),
                acquire_time: Some(acquire_time),
                renew_time: Some(now),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            renewed: Some("2025-01-01T00:00:00Z".into()),
            transitions: 3,
        }
    }

    const LEASE: Duration = Duration::from_secs(10);

    #[test]
    fn a_free_or_own_lease_is_taken_at_once() {
        assert!(may_take(&record(None), "me", Duration::ZERO, LEASE));
        assert!(may_take(&record(Some("me")), "me", Duration::ZERO, LEASE));
    }

    #[test]
    fn another_holder_must_have_been_silent_for_a_whole_lease() {
        let other = record(Some("other"));
        assert!(!may_take(&other, "me", Duration::from_secs(9), LEASE));
        assert!(may_take(&other, "me", LEASE, LEASE));
    }

    #[test]
    fn an_empty_holder_counts_as_released() {
        let lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(String::new()),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        assert_eq!(Record::of(&lease).holder, None);
    }

    #[test]
    fn a_leader_gives_up_before_a_follower_may_take_over() {
        let options = LeaseOptions::new("me");
        assert!(options.renew_deadline < options.lease_duration);
        assert!(options.renew_every * 3 <= options.renew_deadline);
        // Detection (one retry) plus a silent lease stays within 15 s of the leader's death.
        assert!(options.lease_duration + options.retry_every * 2 <= Duration::from_secs(15));
    }
}
