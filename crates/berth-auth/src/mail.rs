//! Mail: the links Berth sends (verify an address, reset a password) over
//! SMTP with `lettre`. Sent from a background task with a deadline, so that
//! a slow or absent mail server never holds an HTTP answer; a failed send
//! is logged without secrets, and the user asks again (resend, reset).

use crate::AuthError;
use berth_core::account::Email;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::time::Duration;

/// The sender when `BERTH_SMTP_FROM` is not set.
pub const DEFAULT_FROM: &str = "Berth <berth@localhost>";

/// How long one send may take, connecting included.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// A configured mail server, the sender, and where links point.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where the portal is reached, without a trailing slash.
    public_url: String,
    /// The server's scheme, host and port, for logs (never the credentials).
    server: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A mail to send: who to, subject and plain-text body.
struct Mail {
    to: Email,
    subject: &'static str,
    body: String,
}

impl Mailer {
    /// A mailer for `smtp_url`: `smtp://host:port` (plain, for local
    /// catchers), `smtp+starttls://host:port` (STARTTLS required) or
    /// `smtps://host:port` (TLS from the first byte); credentials as the
    /// URL's `user:password@`. `from` is a mailbox (`Name <address>`);
    /// `public_url` is where people reach Berth's portal, which links open.
    /// Errors name the variable and never repeat the URL, which may hold a
    /// password.
    pub fn new(smtp_url: &str, from: &str, public_url: &str) -> Result<Self, AuthError> {
        let bad = |why: &str| AuthError::MailConfig(format!("BERTH_SMTP_URL: {why}"));
        let (scheme, rest) = smtp_url
            .split_once("://")
            .ok_or_else(|| bad("must be an smtp://, smtp+starttls:// or smtps:// URL"))?;
        // lettre spells STARTTLS as smtp:// with tls=required, and plain as
        // smtp:// without it.
        let lettre_url = match scheme {
            "smtp" => format!("smtp://{rest}"),
            "smtp+starttls" => format!("smtp://{rest}{}tls=required", query_sep(rest)),
            "smtps" => format!("smtps://{rest}"),
            _ => return Err(bad("must start with smtp://, smtp+starttls:// or smtps://")),
        };
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host_part = host_part.split(['/', '?']).next().unwrap_or_default();
        if host_part.is_empty() {
            return Err(bad("names no host"));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url)
            .map_err(|_| bad("is not a valid SMTP URL"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from: Mailbox = from.parse().map_err(|_| {
            AuthError::MailConfig(
                "BERTH_SMTP_FROM: must be a mailbox such as Berth <berth@example.com>".into(),
            )
        })?;
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(AuthError::MailConfig(
                "BERTH_PUBLIC_URL: must be an http(s):// URL, as mailed links point there".into(),
            ));
        }
        Ok(Self {
            transport,
            from,
            public_url,
            server: format!("{scheme}://{host_part}"),
        })
    }

    /// The scheme, host and port of the mail server (no credentials).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Mails the link that verifies `to`, in the background.
    pub(crate) fn send_verification(&self, to: Email, token: &str, hours: i64) {
        let link = format!("{}/verify?token={token}", self.public_url);
        self.send_soon(Mail {
            to,
            subject: "Verify your email address for Berth",
            body: format!(
                "Open this link to verify your email address for Berth:\n\n{link}\n\n\
                 The link works once, for {hours} hours. If you did not create a Berth \
                 account, ignore this mail.\n"
            ),
        });
    }

    /// Mails the link that sets a new password for `to`, in the background.
    pub(crate) fn send_reset(&self, to: Email, token: &str, minutes: i64) {
        let link = format!("{}/reset-password?token={token}", self.public_url);
        self.send_soon(Mail {
            to,
            subject: "Reset your Berth password",
            body: format!(
                "Someone asked to reset the password of your Berth account. Open this link \
                 to choose a new one:\n\n{link}\n\nThe link works once, for {minutes} minutes. \
                 If you did not ask, ignore this mail: your password stays as it is.\n"
            ),
        });
    }

    fn send_soon(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            let subject = mail.subject;
            if let Err(error) = mailer.send(mail).await {
                // No address and no link: the log must not carry either.
                tracing::warn!(server = %mailer.server, subject, %error, "a mail could not be sent; the user can ask for it again");
            }
        });
    }

    async fn send(&self, mail: Mail) -> Result<(), AuthError> {
        let to: Mailbox = mail
            .to
            .as_str()
            .parse()
            .map_err(|e| AuthError::Mail(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| AuthError::Mail(e.to_string()))?;
        let sent = tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(AuthError::Mail(e.to_string())),
            Err(_) => Err(AuthError::Mail(format!(
                "no answer within {} s",
                SEND_TIMEOUT.as_secs()
            ))),
        }
    }
}

fn query_sep(rest: &str) -> &'static str {
    if rest.contains('?') { "&" } else { "?" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "http://127.0.0.1:8080/";

    #[test]
    fn the_three_schemes_and_what_is_refused() {
        for url in [
            "smtp://127.0.0.1:1025",
            "smtp+starttls://user:p%40ss@mail.example.com:587",
            "smtps://mail.example.com",
        ] {
            Mailer::new(url, DEFAULT_FROM, PUBLIC).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        let mailer = Mailer::new(
            "smtps://ann:secret@mail.example.com:465",
            DEFAULT_FROM,
            PUBLIC,
        )
        .unwrap();
        assert_eq!(mailer.server(), "smtps://mail.example.com:465");
        assert!(!format!("{mailer:?}").contains("secret"));
        for url in ["http://mail.example.com", "mail.example.com", "smtp://"] {
            let error = Mailer::new(url, DEFAULT_FROM, PUBLIC)
                .unwrap_err()
                .to_string();
            assert!(error.contains("BERTH_SMTP_URL"), "{url}: {error}");
        }
        let error = Mailer::new("smtp://x:hunter2@", DEFAULT_FROM, PUBLIC)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        let error = Mailer::new("smtp://h:25", "not a mailbox", PUBLIC)
            .unwrap_err()
            .to_string();
        assert!(error.contains("BERTH_SMTP_FROM"), "{error}");
        let error = Mailer::new("smtp://h:25", DEFAULT_FROM, "berth.example.com")
            .unwrap_err()
            .to_string();
        assert!(error.contains("BERTH_PUBLIC_URL"), "{error}");
    }
}
