//! Hot paths of serving, each with a declared throughput so that a regression shows as a number:
//! hashing (rows/s), the Hamming scan (codes/s, per dispatch twin), a query in both LSH modes,
//! exact block scoring (elements = flops, so Gelem/s reads as GFLOP/s), top-K selection, and the
//! scan's selection of the smallest Hamming distances (distances/s).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lshrec::data::synth::{mips, MipsConfig};
use lshrec::index::{self, hash, BuildConfig, Index, Mode, Scratch, SearchParams};
use lshrec::rng::Rng;
use lshrec::score::{topk_exact, TopK};
use lshrec::simd;

fn bench_hash(c: &mut Criterion) {
    let d1 = 65;
    let rows: Vec<f32> = {
        let mut r = Rng::new(1);
        (0..16_384 * d1).map(|_| r.normal() as f32).collect()
    };
    let planes = hash::hyperplanes(128, d1, 1, 1);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(16_384));
    g.bench_function("project_pack_128bit_16k_rows", |b| {
        b.iter(|| {
            let p = hash::project_rows(&rows, d1, &planes);
            let mut codes = vec![0u64; 16_384 * 2];
            for (k, row) in p.chunks_exact(128).enumerate() {
                hash::pack(row, &mut codes[k * 2..k * 2 + 2]);
            }
            codes
        })
    });
    g.finish();
}

/// The scan kernels on one norm range's worth of codes (16k, cache-resident as in a query), at
/// 64, 128 and 256 bits (the index's default).
fn bench_hamming(c: &mut Criterion) {
    type Kernel = fn(&[u64], usize, &[u64], &mut [u32]) -> bool;
    let n = 1 << 14;
    let mut r = Rng::new(2);
    for w in [1usize, 2, 4] {
        let codes: Vec<u64> = (0..n * w).map(|_| r.next_u64()).collect();
        let q: Vec<u64> = (0..w).map(|_| r.next_u64()).collect();
        let mut out = vec![0u32; n];
        let mut g = c.benchmark_group(format!("hamming_scan_{}bit_16k", 64 * w));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("dispatch", |b| {
            b.iter(|| simd::hamming_scan(&codes, w, &q, &mut out))
        });
        g.bench_function("scalar", |b| {
            b.iter(|| simd::hamming_scan_scalar(&codes, w, &q, &mut out))
        });
        let kernels: [(&str, Kernel); 3] = [
            ("popcnt", simd::kernels::hamming_scan_popcnt),
            ("avx2", simd::kernels::hamming_scan_avx2),
            ("avx512_vpopcntdq", simd::kernels::hamming_scan_vpopcntdq),
        ];
        for (name, k) in kernels {
            if k(&codes, w, &q, &mut out) {
                g.bench_function(name, |b| b.iter(|| k(&codes, w, &q, &mut out)));
            }
        }
        g.finish();
    }
}

fn bench_query(c: &mut Criterion) {
    let cfg = MipsConfig {
        items: 200_000,
        users: 256,
        dim: 64,
        ..Default::default()
    };
    let (users, items) = mips(&cfg);
    let idx = Index::from_built(
        index::build(
            &items,
            64,
            &BuildConfig {
                ranges: 12,
                ..Default::default()
            },
            0,
        )
        .unwrap(),
    )
    .unwrap();
    let mut s = Scratch::new(cfg.items);
    let mut g = c.benchmark_group("query_200k_items");
    g.throughput(Throughput::Elements(1));
    for (name, p) in [
        (
            "scan_240",
            SearchParams {
                k: 10,
                probes: 0,
                max_candidates: 240,
                mode: Mode::Scan,
            },
        ),
        (
            "probe_64",
            SearchParams {
                k: 10,
                probes: 64,
                max_candidates: 1 << 20,
                mode: Mode::Probe,
            },
        ),
    ] {
        let mut q = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                q = (q + 1) % 256;
                idx.search(&items, &users[q * 64..(q + 1) * 64], &[], &p, &mut s);
                s.out.len()
            })
        });
    }
    g.finish();
}

fn bench_exact(c: &mut Criterion) {
    // One block of 256 users (a single span of 100k items: one thread) and a batch of 2,048
    // (eight blocks, every thread), at 64 and 128 dims.
    let mut g = c.benchmark_group("exact");
    g.sample_size(10);
    for (nu, d) in [(256usize, 64usize), (2048, 64), (2048, 128)] {
        let ni = 100_000usize;
        let cfg = MipsConfig {
            items: ni,
            users: nu,
            dim: d,
            ..Default::default()
        };
        let (users, items) = mips(&cfg);
        g.throughput(Throughput::Elements((2 * nu * ni * d) as u64));
        let id = BenchmarkId::new("gemm_topk_flops", format!("{nu}x100k_d{d}"));
        g.bench_function(id, |b| {
            b.iter(|| topk_exact(&users, &items, d, 10, &|_| &[]).unwrap())
        });
    }
    g.finish();
}

fn bench_topk(c: &mut Criterion) {
    let mut r = Rng::new(3);
    let scores: Vec<f32> = (0..1 << 20).map(|_| r.normal() as f32).collect();
    let mut g = c.benchmark_group("topk_select_1M");
    g.throughput(Throughput::Elements(scores.len() as u64));
    g.bench_function("offer_row_dispatch", |b| {
        b.iter(|| {
            let mut t = TopK::new(10);
            simd::offer_row(&scores, 0, &mut t);
            t.len()
        })
    });
    g.bench_function("offer_row_scalar", |b| {
        b.iter(|| {
            let mut t = TopK::new(10);
            simd::offer_row_scalar(&scores, 0, &mut t);
            t.len()
        })
    });
    g.finish();
}

fn bench_select_smallest(c: &mut Criterion) {
    // One norm range of a 1M-item index (16k codes), 256-bit distances (a sum of 256 fair bits),
    // and the 240 candidates of scan 240.
    let mut r = Rng::new(4);
    let dists: Vec<u32> = (0..16_384)
        .map(|_| (0..4).map(|_| r.next_u64().count_ones()).sum())
        .collect();
    let (k, tau) = (240, 112);
    let mut g = c.benchmark_group("scan_select_16k");
    g.throughput(Throughput::Elements(dists.len() as u64));
    let mut out = Vec::new();
    g.bench_function("select_smallest_240", |b| {
        b.iter(|| {
            lshrec::index::query::select_smallest(&dists, k, &mut out);
            out.len()
        })
    });
    for (name, f) in [
        (
            "collect_below_dispatch",
            simd::collect_below as fn(_, _, _, _, &mut _) -> usize,
        ),
        ("collect_below_scalar", simd::collect_below_scalar),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                f(&dists, 0, tau, usize::MAX, &mut out)
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_select_smallest,
    bench_hash,
    bench_hamming,
    bench_query,
    bench_exact,
    bench_topk
);
criterion_main!(benches);
