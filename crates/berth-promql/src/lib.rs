//! Tenant-safe PromQL: a query confined to one namespace before it reaches
//! Prometheus. Pure: no I/O.
//!
//! The query is parsed into its syntax tree and every vector and matrix
//! selector, wherever it sits (function arguments, aggregations, both sides
//! of binary operations, subqueries, under `offset` and `@`), gets the
//! matcher `namespace="<namespace>"`. The tree is then printed back to a
//! query string, which is parsed once more and checked, so that what goes to
//! Prometheus is what was checked.
//!
//! Which matchers on `namespace` a query may carry itself: none, or exactly
//! `namespace="<namespace>"`. Every other matcher on `namespace`
//! (`="other"`, `!="x"`, `=~"..."`, `!~"..."`, even a regex that happens to
//! match only the own namespace) is refused with [`PromqlError::OtherNamespace`]
//! rather than silently narrowed, so that a query never answers "nothing"
//! where it meant "someone else's".
//!
//! Series carry the namespace they were selected from, and the only ways a
//! query can write the `namespace` label of a result are refused:
//! `label_replace` and `label_join` with `namespace` as their destination,
//! and `count_values` with `namespace` as its label
//! ([`PromqlError::WritesNamespace`]). Labels copied by `group_left` and
//! `group_right` come from confined series and are their own namespace's.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::token::T_COUNT_VALUES;
use promql_parser::parser::{Expr, VectorSelector};
use thiserror::Error;

/// Reads a PromQL duration such as `30s`, `1m` or `1h30m`; `Err` says why not.
pub use promql_parser::util::parse_duration;

/// The label that names a series' namespace, as the kubelet, kube-state-metrics
/// and Berth's own `/metrics` write it.
pub const NAMESPACE_LABEL: &str = "namespace";

/// Why a query cannot be confined. Each message is a sentence for the person
/// who wrote the query.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PromqlError {
    /// Not PromQL, as the parser says.
    #[error("is not valid PromQL: {0}")]
    Parse(String),
    /// A matcher on `namespace` other than the own namespace's equality.
    #[error(
        "`{matcher}` could select series of another namespace: leave the namespace out, or write namespace=\"{namespace}\""
    )]
    OtherNamespace {
        /// The matcher as written, e.g. `namespace=~"a|b"`.
        matcher: String,
        /// The namespace the query is confined to.
        namespace: String,
    },
    /// A function or aggregation that would write the `namespace` label.
    #[error(
        "{function} may not write the namespace label: a result would pass for another namespace's"
    )]
    WritesNamespace {
        /// `label_replace`, `label_join` or `count_values`.
        function: &'static str,
    },
    /// A label name given by an expression the checker cannot read.
    #[error("the label argument of {function} must be a string literal")]
    LabelNotLiteral {
        /// The function or aggregation.
        function: &'static str,
    },
    /// `{a="1" or b="2"}`: alternatives inside one selector.
    #[error("`or` inside a selector's braces is not supported")]
    OrMatchers,
    /// A function that selects series the query does not name (`info`).
    #[error("{0} reads series the query does not name and is not supported")]
    ImplicitSelection(&'static str),
    /// Where only a series selector is allowed (`match[]`), something else.
    #[error("must be a series selector such as up{{job=\"web\"}}")]
    NotASelector,
    /// Deeper or longer than the parser and the checker handle with a
    /// bounded stack: see [`MAX_NESTING`] and [`MAX_OPERATORS`].
    #[error("{0}: write a simpler query")]
    TooComplex(String),
    /// A subquery whose range holds more steps than Prometheus should
    /// evaluate for one tenant: see [`MAX_SUBQUERY_STEPS`].
    #[error(
        "the subquery [{range}:{step}] evaluates {steps} steps, more than {MAX_SUBQUERY_STEPS} (nested subqueries multiply): give a longer step or a shorter range"
    )]
    SubqueryTooFine {
        range: String,
        /// As written, or Prometheus' default of the evaluation interval,
        /// counted as one second here.
        step: String,
        steps: u128,
    },
    /// The rewritten query did not read back as confined: never expected, but
    /// a query that cannot be shown safe is refused.
    #[error("could not be confined to the namespace")]
    NotConfined,
}

/// How deeply brackets (`(`, `[`, `{`) may nest. The parser and the checker
/// recurse once per level: 2,000 nested parentheses overflowed a server
/// thread's stack (a tenant's query took Berth down); Prometheus' own
/// queries nest a handful deep.
pub const MAX_NESTING: usize = 64;

/// How many operators (arithmetic, comparison, set, and unary signs) a
/// query may hold outside selectors' braces: each is a level of the tree the
/// checker walks recursively.
pub const MAX_OPERATORS: usize = 256;

