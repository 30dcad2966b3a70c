//! Accounts: the values a person gives when registering or logging in.

use crate::validation::ValidationErrors;
use caseless::Caseless;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use unicode_normalization::UnicodeNormalization;

/// Longest email accepted (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Shortest password accepted, as the contract says.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted: bounds the hashing work a request can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_DISPLAY_NAME_CHARS: usize = 100;
const MAX_TOKEN_NAME_CHARS: usize = 100;

/// An email address in its comparison form (see [`fold_email`]), so that two
/// spellings of one address are one account wherever they are compared.
///
/// Accounts stored before emails were folded this way were only lower-cased;
/// for ASCII addresses, nearly all of them, the two forms are the same. An
/// account stored with an address that folding changes (a decomposed accent,
/// `ß`, a ligature) is no longer found by that address: no migration can
/// fold in SQL, so such rows are left as they are, and their owners register
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// The form in which emails are stored and compared: canonical caseless
/// matching (Unicode 3.13, D145: decompose, case-fold, decompose), recomposed
/// to NFC. Full case folding rather than `to_lowercase`, because lower-casing
/// leaves pairs such as `ß`/`ss` and `ς`/`σ` apart that folding makes equal;
/// decomposing first, because folding a precomposed letter and its
/// decomposed spelling can otherwise differ. Idempotent, so that a stored
/// email reads back as itself. Also used for filters that may name an email,
/// such as the audit log's `actor`.
pub fn fold_email(raw: &str) -> String {
    raw.trim()
        .chars()
        .nfd()
        .default_case_fold()
        // NFC decomposes before it composes: the last step of D145 is in here.
        .nfc()
        .collect()
}

impl Email {
    /// Folds `raw` (see [`fold_email`]) and checks that it is an address;
    /// errors name `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let value = fold_email(raw);
        let bad = |why: &str| Err(ValidationErrors::single(field, why));
        if value.is_empty() {
            return bad("is required");
        }
        if value.len() > MAX_EMAIL_LEN {
            return bad("must be at most 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return bad("must be an email address such as ada@example.com");
        };
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if !(domain_ok && local_ok) {
            return bad("must be an email address such as ada@example.com");
        }
        Ok(Self(value))
    }

    /// An address someone else vouches for (an OpenID provider's verified
    /// `email`), accepted only when it already is the mailbox Berth would
    /// compare: written in NFC, unchanged by compatibility normalization,
    /// and differing from its folded form in letter case alone. Folding
    /// joins mailboxes that differ (`straße@` and `strasse@`, the long `ſ`
    /// and `s`, the Kelvin sign and `K`); a provider that proved one of them
    /// proved nothing about the other. The same errors as [`Self::parse`],
    /// or "must be written as the address it is" for such a spelling.
    pub fn parse_exact(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let email = Self::parse(field, raw)?;
        let written = raw.trim();
        let nfc: String = written.nfc().collect();
        let exact = written == nfc && nfc.nfkc().eq(nfc.chars()) && nfc.to_lowercase() == email.0;
        if !exact {
            return Err(ValidationErrors::single(
                field,
                "must be written as the address it is: this spelling folds into another mailbox",
            ));
        }
        Ok(email)
    }

