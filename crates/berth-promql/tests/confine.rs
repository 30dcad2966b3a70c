//! Confinement of PromQL to one namespace: a table of queries, and a proptest
//! over generated queries that the confined query never selects another
//! namespace.

use berth_promql::{
    MAX_NESTING, MAX_OPERATORS, NAMESPACE_LABEL, PromqlError, confine, confine_selector,
    namespace_selector, selectors,
};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, parse};
use proptest::prelude::*;

const NS: &str = "team-a";

/// Every selector of `query` (parsed back) has exactly one matcher on the
/// namespace, `namespace="team-a"`.
fn assert_confined(query: &str) {
    let expr = parse(query).unwrap_or_else(|e| panic!("{query} does not parse back: {e}"));
    for vs in selectors(&expr) {
        let on_namespace: Vec<_> = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name == NAMESPACE_LABEL)
            .collect();
        assert_eq!(on_namespace.len(), 1, "{query}");
        assert_eq!(on_namespace[0].op, MatchOp::Equal, "{query}");
        assert_eq!(on_namespace[0].value, NS, "{query}");
        assert!(vs.matchers.or_matchers.is_empty(), "{query}");
    }
}

#[test]
fn every_selector_anywhere_gets_the_namespace() {
    let queries = [
        ("up", r#"up{namespace="team-a"}"#),
        (
            r#"rate(http_requests_total{job="web"}[5m])"#,
            r#"rate(http_requests_total{job="web",namespace="team-a"}[5m])"#,
        ),
        (
            r#"sum by (pod) (rate(x[1m] offset 5m))"#,
            r#"sum by (pod) (rate(x{namespace="team-a"}[1m] offset 5m))"#,
        ),
        (
            "a / on (pod) group_left (node) b",
            r#"a{namespace="team-a"} / on (pod) group_left (node) b{namespace="team-a"}"#,
        ),
        (
            "max_over_time(rate(x[1m])[10m:1m] @ 1700000000)",
            r#"max_over_time(rate(x{namespace="team-a"}[1m])[10m:1m] @ 1700000000.000)"#,
        ),
        (r#"x{namespace="team-a"}"#, r#"x{namespace="team-a"}"#),
        (
            r#"{__name__=~".+"}"#,
            r#"{__name__=~".+",namespace="team-a"}"#,
        ),
        ("absent(nothing)", r#"absent(nothing{namespace="team-a"})"#),
        ("1 + 2", "1 + 2"),
        (
            r#"topk(3, x) or vector(1)"#,
            r#"topk(3, x{namespace="team-a"}) or vector(1)"#,
        ),
        (
            r#"label_replace(x, "where", "$1", "namespace", "(.*)")"#,
            r#"label_replace(x{namespace="team-a"}, "where", "$1", "namespace", "(.*)")"#,
        ),
        (
            r#"count_values("value", x)"#,
            r#"count_values("value", x{namespace="team-a"})"#,
        ),
        (
            "x @ start() offset -1m",
            r#"x{namespace="team-a"} @ start() offset -1m"#,
        ),
    ];
    for (query, want) in queries {
        let got = confine(query, NS).unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(got, want, "{query}");
        assert_confined(&got);
    }
}

#[test]
fn matchers_that_could_reach_another_namespace_are_refused() {
    let refused = [
        r#"x{namespace="team-b"}"#,
        r#"x{namespace!="team-b"}"#,
        r#"x{namespace=~"team-a|team-b"}"#,
        r#"x{namespace=~"team-a"}"#,
        r#"x{namespace=~".*"}"#,
        r#"x{namespace!~"kube-.*"}"#,
        r#"x{namespace=""}"#,
        r#"x{namespace="team-a", namespace="team-b"}"#,
        r#"x{"namespace"="team-b"}"#,
        r#"sum(rate(x{namespace="team-b"}[5m]))"#,
        r#"x or y{namespace="team-b"}"#,
        r#"x unless on (pod) y{namespace=~".+"}"#,
        r#"max_over_time(x{namespace="team-b"}[5m:1m])"#,
        r#"x{namespace="team-b"} offset 1h"#,
        r#"absent(x{namespace="team-b"})"#,
    ];
    for query in refused {
        match confine(query, NS) {
            Err(PromqlError::OtherNamespace { namespace, .. }) => assert_eq!(namespace, NS),
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[test]
fn results_cannot_pass_for_another_namespace() {
    for (query, function) in [
        (
            r#"label_replace(x, "namespace", "team-b", "", "")"#,
            "label_replace",
        ),
        (
            r#"label_replace(vector(1), ("namespace"), "team-b", "", "")"#,
            "label_replace",
        ),
        (r#"label_join(x, "namespace", "", "pod")"#, "label_join"),
        (r#"count_values("namespace", x)"#, "count_values"),
    ] {
        assert_eq!(
            confine(query, NS),
            Err(PromqlError::WritesNamespace { function }),
            "{query}"
        );
    }
    assert_eq!(
        confine(r#"info(x)"#, NS),
        Err(PromqlError::ImplicitSelection("info"))
    );
}

#[test]
fn refusals_say_why() {
    let message = confine(r#"x{namespace=~"a|b"}"#, NS)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        r#"`namespace=~"a|b"` could select series of another namespace: leave the namespace out, or write namespace="team-a""#
    );
    assert!(matches!(confine("sum(", NS), Err(PromqlError::Parse(_))));
    assert_eq!(
        confine(r#"x{a="1" or b="2"}"#, NS),
        Err(PromqlError::OrMatchers)
    );
}

#[test]
fn series_selectors_for_the_series_and_label_apis() {
    assert_eq!(
        confine_selector(r#"up{job="web"}"#, NS).unwrap(),
        r#"up{job="web",namespace="team-a"}"#
    );
    assert_eq!(
        confine_selector("rate(up[5m])", NS),
        Err(PromqlError::NotASelector)
    );
    assert!(matches!(
        confine_selector(r#"{namespace="kube-system"}"#, NS),
        Err(PromqlError::OtherNamespace { .. })
    ));
    assert_eq!(namespace_selector(NS), r#"{namespace="team-a"}"#);
}

/// Matchers a generated selector may carry, the namespace ones included.
fn matcher() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"job="web""#.to_owned()),
        Just(r#"pod=~"web-.*""#.to_owned()),
        Just(r#"container!="""#.to_owned()),
        Just(r#"namespace="team-a""#.to_owned()),
        Just(r#"namespace="team-b""#.to_owned()),
        Just(r#"namespace!="team-a""#.to_owned()),
        Just(r#"namespace=~"team-.*""#.to_owned()),
        Just(r#"namespace!~"team-a""#.to_owned()),
        Just(r#"namespace=~"team-a""#.to_owned()),
        Just(r#"__name__=~".+""#.to_owned()),
        "[a-z_]{1,8}=\"[a-z\\-]{0,8}\"",
    ]
}

fn selector() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(String::new()),
            Just("up".to_owned()),
            Just("kube_pod_status_phase".to_owned())
        ],
        prop::collection::vec(matcher(), 1..4),
        prop_oneof![
            Just(""),
            Just(" offset 5m"),
            Just(" @ 1700000000"),
            Just(" @ end() offset -1m")
        ],
    )
        .prop_map(|(name, matchers, modifier)| {
            format!("{name}{{{}}}{modifier}", matchers.join(","))
        })
}

/// A range vector: a matrix selector or a subquery.
fn range(vector: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        selector().prop_map(|s| match s.split_once(" ") {
            Some((sel, modifier)) => format!("{sel}[5m] {modifier}"),
            None => format!("{s}[5m]"),
        }),
        vector.prop_map(|v| format!("({v})[10m:1m]")),
    ]
}

/// Instant-vector PromQL built from the grammar's constructs.
fn query() -> impl Strategy<Value = String> {
    selector().prop_recursive(5, 40, 3, |inner| {
        let inner = inner.boxed();
        prop_oneof![
            inner.clone().prop_map(|v| format!("abs({v})")),
            range(inner.clone()).prop_map(|r| format!("rate({r})")),
            range(inner.clone()).prop_map(|r| format!("max_over_time({r})")),
            (
                prop_oneof![Just("sum"), Just("max"), Just("count")],
                inner.clone()
            )
                .prop_map(|(op, v)| format!("{op} by (pod, namespace) ({v})")),
            inner.clone().prop_map(|v| format!("topk(2, {v})")),
            (inner.clone(), any::<bool>()).prop_map(|(v, own)| format!(
                "count_values(\"{}\", {v})",
                if own { "namespace" } else { "value" }
            )),
            (
                inner.clone(),
                prop_oneof![
                    Just("+"),
                    Just("/"),
                    Just("and"),
                    Just("or"),
                    Just("unless")
                ],
                prop_oneof![Just(""), Just(" on (pod)"), Just(" ignoring (namespace)")],
                inner.clone()
            )
                .prop_map(|(l, op, matching, r)| format!("({l}) {op}{matching} ({r})")),
            (inner.clone(), inner.clone())
                .prop_map(|(l, r)| format!("({l}) * on (pod) group_left (namespace) ({r})")),
            inner.clone().prop_map(|v| format!("-({v})")),
            inner.clone().prop_map(|v| format!("absent({v})")),
            (
                inner.clone(),
                prop_oneof![Just("namespace"), Just("target")]
            )
                .prop_map(|(v, dst)| format!(
                    "label_replace({v}, \"{dst}\", \"team-b\", \"\", \"\")"
                )),
            inner.clone().prop_map(|v| format!("({v}) > 1")),
            Just("vector(1)".to_owned()),
        ]
    })
}

#[test]
fn queries_too_deep_or_too_fine_are_refused_before_they_reach_anything() {
    let nested = |n: usize| format!("{}up{}", "(".repeat(n), ")".repeat(n));
    // Each of these overflowed a server thread's stack, or was on the way.
    for deep in [
        format!("{}up", "-".repeat(2000)),
        nested(2000),
        nested(MAX_NESTING + 1),
        format!("{}up", "up + ".repeat(MAX_OPERATORS + 1)),
        format!("{}up", "up and ".repeat(MAX_OPERATORS + 1)),
    ] {
        assert!(
            matches!(confine(&deep, NS), Err(PromqlError::TooComplex(_))),
            "{}",
            &deep[..40]
        );
    }
    assert!(confine(&nested(MAX_NESTING - 1), NS).is_ok());
    // Brackets and operators inside strings, braces and comments are text.
    let text = format!(
        "up{{job=\"{}\", path!~\"{}\"}} # {}",
        "(".repeat(100),
        "-".repeat(300),
        "+".repeat(300)
    );
    assert!(confine(&text, NS).is_ok(), "{text}");

    // [30d:1ms] made Prometheus allocate some 62 GB and die.
    for fine in [
        "sum_over_time(rate(container_cpu_usage_seconds_total[1m])[30d:1ms])",
        "max_over_time(up[31d:])",
        "max_over_time((max_over_time(up[1h:1m]))[1d:1m])",
    ] {
        let refused = confine(fine, NS);
        assert!(
            matches!(refused, Err(PromqlError::SubqueryTooFine { .. })),
            "{fine}: {refused:?}"
        );
        assert!(refused.unwrap_err().to_string().contains("step"));
    }
    for fine_enough in [
        "max_over_time(rate(up[5m])[1d:5m])",
        "max_over_time(up[2h:])",
        "max_over_time((max_over_time(up[1h:5m]))[1d:1h])",
    ] {
        assert!(confine(fine_enough, NS).is_ok(), "{fine_enough}");
    }
}

/// Whether the query as written names something that confinement refuses.
fn has_reason_to_refuse(expr: &Expr) -> bool {
    let foreign_matcher = selectors(expr).into_iter().any(|vs| {
        vs.matchers
            .matchers
            .iter()
            .any(|m| m.name == NAMESPACE_LABEL && !(m.op == MatchOp::Equal && m.value == NS))
    });
    let text = expr.to_string();
    foreign_matcher
        || text.contains(r#"count_values("namespace""#)
        || text.contains(r#", "namespace", "team-b""#)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A confined query selects only the own namespace; a refused one had a
    /// reason to be refused.
    #[test]
    fn the_confined_query_never_selects_another_namespace(query in query()) {
        let Ok(written) = parse(&query) else {
            // The generator writes some type errors; Prometheus refuses them too.
            return Ok(());
        };
        match confine(&query, NS) {
            Ok(confined) => {
                prop_assert!(!has_reason_to_refuse(&written), "{query} -> {confined}");
                assert_confined(&confined);
                let back = parse(&confined).unwrap();
                prop_assert_eq!(selectors(&back).len(), selectors(&written).len());
                for vs in selectors(&back) {
                    for other in ["team-b", "", "team-a-x", "kube-system"] {
                        let matches_other = vs
                            .matchers
                            .matchers
                            .iter()
                            .filter(|m| m.name == NAMESPACE_LABEL)
                            .all(|m| m.is_match(other));
                        prop_assert!(!matches_other, "{confined} selects {other}");
                    }
                }
            }
            // Nested subqueries multiply their steps past the bound.
            Err(PromqlError::SubqueryTooFine { .. }) => {}
            Err(e) => prop_assert!(has_reason_to_refuse(&written), "{query}: {e}"),
        }
    }
}
