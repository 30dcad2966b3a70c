//! Single sign-on with OpenID Connect: the authorization code flow with PKCE
//! (S256) against one configured issuer, and the rules that turn a verified
//! identity into a Berth account.
//!
//! A sign-in under way lives in the store (the state's hash, the nonce, the
//! PKCE verifier), so any replica can finish it and it is single use; the
//! browser holds the state in an HttpOnly cookie as well, so that an answer
//! from the provider only completes the sign-in the same browser started.

use berth_auth::{Auth, AuthError, NewSession, Secret};
use berth_core::account::{DisplayName, Email, Role};
use berth_store::{PendingOidcLogin, StoreError, UserRecord, UserUpdate};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// How long a sign-in may take between the redirect to the provider and its
/// answer: a person typing a password, with some slack.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// How long the provider's discovery document (endpoints, keys) is reused.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// A provider that does not answer within this is unavailable.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The configured OpenID provider (`BERTH_OIDC_*`).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the provider's tokens name it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Shown on the login page: "Sign in with <name>".
    pub name: String,
    /// Members of this group (in the groups claim) are admins, others
    /// members, set at each sign-in; `None` leaves roles to Berth's admins.
    pub admin_group: Option<String>,
    /// The claim that lists a person's groups (`groups`).
    pub groups_claim: String,
    /// Berth's public URL (`BERTH_PUBLIC_URL`), which the callback is under;
    /// else the host a sign-in was started at.
    pub public_url: Option<String>,
    /// Whether a first sign-in creates an account (else only accounts that
    /// exist, by link or verified email, may sign in).
    pub allow_sign_up: bool,
}

/// Why a sign-in did not complete; each reason has a code the portal shows
/// a sentence for (`/login?ssoError=<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// The state is unknown, used, expired or not this browser's.
    State,
    /// The provider refused, or its answer (code, ID token) did not verify.
    Token,
    /// The provider answered with an error (the person cancelled, say).
    Provider,
    /// The provider sent no email.
    NoEmail,
    /// The provider does not vouch for the email, and no account is linked.
    UnverifiedEmail,
    /// No account matches and sign-up by single sign-on is off.
    SignUpClosed,
    /// The account is disabled.
    Disabled,
}

impl SsoFailure {
    /// The code the portal reads.
    pub fn code(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Token => "token",
            Self::Provider => "provider",
            Self::NoEmail => "no_email",
            Self::UnverifiedEmail => "unverified_email",
            Self::SignUpClosed => "sign_up_closed",
            Self::Disabled => "disabled",
        }
    }

    /// A sentence for a person.
    pub fn message(self) -> &'static str {
        match self {
            Self::State => "The sign-in expired or was not started in this browser; sign in again",
            Self::Token => "The identity provider's answer could not be verified; sign in again",
            Self::Provider => "The identity provider did not sign you in",
            Self::NoEmail => "The identity provider did not share your email address",
            Self::UnverifiedEmail => {
                "The identity provider has not verified your email address, so it cannot be \
                 matched to an account"
            }
            Self::SignUpClosed => "No account matches your identity, and sign-up is closed",
            Self::Disabled => "Your account is disabled",
        }
    }
}

/// What can go wrong in a sign-in.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The sign-in is refused; the person is told why.
    #[error("{}", .0.message())]
    Refused(SsoFailure, String),
    /// The provider could not be reached or answered nonsense.
    #[error("the OpenID provider is not reachable: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

fn refused(failure: SsoFailure, cause: impl std::fmt::Display) -> OidcError {
    OidcError::Refused(failure, cause.to_string())
}

/// Claims beyond the standard ones: the groups claim, whatever its name.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

