//! The exact scorer: blocked GEMM (faer) over tiles of users × items, with the top-K selected
//! while each tile is in cache. All users × all items is never materialised. Each user's seen
//! items are masked inside the tile before selection. This is the ground truth for every recall
//! figure.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::topk::{Scored, TopK};
use crate::data::Csr;
use crate::error::{Error, Result};

/// Users per tile: each pass over the item matrix serves this many users, so larger blocks read
/// the items fewer times.
pub const USER_BLOCK: usize = 256;
/// Items per tile (256 users × 1024 items × 4 bytes = 1 MiB of scores, cache-resident).
pub const ITEM_BLOCK: usize = 1024;

/// Checks `k` against the catalogue.
pub fn check_k(k: usize, n_items: usize) -> Result<()> {
    if k == 0 || k > n_items {
        return Err(Error::InvalidK { k, n_items });
    }
    Ok(())
}

/// Exact top-`k` for `queries` (row-major, `n_q × d`) against `items` (`n_i × d`).
/// `exclude(q)` gives the sorted item ids to skip for query `q` (its seen items), or an empty
/// slice. Returns one list per query, best first; a query with fewer than `k` eligible items gets
/// fewer.
pub fn topk_exact<'a>(
    queries: &[f32],
    items: &[f32],
    d: usize,
    k: usize,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
) -> Result<Vec<Vec<Scored>>> {
    topk_exact_blocked(queries, items, d, k, exclude, &[])
}

/// [`topk_exact`] that also skips `blocked`, the sorted item ids excluded for every query
/// (`--exclude-items`: withdrawn or unavailable items), beside each query's own `exclude(q)`.
pub fn topk_exact_blocked<'a>(
    queries: &[f32],
    items: &[f32],
    d: usize,
    k: usize,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
    blocked: &[u32],
) -> Result<Vec<Vec<Scored>>> {
    let fused = crate::simd::fused_scoring();
    let ex = Exclusions { exclude, blocked };
    topk_exact_spans(queries, items, d, k, &ex, MIN_SPAN_BLOCKS, fused)
}

/// What a query skips: its own sorted list and the sorted list shared by every query.
struct Exclusions<'e, 'a> {
    exclude: &'e (dyn Fn(usize) -> &'a [u32] + Sync),
    blocked: &'e [u32],
}

impl Exclusions<'_, '_> {
    /// Whether query `q` skips `item`.
    fn skips(&self, q: usize, item: u32) -> bool {
        (self.exclude)(q).binary_search(&item).is_ok() || self.blocked.binary_search(&item).is_ok()
    }

    /// Sets the scores of the items query `q` skips within `i0..i0 + row.len()` to −∞.
    fn mask(&self, q: usize, i0: usize, row: &mut [f32]) {
        let i1 = i0 + row.len();
        for ex in [(self.exclude)(q), self.blocked] {
            let start = ex.partition_point(|&x| (x as usize) < i0);
            for &x in ex[start..].iter().take_while(|&&x| (x as usize) < i1) {
                row[x as usize - i0] = f32::NEG_INFINITY;
            }
        }
    }
}

/// Item blocks per span at the least when the catalogue is split across threads (64k items:
/// well over a millisecond of work per span at 64 dims, where waking a thread costs
/// microseconds; a small catalogue is not split, as its single query takes microseconds).
const MIN_SPAN_BLOCKS: usize = 64;

