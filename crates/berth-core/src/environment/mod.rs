//! Environments: what a user asks for, and the templates and policy applied to it.
//!
//! The flow is: the wire form ([`EnvironmentSpecInput`], exactly the contract's
//! JSON, in `input`) is parsed once into an [`EnvironmentSpec`] (`spec`) that
//! cannot hold invalid values; a [`Template`] and the [`Policy`] then fill what
//! the user left out ([`resolve`]), giving a [`ResolvedSpec`] (`resolved`) with
//! every field set, which the manifest builder builds from and the policy
//! judges. A stored Environment is read back with [`ResolvedSpec::stored`],
//! which looks nothing up.
//!
//! Modules depend one way only: `input` (wire forms) and the value types
//! (`name`, `quantity`, `duration`, `image`) at the bottom; `settings`,
//! `app`, `member`, `exceptions`, `spec` and `template` on them; `resolved` on those;
//! `policy` on `resolved`; `resolve` on everything.

mod app;
mod duration;
mod exceptions;
mod image;
mod input;
mod member;
mod name;
mod policy;
mod quantity;
mod reserved;
mod resolve;
mod resolved;
pub mod schema;
mod settings;
mod spec;
mod template;

#[cfg(test)]
mod tests;

pub use app::{App, EnvVarName, Expose, Port, Replicas, ResolvedApp, Resources, ResourcesRequest};
pub use duration::Ttl;
pub use exceptions::{Exceptions, IngressHost, MAX_INGRESS_HOSTS};
pub use image::Image;
pub use input::{
    AppInput, EnvironmentSpecInput, ExceptionsInput, LimitsInput, MemberInput, NetworkInput,
    ObjectCountsInput, QuotaInput, ResourcesInput, TemplateInput, TemplateSpecInput,
};
pub use member::{Member, MemberRole};
pub use name::{AppName, ContainerName, EnvironmentName, ObjectName, TemplateName};
pub use policy::{
    Approval, Decision, MaxQuota, MaxQuotaInput, Policy, PolicyInput, Registration, Violation,
};
pub use quantity::{ByteQuantity, CpuQuantity, ObjectCount, PodCount};
pub use reserved::{DEFAULT_INGRESS_NAMESPACE, PLATFORM_NAMES, ReservedNames};
pub use resolve::resolve;
pub use resolved::{Bounds, Defaults, ResolvedSpec};
pub use settings::{
    Description, Isolation, Limits, LimitsRequest, ObjectCounts, PodSecurity, Quota, QuotaRequest,
    Settings,
};
pub use spec::EnvironmentSpec;
pub use template::{Template, builtin_templates};

/// Most apps one environment may declare: bounds the objects one request creates.
pub const MAX_APPS: usize = 50;
/// Most members one environment may list.
pub const MAX_MEMBERS: usize = 100;
/// Most environment variables one app may set.
pub const MAX_ENV_VARS: usize = 100;

/// Defines a closed set of words accepted on the wire, with its parser and its
/// text form, so every such choice rejects the same way: naming what is allowed.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(
                field: &str,
                raw: &str,
            ) -> Result<Self, $crate::validation::ValidationErrors> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::validation::ValidationErrors::single(
                        field,
                        format!("must be one of: {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use choice;
