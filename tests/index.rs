//! The LSH index: probing everything equals exact, recall against brute force on a realistic
//! MIPS set (seed printed), and index files verified on open.

use lshrec::data::synth::{mips, MipsConfig};
use lshrec::eval::recall_vs_exact;
use lshrec::index::{self, BuildConfig, Index, Mode, Scratch, SearchParams};
use lshrec::score::{topk_exact, Scored};
use lshrec::Error;

fn search_all(
    idx: &Index,
    users: &[f32],
    items: &[f32],
    d: usize,
    p: &SearchParams,
    exclude: &dyn Fn(usize) -> Vec<u32>,
) -> Vec<Vec<Scored>> {
    let mut s = Scratch::new(items.len() / d);
    (0..users.len() / d)
        .map(|u| {
            idx.search(items, &users[u * d..(u + 1) * d], &exclude(u), p, &mut s);
            s.out.clone()
        })
        .collect()
}

#[test]
fn probing_every_bucket_equals_exact() {
    // Small-integer vectors: every dot product is exact in f32, so GEMM and SIMD agree bit for
    // bit and ties break by item id in both.
    let (d, ni, nu) = (6, 700, 40);
    let mut r = lshrec::rng::Rng::new(5);
    let items: Vec<f32> = (0..ni * d).map(|_| r.below(7) as f32 - 3.0).collect();
    let users: Vec<f32> = (0..nu * d).map(|_| r.below(7) as f32 - 3.0).collect();
    let ex = |u: usize| -> Vec<u32> { (0..u as u32 % 5).map(|k| k * 37 % ni as u32).collect() };
    let mut exs: Vec<Vec<u32>> = (0..nu)
        .map(|u| {
            let mut v = ex(u);
            v.sort();
            v.dedup();
            v
        })
        .collect();
    exs.iter_mut().for_each(|v| v.sort());
    let exact = topk_exact(&users, &items, d, 10, &|u| exs[u].as_slice()).unwrap();
    for (ranges, bits, vectors, norms) in [
        (1, 5, true, true),
        (4, 4, true, true),
        (4, 4, false, true),
        (4, 4, true, false),
    ] {
        let cfg = BuildConfig {
            bits,
            tables: 3,
            ranges,
            scan_bits: 64,
            seed: 1,
            vectors,
        };
        let mut built = index::build(&items, d, &cfg, 0).unwrap();
        if !norms {
            built.norms.clear();
        }
        let idx = Index::from_built(built).unwrap();
        let all = SearchParams {
            k: 10,
            probes: 3 << bits,
            max_candidates: ni,
            mode: Mode::Probe,
        };
        assert_eq!(
            search_all(&idx, &users, &items, d, &all, &|u| exs[u].clone()),
            exact,
            "probe, {ranges} ranges, vectors {vectors}, norms {norms}"
        );
        let scan = SearchParams {
            k: 10,
            probes: 0,
            max_candidates: ni,
            mode: Mode::Scan,
        };
        assert_eq!(
            search_all(&idx, &users, &items, d, &scan, &|u| exs[u].clone()),
            exact,
            "scan, {ranges} ranges, vectors {vectors}, norms {norms}"
        );
    }
}

/// A realistic MIPS set of `items` × 32 dims with 300 users (seed printed), and its exact top 10.
fn mips_and_exact(items: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<Vec<Scored>>) {
    let cfg = MipsConfig {
        items,
        users: 300,
        dim: 32,
        seed,
        ..Default::default()
    };
    println!("MIPS seed {}", cfg.seed);
    let (users, items) = mips(&cfg);
    let exact = topk_exact(&users, &items, cfg.dim, 10, &|_| &[]).unwrap();
    (users, items, exact)
}

