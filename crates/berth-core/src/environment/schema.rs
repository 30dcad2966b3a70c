//! The JSON Schema of the wire types as the `Environment` CRD carries it:
//! patterns, bounds and CEL rules (`x-kubernetes-validations`) that mirror
//! the parsers of this module, so that the apiserver refuses, naming the
//! field, what [`super::EnvironmentSpec::parse`] would refuse later.
//!
//! Each function here is a schemars `transform` for an attribute on a wire
//! struct's field (here, and on the CRD's spec in `berth-manifests`, which
//! repeats the top-level fields of [`super::EnvironmentSpecInput`]). The
//! schema may accept a little more than the parser where an exact rule
//! would be unwieldy (Unicode spaces in an email, byte lengths counted as
//! characters), never less: everything the API writes must pass it.

use schemars::Schema;
use serde_json::{Value, json};

/// Adds a CEL rule (`{rule, message, ...}`) to the schema's rules.
fn push_rule(schema: &mut Schema, entry: Value) {
    match schema.get_mut("x-kubernetes-validations") {
        Some(Value::Array(rules)) => rules.push(entry),
        _ => {
            schema.insert("x-kubernetes-validations".into(), json!([entry]));
        }
    }
}

/// Adds `rule` with its `message` to the schema's CEL rules.
fn rule(schema: &mut Schema, rule: &str, message: &str) {
    push_rule(schema, json!({"rule": rule, "message": message}));
}

/// Longest quantity text: `quantity::MAX_TEXT_LEN`.
const MAX_QUANTITY_LEN: u64 = 24;

/// A CPU quantity as `CpuQuantity::parse` reads it: whole thousandths of a
/// core from 1m to 10000, so `0.5` and `1.0m` pass, `0.0005` and `1.5m` do not.
pub fn cpu_quantity(schema: &mut Schema) {
    const PATTERN: &str = r"^([0-9]+(\.[0-9]{1,3}0*)?|[0-9]+(\.0+)?m)$";
    schema.insert("pattern".into(), PATTERN.into());
    schema.insert("maxLength".into(), MAX_QUANTITY_LEN.into());
    // Matching the pattern again (a raw CEL string: no escapes) gives what
    // it refuses a message for people.
    rule(
        schema,
        &format!(
            "self.matches(r'{PATTERN}') && quantity(self).isGreaterThan(quantity('0')) && quantity(self).compareTo(quantity('10k')) <= 0"
        ),
        "must be a CPU quantity such as 500m or 2 (whole thousandths, from 1m to 10000)",
    );
}

/// A byte quantity as `ByteQuantity::parse` reads it: a whole number of
/// bytes from 1 to 1Pi, with a decimal or binary suffix. A decimal amount
/// is whole when its fraction has no more digits than the suffix has
/// zeros (`1.5k`, not `0.5`), which the pattern checks; a fraction of a
/// binary suffix (`1.5Gi`) is left to the parser, as CEL's `isInteger()`
/// is false for large binary quantities however whole.
pub fn byte_quantity(schema: &mut Schema) {
    let decimal = [
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ]
    .map(|(suffix, zeros)| match zeros {
        0 => r"[0-9]+(\.0+)?".to_owned(),
        _ => format!(r"[0-9]+(\.[0-9]{{1,{zeros}}}0*)?{suffix}"),
    })
    .join("|");
    let pattern = format!(r"^({decimal}|[0-9]+(\.[0-9]+)?[KMGTPE]i)$");
    rule(
        schema,
        &format!(
            "self.matches(r'{pattern}') && quantity(self).isGreaterThan(quantity('0')) && quantity(self).compareTo(quantity('1Pi')) <= 0"
        ),
        "must be a whole number of bytes such as 512Mi, 4Gi or 10G (suffixes k, M, G, T, P, Ki, Mi, Gi, Ti, Pi; at most 1Pi)",
    );
    schema.insert("pattern".into(), pattern.into());
    schema.insert("maxLength".into(), MAX_QUANTITY_LEN.into());
}

