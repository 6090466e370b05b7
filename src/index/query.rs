//! Answering top-K queries from an index: query-directed multi-probe over the bucket tables
//! (or a Hamming scan of the long codes), deduplication with a bitset, an exact SIMD re-rank and
//! a top-K heap. Norm ranges are searched largest-norm first with early termination.
//!
//! **Probe order** (Lv et al. 2007, ordered across tables as in FALCONN): a perturbation flips a
//! set of a table's key bits; its cost is the sum of the squared projections of the flipped bits,
//! so bits whose projection is near zero (the query is near that hyperplane) flip first. One
//! min-heap over all tables yields perturbations in increasing cost: popping (t, set ending at
//! position j) pushes "shift" (replace j by j+1) and "expand" (add j+1), which enumerates every
//! subset exactly once. The probe sequence depends only on the query, so it is computed once and
//! replayed in every norm range.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bitvec::vec::BitVec;

use super::read::Index;
use crate::score::{Scored, TopK};

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Multi-probe over the bucket tables.
    Probe,
    /// Hamming scan of the long codes, then re-rank.
    Scan,
}

/// Search knobs.
#[derive(Clone, Copy, Debug)]
pub struct SearchParams {
    pub k: usize,
    /// Buckets probed per norm range, over all tables (`Probe` mode).
    pub probes: usize,
    /// Candidates re-ranked per norm range at most.
    pub max_candidates: usize,
    pub mode: Mode,
}

/// Per-thread scratch: reusing it means a batch allocates nothing per user.
pub struct Scratch {
    visited: BitVec,
    touched: Vec<u32>,
    /// Excluded ids of items appended after the build (which `visited` does not cover).
    excluded_appended: Vec<u32>,
    top: TopK,
    proj: Vec<f32>,
    keys: Vec<u32>,
    /// Per table: bit positions sorted by |projection|, and their costs.
    bit_order: Vec<u8>,
    cost: Vec<f32>,
    heap: BinaryHeap<Pert>,
    probe_seq: Vec<(u16, u32)>,
    dists: Vec<u32>,
    qcode: Vec<u64>,
    /// Selected scan candidates as keys `distance << 32 | position`.
    sel: Vec<u64>,
    /// Output of the last search, best first.
    pub out: Vec<Scored>,
    /// Candidates re-ranked by the last search.
    pub candidates: usize,
    /// Codes compared by the last search's Hamming scan.
    pub scanned: usize,
    /// Norm ranges visited by the last search (the rest were cut by the norm bound).
    pub ranges_visited: usize,
}