#[test]
fn recall_against_brute_force() {
    let (users, items, exact) = mips_and_exact(30_000, 7);
    let d = 32;
    let cfg = BuildConfig {
        ranges: 16,
        tables: 8,
        bits: 0,
        scan_bits: 128,
        seed: 3,
        vectors: true,
    };
    let idx = Index::from_built(index::build(&items, d, &cfg, 0).unwrap()).unwrap();
    let probe = SearchParams {
        k: 10,
        probes: 256,
        max_candidates: 3000,
        mode: Mode::Probe,
    };
    let got = search_all(&idx, &users, &items, d, &probe, &|_| Vec::new());
    let rp = recall_vs_exact(&got, &exact, 10);
    let scan = SearchParams {
        k: 10,
        probes: 0,
        max_candidates: 200,
        mode: Mode::Scan,
    };
    let got = search_all(&idx, &users, &items, d, &scan, &|_| Vec::new());
    let rs = recall_vs_exact(&got, &exact, 10);
    println!("recall@10: probe {rp:.3}, scan {rs:.3}");
    // The index's copy of the vectors changes where the re-rank reads, not what it finds.
    let cfg = BuildConfig {
        vectors: false,
        ..cfg
    };
    let without = Index::from_built(index::build(&items, d, &cfg, 0).unwrap()).unwrap();
    assert!(idx.range_vectors(0).is_some() && without.range_vectors(0).is_none());
    assert_eq!(
        search_all(&without, &users, &items, d, &scan, &|_| Vec::new()),
        got
    );
    assert!(rp >= 0.85, "probe recall {rp}");
    assert!(rs >= 0.85, "scan recall {rs}");
}

/// The per-item norm cut-off reads fewer codes and loses nothing: an index without the norms
/// (as written before they existed) scans whole ranges.
#[test]
fn the_norm_cut_off_scans_less_at_equal_recall() {
    let (users, items, exact) = mips_and_exact(40_000, 11);
    let d = 32;
    let build = BuildConfig {
        ranges: 8,
        scan_bits: 128,
        ..BuildConfig::default()
    };
    let with = Index::from_built(index::build(&items, d, &build, 0).unwrap()).unwrap();
    let mut built = index::build(&items, d, &build, 0).unwrap();
    built.norms.clear();
    let without = Index::from_built(built).unwrap();
    assert!(with.range_norms(0).is_some() && without.range_norms(0).is_none());
    // Norms that do not descend within a range would cut off items that can win: refused,
    // even with matching checksums.
    let mut built = index::build(&items, d, &build, 0).unwrap();
    built.norms.swap(3, 4000);
    match Index::from_built(built) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("norms"), "{reason}"),
        other => panic!("unsorted norms accepted: {:?}", other.err()),
    }
    let p = SearchParams {
        k: 10,
        probes: 0,
        max_candidates: 100,
        mode: Mode::Scan,
    };
    let run = |idx: &Index| {
        let mut s = Scratch::new(items.len() / d);
        let mut scanned = 0;
        let got: Vec<Vec<Scored>> = (0..users.len() / d)
            .map(|u| {
                idx.search(&items, &users[u * d..(u + 1) * d], &[], &p, &mut s);
                scanned += s.scanned;
                s.out.clone()
            })
            .collect();
        (recall_vs_exact(&got, &exact, 10), scanned)
    };
    let ((rw, sw), (ro, so)) = (run(&with), run(&without));
    println!("recall@10 {rw:.4} scanning {sw} codes, without norms {ro:.4} scanning {so}");
    assert!(rw >= ro - 0.002, "recall {rw} against {ro}");
    assert!((sw as f64) < 0.9 * so as f64, "scanned {sw} against {so}");
}

