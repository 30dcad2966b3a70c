//! Apps: the workloads an environment runs (a Deployment, and a Service and an
//! Ingress as `expose` asks).

use super::image::Image;
use super::input::{AppInput, ResourcesInput, required};
use super::name::AppName;
use super::quantity::{ByteQuantity, CpuQuantity};
use super::settings::Limits;
use super::{MAX_ENV_VARS, choice};
use crate::validation::{FieldError, ValidationErrors};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

const MAX_ENV_NAME_LEN: usize = 128;
const MAX_ENV_VALUE_LEN: usize = 4096;

choice! {
    /// How an app is reached: not at all, inside the cluster, or from outside.
    Expose { None => "none", Cluster => "cluster", Ingress => "ingress" }
}

/// A TCP port an app listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    pub fn parse(field: &str, raw: i64) -> Result<Self, ValidationErrors> {
        u16::try_from(raw)
            .ok()
            .filter(|p| *p > 0)
            .map(Self)
            .ok_or_else(|| ValidationErrors::single(field, "must be a port from 1 to 65535"))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// How many copies of an app run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Replicas(u8);

impl Replicas {
    pub const MAX: u8 = 20;
    pub const DEFAULT: Self = Self(1);

    pub fn parse(field: &str, raw: i64) -> Result<Self, ValidationErrors> {
        u8::try_from(raw)
            .ok()
            .filter(|r| *r <= Self::MAX)
            .map(Self)
            .ok_or_else(|| ValidationErrors::single(field, "must be a whole number from 0 to 20"))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// The name of an environment variable (a C identifier, as shells expect).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EnvVarName(String);

impl EnvVarName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationErrors> {
        let ok = (1..=MAX_ENV_NAME_LEN).contains(&raw.len())
            && !raw.starts_with(|c: char| c.is_ascii_digit())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            return Ok(Self(raw.to_owned()));
        }
        let shown: String = raw.chars().take(40).collect();
        Err(ValidationErrors::single(
            field,
            format!(
                "variable name {shown:?} must be 1 to 128 letters, digits and '_', not starting with a digit"
            ),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CPU and memory an app asked for, each possibly left to the environment's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourcesRequest {
    pub cpu: Option<CpuQuantity>,
    pub memory: Option<ByteQuantity>,
}

/// CPU and memory of one container: both its requests and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    pub cpu: CpuQuantity,
    pub memory: ByteQuantity,
}

/// One app, every field checked; resources may still be left to defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App<R = ResourcesRequest> {
    pub name: AppName,
    pub image: Image,
    pub replicas: Replicas,
    pub port: Option<Port>,
    pub env: BTreeMap<EnvVarName, String>,
    pub resources: R,
    pub expose: Expose,
}

/// An app whose resources are settled (from the app, else the environment's defaults).
pub type ResolvedApp = App<Resources>;

impl App {
    pub fn parse(input: &AppInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let name =
            errors.collect(required(&input.name, "name").and_then(|n| AppName::parse("name", n)));
        let image =
            errors.collect(required(&input.image, "image").and_then(|i| Image::parse("image", i)));
        let replicas = errors.collect(
            input
                .replicas
                .map_or(Ok(Replicas::DEFAULT), |r| Replicas::parse("replicas", r)),
        );
        let port = errors.collect(input.port.map(|p| Port::parse("port", p)).transpose());
        let env = errors.collect(parse_env(input.env.as_ref()));
        let resources = errors.collect(parse_resources(input.resources.as_ref()));
        let expose = errors.collect(match &input.expose {
            Some(raw) => Expose::parse("expose", raw),
            None if input.port.is_some() => Ok(Expose::Cluster),
            None => Ok(Expose::None),
        });
        if let Some(expose) = expose
            && expose != Expose::None
            && input.port.is_none()
        {
            errors.push(FieldError::new(
                "port",
                "is required when expose is cluster or ingress",
            ));
        }
        errors.finish(|| App {
            name: name.expect("checked"),
            image: image.expect("checked"),
            replicas: replicas.expect("checked"),
            port: port.expect("checked"),
            env: env.expect("checked"),
            resources: resources.expect("checked"),
            expose: expose.expect("checked"),
        })
    }

    /// Fills resources the app left out from the environment's container defaults.
    pub fn resolve(self, defaults: &Limits) -> ResolvedApp {
        let resources = Resources {
            cpu: self.resources.cpu.unwrap_or(defaults.default_cpu),
            memory: self.resources.memory.unwrap_or(defaults.default_memory),
        };
        App {
            name: self.name,
            image: self.image,
            replicas: self.replicas,
            port: self.port,
            env: self.env,
            resources,
            expose: self.expose,
        }
    }
}

impl<R> App<R> {
    fn input_with(&self, resources: Option<ResourcesInput>) -> AppInput {
        AppInput {
            name: Some(self.name.to_string()),
            image: Some(self.image.as_str().to_owned()),
            replicas: Some(i64::from(self.replicas.get())),
            port: self.port.map(|p| i64::from(p.get())),
            env: (!self.env.is_empty()).then(|| {
                self.env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect()
            }),
            resources,
            expose: Some(self.expose.to_string()),
        }
    }
}

impl App {
    pub fn to_input(&self) -> AppInput {
        let r = self.resources;
        let given = r.cpu.is_some() || r.memory.is_some();
        self.input_with(given.then(|| ResourcesInput {
            cpu: r.cpu.map(|c| c.to_string()),
            memory: r.memory.map(|m| m.to_string()),
        }))
    }
}

impl ResolvedApp {
    pub fn to_input(&self) -> AppInput {
        self.input_with(Some(ResourcesInput {
            cpu: Some(self.resources.cpu.to_string()),
            memory: Some(self.resources.memory.to_string()),
        }))
    }
}

fn parse_env(
    raw: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<EnvVarName, String>, ValidationErrors> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    if raw.len() > MAX_ENV_VARS {
        return Err(ValidationErrors::single(
            "env",
            "must set at most 100 variables",
        ));
    }
    let mut errors = ValidationErrors::new();
    let mut env = BTreeMap::new();
    for (key, value) in raw {
        let Some(name) = errors.collect(EnvVarName::parse("env", key)) else {
            continue;
        };
        if value.len() > MAX_ENV_VALUE_LEN {
            errors.push(FieldError::new(
                format!("env.{name}"),
                "must be at most 4096 bytes",
            ));
        }
        env.insert(name, value.clone());
    }
    errors.finish(|| env)
}

fn parse_resources(raw: Option<&ResourcesInput>) -> Result<ResourcesRequest, ValidationErrors> {
    let Some(raw) = raw else {
        return Ok(ResourcesRequest::default());
    };
    let mut errors = ValidationErrors::new();
    let cpu = errors.collect(
        raw.cpu
            .as_deref()
            .map(|c| CpuQuantity::parse("cpu", c))
            .transpose(),
    );
    let memory = errors.collect(
        raw.memory
            .as_deref()
            .map(|m| ByteQuantity::parse("memory", m))
            .transpose(),
    );
    errors.under("resources").finish(|| ResourcesRequest {
        cpu: cpu.flatten(),
        memory: memory.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposing_needs_a_port() {
        let input = AppInput {
            name: Some("web".into()),
            image: Some("nginx".into()),
            expose: Some("cluster".into()),
            ..Default::default()
        };
        assert_eq!(App::parse(&input).unwrap_err().errors()[0].field, "port");
        let with_port = AppInput {
            port: Some(8080),
            expose: None,
            ..input
        };
        assert_eq!(App::parse(&with_port).unwrap().expose, Expose::Cluster);
    }
}
