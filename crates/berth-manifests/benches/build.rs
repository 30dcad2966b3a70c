//! How long building an environment's objects (and their YAML) takes for a
//! spec with 20 apps: the controller does this on every reconcile.

#[path = "../tests/support/mod.rs"]
mod support;

use berth_manifests::{BuildOptions, build, to_yaml};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn bench_build(c: &mut Criterion) {
    let spec = support::resolved(support::many_apps(20));
    let options = BuildOptions {
        owner_uid: Some("uid".into()),
        ..BuildOptions::default()
    };
    c.bench_function("build 20 apps", |b| {
        b.iter(|| build(black_box(&spec), black_box(&options)))
    });
    c.bench_function("build 20 apps + yaml", |b| {
        b.iter(|| to_yaml(&build(black_box(&spec), black_box(&options))))
    });
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
