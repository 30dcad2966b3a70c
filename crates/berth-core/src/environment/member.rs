//! Members: who may use an environment, and how.

use super::choice;
use super::input::{MemberInput, required};
use crate::account::Email;
use crate::validation::ValidationErrors;

choice! {
    /// What a member may do inside an environment.
    MemberRole { Owner => "owner", Editor => "editor", Viewer => "viewer" }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub email: Email,
    pub role: MemberRole,
}

impl Member {
    pub fn parse(input: &MemberInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let email =
            errors.collect(required(&input.email, "email").and_then(|e| Email::parse("email", e)));
        let role = errors
            .collect(required(&input.role, "role").and_then(|r| MemberRole::parse("role", r)));
        errors.finish(|| Member {
            email: email.expect("checked"),
            role: role.expect("checked"),
        })
    }

    pub fn to_input(&self) -> MemberInput {
        MemberInput {
            email: Some(self.email.to_string()),
            role: Some(self.role.to_string()),
        }
    }
}