/// [`topk_exact`] with spans of at least `min_span_blocks` item blocks, scored by
/// [`fused_block`] or by faer's GEMM into a tile and a selection pass over it.
fn topk_exact_spans(
    queries: &[f32],
    items: &[f32],
    d: usize,
    k: usize,
    ex: &Exclusions<'_, '_>,
    min_span_blocks: usize,
    fused: bool,
) -> Result<Vec<Vec<Scored>>> {
    if d == 0 || !queries.len().is_multiple_of(d) || !items.len().is_multiple_of(d) {
        return Err(Error::invalid(
            "embeddings",
            "row length does not divide the data",
        ));
    }
    let (nq, ni) = (queries.len() / d, items.len() / d);
    check_k(k, ni)?;
    // Tasks are (user block, item span) pairs. With as many user blocks as threads a span is the
    // whole catalogue; with fewer (one query, a handful) a large catalogue is split too, so that
    // every thread works, and each task's lists are merged per user below. The ranking order is
    // total (score, then item id), so the merged lists are those of a single pass.
    let (n_ub, n_ib) = (nq.div_ceil(USER_BLOCK), ni.div_ceil(ITEM_BLOCK));
    let threads = rayon::current_num_threads();
    let spans = match n_ub >= threads {
        true => 1,
        false => threads
            .div_ceil(n_ub.max(1))
            .min(n_ib / min_span_blocks.max(1)),
    };
    let span = n_ib.div_ceil(spans.max(1)) * ITEM_BLOCK;
    let spans = ni.div_ceil(span);
    let lists: Vec<Vec<Vec<Scored>>> = (0..n_ub * spans)
        .into_par_iter()
        .map_init(
            || (Vec::<f32>::new(), Vec::<TopK>::new()),
            |(tile, heaps), t| {
                let (b, sp) = (t / spans, t % spans);
                let q0 = b * USER_BLOCK;
                let q1 = (q0 + USER_BLOCK).min(nq);
                let bu = q1 - q0;
                // A panel holds sixteen users: below that its lanes would mostly score padding,
                // and a lone query is bound by reading the items, which faer's product does once.
                if fused && bu >= crate::simd::TILE_USERS {
                    let range = sp * span..((sp + 1) * span).min(ni);
                    return fused_block(queries, items, d, q0..q1, range, k, ex);
                }
                tile.resize(USER_BLOCK * ITEM_BLOCK, 0.0); // once per thread
                heaps.clear();
                heaps.extend((0..bu).map(|_| TopK::new(k)));
                let lhs = MatRef::from_row_major_slice(&queries[q0 * d..q1 * d], bu, d);
                let mut i0 = sp * span;
                let end = ((sp + 1) * span).min(ni);
                while i0 < end {
                    let i1 = (i0 + ITEM_BLOCK).min(end);
                    let bi = i1 - i0;
                    let rhs = MatRef::from_row_major_slice(&items[i0 * d..i1 * d], bi, d);
                    let out = MatMut::from_row_major_slice_mut(&mut tile[..bu * bi], bu, bi);
                    faer::linalg::matmul::matmul(
                        out,
                        Accum::Replace,
                        lhs,
                        rhs.transpose(),
                        1.0f32,
                        Par::Seq,
                    );
                    for (r, heap) in heaps.iter_mut().enumerate() {
                        let row = &mut tile[r * bi..(r + 1) * bi];
                        ex.mask(q0 + r, i0, row);
                        crate::simd::offer_row(row, i0 as u32, heap);
                    }
                    i0 = i1;
                }
                drain_lists(heaps, k)
            },
        )
        .collect();
    if spans == 1 {
        return Ok(lists.into_iter().flatten().collect());
    }
    let mut out = Vec::with_capacity(nq);
    let mut top = TopK::new(k);
    for block in lists.chunks(spans) {
        for r in 0..block[0].len() {
            top.reset(k);
            for x in block.iter().flat_map(|l| &l[r]) {
                top.push(x.item, x.score);
            }
            let mut v = Vec::with_capacity(k);
            top.drain_sorted(&mut v);
            out.push(v);
        }
    }
    Ok(out)
}

/// The top-`k` lists of the users `users` over the items `range`, with [`crate::simd::score_rows`]:
/// each tile of sixteen users × six items is scored in registers and compared against the
/// users' current K-th scores there, so only the few scores that can enter a list leave the
/// registers, and no score matrix is written. The users are packed dimension-major once (a
/// panel of sixteen stays in L1); the item rows are read in place, a chunk at a time from L2.
fn fused_block(
    queries: &[f32],
    items: &[f32],
    d: usize,
    users: std::ops::Range<usize>,
    range: std::ops::Range<usize>,
    k: usize,
    ex: &Exclusions<'_, '_>,
) -> Vec<Vec<Scored>> {
    use crate::simd::{score_rows, TILE_USERS as TU};
    let bu = users.len();
    let panels = bu.div_ceil(TU);
    let mut packed = vec![0f32; panels * d * TU];
    for u in 0..bu {
        let (p, l) = (u / TU, u % TU);
        let q = &queries[(users.start + u) * d..][..d];
        for (c, &x) in q.iter().enumerate() {
            packed[(p * d + c) * TU + l] = x;
        }
    }
    let mut heaps: Vec<TopK> = (0..bu).map(|_| TopK::new(k)).collect();
    // Padding users never pass: no score reaches +∞ (and a NaN reaches nothing).
    let mut th = vec![f32::INFINITY; panels * TU];
    for (t, h) in th.iter_mut().zip(&heaps) {
        *t = h.threshold();
    }
    // A chunk of item rows (about 128 KiB) stays in L2 while every user panel, in L1, passes
    // over it: the users are the operand loaded whole at every step, the items the broadcast one.
    let chunk = ((128 << 10) / (4 * d)).max(1);
    let mut c0 = range.start;
    while c0 < range.end {
        let c1 = (c0 + chunk).min(range.end);
        for p in 0..panels {
            let t: &mut [f32; TU] = (&mut th[p * TU..][..TU]).try_into().expect("a panel");
            let heaps = &mut heaps[p * TU..];
            score_rows(
                &packed[p * d * TU..][..d * TU],
                &items[c0 * d..c1 * d],
                d,
                t,
                |i, l, s| offer(heaps, ex, users.start + p * TU, (c0 + i) as u32, l, s),
            );
        }
        c0 = c1;
    }
    drain_lists(&mut heaps, k)
}

