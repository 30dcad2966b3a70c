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
    /// The rewritten query did not read back as confined: never expected, but
    /// a query that cannot be shown safe is refused.
    #[error("could not be confined to the namespace")]
    NotConfined,
}

/// `query` with every selector confined to `namespace`, as a query string.
pub fn confine(query: &str, namespace: &str) -> Result<String, PromqlError> {
    let mut expr = parse(query)?;
    confine_expr(&mut expr, namespace)?;
    checked_print(&expr, namespace)
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
