//! How answers are shown: tables for people, JSON or YAML for scripts.

use crate::error::CliError;
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;
use std::io::Write;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables and sentences, for people.
    #[default]
    Table,
    /// The API's JSON, for scripts (`jq`).
    Json,
    /// The API's JSON as YAML.
    Yaml,
}

/// Prints `value` as asked: as JSON or YAML for scripts, or what `human`
/// makes of it for people.
pub fn print(
    format: Format,
    value: &Value,
    human: impl FnOnce(&Value) -> String,
) -> Result<(), CliError> {
    say(&render(format, value, human)?)
}

/// Writes `text` to standard output as a line (or lines).
pub fn say(text: &str) -> Result<(), CliError> {
    if text.ends_with('\n') {
        write_out(text.as_bytes())
    } else {
        write_out(format!("{text}\n").as_bytes())
    }
}

/// Writes to standard output at once (streams are read as they come). When
/// the reader went away (`berth env logs -f NAME | head`), there is nothing
/// left to do: the command ends, successfully.
pub fn write_out(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(crate::error::EXIT_OK)
        }
        Err(e) => Err(CliError::Failed(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

pub fn render(
    format: Format,
    value: &Value,
    human: impl FnOnce(&Value) -> String,
) -> Result<String, CliError> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(value).expect("JSON serializes"),
        Format::Yaml => yaml(value)?,
        Format::Table => human(value),
    })
}

pub fn yaml(value: &Value) -> Result<String, CliError> {
    serde_yaml::to_string(value).map_err(|e| CliError::Failed(format!("cannot write YAML: {e}")))
}

/// A borderless table with upper-case headers, as `kubectl get` prints.
pub fn table<R, C>(headers: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    // The last column needs no padding after it.
    let text = table.to_string();
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `field: value` lines, the labels aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

/// The `items` of a list answer.
pub fn items_of(value: &Value) -> &[Value] {
    value["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The text of a JSON field, or `-` when absent.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A quota (the spec's or the policy's most) in one line.
pub fn quota(quota: &Value) -> String {
    format!(
        "cpu {}, memory {}, storage {}, pods {}",
        text(&quota["cpu"]),
        text(&quota["memory"]),
        text(&quota["storage"]),
        text(&quota["pods"])
    )
}

/// How long ago an RFC 3339 time was, as kubectl says it: `45s`, `12m`, `5h`, `3d`.
pub fn age(at: &Value) -> String {
    since(at, OffsetDateTime::now_utc()).unwrap_or_else(|| "-".into())
}

fn since(at: &Value, now: OffsetDateTime) -> Option<String> {
    let at = OffsetDateTime::parse(at.as_str()?, &Rfc3339).ok()?;
    Some(duration((now - at).whole_seconds()))
}

/// How long until an RFC 3339 time: `in 7h`, or `expired`.
pub fn until(at: &Value) -> String {
    let Some(when) = at
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    else {
        return "never".into();
    };
    let left = (when - OffsetDateTime::now_utc()).whole_seconds();
    if left <= 0 {
        "expired".into()
    } else {
        format!("in {}", duration(left))
    }
}

fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_line_up_without_borders() {
        let out = table(
            &["name", "phase"],
            [
                vec!["team-a-dev".to_owned(), "Ready".to_owned()],
                vec!["b".to_owned(), "Provisioning".to_owned()],
            ],
        );
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("NAME"), "{out}");
        let column = lines[0].find("PHASE").unwrap();
        assert_eq!(lines[1].find("Ready"), Some(column), "{out}");
        assert_eq!(lines[2].find("Provisioning"), Some(column), "{out}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn ages_read_as_kubectl_says_them() {
        let now = OffsetDateTime::parse("2026-01-02T00:00:00Z", &Rfc3339).unwrap();
        let cases = [
            ("2026-01-01T23:59:15Z", "45s"),
            ("2026-01-01T23:48:00Z", "12m"),
            ("2026-01-01T19:00:00Z", "5h"),
            ("2025-12-29T00:00:00Z", "4d"),
        ];
        for (at, expected) in cases {
            assert_eq!(since(&json!(at), now).as_deref(), Some(expected), "{at}");
        }
        assert_eq!(since(&Value::Null, now), None);
        assert_eq!(until(&Value::Null), "never");
        assert_eq!(until(&json!("2000-01-01T00:00:00Z")), "expired");
    }

    #[test]
    fn scripts_get_json_or_yaml() {
        let value = json!({"name": "a", "n": 1});
        let out = render(Format::Json, &value, |_| unreachable!()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
        let out = render(Format::Yaml, &value, |_| unreachable!()).unwrap();
        assert_eq!(serde_yaml::from_str::<Value>(&out).unwrap(), value);
        assert_eq!(render(Format::Table, &value, |_| "x".into()).unwrap(), "x");
        assert_eq!(text(&json!(["a.example", 8080])), "a.example,8080");
        assert_eq!(text(&json!([])), "-");
        assert_eq!(text(&json!("")), "-");
    }
}