/// Offers `item`'s score `s` to lane `l` of a panel whose first query is `first` (unless that
/// query skips the item) and returns the lane's new K-th score. Called only for the few scores
/// that beat a lane's K-th, so it stays out of line: inlined, it crowded the kernel's registers
/// (1–2% slower at 1M items).
#[inline(never)]
fn offer(
    heaps: &mut [TopK],
    ex: &Exclusions<'_, '_>,
    first: usize,
    item: u32,
    l: usize,
    s: f32,
) -> f32 {
    let Some(h) = heaps.get_mut(l) else {
        return f32::INFINITY; // a padding lane (its score is 0 or NaN)
    };
    if s > f32::NEG_INFINITY && !ex.skips(first + l, item) {
        h.push(item, s);
    }
    h.threshold()
}

/// Each selector's list, best first (the selectors are left empty for reuse).
fn drain_lists(heaps: &mut [TopK], k: usize) -> Vec<Vec<Scored>> {
    heaps
        .iter_mut()
        .map(|h| {
            let mut v = Vec::with_capacity(k);
            h.drain_sorted(&mut v);
            v
        })
        .collect()
}

/// A seen-items lookup over an optional CSR (empty when `None` or `keep_seen`).
pub fn seen_lookup<'a>(
    seen: Option<&'a Csr>,
    keep_seen: bool,
) -> impl Fn(usize) -> &'a [u32] + Sync + 'a {
    move |u| match seen {
        Some(s) if !keep_seen && u < s.rows => s.row(u),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::score::topk::naive_topk;

    #[test]
    fn matches_naive_with_exclusions_and_ties() {
        let (nq, ni, d) = (130, 9000, 7);
        let mut r = Rng::new(11);
        // Quantised values make exact ties common.
        let q: Vec<f32> = (0..nq * d).map(|_| (r.below(5) as f32) - 2.0).collect();
        let it: Vec<f32> = (0..ni * d).map(|_| (r.below(5) as f32) - 2.0).collect();
        let ex: Vec<Vec<u32>> = (0..nq)
            .map(|u| {
                let mut v: Vec<u32> = (0..u % 13).map(|_| r.below(ni) as u32).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        // Items blocked for every query (some also in a query's own list), here and there in
        // the catalogue and at its two ends.
        let mut blocked: Vec<u32> = (0..60).map(|_| r.below(ni) as u32).collect();
        blocked.extend([0, 1, ni as u32 - 1]);
        blocked.extend_from_slice(&ex[7]);
        blocked.sort_unstable();
        blocked.dedup();
        // One user block: with several threads the items are split into spans (here of one
        // block and up) and the lists merged, which must not change them. Both scorers, the
        // fused tiles and faer's GEMM with a selection pass, give the naive lists.
        for (threads, fused) in [1, 2, 3, 8]
            .into_iter()
            .flat_map(|t| [(t, false), (t, true)])
        {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Queries from user `first` on.
            let spans = |q: &[f32], first: usize| {
                let exclude = |u: usize| ex[first + u].as_slice();
                let blocked = &blocked[..];
                let e = Exclusions {
                    exclude: &exclude,
                    blocked,
                };
                pool.install(|| topk_exact_spans(q, &it, d, 25, &e, 1, fused).unwrap())
            };
            let got = spans(&q, 0);
            let whole = pool
                .install(|| topk_exact_blocked(&q, &it, d, 25, &|u| ex[u].as_slice(), &blocked));
            assert_eq!(whole.unwrap(), got, "{threads} threads, fused {fused}");
            for u in 0..nq {
                let scores: Vec<f32> = (0..ni)
                    .map(|i| (0..d).map(|c| q[u * d + c] * it[i * d + c]).sum())
                    .collect();
                let skipped = [&ex[u][..], &blocked].concat();
                let want = naive_topk(&scores, &skipped, 25);
                assert!(want.iter().all(|s| blocked.binary_search(&s.item).is_err()));
                assert_eq!(got[u], want, "user {u}, {threads} threads, fused {fused}");
            }
            // Nothing blocked: the lists of topk_exact.
            let plain = pool.install(|| topk_exact(&q, &it, d, 25, &|u| ex[u].as_slice()));
            let unblocked = |u: usize| ex[u].as_slice();
            let e = Exclusions {
                exclude: &unblocked,
                blocked: &[],
            };
            let want = pool.install(|| topk_exact_spans(&q, &it, d, 25, &e, 1, fused).unwrap());
            assert_eq!(plain.unwrap(), want, "{threads} threads, fused {fused}");
            // A single query: the same list as in the batch.
            let one = spans(&q[12 * d..13 * d], 12);
            assert_eq!(one[0], got[12], "{threads} threads, fused {fused}");
        }
        assert!(matches!(
            topk_exact(&q, &it, d, 0, &|_| &[]),
            Err(Error::InvalidK { .. })
        ));
        assert!(topk_exact(&q, &it, d, ni + 1, &|_| &[]).is_err());
    }
}
