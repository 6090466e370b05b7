//! Training epochs on a MovieLens-100K-shaped set (943 users, 1682 items, ~55k positives):
//! elements = interactions, so the report reads as interactions per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lshrec::data::synth;
use lshrec::train::{self, ModelKind, TrainConfig};

fn bench_train(c: &mut Criterion) {
    let (ds, _) = synth::generate(&synth::SynthConfig::default()).unwrap();
    let pos = ds.implicit(4.0);
    let mut g = c.benchmark_group("train_epoch_ml100k_shape");
    g.sample_size(10);
    // BPR twice: with uniform negatives (what implicit's BPR does, for the per-epoch comparison
    // in the README) and with its default rank-aware negatives (the hardest of 4 candidates).
    for (name, kind, hard) in [
        ("ials", ModelKind::Ials, None),
        ("bpr_uniform", ModelKind::Bpr, Some(1)),
        ("bpr_default", ModelKind::Bpr, None),
        ("mf", ModelKind::Mf, None),
        // One full-batch step of the pointwise loss through three layers.
        ("lightgcn", ModelKind::Lightgcn, None),
    ] {
        let data = if kind == ModelKind::Mf { &ds } else { &pos };
        g.throughput(Throughput::Elements(data.interactions.len() as u64));
        let mut cfg = TrainConfig::defaults(kind);
        cfg.epochs = 1;
        cfg.valid_frac = 0.0;
        if kind != ModelKind::Mf {
            cfg.dim = 64;
        }
        if let Some(h) = hard {
            cfg.hard_negatives = h;
        }
        g.bench_function(name, |b| {
            b.iter(|| train::fit(&cfg, data, &mut |_, _| {}).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