impl Scratch {
    /// Scratch for an index over `n_items` items.
    pub fn new(n_items: usize) -> Self {
        Scratch {
            visited: BitVec::repeat(false, n_items),
            touched: Vec::new(),
            excluded_appended: Vec::new(),
            top: TopK::new(10),
            proj: Vec::new(),
            keys: Vec::new(),
            bit_order: Vec::new(),
            cost: Vec::new(),
            heap: BinaryHeap::new(),
            probe_seq: Vec::new(),
            dists: Vec::new(),
            qcode: Vec::new(),
            sel: Vec::new(),
            out: Vec::new(),
            candidates: 0,
            scanned: 0,
            ranges_visited: 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pert {
    cost: f32,
    table: u16,
    /// Set of flipped positions (indices into the table's sorted bit order).
    mask: u32,
    last: u8,
}

impl PartialEq for Pert {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Pert {}
impl PartialOrd for Pert {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pert {
    /// Reversed, so that `BinaryHeap` pops the cheapest; ties by table then mask.
    fn cmp(&self, o: &Self) -> Ordering {
        o.cost
            .total_cmp(&self.cost)
            .then(o.table.cmp(&self.table))
            .then(o.mask.cmp(&self.mask))
    }
}

impl Index {
    /// The top-`k` items for query vector `q` (the user's serving vector) over `items` (the
    /// model's item matrix, n × dim), skipping `exclude` (sorted or not). Results land in
    /// `s.out`, best first. The scan re-ranks from the index's own copy of the vectors when it
    /// has one (the same numbers: [`Index::check_model`] ties an index to its model), and
    /// from `items` otherwise.
    ///
    /// # Panics
    /// In scan mode on an index without scan codes; [`Index::check_params`] refuses that first.
    pub fn search(
        &self,
        items: &[f32],
        q: &[f32],
        exclude: &[u32],
        p: &SearchParams,
        s: &mut Scratch,
    ) {
        let m = &self.meta;
        let d = m.dim;
        let d1 = d + 1;
        s.top.reset(p.k);
        s.candidates = 0;
        s.scanned = 0;
        s.ranges_visited = 0;
        s.excluded_appended.clear();
        for &x in exclude {
            if (x as usize) >= m.n_items {
                s.excluded_appended.push(x);
            } else if !s.visited.replace(x as usize, true) {
                s.touched.push(x);
            }
        }
        let qnorm = crate::simd::dot(q, q).sqrt();
        let inv = if qnorm > 0.0 { 1.0 / qnorm } else { 0.0 };
        match p.mode {
            Mode::Probe => {
                super::hash::project_query(q, d1, self.planes(), &mut s.proj);
                s.proj.iter_mut().for_each(|x| *x *= inv);
                self.probe_sequence(p.probes, s);
            }
            Mode::Scan => {
                assert!(
                    m.words > 0,
                    "scan mode on an index without scan codes (see Index::check_params)"
                );
                super::hash::project_query(q, d1, self.scan_planes(), &mut s.proj);
                s.qcode.resize(m.words, 0);
                super::hash::pack(&s.proj, &mut s.qcode);
            }
        }
        for (r, range) in m.ranges.iter().enumerate() {
            // Early termination: nothing in this range can beat the current K-th score.
            if s.top.len() == p.k && s.top.threshold() >= qnorm * range.max_norm {
                break;
            }
            // The same bound per item for the scan: positions descend in norm, so nothing from
            // the first whose |q|·norm is below the K-th score on can enter, here or in a later
            // range. (A hair of slack keeps rounding from cutting a tie.)
            let len = match self.range_norms(r) {
                Some(norms)
                    if p.mode == Mode::Scan && s.top.len() == p.k && s.top.threshold() > 0.0 =>
                {
                    let bound = s.top.threshold() / qnorm * (1.0 - 1e-5);
                    norms.partition_point(|&x| x >= bound)
                }
                _ => range.len,
            };
            if len == 0 {
                break;
            }
            s.ranges_visited += 1;
            let mut budget = p.max_candidates;
            match p.mode {
                Mode::Probe => {
                    for i in 0..s.probe_seq.len() {
                        if budget == 0 {
                            break;
                        }
                        let (t, key) = s.probe_seq[i];
                        let off = self.offsets(r, t as usize);
                        let (a, b) = (off[key as usize] as usize, off[key as usize + 1] as usize);
                        if a == b {
                            continue;
                        }
                        let ids = &self.ids(r, t as usize)[a..b];
                        for &id in ids {
                            if budget == 0 {
                                break;
                            }
                            let i = id as usize;
                            rerank(&items[i * d..(i + 1) * d], q, id, s, &mut budget);
                        }
                    }
                }
                Mode::Scan => {
                    let w = m.words;
                    let codes = &self.codes(r)[..len * w];
                    let order = &self.order()[range.start..range.start + len];
                    s.scanned += len;
                    s.dists.resize(len, 0);
                    crate::simd::hamming_scan(codes, w, &s.qcode, &mut s.dists);
                    select_smallest(&s.dists, budget, &mut s.sel);
                    // Rows come from the index's copy, by position (a range's candidates lie
                    // within a few megabytes), or else from the model's matrix, by item id.
                    let (rows, by_position) = match self.range_vectors(r) {
                        Some(v) => (v, true),
                        None => (items, false),
                    };
                    let row = |key: u64| {
                        let p = key as u32 as usize;
                        if by_position {
                            p
                        } else {
                            order[p] as usize
                        }
                    };
                    // Re-rank with the next rows prefetched: candidates are scattered in memory.
                    const AHEAD: usize = 8;
                    for j in 0..s.sel.len() {
                        if let Some(&next) = s.sel.get(j + AHEAD) {
                            let i = row(next);
                            crate::simd::prefetch(&rows[i * d..(i + 1) * d]);
                        }
                        let key = s.sel[j];
                        let i = row(key);
                        let mut b = usize::MAX;
                        rerank(
                            &rows[i * d..(i + 1) * d],
                            q,
                            order[key as u32 as usize],
                            s,
                            &mut b,
                        );
                    }
                }
            }
        }
        // Items appended after the build are few: score them all.
        let extra = self.appended_vectors();
        for (j, v) in extra.chunks_exact(d).enumerate() {
            let id = (m.n_items + j) as u32;
            if s.excluded_appended.contains(&id) {
                continue;
            }
            let score = crate::simd::dot(q, v);
            s.candidates += 1;
            if score >= s.top.threshold() {
                s.top.push(id, score);
            }
        }
        for &x in &s.touched {
            s.visited.set(x as usize, false);
        }
        s.touched.clear();
        s.top.drain_sorted(&mut s.out);
    }

    /// Computes the first `probes` (table, key) pairs in increasing perturbation cost.
    fn probe_sequence(&self, probes: usize, s: &mut Scratch) {
        let (tables, bits) = (self.meta.tables, self.meta.bits);
        s.keys.clear();
        s.bit_order.clear();
        s.cost.clear();
        s.heap.clear();
        s.probe_seq.clear();
        for t in 0..tables {
            let pr = &s.proj[t * bits..(t + 1) * bits];
            s.keys.push(super::hash::key(pr));
            let base = s.bit_order.len();
            s.bit_order.extend(0..bits as u8);
            s.bit_order[base..].sort_by(|&a, &b| {
                pr[a as usize]
                    .abs()
                    .total_cmp(&pr[b as usize].abs())
                    .then(a.cmp(&b))
            });
            for j in 0..bits {
                let v = pr[s.bit_order[base + j] as usize];
                s.cost.push(v * v);
            }
        }
        // Unperturbed buckets first, one per table.
        for t in 0..tables.min(probes) {
            s.probe_seq.push((t as u16, s.keys[t]));
        }
        for t in 0..tables {
            s.heap.push(Pert {
                cost: s.cost[t * bits],
                table: t as u16,
                mask: 1,
                last: 0,
            });
        }
        while s.probe_seq.len() < probes {
            let Some(p) = s.heap.pop() else { break };
            let t = p.table as usize;
            let mut key = s.keys[t];
            let mut m = p.mask;
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                key ^= 1 << s.bit_order[t * bits + j];
                m &= m - 1;
            }
            s.probe_seq.push((p.table, key));
            let j = p.last as usize;
            if j + 1 < bits {
                let c = &s.cost[t * bits..(t + 1) * bits];
                // shift: replace j by j + 1
                s.heap.push(Pert {
                    cost: p.cost - c[j] + c[j + 1],
                    table: p.table,
                    mask: (p.mask & !(1 << j)) | (1 << (j + 1)),
                    last: (j + 1) as u8,
                });
                // expand: add j + 1
                s.heap.push(Pert {
                    cost: p.cost + c[j + 1],
                    table: p.table,
                    mask: p.mask | (1 << (j + 1)),
                    last: (j + 1) as u8,
                });
            }
        }
    }
}

/// The `k` smallest `(dists[pos], pos)` pairs into `out` (unordered), as keys
/// [`crate::simd::scan_key`]`(dists[pos], pos)`, which order by distance and then position. A buffer collects keys
/// below a threshold; whenever it holds 2k it is cut back to the k smallest and the threshold
/// drops to the k-th distance. A later position with a distance equal to the k-th can never
/// displace those k (ties go to the earlier position), so only strictly smaller ones enter:
/// Hamming distances tie a lot, and most codes cost a sixteenth of an AVX-512 compare
/// ([`crate::simd::collect_below`]).
pub fn select_smallest(dists: &[u32], k: usize, out: &mut Vec<u64>) {
    out.clear();
    if k == 0 {
        return;
    }
    let cap = 2 * k;
    let first = dists.len().min(cap);
    out.extend(
        dists[..first]
            .iter()
            .enumerate()
            .map(|(p, &x)| crate::simd::scan_key(x, p)),
    );
    let mut pos = first;
    while out.len() >= cap {
        out.select_nth_unstable(k - 1);
        out.truncate(k);
        // `select_nth_unstable` leaves the k-th smallest key last, the rest below it.
        let tau = (out[k - 1] >> 32) as u32;
        pos = crate::simd::collect_below(dists, pos, tau, cap, out);
    }
    if out.len() > k {
        out.select_nth_unstable(k - 1);
        out.truncate(k);
    }
}

/// Scores item `id`, whose vector is `v`, unless it was seen (or excluded) already.
#[inline]
fn rerank(v: &[f32], q: &[f32], id: u32, s: &mut Scratch, budget: &mut usize) {
    if s.visited.replace(id as usize, true) {
        return;
    }
    s.touched.push(id);
    *budget = budget.saturating_sub(1);
    s.candidates += 1;
    let score = crate::simd::dot(q, v);
    if score >= s.top.threshold() {
        s.top.push(id, score);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn select_smallest_equals_sorting(d in proptest::collection::vec(prop_oneof![0u32..40, Just(u32::MAX)], 0..500), k in 1usize..60) {
            let mut got = Vec::new();
            select_smallest(&d, k, &mut got);
            let mut got: Vec<(u32, u32)> = got.iter().map(|&e| ((e >> 32) as u32, e as u32)).collect();
            got.sort_unstable();
            let mut want: Vec<(u32, u32)> = d.iter().enumerate().map(|(p, &x)| (x, p as u32)).collect();
            want.sort_unstable();
            want.truncate(k);
            prop_assert_eq!(got, want);
        }
    }
}
