//! How long confining a query takes (parse, rewrite, print, parse again and
//! check): the whole of what enforcement adds to a tenant's query.

use berth_promql::confine;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench_confine(c: &mut Criterion) {
    let queries = [
        ("a selector", "up"),
        (
            "a portal chart",
            r#"sum by (pod) (rate(container_cpu_usage_seconds_total{container!=""}[5m]))"#,
        ),
        (
            "a join with a subquery",
            r#"max_over_time(sum by (pod) (rate(container_cpu_usage_seconds_total[1m]))[30m:1m]) / on (pod) group_left (node) kube_pod_info * 100 > 80"#,
        ),
    ];
    for (name, query) in queries {
        c.bench_function(&format!("confine {name}"), |b| {
            b.iter(|| confine(black_box(query), black_box("team-a")).unwrap())
        });
    }
}

criterion_group!(benches, bench_confine);
criterion_main!(benches);