/// Whether a first sign-in took over an account whose address was never
/// proven (its old credentials ended; its kubeconfigs must end too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed(pub bool);

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// The sign-in service of one configured provider.
#[derive(Clone)]
pub struct Oidc {
    config: Arc<OidcConfig>,
    http: openidconnect::reqwest::Client,
    metadata: Arc<Mutex<Option<(Instant, CoreProviderMetadata)>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// Where the sign-in goes next: the provider's authorization URL, and the
/// state the browser keeps in a cookie.
pub struct Redirect {
    pub url: String,
    pub state: Secret,
}

impl Oidc {
    /// The service; the provider is asked for its endpoints at the first
    /// sign-in, not here, so Berth starts while the provider is down.
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Unreachable(format!("issuer URL: {e}")))?;
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would let the provider's answers send
            // Berth's requests anywhere (the library's own advice).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        Ok(Self {
            config: Arc::new(config),
            http,
            metadata: Arc::default(),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(
        &self,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| OidcError::Unreachable(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: keeps its state, nonce and PKCE verifier in the
    /// store and answers where to send the browser.
    pub async fn begin(
        &self,
        auth: &Auth,
        redirect_uri: &str,
        next_path: &str,
    ) -> Result<Redirect, OidcError> {
        let client = self.client(redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let state = Secret::from_client(state.secret());
        let pending = PendingOidcLogin {
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_owned(),
            next_path: next_path.to_owned(),
        };
        auth.store()
            .put_oidc_login(
                &state.hash(),
                &pending,
                OffsetDateTime::now_utc() + LOGIN_TTL,
            )
            .await?;
        Ok(Redirect {
            url: url.to_string(),
            state,
        })
    }

    /// Takes the sign-in `state` started, once; `Refused(State)` for an
    /// unknown, used or expired one.
    pub async fn take(&self, auth: &Auth, state: &Secret) -> Result<PendingOidcLogin, OidcError> {
        auth.store()
            .take_oidc_login(&state.hash())
            .await?
            .ok_or_else(|| refused(SsoFailure::State, "unknown, used or expired state"))
    }

    /// Exchanges `code` (with the sign-in's PKCE verifier), verifies the ID
    /// token (signature by the provider's keys, issuer, audience, expiry,
    /// nonce) and reads the person's claims, from userinfo where the
    /// provider has it (for the same subject).
    pub async fn identity(
        &self,
        pending: &PendingOidcLogin,
        code: &str,
    ) -> Result<Identity, OidcError> {
        let client = self.client(&pending.redirect_uri).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| refused(SsoFailure::Token, error_chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| refused(SsoFailure::Token, "the token answer has no ID token"))?;
        let claims = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(pending.nonce.clone()),
            )
            .map_err(|e| refused(SsoFailure::Token, error_chain(&e)))?;
        let subject = claims.subject().as_str();
        // OIDC Core §2: `sub` is at most 255 ASCII characters; one with a
        // control character (U+0000 cannot even be stored) is no subject.
        if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
            return Err(refused(
                SsoFailure::Token,
                "the ID token's sub is empty, longer than 255 or holds a control character",
            ));
        }
        let mut identity = Identity {
            subject: subject.to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            groups: Vec::new(),
        };
        if client.user_info_url().is_some() {
            self.add_userinfo(&client, token.access_token().clone(), &mut identity)
                .await?;
        }
        Ok(identity)
    }

    async fn add_userinfo(
        &self,
        client: &CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        access_token: AccessToken,
        identity: &mut Identity,
    ) -> Result<(), OidcError> {
        let request = client
            .user_info(
                access_token,
                Some(SubjectIdentifier::new(identity.subject.clone())),
            )
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(&self.http)
            .await
            .map_err(|e| refused(SsoFailure::Token, error_chain(&e)))?;
        if let Some(email) = info.email() {
            identity.email = Some(email.as_str().to_owned());
            identity.email_verified = info.email_verified().unwrap_or(false);
        }
        if let Some(name) = info.name().and_then(|n| n.get(None)) {
            identity.name = Some(name.as_str().to_owned());
        }
        if let Some(groups) = info
            .additional_claims()
            .claims
            .get(&self.config.groups_claim)
        {
            identity.groups = groups_of(groups);
        }
        Ok(())
    }

    /// The account `identity` signs in to, made or linked as needed, and a
    /// session for it. Linked identities find their account whatever their
    /// email is now; otherwise an account with the same email (NFC, case
    /// folded) is linked, but only when the provider says the email is
    /// verified; otherwise one is created (unless sign-up by single sign-on
    /// is off). With an admin group configured, the role follows it.
    ///
    /// An existing account whose address was never proven by a mailed link
    /// (unverified, or registered while no mail server was configured) is
    /// taken over, not joined: its password, sessions and tokens end
    /// ([`berth_store::Store::claim_for_sso`]), since whoever registered the
    /// address first may not be its owner. The answer says when that
    /// happened, so that the account's kubeconfigs are ended too.
    pub async fn sign_in(
        &self,
        auth: &Auth,
        identity: &Identity,
    ) -> Result<(NewSession, Claimed), OidcError> {
        let store = auth.store();
        let issuer = &self.config.issuer;
        let (user, claimed) = match store.oidc_linked_user(issuer, &identity.subject).await? {
            Some(user) => (user, Claimed(false)),
            None => self.first_sign_in(auth, identity).await?,
        };
        let user = self.sync_role(auth, user, identity).await?;
        let session = auth.open_session(user).await.map_err(|e| match e {
            AuthError::Disabled => refused(SsoFailure::Disabled, "account disabled"),
            other => other.into(),
        })?;
        Ok((session, claimed))
    }

    async fn first_sign_in(
        &self,
        auth: &Auth,
        identity: &Identity,
    ) -> Result<(UserRecord, Claimed), OidcError> {
        let store = auth.store();
        let raw = identity
            .email
            .as_deref()
            .ok_or_else(|| refused(SsoFailure::NoEmail, "no email claim"))?;
        // Exactly the mailbox it names: a spelling that folds into another
        // address (straße@ into strasse@) would hand that one's account over.
        let email = Email::parse_exact("email", raw).map_err(|_| {
            refused(
                SsoFailure::NoEmail,
                "the email claim is no email address, or one that folds into another",
            )
        })?;
        // An address the provider does not vouch for proves nothing: linking
        // it, or taking it for a new account, would hand its owner's account
        // (or the memberships waiting for it) to whoever typed it there.
        if !identity.email_verified {
            return Err(refused(
                SsoFailure::UnverifiedEmail,
                "email_verified is not true",
            ));
        }
        let mut claimed = Claimed(false);
        let user = match store.user_by_email(&email).await? {
            // Proven only by a mailed link: without a mail server every
            // address counts as verified, yet nobody proved theirs.
            Some(user) if !(user.email_verified && auth.verification_required()) => {
                claimed = Claimed(true);
                store
                    .claim_for_sso(user.id)
                    .await?
                    .ok_or_else(|| OidcError::Store(StoreError::Corrupt("user vanished".into())))?
            }
            Some(user) => user,
            None if !self.config.allow_sign_up => {
                return Err(refused(
                    SsoFailure::SignUpClosed,
                    "no account and no sign-up",
                ));
            }
            None => {
                let display_name = identity
                    .name
                    .as_deref()
                    .and_then(|n| DisplayName::parse("displayName", Some(n), Some(&email)).ok())
                    .map_or_else(|| DisplayName::parse("displayName", None, Some(&email)), Ok)
                    .map_err(|_| refused(SsoFailure::NoEmail, "no usable display name"))?;
                match store.create_sso_user(&email, &display_name).await {
                    Ok(user) => user,
                    // Made by a parallel sign-in (or registration) meanwhile.
                    Err(StoreError::Conflict { .. }) => {
                        store.user_by_email(&email).await?.ok_or_else(|| {
                            OidcError::Store(StoreError::Corrupt("user vanished".into()))
                        })?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        match store
            .link_oidc(&self.config.issuer, &identity.subject, user.id)
            .await
        {
            Ok(()) => Ok((user, claimed)),
            // A parallel sign-in of the same identity linked it first.
            Err(StoreError::Conflict { .. }) => store
                .oidc_linked_user(&self.config.issuer, &identity.subject)
                .await?
                .map(|user| (user, claimed))
                .ok_or_else(|| OidcError::Store(StoreError::Corrupt("link vanished".into()))),
            Err(e) => Err(e.into()),
        }
    }

    async fn sync_role(
        &self,
        auth: &Auth,
        user: UserRecord,
        identity: &Identity,
    ) -> Result<UserRecord, OidcError> {
        let Some(group) = &self.config.admin_group else {
            return Ok(user);
        };
        let role = if identity.groups.iter().any(|g| g == group) {
            Role::Admin
        } else {
            Role::Member
        };
        if role == user.role {
            return Ok(user);
        }
        let update = UserUpdate {
            role: Some(role),
            ..UserUpdate::default()
        };
        match auth.update_user(user.id, update).await {
            Ok(Some(updated)) => Ok(updated),
            Ok(None) => Err(OidcError::Store(StoreError::Corrupt(
                "user vanished".into(),
            ))),
            // The last admin stays one: demoting them would leave nobody
            // to administer Berth.
            Err(AuthError::LastAdmin) => Ok(user),
            Err(e) => Err(e.into()),
        }
    }
}

/// A groups claim's names: a list of strings, or one string.
fn groups_of(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// An error and its causes, for the log (never for the person).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `next` is a path of this origin to land on after signing in:
/// absolute (`/`), not `//host` or `/\host` (other origins to browsers), no
/// control characters.
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control())
        && next.len() <= 2048
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_next() {
        for good in ["/", "/environments/team-a", "/login?x=1"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn groups_are_a_list_or_one_name() {
        assert_eq!(
            groups_of(&serde_json::json!(["a", "b", 3])),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(groups_of(&serde_json::json!("a")), vec!["a".to_owned()]);
        assert!(groups_of(&serde_json::json!({"a": 1})).is_empty());
    }
}