/// Go-style units, largest first, as `Ttl::parse` reads them.
const TTL_PATTERN: &str = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";
/// The same with few enough digits that CEL's `duration()` (which holds
/// about 2.5 million hours) never overflows, so the bounds rule always
/// evaluates; every TTL the parser accepts, written without leading zeros,
/// fits.
const TTL_DIGITS_PATTERN: &str = "^([0-9]{1,5}h)?([0-9]{1,7}m)?([0-9]{1,9}s)?$";

/// A TTL as `Ttl::parse` reads it: from 1m to 8760h.
pub fn ttl(schema: &mut Schema) {
    schema.insert("pattern".into(), TTL_PATTERN.into());
    schema.insert("minLength".into(), 2.into());
    schema.insert("maxLength".into(), 24.into());
    // The rule refuses what the pattern refuses too, with a message for people.
    rule(
        schema,
        &format!(
            "self != '' && self.matches('{TTL_DIGITS_PATTERN}') && duration(self) >= duration('1m') && duration(self) <= duration('8760h')"
        ),
        "must be a duration such as 72h or 1h30m (units h, m, s, largest first), from 1m to 8760h",
    );
}

/// An email as `Email::parse` reads it (before it trims and lowercases):
/// one `@`, a local part of at most 64 characters without spaces or
/// control characters, a domain of dot-separated labels. Not `format:
/// email`, which the apiserver checks by RFC 5322 and so refuses addresses
/// Berth accepts, such as `a..b@example.com`.
pub fn email(schema: &mut Schema) {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    schema.insert(
        "pattern".into(),
        format!(r"^\s*[^@\s\x00-\x1f\x7f-\x9f]{{1,64}}@{label}(\.{label})+\s*$").into(),
    );
    schema.insert("maxLength".into(), 254.into());
}

/// A container image reference as `image::is_image_ref` reads it:
/// `[registry[:port]/]path[:tag][@sha256:digest]`, where a first path part
/// holding a `.` or `:` (or `localhost`) is the registry.
pub fn image(schema: &mut Schema) {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
    // 1 to 65535, as Rust's u16 parser reads it (a leading + or zeros allowed).
    let port = r"\+?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    let host = format!(r"((localhost|{label}(\.{label})+)(:{port})?|{label}:{port})");
    let part = "[a-z0-9]([a-z0-9._-]*[a-z0-9])?";
    // A first part with a dot would be a registry, so as a path part it has none.
    let first = "[a-z0-9]([a-z0-9_-]*[a-z0-9])?";
    let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    schema.insert(
        "pattern".into(),
        format!(r"^(({host}|{first})/({part}/)*{part}|{part})(:{tag})?(@sha256:[0-9a-f]{{64}})?$")
            .into(),
    );
    schema.insert("minLength".into(), 1.into());
    schema.insert("maxLength".into(), 512.into());
}

/// An app's environment variables as `app::parse_env` reads them: at most
/// 100, each named by 1 to 128 letters, digits and `_` (not starting with a
/// digit), each value at most 4096 characters (the parser counts bytes).
pub fn env(schema: &mut Schema) {
    schema.insert("maxProperties".into(), 100.into());
    schema.insert(
        "additionalProperties".into(),
        json!({"type": "string", "maxLength": 4096}),
    );
    rule(
        schema,
        "self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]{0,127}$'))",
        "variable names must be 1 to 128 letters, digits and '_', not starting with a digit",
    );
}

/// No two apps of an environment share a name (`spec::parse_apps`).
pub fn unique_app_names(schema: &mut Schema) {
    rule(
        schema,
        "self.all(a, !has(a.name) || self.exists_one(b, has(b.name) && b.name == a.name))",
        "app names must be unique within the environment",
    );
}

/// No two members share an email, compared as `Email::parse` normalises
/// it (trimmed, lowercase).
pub fn unique_member_emails(schema: &mut Schema) {
    rule(
        schema,
        "self.all(m, !has(m.email) || self.exists_one(n, has(n.email) && n.email.trim().lowerAscii() == m.email.trim().lowerAscii()))",
        "member emails must appear only once",
    );
}

/// `App::parse`: exposing an app needs its port.
pub fn app(schema: &mut Schema) {
    push_rule(
        schema,
        json!({
            "rule": "!has(self.expose) || self.expose == 'none' || has(self.port)",
            "message": "port is required when expose is cluster or ingress",
            "fieldPath": ".port",
            "reason": "FieldValueRequired",
        }),
    );
}