    /// The folded address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets the length rules. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks a new password against the rules (used at registration).
    pub fn new_secret(field: &str, raw: String) -> Result<Self, ValidationErrors> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ValidationErrors::single(
                field,
                "must be at least 10 characters long",
            ));
        }
        Self::given(field, raw)
    }

    /// A password offered at login: only bounded in size, since the rules may
    /// have changed since it was set.
    pub fn given(field: &str, raw: String) -> Result<Self, ValidationErrors> {
        if raw.is_empty() {
            return Err(ValidationErrors::single(field, "is required"));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(ValidationErrors::single(
                field,
                "must be at most 1024 bytes long",
            ));
        }
        Ok(Self(raw))
    }

    /// The password itself, for hashing or verifying.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A name shown for a person; defaults to the part of the email before `@`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks `raw`, or derives the name from `email` when `raw` is absent or
    /// blank; errors name `field`.
    pub fn parse(
        field: &str,
        raw: Option<&str>,
        email: Option<&Email>,
    ) -> Result<Self, ValidationErrors> {
        let value = match raw.map(str::trim) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => email
                .map(|e| e.as_str().split('@').next().unwrap_or_default().to_owned())
                .unwrap_or_default(),
        };
        if value.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(ValidationErrors::single(
                field,
                "must be at most 100 characters",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationErrors::single(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(value))
    }

    /// A name read back from the store, where it was checked on the way in.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The name as shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a person gives a personal access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TokenName(String);

impl TokenName {
    /// Trims and checks `raw`; errors name `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(ValidationErrors::single(field, "is required"));
        }
        if value.chars().count() > MAX_TOKEN_NAME_CHARS {
            return Err(ValidationErrors::single(
                field,
                "must be at most 100 characters",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationErrors::single(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a person may do across Berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, policy, templates and every environment.
    Admin,
    /// Works in the environments they own or are a member of.
    Member,
}

impl Role {
    /// The name used in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vouched_address_must_be_its_own_mailbox_not_one_it_folds_into() {
        for same in [
            "ada@example.com",
            "Ada.Lovelace@Example.COM",
            "MÜLLER@example.de",
        ] {
            assert!(Email::parse_exact("email", same).is_ok(), "{same}");
        }
        // ß folds to ss, the long s and the Kelvin sign to s and k: other
        // mailboxes than the ones they would be compared as.
        for other in [
            "victim@straße.test",
            "groß@example.com",
            "\u{17f}taff@example.com",
            "\u{212a}ate@example.com",
            "mu\u{308}ller@example.de",
        ] {
            assert!(Email::parse_exact("email", other).is_err(), "{other}");
            assert!(Email::parse("email", other).is_ok(), "{other}");
        }
    }

    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse("email", " Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@-x.com",
        ] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.errors()[0].field, "email", "{bad}");
        }
        assert!(Email::parse("email", &format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn composed_decomposed_and_upper_case_spellings_are_one_email() {
        let composed = "j\u{fc}rgen@example.com";
        for spelling in [
            composed,
            "ju\u{308}rgen@example.com",
            "J\u{dc}RGEN@EXAMPLE.COM",
            "JU\u{308}RGEN@Example.Com",
        ] {
            assert_eq!(
                Email::parse("email", spelling).unwrap().as_str(),
                composed,
                "{spelling:?}"
            );
        }
        // Full case folding, where lower-casing would keep two accounts.
        assert_eq!(
            Email::parse("email", "STRA\u{df}E@example.com")
                .unwrap()
                .as_str(),
            Email::parse("email", "strasse@example.com")
                .unwrap()
                .as_str()
        );
        assert_eq!(fold_email("system"), "system");
    }

    proptest::proptest! {
        #[test]
        fn folding_is_idempotent(raw in "\\PC{0,24}") {
            let once = fold_email(&raw);
            proptest::prop_assert_eq!(fold_email(&once), once.clone());
            if let Ok(email) = Email::parse("email", &format!("{raw}@example.com")) {
                proptest::prop_assert_eq!(Email::parse("email", email.as_str()).unwrap(), email);
            }
        }
    }

    #[test]
    fn passwords_need_ten_characters_and_hide_themselves() {
        assert!(Password::new_secret("password", "short".into()).is_err());
        assert!(Password::new_secret("password", "ten chars!".into()).is_ok());
        assert!(Password::new_secret("password", "x".repeat(2000)).is_err());
        let password = Password::given("password", "hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn display_name_defaults_to_email_local_part() {
        let email = Email::parse("email", "ada@example.com").unwrap();
        assert_eq!(
            DisplayName::parse("displayName", None, Some(&email))
                .unwrap()
                .as_str(),
            "ada"
        );
        assert!(DisplayName::parse("displayName", Some(&"x".repeat(101)), None).is_err());
    }
}
