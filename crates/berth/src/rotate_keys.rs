//! `berth rotate-keys`: re-encrypts every stored secret under the first key
//! of `BERTH_ENCRYPTION_KEYS`, so that the keys after it can be dropped.
//!
//! Idempotent: a secret already under the first key is left alone, so a
//! second run changes nothing and an interrupted run is finished by the
//! next. Each secret is replaced only if it still holds what was read, so a
//! value an admin sets meanwhile is never overwritten. Works on whichever
//! store `BERTH_DATABASE_URL` names, SQLite or PostgreSQL, while Berth
//! serves.

use anyhow::Context;
use berth_keyring::KeyRing;
use berth_store::Store;

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets stored.
    pub total: usize,
    /// Of those, re-encrypted by this run (the rest were under the first
    /// key already, or changed meanwhile, which seals them under it too).
    pub resealed: usize,
}

/// Re-encrypts every secret of `store` under `keyring`'s first key. Fails,
/// naming each secret and key, when a secret does not decrypt with the
/// ring (those already under the first key are checked too); the others
/// are re-encrypted all the same.
pub async fn rotate(store: &Store, keyring: &KeyRing) -> anyhow::Result<Rotation> {
    let secrets = store.sealed_secrets().await?;
    let mut rotation = Rotation {
        total: secrets.len(),
        resealed: 0,
    };
    let mut failures = Vec::new();
    for secret in secrets {
        // Opened even when already under the first key: a ring whose first
        // key has the right id but the wrong bytes must fail here, not at
        // every replica's next start (review).
        let plain = match keyring.open(&secret.name, &secret.sealed) {
            Ok(plain) => plain,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        if keyring.is_current(&secret.sealed) {
            continue;
        }
        let sealed = keyring.seal(&secret.name, &plain);
        if store
            .reseal_secret(&secret.name, &secret.sealed, &sealed, keyring.primary_id())
            .await?
        {
            rotation.resealed += 1;
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(rotation)
}

/// The command: connects to `database_url`, rotates, and says what it did.
pub async fn run(database_url: &str) -> anyhow::Result<()> {
    let raw = std::env::var(berth_keyring::VARIABLE).map_err(|_| {
        anyhow::anyhow!(
            "{}: not set; give the new key first and the old ones after it",
            berth_keyring::VARIABLE
        )
    })?;
    let keyring = KeyRing::parse(&raw)?;
    let store = Store::connect(database_url)
        .await
        .context("connecting to the store (BERTH_DATABASE_URL)")?;
    let rotation = rotate(&store, &keyring).await;
    store.close().await;
    let rotation = rotation?;
    eprintln!(
        "{} of {} stored secrets re-encrypted; all are now under key '{}'",
        rotation.resealed,
        rotation.total,
        keyring.primary_id()
    );
    Ok(())
}
