//! Data-layer throughput: synthetic generation, CSR construction and the per-user split.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lshrec::data::{split, synth};

fn bench_data(c: &mut Criterion) {
    let cfg = synth::SynthConfig {
        users: 2000,
        items: 5000,
        ratings: 200_000,
        ..Default::default()
    };
    let (ds, _) = synth::generate(&cfg).unwrap();
    let n = ds.interactions.len() as u64;
    let mut g = c.benchmark_group("data");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("synth_200k", |b| b.iter(|| synth::generate(&cfg).unwrap()));
    g.bench_function("csr_build_200k", |b| b.iter(|| ds.csr()));
    g.bench_function("split_per_user_200k", |b| {
        b.iter(|| split::split(&ds, split::SplitMethod::PerUser { frac: 0.2, min: 5 }, 1))
    });
    g.finish();
}

criterion_group!(benches, bench_data);
criterion_main!(benches);