#[test]
fn index_files_verified() {
    let cfg = MipsConfig {
        items: 2000,
        users: 5,
        dim: 8,
        seed: 1,
        ..Default::default()
    };
    let (_, items) = mips(&cfg);
    let mut built = index::build(&items, 8, &BuildConfig::default(), 1234).unwrap();
    let t = tempfile::tempdir().unwrap();
    index::build::write(&mut built, t.path()).unwrap();
    let idx = Index::open(t.path()).unwrap();
    idx.check_model(1234, 2000, 8).unwrap();
    // The copy of the vectors holds each range's items in the index's order.
    let r = &idx.meta.ranges[1];
    let copy = idx.range_vectors(1).unwrap();
    for (p, &i) in idx.order()[r.start..r.start + r.len].iter().enumerate() {
        let i = i as usize;
        assert_eq!(&copy[p * 8..(p + 1) * 8], &items[i * 8..(i + 1) * 8]);
    }
    // A flipped byte inside the copy is caught by its checksum.
    let v = idx.meta.section("vectors").unwrap().clone();
    assert!(matches!(
        idx.check_model(99, 2000, 8),
        Err(Error::Mismatch { .. })
    ));
    assert!(matches!(
        idx.check_model(1234, 2001, 8),
        Err(Error::Mismatch { .. })
    ));
    let data = t.path().join("data.bin");
    let orig = std::fs::read(&data).unwrap();
    let mut b = orig.clone();
    b[(v.offset + v.len / 2) as usize] ^= 4;
    std::fs::write(&data, &b).unwrap();
    match Index::open(t.path()) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("vectors"), "{reason}"),
        other => panic!("flipped vector byte: {:?}", other.err()),
    }
    let mut b = orig.clone();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&data, &b).unwrap();
    assert!(
        matches!(Index::open(t.path()), Err(Error::Corrupt { .. })),
        "flipped byte"
    );
    std::fs::write(&data, &orig[..n - 100]).unwrap();
    assert!(
        matches!(Index::open(t.path()), Err(Error::Corrupt { .. })),
        "truncated data"
    );
    std::fs::write(&data, &orig).unwrap();
    let meta = t.path().join("index.bin");
    let m = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, &m[..m.len() - 1]).unwrap();
    assert!(
        matches!(Index::open(t.path()), Err(Error::Corrupt { .. })),
        "truncated header"
    );
    std::fs::write(&meta, b"LSHRECIX").unwrap();
    assert!(
        matches!(Index::open(t.path()), Err(Error::Corrupt { .. })),
        "short header"
    );
    // An index without the copy (`--no-vectors`, or written before it existed) opens as well.
    let cfg = BuildConfig {
        vectors: false,
        ..BuildConfig::default()
    };
    let mut built = index::build(&items, 8, &cfg, 1234).unwrap();
    index::build::write(&mut built, t.path()).unwrap();
    let idx = Index::open(t.path()).unwrap();
    assert!(idx.meta.section("vectors").is_none() && idx.range_vectors(0).is_none());
    assert!(std::fs::metadata(&data).unwrap().len() < orig.len() as u64 - 2000 * 8 * 4 + 64);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn sample() -> (Vec<u8>, Vec<u8>) {
        let cfg = MipsConfig {
            items: 500,
            users: 1,
            dim: 4,
            seed: 2,
            ..Default::default()
        };
        let (_, items) = mips(&cfg);
        let mut built = index::build(
            &items,
            4,
            &BuildConfig {
                ranges: 3,
                tables: 2,
                bits: 4,
                scan_bits: 64,
                seed: 1,
                vectors: true,
            },
            7,
        )
        .unwrap();
        let t = tempfile::tempdir().unwrap();
        index::build::write(&mut built, t.path()).unwrap();
        (
            std::fs::read(t.path().join("index.bin")).unwrap(),
            std::fs::read(t.path().join("data.bin")).unwrap(),
        )
    }

    /// The padding between data.bin's sections is not covered by a checksum but must be the
    /// zeros written: a flip in any padding byte is refused too.
    #[test]
    fn damaged_padding_is_refused() {
        let (meta, data) = sample();
        let parsed = lshrec::index::read::parse_meta(Path::new("index.bin"), &meta).unwrap();
        let padding: Vec<usize> = (0..data.len())
            .filter(|&i| {
                let i = i as u64;
                !parsed
                    .sections
                    .iter()
                    .any(|s| i >= s.offset && i < s.offset + s.len)
            })
            .collect();
        assert!(!padding.is_empty(), "the sample has no padding to damage");
        for i in padding {
            let t = tempfile::tempdir().unwrap();
            let mut d = data.clone();
            d[i] ^= 1;
            std::fs::write(t.path().join("index.bin"), &meta).unwrap();
            std::fs::write(t.path().join("data.bin"), &d).unwrap();
            let err = Index::open(t.path()).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.to_string().contains("padding")),
                "flipped padding byte {i}: {err:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
        /// Random damage to either index file never panics and is always refused.
        #[test]
        fn damaged_index_files_are_refused(which in 0usize..2, pos in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
            let (meta, data) = sample();
            let t = tempfile::tempdir().unwrap();
            let (mut m, mut d) = (meta.clone(), data.clone());
            let target = if which == 0 { &mut m } else { &mut d };
            if truncate {
                let n = cut.index(target.len());
                target.truncate(n);
            } else {
                let i = pos.index(target.len());
                target[i] ^= xor;
            }
            std::fs::write(t.path().join("index.bin"), &m).unwrap();
            std::fs::write(t.path().join("data.bin"), &d).unwrap();
            // Every byte is checked: sections by checksum, the padding between them as zeros.
            prop_assert!(Index::open(t.path()).is_err());
        }
    }
}

