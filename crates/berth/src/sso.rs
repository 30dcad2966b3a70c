//! Single sign-on settings (`BERTH_OIDC_*`) and the switch for local login.

use berth_api::OidcConfig;
use clap::Args;

/// Flags of single sign-on, each also read from its environment variable.
#[derive(Debug, Default, Args)]
pub struct SsoArgs {
    /// OpenID provider's issuer URL; with it, the login page offers
    /// "Sign in with <BERTH_OIDC_NAME>".
    #[arg(long, env = "BERTH_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Berth's client id at the provider.
    #[arg(long, env = "BERTH_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Its client secret (environment only, `BERTH_OIDC_CLIENT_SECRET`, out of `ps`).
    #[arg(skip)]
    pub oidc_client_secret: Option<String>,
    /// The provider's name on the login page (default `single sign-on`).
    #[arg(long, env = "BERTH_OIDC_NAME")]
    pub oidc_name: Option<String>,
    /// Members of this group are admins, others members, set at each sign-in.
    #[arg(long, env = "BERTH_OIDC_ADMIN_GROUP")]
    pub oidc_admin_group: Option<String>,
    /// The claim listing a person's groups (default `groups`).
    #[arg(long, env = "BERTH_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// Whether a first sign-in creates an account (default true).
    #[arg(long, env = "BERTH_OIDC_ALLOW_SIGN_UP")]
    pub oidc_allow_sign_up: Option<bool>,
    /// Email and password login and registration (default true; false
    /// leaves single sign-on as the only way in).
    #[arg(long, env = "BERTH_LOCAL_LOGIN")]
    pub local_login: Option<bool>,
}

/// The same settings as the TOML file gives them.
#[derive(Debug, Default)]
pub struct SsoFile {
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    pub oidc_client_secret: Option<String>,
    pub oidc_name: Option<String>,
    pub oidc_admin_group: Option<String>,
    pub oidc_groups_claim: Option<String>,
    pub oidc_allow_sign_up: Option<bool>,
    pub local_login: Option<bool>,
}

/// Single sign-on as configured, and whether local login is on.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub oidc: Option<OidcConfig>,
    pub local_login: bool,
}

impl SsoArgs {
    /// The settings, the file's values under the flags'; errors name the
    /// variable. `public_url` is where the callback is served.
    pub fn settings(self, file: SsoFile, public_url: Option<&str>) -> anyhow::Result<SsoSettings> {
        let secret = std::env::var("BERTH_OIDC_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .or(self.oidc_client_secret)
            .or(file.oidc_client_secret);
        let local_login = self.local_login.or(file.local_login).unwrap_or(true);
        let issuer = self.oidc_issuer.or(file.oidc_issuer);
        let client_id = self.oidc_client_id.or(file.oidc_client_id);
        let oidc = match (issuer, client_id, secret) {
            (None, None, None) => None,
            (Some(issuer), Some(client_id), Some(client_secret)) => {
                anyhow::ensure!(
                    issuer.starts_with("https://") || issuer.starts_with("http://"),
                    "BERTH_OIDC_ISSUER: must be an http(s) URL, such as https://accounts.example.com"
                );
                Some(OidcConfig {
                    issuer,
                    client_id,
                    client_secret,
                    name: self
                        .oidc_name
                        .or(file.oidc_name)
                        .unwrap_or_else(|| "single sign-on".to_owned()),
                    admin_group: self
                        .oidc_admin_group
                        .or(file.oidc_admin_group)
                        .filter(|g| !g.is_empty()),
                    groups_claim: self
                        .oidc_groups_claim
                        .or(file.oidc_groups_claim)
                        .unwrap_or_else(|| "groups".to_owned()),
                    public_url: public_url.map(str::to_owned),
                    allow_sign_up: self
                        .oidc_allow_sign_up
                        .or(file.oidc_allow_sign_up)
                        .unwrap_or(true),
                })
            }
            _ => anyhow::bail!(
                "BERTH_OIDC_ISSUER, BERTH_OIDC_CLIENT_ID and BERTH_OIDC_CLIENT_SECRET: set all three or none"
            ),
        };
        anyhow::ensure!(
            local_login || oidc.is_some(),
            "BERTH_LOCAL_LOGIN=false needs single sign-on (BERTH_OIDC_ISSUER), else nobody could log in"
        );
        Ok(SsoSettings { oidc, local_login })
    }
}