/// How many steps all subqueries on one path of the tree may evaluate
/// together (the product of range/step of nested ones): `[30d:1ms]` made
/// Prometheus allocate some 62 GB and die. The same bound as the points of a
/// range query (Prometheus' 11,000).
pub const MAX_SUBQUERY_STEPS: u128 = 11_000;

/// `query` with every selector confined to `namespace`, as a query string.
pub fn confine(query: &str, namespace: &str) -> Result<String, PromqlError> {
    let mut expr = parse(query)?;
    check_subqueries(&expr, 1)?;
    confine_expr(&mut expr, namespace)?;
    checked_print(&expr, namespace)
}

/// Refuses, before parsing, what would make the parser or the checker recurse
/// past [`MAX_NESTING`] or [`MAX_OPERATORS`]. Reads the text as PromQL's
/// lexer does, as far as that needs: string literals (`"`, `'` with escapes,
/// `` ` `` raw) and `#` comments are skipped.
fn check_size(query: &str) -> Result<(), PromqlError> {
    let mut chars = query.chars().peekable();
    let (mut depth, mut braces, mut operators) = (0usize, 0usize, 0usize);
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' if c != '`' => escaped = true,
                        _ if d == c => break,
                        _ => {}
                    }
                }
            }
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                braces += usize::from(c == '{');
                if depth > MAX_NESTING {
                    return Err(PromqlError::TooComplex(format!(
                        "nests brackets more than {MAX_NESTING} deep"
                    )));
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if c == '}' {
                    braces = braces.saturating_sub(1);
                }
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' if braces == 0 => {
                // Two-character operators (`==`, `!=`, `<=`, `>=`) count once.
                if matches!(c, '=' | '!' | '<' | '>') && chars.peek() == Some(&'=') {
                    chars.next();
                }
                operators += 1;
            }
            _ if braces == 0 && c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if !(d.is_ascii_alphanumeric() || d == '_' || d == ':') {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                operators += usize::from(matches!(
                    word.to_ascii_lowercase().as_str(),
                    "and" | "or" | "unless" | "atan2"
                ));
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(PromqlError::TooComplex(format!(
                "has more than {MAX_OPERATORS} operators"
            )));
        }
    }
    Ok(())
}

/// Refuses subqueries that, with the ones around them (`outer` steps each),
/// would evaluate more than [`MAX_SUBQUERY_STEPS`] steps.
fn check_subqueries(expr: &Expr, outer: u128) -> Result<(), PromqlError> {
    match expr {
        Expr::Subquery(subquery) => {
            // Without a step Prometheus uses its evaluation interval, which
            // Berth does not know: counted as the finest usual one, 1 s.
            let step = subquery.step.unwrap_or(std::time::Duration::from_secs(1));
            let steps =
                outer.saturating_mul(subquery.range.as_millis() / step.as_millis().max(1) + 1);
            if steps > MAX_SUBQUERY_STEPS {
                return Err(PromqlError::SubqueryTooFine {
                    range: promql_parser::util::display_duration(&subquery.range),
                    step: subquery
                        .step
                        .map(|s| promql_parser::util::display_duration(&s))
                        .unwrap_or_default(),
                    steps,
                });
            }
            check_subqueries(&subquery.expr, steps)
        }
        Expr::Aggregate(agg) => {
            if let Some(param) = agg.param.as_deref() {
                check_subqueries(param, outer)?;
            }
            check_subqueries(&agg.expr, outer)
        }
        Expr::Unary(unary) => check_subqueries(&unary.expr, outer),
        Expr::Binary(binary) => {
            check_subqueries(&binary.lhs, outer)?;
            check_subqueries(&binary.rhs, outer)
        }
        Expr::Paren(paren) => check_subqueries(&paren.expr, outer),
        Expr::Call(call) => call
            .args
            .args
            .iter()
            .try_for_each(|arg| check_subqueries(arg, outer)),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => Ok(()),
    }
}

/// A series selector (`match[]` of the series and label APIs) confined to
/// `namespace`. Anything but a single selector is refused.
pub fn confine_selector(selector: &str, namespace: &str) -> Result<String, PromqlError> {
    match parse(selector)? {
        Expr::VectorSelector(mut vs) => {
            confine_selector_node(&mut vs, namespace)?;
            checked_print(&Expr::VectorSelector(vs), namespace)
        }
        _ => Err(PromqlError::NotASelector),
    }
}

/// The selector of every series of `namespace`: `{namespace="<namespace>"}`.
pub fn namespace_selector(namespace: &str) -> String {
    format!(
        "{{{}}}",
        Matcher::new(MatchOp::Equal, NAMESPACE_LABEL, namespace)
    )
}

/// Confines every selector of `expr` to `namespace` in place; refuses what
/// could reach or impersonate another namespace.
pub fn confine_expr(expr: &mut Expr, namespace: &str) -> Result<(), PromqlError> {
    match expr {
        Expr::Aggregate(agg) => {
            if agg.op.id() == T_COUNT_VALUES {
                let label = agg.param.as_deref().and_then(string_literal).ok_or(
                    PromqlError::LabelNotLiteral {
                        function: "count_values",
                    },
                )?;
                if label == NAMESPACE_LABEL {
                    return Err(PromqlError::WritesNamespace {
                        function: "count_values",
                    });
                }
            }
            if let Some(param) = agg.param.as_deref_mut() {
                confine_expr(param, namespace)?;
            }
            confine_expr(&mut agg.expr, namespace)
        }
        Expr::Unary(unary) => confine_expr(&mut unary.expr, namespace),
        Expr::Binary(binary) => {
            confine_expr(&mut binary.lhs, namespace)?;
            confine_expr(&mut binary.rhs, namespace)
        }
        Expr::Paren(paren) => confine_expr(&mut paren.expr, namespace),
        Expr::Subquery(subquery) => confine_expr(&mut subquery.expr, namespace),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => confine_selector_node(vs, namespace),
        Expr::MatrixSelector(ms) => confine_selector_node(&mut ms.vs, namespace),
        Expr::Call(call) => {
            let function = call.func.name;
            match function {
                "info" => return Err(PromqlError::ImplicitSelection("info")),
                "label_replace" | "label_join" => {
                    let destination = call
                        .args
                        .args
                        .get(1)
                        .and_then(|arg| string_literal(arg))
                        .ok_or(PromqlError::LabelNotLiteral { function })?;
                    if destination == NAMESPACE_LABEL {
                        return Err(PromqlError::WritesNamespace { function });
                    }
                }
                _ => {}
            }
            call.args
                .args
                .iter_mut()
                .try_for_each(|arg| confine_expr(arg, namespace))
        }
        // The parser never makes extension nodes; one the checker cannot
        // look into is not let through.
        Expr::Extension(_) => Err(PromqlError::NotConfined),
    }
}

/// Whether every selector of `expr` selects only `namespace`'s series, and
/// nothing in it writes the namespace label: the property [`confine_expr`]
/// establishes.
pub fn is_confined(expr: &Expr, namespace: &str) -> bool {
    let mut copy = expr.clone();
    confine_expr(&mut copy, namespace).is_ok()
        && selectors(expr).into_iter().all(|vs| {
            vs.matchers.or_matchers.is_empty()
                && vs.matchers.matchers.iter().any(|m| {
                    m.name == NAMESPACE_LABEL && m.op == MatchOp::Equal && m.value == namespace
                })
        })
}

/// Every vector selector of `expr`, those of matrix selectors included.
pub fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    let mut found = Vec::new();
    collect(expr, &mut found);
    found
}

fn collect<'a>(expr: &'a Expr, found: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::Aggregate(agg) => {
            if let Some(param) = agg.param.as_deref() {
                collect(param, found);
            }
            collect(&agg.expr, found);
        }
        Expr::Unary(unary) => collect(&unary.expr, found),
        Expr::Binary(binary) => {
            collect(&binary.lhs, found);
            collect(&binary.rhs, found);
        }
        Expr::Paren(paren) => collect(&paren.expr, found),
        Expr::Subquery(subquery) => collect(&subquery.expr, found),
        Expr::VectorSelector(vs) => found.push(vs),
        Expr::MatrixSelector(ms) => found.push(&ms.vs),
        Expr::Call(call) => call.args.args.iter().for_each(|arg| collect(arg, found)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn parse(query: &str) -> Result<Expr, PromqlError> {
    check_size(query)?;
    promql_parser::parser::parse(query).map_err(PromqlError::Parse)
}

/// Prints `expr` and reads the text back: what Prometheus will get must be
/// confined as the tree was.
fn checked_print(expr: &Expr, namespace: &str) -> Result<String, PromqlError> {
    let text = expr.to_string();
    match parse(&text) {
        Ok(back) if is_confined(&back, namespace) => Ok(text),
        _ => Err(PromqlError::NotConfined),
    }
}

fn confine_selector_node(vs: &mut VectorSelector, namespace: &str) -> Result<(), PromqlError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::OrMatchers);
    }
    if let Some(foreign) =
        vs.matchers.matchers.iter().find(|m| {
            m.name == NAMESPACE_LABEL && !(m.op == MatchOp::Equal && m.value == namespace)
        })
    {
        return Err(PromqlError::OtherNamespace {
            matcher: foreign.to_string(),
            namespace: namespace.to_owned(),
        });
    }
    vs.matchers.matchers.retain(|m| m.name != NAMESPACE_LABEL);
    vs.matchers
        .matchers
        .push(Matcher::new(MatchOp::Equal, NAMESPACE_LABEL, namespace));
    Ok(())
}

/// The value of a string literal, through parentheses, as Prometheus reads
/// label arguments.
fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::StringLiteral(s) => Some(&s.val),
        Expr::Paren(paren) => string_literal(&paren.expr),
        _ => None,
    }
}
