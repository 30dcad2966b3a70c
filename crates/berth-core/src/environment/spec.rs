//! The environment spec: its wire form (the contract's JSON) and the parsed form.

use super::app::App;
use super::exceptions::Exceptions;
use super::input::{AppInput, EnvironmentSpecInput, MemberInput, required};
use super::member::{Member, MemberRole};
use super::name::{EnvironmentName, TemplateName};
use super::settings::{Description, Settings};
use super::{MAX_APPS, MAX_MEMBERS};
use crate::account::Email;
use crate::validation::{FieldError, ValidationErrors};
use serde::Serialize;
use std::collections::BTreeSet;

/// An environment as asked for: every value valid, some left to a template or policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSpec {
    pub name: EnvironmentName,
    pub description: Description,
    pub template: Option<TemplateName>,
    pub settings: Settings,
    pub apps: Vec<App>,
    pub members: Vec<Member>,
    pub exceptions: Exceptions,
}

impl EnvironmentSpec {
    /// Checks every field and reports every problem, each under its path.
    pub fn parse(input: &EnvironmentSpecInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name = errors
            .collect(required(&input.name, "name").and_then(|n| EnvironmentName::parse("name", n)));
        let description = errors.collect(
            input
                .description
                .as_deref()
                .map_or(Ok(Description::default()), |d| {
                    Description::parse("description", d)
                }),
        );
        let template = errors.collect(
            input
                .template
                .as_deref()
                .map(|t| TemplateName::parse("template", t))
                .transpose(),
        );
        let settings = errors.collect(Settings::parse(
            input.quota.as_ref(),
            input.limits.as_ref(),
            input.network.as_ref(),
            input.pod_security.as_deref(),
            input.ttl.as_deref(),
        ));
        let apps = errors.collect(parse_apps(input.apps.as_deref().unwrap_or_default()));
        let members = errors.collect(parse_members(input.members.as_deref().unwrap_or_default()));
        let exceptions = errors.collect(Exceptions::parse(input.exceptions.as_ref()));
        errors.finish(|| EnvironmentSpec {
            name: name.expect("checked"),
            description: description.expect("checked"),
            template: template.expect("checked"),
            settings: settings.expect("checked"),
            apps: apps.expect("checked"),
            members: members.expect("checked"),
            exceptions: exceptions.expect("checked"),
        })
    }

    /// Makes `email` an owner listed first, as the creator of an environment is;
    /// the first member is the one shown as the environment's owner.
    pub fn set_creator(&mut self, email: Email) -> Result<(), ValidationErrors> {
        self.members.retain(|m| m.email != email);
        if self.members.len() >= MAX_MEMBERS {
            return Err(ValidationErrors::single(
                "members",
                "must list at most 100 members, the creator included",
            ));
        }
        self.members.insert(
            0,
            Member {
                email,
                role: MemberRole::Owner,
            },
        );
        Ok(())
    }

    /// The contract's JSON form; parsing it gives back an equal spec.
    pub fn to_input(&self) -> EnvironmentSpecInput {
        let s = &self.settings;
        EnvironmentSpecInput {
            name: Some(self.name.to_string()),
            description: (!self.description.as_str().is_empty())
                .then(|| self.description.as_str().to_owned()),
            template: self.template.as_ref().map(ToString::to_string),
            quota: s.quota_input(),
            limits: s.limits_input(),
            network: s.network_input(),
            pod_security: s.pod_security.map(|p| p.to_string()),
            ttl: s.ttl.map(|t| t.to_string()),
            apps: (!self.apps.is_empty()).then(|| self.apps.iter().map(|a| a.to_input()).collect()),
            members: (!self.members.is_empty())
                .then(|| self.members.iter().map(Member::to_input).collect()),
            exceptions: self.exceptions.to_input(),
        }
    }
}

impl Serialize for EnvironmentSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

fn parse_apps(inputs: &[AppInput]) -> Result<Vec<App>, ValidationErrors> {
    if inputs.len() > MAX_APPS {
        return Err(ValidationErrors::single(
            "apps",
            "must list at most 50 apps",
        ));
    }
    let mut errors = ValidationErrors::new();
    let mut seen = BTreeSet::new();
    let mut apps = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let Some(app) =
            errors.collect(App::parse(input).map_err(|e| e.under(&format!("apps[{i}]"))))
        else {
            continue;
        };
        if !seen.insert(app.name.clone()) {
            errors.push(FieldError::new(
                format!("apps[{i}].name"),
                "must be unique within the environment",
            ));
        }
        apps.push(app);
    }
    errors.finish(|| apps)
}

fn parse_members(inputs: &[MemberInput]) -> Result<Vec<Member>, ValidationErrors> {
    if inputs.len() > MAX_MEMBERS {
        return Err(ValidationErrors::single(
            "members",
            "must list at most 100 members",
        ));
    }
    let mut errors = ValidationErrors::new();
    let mut seen = BTreeSet::new();
    let mut members = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let Some(member) =
            errors.collect(Member::parse(input).map_err(|e| e.under(&format!("members[{i}]"))))
        else {
            continue;
        };
        if !seen.insert(member.email.clone()) {
            errors.push(FieldError::new(
                format!("members[{i}].email"),
                "must appear only once",
            ));
        }
        members.push(member);
    }
    errors.finish(|| members)
}
