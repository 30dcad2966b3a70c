//! Secrets set through `PUT /api/v1/admin/integrations`, read at start:
//! each is used only when its environment variable is not set (operators
//! who keep them in a Kubernetes Secret stay in charge), and applies from
//! each replica's next start.

use anyhow::Context;
use berth_keyring::KeyRing;
use berth_store::Store;

/// The secret `name` from `store`, decrypted with `keyring`; `None` when
/// none is stored. Fails, naming the variable, when one is stored but
/// `BERTH_ENCRYPTION_KEYS` is not set or does not open it.
pub async fn read(
    store: &Store,
    keyring: Option<&KeyRing>,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let secrets = store.sealed_secrets().await?;
    let Some(secret) = secrets.into_iter().find(|s| s.name == name) else {
        return Ok(None);
    };
    let keyring = keyring.with_context(|| {
        format!(
            "{name} is stored encrypted, and {} is not set to decrypt it",
            berth_keyring::VARIABLE
        )
    })?;
    let plain = keyring.open(name, &secret.sealed)?;
    String::from_utf8(plain)
        .map(Some)
        .with_context(|| format!("{name}: the stored value is not text"))
}