#[test]
fn appending_items_needs_no_rebuild() {
    let cfg = MipsConfig {
        items: 3000,
        users: 20,
        dim: 8,
        seed: 4,
        ..Default::default()
    };
    let (users, items) = mips(&cfg);
    let t = tempfile::tempdir().unwrap();
    let mut built = index::build(&items, 8, &BuildConfig::default(), 5).unwrap();
    index::build::write(&mut built, t.path()).unwrap();
    let data_before = std::fs::read(t.path().join("data.bin")).unwrap();
    // A new item aligned with user 0 and of large norm must become user 0's top item.
    let q0 = &users[0..8];
    let new: Vec<f32> = q0.iter().map(|x| x * 100.0).collect();
    let item = |id: &str| lshrec::index::format::AppendedItem {
        id: id.into(),
        title: Some("New Movie (2026)".into()),
        genres: vec![],
    };
    index::build::append(t.path(), &new, vec![item("new-1")]).unwrap();
    let idx = Index::open(t.path()).unwrap();
    assert_eq!(
        std::fs::read(t.path().join("data.bin")).unwrap(),
        data_before,
        "no rebuild"
    );
    let mut s = Scratch::new(3000);
    let p = SearchParams {
        k: 5,
        probes: 0,
        max_candidates: 100,
        mode: Mode::Scan,
    };
    idx.search(&items, q0, &[], &p, &mut s);
    assert_eq!(s.out[0].item, 3000);
    assert_eq!(idx.appended_item(3000).unwrap().id, "new-1");
    // Excluded (`--exclude-items`), it is not listed, and the rest moves up.
    let top = s.out.clone();
    idx.search(&items, q0, &[3000], &p, &mut s);
    assert!(s.out.iter().all(|x| x.item != 3000), "{:?}", s.out);
    assert_eq!(s.out[..4], top[1..]);
    drop(idx);
    // A second append keeps the first and replaces the file.
    index::build::append(t.path(), &[0.0; 8], vec![item("new-2")]).unwrap();
    let idx = Index::open(t.path()).unwrap();
    assert_eq!(idx.meta.appended.len(), 2);
    assert!(!t.path().join("appended-1.npy").exists());
    assert!(matches!(
        index::build::append(t.path(), &[1.0; 3], vec![item("x")]),
        Err(Error::Mismatch { .. })
    ));
    drop(idx);
    // A damaged appended file is refused.
    let p2 = t.path().join("appended-2.npy");
    let mut b = std::fs::read(&p2).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&p2, &b).unwrap();
    assert!(matches!(Index::open(t.path()), Err(Error::Corrupt { .. })));
}

/// Bucket keys far wider than the items need are refused before anything is allocated: 24
/// bits on 2,000 items would store 2^24 + 1 offsets per table, nearly all of empty buckets.
#[test]
fn bucket_keys_wider_than_the_items_need_are_refused() {
    let cfg = MipsConfig {
        items: 2000,
        users: 1,
        dim: 4,
        seed: 1,
        ..Default::default()
    };
    let (_, items) = mips(&cfg);
    let with_bits = |bits: usize| BuildConfig {
        bits,
        ranges: 2,
        ..BuildConfig::default()
    };
    // 1,000 items per range: up to log2(64,000) = 15 bits.
    assert!(index::build(&items, 4, &with_bits(15), 0).is_ok());
    let err = index::build(&items, 4, &with_bits(16), 0).err().unwrap();
    assert!(
        matches!(&err, Error::InvalidArgument { what, .. } if what == "--bits")
            && err.to_string().contains("at most 15 here"),
        "{err}"
    );
    assert!(index::build(&items, 4, &with_bits(24), 0).is_err());
}
