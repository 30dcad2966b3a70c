//! Users' identities: the ServiceAccounts the API keeps in
//! [`USERS_NAMESPACE`], one per user, each annotated with its user's email.
//! The controller binds members to them without reading Berth's store: one
//! watch keeps them at hand (a reconcile asks the apiserver nothing for
//! them) and wakes every environment listing the email of an identity that
//! appears or goes, so a disabled user's bindings go too.

use berth_manifests::{
    EMAIL_ANNOTATION, Environment, MANAGED_BY_LABEL, MANAGED_BY_VALUE, USERS_NAMESPACE,
};
use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;
use std::pin::Pin;
use tokio::sync::watch;

/// The identities' watch: the controller must poll it (it is a trigger too).
pub type Trigger = Pin<Box<dyn Stream<Item = Result<ServiceAccount, watcher::Error>> + Send>>;

/// Every user's ServiceAccount, as the watch last saw it.
#[derive(Clone)]
pub struct Identities {
    store: Store<ServiceAccount>,
    /// True once the store holds a first full list. Not the store's own
    /// `wait_until_ready`: its one-shot channel wakes only the last of
    /// several reconciles waiting at once, and the others would wait forever.
    listed: watch::Receiver<bool>,
}

impl Identities {
    /// The store and the watch stream that fills it.
    pub fn watch(client: &Client) -> (Self, Trigger) {
        let writer = Writer::default();
        let store = writer.as_reader();
        let (listed_tx, listed) = watch::channel(false);
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        let stream = watcher(
            Api::<ServiceAccount>::namespaced(client.clone(), USERS_NAMESPACE),
            watcher::Config::default().labels(&selector),
        )
        .default_backoff()
        .modify(|account| {
            // Only the name and the email are read.
            account.managed_fields_mut().clear();
            account.secrets = None;
        })
        .reflect(writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                listed_tx.send_replace(true);
            }
        })
        .touched_objects();
        (Self { store, listed }, Box::pin(stream))
    }

    /// Waits for the first full list: before it, every member would look
    /// like one without an account and lose their binding.
    pub async fn ready(&self) -> Result<(), crate::Error> {
        self.listed
            .clone()
            .wait_for(|listed| *listed)
            .await
            .map(drop)
            .map_err(|_| crate::Error::IdentitiesGone)
    }

    /// The ServiceAccount names of each of `emails` that has any, sorted.
    pub fn of<'a>(
        &self,
        emails: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, Vec<String>> {
        let wanted: Vec<&str> = emails.into_iter().collect();
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for account in self.store.state() {
            if let Some(email) = email_of(&account)
                && wanted.contains(&email)
            {
                found
                    .entry(email.to_owned())
                    .or_default()
                    .push(account.name_any());
            }
        }
        for accounts in found.values_mut() {
            accounts.sort();
        }
        found
    }
}

fn email_of(account: &ServiceAccount) -> Option<&str> {
    account
        .metadata
        .annotations
        .as_ref()?
        .get(EMAIL_ANNOTATION)
        .map(String::as_str)
}

/// The environments that list the email of `account` among their members,
/// from the controller's store of Environments: a linear scan, cheap next
/// to the reconciles it starts and run only when an identity changes.
pub fn environments_of(
    account: &ServiceAccount,
    environments: &Store<Environment>,
) -> Vec<ObjectRef<Environment>> {
    let Some(email) = email_of(account) else {
        return Vec::new();
    };
    environments
        .state()
        .iter()
        .filter(|env| {
            env.spec.members.iter().flatten().any(|member| {
                member.email.as_deref().is_some_and(|m| {
                    berth_core::account::Email::parse("email", m)
                        .is_ok_and(|parsed| parsed.as_str() == email)
                })
            })
        })
        .map(|env| ObjectRef::from_obj(env.as_ref()))
        .collect()
}
