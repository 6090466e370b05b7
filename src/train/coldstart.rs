//! Cold start: vectors for items and users the model never trained on.
//!
//! - **Feature maps.** After any model is trained, every feature value (a genre, a decade, an age
//!   bucket, …) gets a vector in the serving space (`item_features.npy`, `user_features.npy`):
//!   with the trained user vectors fixed, the map `W` is the one whose item vectors `f_i W` best
//!   explain the training interactions under the iALS loss ([`fit_map_implicit`]), fitted on
//!   the items that had interactions (and symmetrically for users). A new movie known by its
//!   genres and year gets `Σ_f w_f W[f]`, which scores against users like any trained item, so
//!   `index append` can add it.
//! - **Fold-in.** A new user with a handful of liked items gets the vector the iALS user step
//!   would give them, with the item vectors fixed:
//!   `(w0·YᵀY + Σ_{i∈liked} (c − w0) y_i y_iᵀ + λI) x = Σ c·y_i + λ·β·x0`, where the prior `x0`
//!   is the user's demographic vector (zero without demographics) and `β` its weight
//!   ([`PRIOR_WEIGHT`]). With nothing liked or disliked, `x = β·x0`: the unobserved term alone
//!   would shrink the prior along the popular directions, as if the user had passed over
//!   every item (demographics alone: mean NDCG@10 .4315 that way on cold-user validation
//!   splits, .4545 as the prior itself; the most popular items .4406).
//! - **Content neighbours.** A new movie's map vector is averaged, half and half, with the
//!   trained vectors of the catalogue movies most like it by genres (and attribute values)
//!   and year ([`ContentNeighbours`]): a second estimate, nonlinear in the features, whose
//!   errors differ from the map's.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rayon::prelude::*;

use crate::data::Csr;
use crate::error::{Error, Result};

/// Ridge strength of the feature maps (chosen on a cold-item validation split carved from
/// the P3 training data: 1 and 10 tie, 100 and more lose).
pub const MAP_RIDGE: f32 = 10.0;

/// The item map's unobserved weight as a fraction of the model's: a lighter weight on the pairs
/// nobody interacted with lets the map follow the positives (popularity among them) more
/// closely. Chosen on cold-item validation splits carved from the ten P3 training parts (iALS,
/// model weight .7): mean NDCG@10 .2851 at the model's own weight (factor 1), .2878 / .2893 /
/// .2900 / .2905 / .2907 / .2884 at map weights .5 / .35 / .3 / .25 / .2 / .1.
pub const MAP_UNOBSERVED_FACTOR: f32 = 0.4;

/// The feature map fitted to the interactions themselves rather than to the trained vectors:
/// with the other side's vectors `other` (`n_other × d`) fixed, `W` (`features × d`) minimises
/// the iALS loss of the vectors `f_r W`,
///
/// ```text
/// Σ_r [ Σ_{o∈N(r)} c (1 − x_o·Wᵀf_r)² + w0 Σ_{o∉N(r)} (x_o·Wᵀf_r)² + λ_r |Wᵀf_r|² ] + λ|W|²
/// ```
///
/// over the rows `r` of `interactions` (rows × n_other) that have any, where `λ_r` is the row's
/// own iALS regulariser with `row_reg` (`group_reg`) and 0 without. Popular feature
/// combinations get vectors that score high, as the data says, which a regression onto the
/// trained vectors (whose popularity sits in their norms, averaged away) does not give. The
/// normal equations have `features·d` unknowns: `Σ_r (f_r f_rᵀ) ⊗ A_r` with the row's iALS
/// matrix `A_r = w0·G + Σ_{o∈N(r)} (c − w0) x_o x_oᵀ + λ_r I`.
///
/// Up to [`MAP_DENSE_MAX`] unknowns (ML-100K's genres and decades, its demographics) the system
/// is formed and solved exactly by Cholesky; beyond (attribute files with many values) it is
/// solved by conjugate gradients without forming it ([`fit_map_cg`]).
pub fn fit_map_implicit(
    feats: &Csr,
    interactions: &Csr,
    other: &[f32],
    d: usize,
    c: FoldIn,
    reg: MapReg,
) -> Result<Vec<f32>> {
    let (lambda, row_reg) = (reg.ridge, reg.rows);
    let f = feats.cols;
    let n = f * d;
    if n > MAP_DENSE_MAX {
        return Ok(fit_map_cg(
            feats,
            interactions,
            other,
            d,
            c,
            reg,
            MAP_CG_GRAM_BUDGET,
        ));
    }
    let g = super::ials::gram(other, d);
    let w0 = c.weights.unobserved as f64;
    let conf = c.weights.confidence(1.0) as f64;
    // Rows with the same feature row share their block of the system: one Gram product per
    // group (groups in parallel).
    let groups = group_rows(feats, interactions);
    let sums: Vec<(Vec<f64>, Vec<f64>)> = groups
        .par_iter()
        .map(|(_, rs)| group_gram(rs, interactions, other, d, conf))
        .collect();
    let mut m = Mat::<f64>::zeros(n, n);
    let mut rhs = Mat::<f64>::zeros(n, 1);
    let mut a = vec![0f64; d * d];
    let n_other = other.len() / d.max(1);
    for ((key, rs), (s, b)) in groups.iter().zip(&sums) {
        // The group's Σ_r A_r = |rows|·w0·G + (c − w0)·Σ x xᵀ + Σ_r λ_r I.
        let nr = rs.len() as f64;
        let reg = group_reg(rs, interactions, row_reg, w0, n_other);
        for (k, av) in a.iter_mut().enumerate() {
            *av = nr * w0 * g[(k / d, k % d)] as f64 + (conf - w0) * s[k];
        }
        for p in 0..d {
            a[p * d + p] += reg;
        }
        for &(fp, wp) in key {
            let (fp, wp) = (fp as usize, f32::from_bits(wp) as f64);
            for p in 0..d {
                rhs[(fp * d + p, 0)] += wp * b[p];
            }
            for &(fq, wq) in key {
                let (fq, sc) = (fq as usize, wp * f32::from_bits(wq) as f64);
                for p in 0..d {
                    for q in 0..d {
                        m[(fp * d + p, fq * d + q)] += sc * a[p * d + q];
                    }
                }
            }
        }
    }
    for k in 0..n {
        m[(k, k)] += lambda as f64;
    }
    let llt = m
        .llt(Side::Lower)
        .map_err(|_| Error::invalid("feature map", "the system is not positive definite"))?;
    let w = llt.solve(rhs);
    Ok((0..n).map(|k| w[(k, 0)] as f32).collect())
}

/// The feature maps' regularisers: `ridge` (λ) on the map itself and, with `rows` =
/// `Some(reg)`, each fitted row's own iALS regulariser λ_r (`group_reg`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapReg {
    pub ridge: f32,
    pub rows: Option<f32>,
}

impl MapReg {
    /// The ridge on the map alone.
    pub fn ridge(ridge: f32) -> Self {
        MapReg { ridge, rows: None }
    }
}

/// `Σ_r λ_r` over a group's rows with `row_reg` = `Some(reg)`: each row's iALS regulariser,
/// `reg·(|N(r)| + w0·n_other)` as in [`fold_in`], so that the vector `Wᵀf_r` the map gives a row
/// is shrunk as a trained or folded-in row is. 0 with `None`.
fn group_reg(rs: &[usize], interactions: &Csr, row_reg: Option<f32>, w0: f64, n: usize) -> f64 {
    let Some(reg) = row_reg else {
        return 0.0;
    };
    rs.iter()
        .map(|&r| row_lambda(reg as f64, interactions.degree(r), w0, n))
        .sum()
}

/// The regulariser of a row with `degree` observed entries against `n` others, scaled with the
/// evidence as iALS's frequency-scaled one (ν = 1): `reg·(degree + w0·n)`. Fold-in and the user
/// map share it, so that a one-row map is that row's fold-in.
fn row_lambda(reg: f64, degree: usize, w0: f64, n: usize) -> f64 {
    reg * (degree as f64 + w0 * n as f64)
}

/// A feature row as a sortable key: (feature, weight bits) pairs.
type FeatureRow = Vec<(u32, u32)>;

/// The rows of `feats` that the maps are fitted on (those with interactions and features),
/// grouped by feature row, in key order (so sums over groups run in a fixed order).
fn group_rows(feats: &Csr, interactions: &Csr) -> Vec<(FeatureRow, Vec<usize>)> {
    let mut groups: std::collections::BTreeMap<FeatureRow, Vec<usize>> = Default::default();
    for r in 0..feats.rows.min(interactions.rows) {
        let (idx, fw) = (feats.row(r), feats.row_values(r));
        if interactions.row(r).is_empty() || idx.is_empty() {
            continue;
        }
        let key = idx.iter().zip(fw).map(|(&f, w)| (f, w.to_bits())).collect();
        groups.entry(key).or_default().push(r);
    }
    groups.into_iter().collect()
}

/// A group's `Σ x_o x_oᵀ` (d×d, row-major) and `conf·Σ x_o` over its rows' interactions, the
/// Gram as blocked faer products summed in a fixed order.
fn group_gram(
    rs: &[usize],
    interactions: &Csr,
    other: &[f32],
    d: usize,
    conf: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut s = vec![0f64; d * d];
    let mut b = vec![0f64; d];
    let mut buf: Vec<f32> = Vec::with_capacity(super::ials::GRAM_BLOCK * d);
    let flush = |buf: &mut Vec<f32>, s: &mut Vec<f64>| {
        let gb = super::ials::gram(buf, d);
        for (k, sv) in s.iter_mut().enumerate() {
            *sv += gb[(k / d, k % d)] as f64;
        }
        buf.clear();
    };
    for &r in rs {
        for &o in interactions.row(r) {
            let x = &other[o as usize * d..(o as usize + 1) * d];
            buf.extend_from_slice(x);
            for (bv, &xv) in b.iter_mut().zip(x) {
                *bv += conf * xv as f64;
            }
            if buf.len() == super::ials::GRAM_BLOCK * d {
                flush(&mut buf, &mut s);
            }
        }
    }
    if !buf.is_empty() {
        flush(&mut buf, &mut s);
    }
    (s, b)
}

/// One group's terms of [`fit_map_cg`]'s system.
struct GroupTerms {
    /// `conf·Σ x_o` over the group's interactions: its part of the right-hand side.
    b: Vec<f64>,
    /// The diagonal of `A_g`: its part of the Jacobi preconditioner.
    a_diag: Vec<f64>,
    /// `S_g = Σ x_o x_oᵀ` (d×d, row-major) for the groups that keep it.
    gram: Option<Vec<f64>>,
    /// `Σ_r λ_r` over the group's rows (`group_reg`).
    reg: f64,
}

/// Unknowns (features × dim) up to which [`fit_map_implicit`] forms its normal equations
/// (a dense matrix of 8·n² bytes: 128 MiB at 4096).
pub const MAP_DENSE_MAX: usize = 4096;

/// Relative residual at which [`fit_map_cg`] stops, and its iteration cap.
const MAP_CG_TOL: f64 = 1e-6;
const MAP_CG_MAX_ITERS: usize = 500;

/// Memory [`fit_map_cg`] may spend on its groups' Gram matrices (`8·d²` bytes each: 2048
/// groups at 128 dimensions).
pub const MAP_CG_GRAM_BUDGET: usize = 256 << 20;

/// [`fit_map_implicit`]'s system solved by Jacobi-preconditioned conjugate gradients without
/// forming it, so that attribute files with thousands of values fit. The fitted rows are
/// grouped by feature row (a catalogue's many items share few genre-and-decade combinations),
/// and the product `M v = Σ_g f_g ⊗ A_g (vᵀ f_g) + λ v` runs over the groups, with
/// `A_g = Σ_{r∈g} A_r = |g|·w0·G + (c − w0)·S_g`, `S_g = Σ x_o x_oᵀ` over the group's
/// interactions. A group with at least `d` interactions keeps `S_g` (one Gram product up
/// front, then `2d²` per step instead of a `4·nnz·d` gather), the largest first, within
/// `gram_budget` bytes ([`MAP_CG_GRAM_BUDGET`] when fitting); the rest gather
/// `Σ x_o (x_o·t)` over their interactions at every step. Each product is two parallel passes
/// with one writer per output row: the result does not depend on the thread count.
pub fn fit_map_cg(
    feats: &Csr,
    interactions: &Csr,
    other: &[f32],
    d: usize,
    c: FoldIn,
    reg: MapReg,
    gram_budget: usize,
) -> Vec<f32> {
    let (lambda, row_reg) = (reg.ridge, reg.rows);
    let n = feats.cols * d;
    let g = super::ials::gram(other, d);
    let w0 = c.weights.unobserved as f64;
    let conf = c.weights.confidence(1.0) as f64;
    let w0g: Vec<f64> = (0..d * d).map(|k| w0 * g[(k / d, k % d)] as f64).collect();
    let x_of = |o: u32| &other[o as usize * d..(o as usize + 1) * d];
    let groups = group_rows(feats, interactions);
    let weights: Vec<Vec<(usize, f64)>> = groups
        .iter()
        .map(|(key, _)| {
            key.iter()
                .map(|&(f, w)| (f as usize, f32::from_bits(w) as f64))
                .collect()
        })
        .collect();
    // The groups that keep their Gram matrix: the largest (ties by key order) with at least d
    // interactions, as many as the budget holds.
    let nnz: Vec<usize> = groups
        .iter()
        .map(|(_, rs)| rs.iter().map(|&r| interactions.degree(r)).sum())
        .collect();
    let mut by_size: Vec<usize> = (0..groups.len()).filter(|&k| nnz[k] >= d).collect();
    by_size.sort_by_key(|&k| std::cmp::Reverse(nnz[k]));
    by_size.truncate(gram_budget / (8 * d * d).max(1));
    let mut keep = vec![false; groups.len()];
    for &k in &by_size {
        keep[k] = true;
    }
    // Per group in parallel: conf·Σ x_o (its part of the right-hand side), the diagonal of
    // A_g (its part of the Jacobi preconditioner) and, for the kept groups, S_g.
    let per_group: Vec<GroupTerms> = groups
        .par_iter()
        .zip(&keep)
        .map(|((_, rs), &keep)| {
            let reg = group_reg(rs, interactions, row_reg, w0, other.len() / d.max(1));
            let mut a_diag: Vec<f64> = (0..d)
                .map(|p| rs.len() as f64 * w0g[p * d + p] + reg)
                .collect();
            if keep {
                let (s, b) = group_gram(rs, interactions, other, d, conf);
                for (p, a) in a_diag.iter_mut().enumerate() {
                    *a += (conf - w0) * s[p * d + p];
                }
                return GroupTerms {
                    b,
                    a_diag,
                    gram: Some(s),
                    reg,
                };
            }
            let mut b = vec![0f64; d];
            for &r in rs {
                for &o in interactions.row(r) {
                    for (p, &xp) in x_of(o).iter().enumerate() {
                        b[p] += conf * xp as f64;
                        a_diag[p] += (conf - w0) * (xp as f64) * (xp as f64);
                    }
                }
            }
            GroupTerms {
                b,
                a_diag,
                gram: None,
                reg,
            }
        })
        .collect();
    let mut rhs = vec![0f64; n];
    let mut diag = vec![lambda as f64; n];
    for (ws, GroupTerms { b, a_diag, .. }) in weights.iter().zip(&per_group) {
        for &(f, w) in ws {
            for p in 0..d {
                rhs[f * d + p] += w * b[p];
                diag[f * d + p] += w * w * a_diag[p];
            }
        }
    }
    // Feature → the groups that hold it, with the weight.
    let mut triples = Vec::new();
    for (gi, (key, _)) in groups.iter().enumerate() {
        for &(f, w) in key {
            triples.push((gi as u32, f, f32::from_bits(w)));
        }
    }
    let by_feature = Csr::from_triples(groups.len(), feats.cols, &triples).transpose();
    // Two passes per product. First, for the groups in parallel, t_g = Wᵀ f_g and
    // u_g = (c − w0)·S_g t_g + Λ_g t_g, from the kept Gram or gathered over the interactions in f32 SIMD
    // as iALS's own solves (the solve's vectors stay f64). Then, for the features in parallel,
    // out_f = λ v_f + Σ_g w_gf u_g + w0·G Σ_g w_gf |g| t_g: the w0·G term once per feature.
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut u_groups = vec![0f64; groups.len() * d];
    let mut t_groups = vec![0f64; groups.len() * d];
    let apply = |v: &[f64], out: &mut [f64]| {
        u_groups
            .par_chunks_mut(d)
            .zip(t_groups.par_chunks_mut(d))
            .enumerate()
            .for_each_init(
                || (vec![0f32; d], vec![0f32; d]),
                |(t32, acc), (gi, (u, t))| {
                    t.fill(0.0);
                    for &(f, w) in &weights[gi] {
                        for (tp, vp) in t.iter_mut().zip(&v[f * d..(f + 1) * d]) {
                            *tp += w * vp;
                        }
                    }
                    let reg = per_group[gi].reg;
                    if let Some(s) = &per_group[gi].gram {
                        for (p, up) in u.iter_mut().enumerate() {
                            *up = (conf - w0) * dot(&s[p * d..(p + 1) * d], t) + reg * t[p];
                        }
                        return;
                    }
                    for (a, &b) in t32.iter_mut().zip(t.iter()) {
                        *a = b as f32;
                    }
                    acc.fill(0.0);
                    for &r in &groups[gi].1 {
                        for &o in interactions.row(r) {
                            let x = x_of(o);
                            crate::simd::axpy(crate::simd::dot(x, t32), x, acc);
                        }
                    }
                    for ((up, &a), &tp) in u.iter_mut().zip(acc.iter()).zip(t.iter()) {
                        *up = (conf - w0) * a as f64 + reg * tp;
                    }
                },
            );
        out.par_chunks_mut(d).enumerate().for_each_init(
            || vec![0f64; d],
            |ts, (f, o)| {
                for (ov, vv) in o.iter_mut().zip(&v[f * d..(f + 1) * d]) {
                    *ov = lambda as f64 * vv;
                }
                ts.fill(0.0);
                for (&gi, &w) in by_feature.row(f).iter().zip(by_feature.row_values(f)) {
                    let (gi, w) = (gi as usize, w as f64);
                    let wn = w * groups[gi].1.len() as f64;
                    let span = gi * d..(gi + 1) * d;
                    for ((ov, uv), (tv, tgv)) in o
                        .iter_mut()
                        .zip(&u_groups[span.clone()])
                        .zip(ts.iter_mut().zip(&t_groups[span]))
                    {
                        *ov += w * uv;
                        *tv += wn * tgv;
                    }
                }
                for (p, ov) in o.iter_mut().enumerate() {
                    *ov += dot(&w0g[p * d..(p + 1) * d], ts);
                }
            },
        );
    };
    let x = super::cg::solve_columns(apply, &rhs, &diag, 1, MAP_CG_TOL, MAP_CG_MAX_ITERS);
    x.iter().map(|&v| v as f32).collect()
}

/// `Σ w·map[f]` for resolved (feature, weight) pairs.
pub fn embed(pairs: &[(usize, f32)], map: &[f32], d: usize) -> Vec<f32> {
    let mut v = vec![0f32; d];
    for &(f, w) in pairs {
        crate::simd::axpy(w, &map[f * d..(f + 1) * d], &mut v);
    }
    v
}

/// How a cold item's map vector is blended with the mean of its **content neighbours**: the
/// catalogue items that had training interactions, weighted by their similarity to the new
/// item, `jaccard(content) · exp(−|Δyear| / year_scale)`. An item's content is the set of its
/// genres and attribute values ([`crate::data::features::content_names`]).
///
/// The `k` most similar items are kept, and every item tied with the `k`-th (many movies share
/// a genre set and a year, and which of them made the cut must not depend on their order).
/// The neighbour mean `m` (similarity-weighted) enters as `(1 − blend)·map + blend·m`. A new
/// item without a year is compared by content alone; a catalogue item without a year is not a
/// neighbour of one with a year. With no neighbour (no genres or attributes, `k = 0`, or no
/// similar trained item) the map vector is used alone.
///
/// Chosen on cold-item validation splits carved from the ten P3 training parts (`data split
/// p3/train.tsv --method cold-items:0.1 --seed S+100`, iALS): mean NDCG@10 .2904 with the map
/// alone, .2954 at k 30 / year scale 12 / blend .5; at blend .35 and year scale 12, k 10 / 20
/// / 50 gave .2923 / .2941 / .2931, and k 20 at year scale 25 .2945. Year scales 3 / 6 / 12 /
/// 25 / none gave .2925 / .2938 / .2954 / .2955 / .2951 (k 20, blend .35, ties cut in row
/// order). A similarity-weighted mean over every trained item (weights `jaccard^p`, p 4–16,
/// blend .35) reached .2908–.2949.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContentNeighbours {
    /// Neighbours kept (ties with the `k`-th included); 0 turns the neighbours off.
    pub k: usize,
    /// Years over which the similarity falls by a factor e.
    pub year_scale: f32,
    /// The neighbour mean's share of the blended vector.
    pub blend: f32,
}

impl Default for ContentNeighbours {
    fn default() -> Self {
        ContentNeighbours {
            k: 30,
            year_scale: 12.0,
            blend: 0.5,
        }
    }
}

/// The catalogue as content neighbours are searched in: each item's content names (genres and
/// attribute values) as sorted ids into one vocabulary, its year, and whether it had training interactions (only those are
/// neighbours: an untrained item's vector says nothing).
#[derive(Clone, Debug, Default)]
pub struct ContentCatalogue {
    vocab: std::collections::HashMap<String, u32>,
    content: Vec<Vec<u32>>,
    years: Vec<Option<u16>>,
    trained: Vec<bool>,
}

impl ContentCatalogue {
    /// From each item's (content names, year), in row order, and which items were trained.
    pub fn new<S: AsRef<[String]>>(
        items: impl IntoIterator<Item = (S, Option<u16>)>,
        trained: Vec<bool>,
    ) -> Self {
        let mut cat = ContentCatalogue {
            trained,
            ..Default::default()
        };
        for (names, year) in items {
            let mut ids: Vec<u32> = (names.as_ref().iter())
                .map(|g| {
                    let next = cat.vocab.len() as u32;
                    *cat.vocab.entry(g.clone()).or_insert(next)
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            cat.content.push(ids);
            cat.years.push(year);
        }
        cat
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.content.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }
}

impl ContentNeighbours {
    /// The similarity of a new item to catalogue item `i`: the Jaccard index of the content sets
    /// times `exp(−|Δyear| / year_scale)`. The new item's content is `known` (sorted ids of the
    /// catalogue's vocabulary) plus `unknown` names the catalogue never had.
    fn similarity(
        &self,
        known: &[u32],
        unknown: usize,
        year: Option<u16>,
        cat: &ContentCatalogue,
        i: usize,
    ) -> f32 {
        let b = &cat.content[i];
        let (mut x, mut y, mut common) = (0, 0, 0);
        while x < known.len() && y < b.len() {
            match known[x].cmp(&b[y]) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    common += 1;
                    x += 1;
                    y += 1;
                }
            }
        }
        if common == 0 {
            return 0.0;
        }
        let near = match (year, cat.years[i]) {
            (None, _) => 1.0,
            (Some(_), None) => return 0.0,
            (Some(y), Some(z)) => (-(f32::from(y.abs_diff(z))) / self.year_scale).exp(),
        };
        let union = known.len() + unknown + b.len() - common;
        common as f32 / union as f32 * near
    }

    /// The similarity-weighted mean of the trained vectors (`items`, `n × d`, row `i` for
    /// catalogue item `i`) of the new item's (content `names`, `year`) nearest `k` trained
    /// catalogue items, ties with the `k`-th included, and how many they are; `None` when there
    /// is none.
    pub fn mean<S: AsRef<str>>(
        &self,
        names: &[S],
        year: Option<u16>,
        cat: &ContentCatalogue,
        items: &[f32],
        d: usize,
    ) -> Option<(Vec<f32>, usize)> {
        if self.k == 0 {
            return None;
        }
        let mut names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names.dedup();
        let mut known: Vec<u32> = names
            .iter()
            .filter_map(|g| cat.vocab.get(*g).copied())
            .collect();
        known.sort_unstable();
        let unknown = names.len() - known.len();
        let mut sims: Vec<(f32, usize)> = (0..cat.len())
            .filter(|&i| cat.trained.get(i).copied().unwrap_or(false))
            .map(|i| (self.similarity(&known, unknown, year, cat, i), i))
            .filter(|&(s, _)| s > 0.0)
            .collect();
        if sims.is_empty() {
            return None;
        }
        // The k-th largest similarity by selection (O(n)), then every item at or above it, in
        // row order, so that the sum does not depend on the selection's order.
        let by_sim = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let kth = self.k.min(sims.len()) - 1;
        let cut = sims.select_nth_unstable_by(kth, by_sim).1 .0;
        let mut kept: Vec<(f32, usize)> = sims.into_iter().filter(|&(s, _)| s >= cut).collect();
        kept.sort_unstable_by_key(|x| x.1);
        let mut m = vec![0f32; d];
        let mut total = 0f32;
        for &(s, i) in &kept {
            crate::simd::axpy(s, &items[i * d..(i + 1) * d], &mut m);
            total += s;
        }
        m.iter_mut().for_each(|x| *x /= total);
        Some((m, kept.len()))
    }

    /// `(1 − blend)·map + blend·neighbours`, or the map alone without neighbours.
    pub fn blend(&self, map: Vec<f32>, neighbours: Option<&[f32]>) -> Vec<f32> {
        match neighbours {
            None => map,
            Some(m) => (map.iter().zip(m))
                .map(|(a, b)| (1.0 - self.blend) * a + self.blend * b)
                .collect(),
        }
    }
}

/// The fold-in objective's constants.
#[derive(Clone, Copy, Debug)]
pub struct FoldIn {
    /// iALS's confidences: a liked item's (`confidence(1)`, c = 1 + alpha), every other
    /// item's (the unobserved weight) and a disliked item's (a known negative: preference 0),
    /// as iALS trains them.
    pub weights: super::ials::Weights,
    /// Ridge strength toward the prior.
    pub reg: f32,
    /// How much of the prior the solve pulls toward: the ridge centre is `prior_weight ·
    /// prior` ([`PRIOR_WEIGHT`] by default).
    pub prior_weight: f32,
}

/// The share of the demographic prior a fold-in pulls toward. The user map's vector of a
/// demographic profile, as a ridge centre of full strength, outweighed what a user's first
/// liked movies say. Chosen on cold-user validation splits (`data split cu/train.tsv --method
/// cold-users:0.1 --seed S+100` of the cold-users splits of seeds 1–3, iALS on the positives):
/// mean NDCG@10 over N = 1, 3, 5, 10 revealed positives .5058 with no prior, .5279 / .5370 /
/// .5401 / .5404 / .5394 / .5326 / .5190 / .5069 at .1 / .2 / .25 / .3 / .35 / .5 / .75 / 1.
/// Demographics alone (N = 0) rank the same at any weight.
pub const PRIOR_WEIGHT: f32 = 0.3;

impl Default for FoldIn {
    /// iALS's defaults (see `TrainConfig::defaults`).
    fn default() -> Self {
        FoldIn {
            weights: super::ials::Weights {
                alpha: 1.0,
                unobserved: 0.7,
                negative: super::ials::NEGATIVE_CONFIDENCE,
            },
            reg: 0.02,
            prior_weight: PRIOR_WEIGHT,
        }
    }
}

/// The vector of a user who liked `liked` and disliked `disliked` (item rows of `items`,
/// `n × d`; the dislikes are known negatives, as iALS trains them), pulled toward
/// `c.prior_weight · prior` (or zero); with neither, that ridge centre itself. Duplicate (also
/// across both lists) or out-of-range items are refused.
pub fn fold_in(
    items: &[f32],
    d: usize,
    liked: &[u32],
    disliked: &[u32],
    prior: Option<&[f32]>,
    c: FoldIn,
) -> Result<Vec<f32>> {
    FoldInSolver::new(items, d, c).solve(liked, disliked, prior)
}

/// [`fold_in`] for many users over the same items: the item Gram matrix, the `n·d²` part of
/// every solve, is computed once.
pub struct FoldInSolver<'a> {
    items: &'a [f32],
    d: usize,
    gram: Mat<f32>,
    c: FoldIn,
}

impl<'a> FoldInSolver<'a> {
    /// Prepares fold-ins over `items` (`n × d`, row-major).
    pub fn new(items: &'a [f32], d: usize, c: FoldIn) -> Self {
        FoldInSolver {
            items,
            d,
            gram: super::ials::gram(items, d),
            c,
        }
    }

    /// The item vectors, `n × d`.
    pub fn items(&self) -> &'a [f32] {
        self.items
    }

    /// The dimension `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// One user's vector; see [`fold_in`].
    pub fn solve(
        &self,
        liked: &[u32],
        disliked: &[u32],
        prior: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let (items, d, c) = (self.items, self.d, self.c);
        let n = items.len() / d.max(1);
        if liked.is_empty() && prior.is_none() {
            return Err(Error::invalid(
                "--liked",
                "name at least one liked item, or demographics (--age, --gender, --occupation)",
            ));
        }
        if let (true, true, Some(x0)) = (liked.is_empty(), disliked.is_empty(), prior) {
            // Nothing revealed: the unobserved term would only shrink the prior along the
            // popular directions, as if the user had passed over every item. The answer is the
            // ridge centre itself.
            return Ok(x0.iter().map(|&v| c.prior_weight * v).collect());
        }
        let mut sorted = [liked, disliked].concat();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                "--liked / --disliked",
                format!("item row {} is listed twice", w[0]),
            ));
        }
        if let Some(&i) = sorted.iter().find(|&&i| i as usize >= n) {
            return Err(Error::invalid(
                "--liked / --disliked",
                format!("item row {i} is beyond the {n} items"),
            ));
        }
        let g = &self.gram;
        let w0 = c.weights.unobserved;
        let lam = row_lambda(c.reg as f64, sorted.len(), w0 as f64, n) as f32;
        let mut a = Mat::<f64>::from_fn(d, d, |p, q| (w0 * g[(p, q)]) as f64);
        let mut b = Mat::<f64>::zeros(d, 1);
        // A += Σ (c − w0) y yᵀ over the revealed items, as one product Y · diag(c − w0) · Yᵀ
        // (an element-wise loop over d² entries per item took ~1 ms per user at 128 dims).
        let rows: Vec<(u32, f32, f32)> = (liked.iter())
            .map(|&i| (i, c.weights.confidence(1.0), 1.0))
            .chain(
                disliked
                    .iter()
                    .map(|&i| (i, c.weights.confidence(0.0), 0.0)),
            )
            .collect();
        let y = |j: usize, p: usize| items[rows[j].0 as usize * d + p] as f64;
        let ys = Mat::<f64>::from_fn(d, rows.len(), |p, j| y(j, p));
        let scaled = Mat::<f64>::from_fn(d, rows.len(), |p, j| (rows[j].1 - w0) as f64 * y(j, p));
        faer::linalg::matmul::matmul(
            a.as_mut(),
            faer::Accum::Add,
            scaled.as_ref(),
            ys.transpose(),
            1.0f64,
            faer::Par::Seq,
        );
        for (j, &(_, ci, pref)) in rows.iter().enumerate() {
            for p in 0..d {
                b[(p, 0)] += (ci * pref) as f64 * y(j, p);
            }
        }
        for p in 0..d {
            a[(p, p)] += lam as f64;
            if let Some(x0) = prior {
                b[(p, 0)] += (lam * c.prior_weight * x0[p]) as f64;
            }
        }
        let llt = a
            .llt(Side::Lower)
            .map_err(|_| Error::invalid("fold-in", "the system is not positive definite"))?;
        let x = llt.solve(b);
        Ok((0..d).map(|p| x[(p, 0)] as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Content neighbours on a hand-worked catalogue: similarities, the trained-only rule, the
    /// ties at the k-th, the year rules and the blend.
    #[test]
    fn content_neighbours_by_hand() {
        let g = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let rows = [
            (g(&["Comedy", "Romance"]), Some(1995), true, [2.0, 0.0]),
            (g(&["Comedy"]), Some(1995), true, [0.0, 2.0]),
            (g(&["Comedy", "Drama"]), Some(2005), true, [100.0, 100.0]),
            (g(&["Comedy", "Romance"]), Some(1995), false, [100.0, 100.0]),
            (g(&["Drama"]), Some(1995), true, [100.0, 100.0]),
            (
                g(&["Romance", "Comedy", "Comedy"]),
                Some(1985),
                true,
                [100.0, 100.0],
            ),
            (g(&["Comedy"]), None, true, [100.0, 100.0]),
            (g(&["Romance"]), Some(1995), true, [4.0, 4.0]),
        ];
        let trained: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let cat = ContentCatalogue::new(rows.iter().map(|r| (r.0.as_slice(), r.1)), trained);
        let items: Vec<f32> = rows.iter().flat_map(|r| r.3).collect();
        let cfg = ContentNeighbours {
            k: 2,
            year_scale: 10.0,
            blend: 0.5,
        };
        let q = ["Romance", "Comedy", "Romance"];
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        let id = |g: &str| cat.vocab[g];
        let (comedy, romance) = (id("Comedy"), id("Romance"));
        let both = {
            let mut v = vec![comedy, romance];
            v.sort_unstable();
            v
        };
        // Jaccard 1/3 at ten years: e^-1 / 3; a repeated genre counts once.
        let e1 = (-1f32).exp();
        assert!(close(
            cfg.similarity(&both, 0, Some(1995), &cat, 2),
            e1 / 3.0
        ));
        assert!(close(cfg.similarity(&both, 0, Some(1995), &cat, 5), e1));
        // A genre the catalogue never had counts in the union: {Comedy, Zzz} against {Comedy}.
        assert!(close(
            cfg.similarity(&[comedy], 1, Some(1995), &cat, 1),
            0.5
        ));
        assert_eq!(cfg.similarity(&[comedy], 0, Some(1995), &cat, 6), 0.0);
        assert_eq!(cfg.similarity(&[comedy], 0, None, &cat, 6), 1.0);
        // Item 0 (1.0), then items 1 and 7 tied at .5 (both kept); item 3 is as similar as
        // item 0 but untrained. ([2,0] + .5·[0,2] + .5·[4,4]) / (1 + .5 + .5) = [2, 1.5].
        let (m, n) = cfg.mean(&q, Some(1995), &cat, &items, 2).unwrap();
        assert_eq!(n, 3);
        assert!(close(m[0], 2.0) && close(m[1], 1.5), "{m:?}");
        // Without a year: items 0 and 5 both at 1.0 fill k = 2.
        let (m, n) = cfg.mean(&q, None, &cat, &items, 2).unwrap();
        assert_eq!(n, 2);
        assert!(close(m[0], 51.0) && close(m[1], 50.0), "{m:?}");
        // Nothing to go on: no genres, no similar trained item, or k = 0.
        assert!(cfg.mean::<&str>(&[], Some(1995), &cat, &items, 2).is_none());
        assert!(cfg.mean(&["Horror"], Some(1995), &cat, &items, 2).is_none());
        let off = ContentNeighbours { k: 0, ..cfg };
        assert!(off.mean(&q, Some(1995), &cat, &items, 2).is_none());
        assert_eq!(cfg.blend(vec![1.0, 1.0], Some(&[3.0, 5.0])), vec![2.0, 3.0]);
        assert_eq!(cfg.blend(vec![1.0, 1.0], None), vec![1.0, 1.0]);
    }

    /// A user planted in a random item space is recovered from their top items alone: the
    /// folded-in vector points the planted way and ranks the planted top items first.
    #[test]
    fn fold_in_recovers_a_planted_user() {
        let (n, d) = (600, 8);
        let mut r = Rng::new(21);
        println!("seed 21");
        let items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let planted: Vec<f32> = (0..d).map(|_| r.normal() as f32).collect();
        let score = |x: &[f32], i: usize| -> f32 { (0..d).map(|c| x[c] * items[i * d + c]).sum() };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| score(&planted, b).total_cmp(&score(&planted, a)));
        let liked: Vec<u32> = order[..30].iter().map(|&i| i as u32).collect();
        let x = fold_in(&items, d, &liked, &[], None, FoldIn::default()).unwrap();
        let cos = crate::simd::dot(&x, &planted)
            / (crate::simd::dot(&x, &x).sqrt() * crate::simd::dot(&planted, &planted).sqrt());
        assert!(cos > 0.9, "cosine {cos}");
        // Its own top 50 holds most of the planted top 50.
        let mut mine: Vec<usize> = (0..n).collect();
        mine.sort_by(|&a, &b| score(&x, b).total_cmp(&score(&x, a)));
        let hits = mine[..50]
            .iter()
            .filter(|i| order[..50].contains(i))
            .count();
        assert!(hits >= 35, "{hits}/50");
        // A prior alone gives the prior's direction back; bad lists are refused.
        let p = fold_in(&items, d, &[], &[], Some(&planted), FoldIn::default()).unwrap();
        assert!(crate::simd::dot(&p, &planted) > 0.0);
        assert!(fold_in(&items, d, &[], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[3, 3], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[n as u32], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[3], &[3], None, FoldIn::default()).is_err());
        // A dislike (known negative) of the best item not liked drops it far down the ranking
        // and leaves the direction of the rest.
        let best = *mine
            .iter()
            .find(|&&i| !liked.contains(&(i as u32)))
            .unwrap();
        let y = fold_in(&items, d, &liked, &[best as u32], None, FoldIn::default()).unwrap();
        let rank = |v: &[f32], i: usize| (0..n).filter(|&k| score(v, k) > score(v, i)).count();
        assert!(
            rank(&x, best) < 35 && rank(&y, best) > rank(&x, best) + 10,
            "rank {} before, {} after",
            rank(&x, best),
            rank(&y, best)
        );
        let cos = crate::simd::dot(&x, &y)
            / (crate::simd::dot(&x, &x).sqrt() * crate::simd::dot(&y, &y).sqrt());
        assert!(cos > 0.8, "cosine {cos}");
        // The prior's weight: 0 is no prior, and the solve is linear in it, so weight w lands
        // at x(0) + w·(x(1) − x(0)).
        let at = |w: f32| {
            let c = FoldIn {
                prior_weight: w,
                ..FoldIn::default()
            };
            fold_in(&items, d, &liked[..3], &[], Some(&planted), c).unwrap()
        };
        let (x0, x1, xw) = (at(0.0), at(1.0), at(0.3));
        let none = fold_in(&items, d, &liked[..3], &[], None, FoldIn::default()).unwrap();
        let want: Vec<f32> = (0..d).map(|p| x0[p] + 0.3 * (x1[p] - x0[p])).collect();
        let close = |a: &[f32], b: &[f32], what: &str| {
            let diff = (a.iter().zip(b)).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            let scale = b.iter().fold(0f32, |m, y| m.max(y.abs()));
            assert!(
                diff <= 1e-4 * scale.max(1.0),
                "{what}: {diff} (scale {scale})"
            );
        };
        close(&x0, &none, "weight 0 against no prior");
        close(&xw, &want, "weight .3 against the interpolation");
        assert!(crate::simd::dot(&x1, &planted) > crate::simd::dot(&x0, &planted));
    }

    /// The matrix-free conjugate-gradient map solves the same system as the dense Cholesky one.
    #[test]
    fn cg_map_matches_the_dense_solve() {
        let mut r = Rng::new(12);
        let (rows, n_other, nf, d) = (120, 40, 9, 4);
        let other: Vec<f32> = (0..n_other * d).map(|_| r.normal() as f32 * 0.5).collect();
        let mut ft = Vec::new();
        let mut it = Vec::new();
        for row in 0..rows as u32 {
            for f in 0..nf as u32 {
                if r.below(3) == 0 {
                    ft.push((row, f, 0.5 + r.below(2) as f32));
                }
            }
            for o in 0..n_other as u32 {
                if r.below(6) == 0 {
                    it.push((row, o, 1.0));
                }
            }
        }
        let feats = Csr::from_triples(rows, nf, &ft);
        let inter = Csr::from_triples(rows, n_other, &it);
        let c = FoldIn::default();
        // Without and with the rows' own regulariser (the user map's).
        for row_reg in [None, Some(0.02)] {
            check_cg_against_dense(&feats, &inter, &other, d, c, row_reg);
        }
    }

    fn check_cg_against_dense(
        feats: &Csr,
        inter: &Csr,
        other: &[f32],
        d: usize,
        c: FoldIn,
        row_reg: Option<f32>,
    ) {
        let reg = MapReg {
            ridge: 1.0,
            rows: row_reg,
        };
        let cg_at = |budget: usize| fit_map_cg(feats, inter, other, d, c, reg, budget);
        let dense = fit_map_implicit(feats, inter, other, d, c, reg).unwrap();
        for b in [0, usize::MAX] {
            let v = cg_at(b);
            let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            println!(
                "TEMPHASH {b} {}",
                xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(&bits))
            );
        }
        let groups = group_rows(feats, inter);
        let big = groups
            .iter()
            .filter(|(_, rs)| rs.iter().map(|&r| inter.degree(r)).sum::<usize>() >= d)
            .count();
        assert!(
            groups.len() < feats.rows && big > 4 && big < groups.len(),
            "{} groups, {big} with a Gram",
            groups.len()
        );
        // Every group gathering, every group with at least d interactions keeping its Gram, and
        // half of those: the same solution.
        let scale = dense.iter().fold(0f32, |m, v| m.max(v.abs()));
        let budgets = [0, 8 * d * d * big / 2, MAP_CG_GRAM_BUDGET];
        let mut cg = Vec::new();
        for budget in budgets {
            cg = cg_at(budget);
            for (k, (a, b)) in dense.iter().zip(&cg).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * scale,
                    "{row_reg:?}, budget {budget}, {k}: {a} vs {b}"
                );
            }
        }
        // Both bit-identical whatever the thread count.
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                pool.install(|| cg_at(MAP_CG_GRAM_BUDGET)),
                cg,
                "{threads} threads"
            );
            assert_eq!(
                pool.install(|| cg_at(budgets[1])),
                cg_at(budgets[1]),
                "{threads} threads"
            );
            let again = pool.install(|| fit_map_implicit(feats, inter, other, d, c, reg));
            assert_eq!(again.unwrap(), dense, "{threads} threads");
        }
    }

    /// With the rows' own regulariser, the map of a single row with a single feature is that
    /// row's fold-in: the same objective, λ_r = reg·(|N(r)| + w0·n) in both.
    #[test]
    fn a_one_row_map_with_row_regularisers_is_the_rows_fold_in() {
        let mut r = Rng::new(4);
        let (n, d) = (30, 5);
        let other: Vec<f32> = (0..n * d).map(|_| r.normal() as f32 * 0.5).collect();
        let liked = [2u32, 7, 11, 19];
        let feats = Csr::from_triples(1, 1, &[(0, 0, 1.0)]);
        let inter = Csr::from_triples(1, n, &liked.map(|i| (0, i, 1.0)));
        let c = FoldIn::default();
        let want = fold_in(&other, d, &liked, &[], None, c).unwrap();
        let reg = MapReg {
            ridge: 1e-6,
            rows: Some(c.reg),
        };
        let got = fit_map_implicit(&feats, &inter, &other, d, c, reg).unwrap();
        let cg = fit_map_cg(&feats, &inter, &other, d, c, reg, 0);
        for p in 0..d {
            assert!((got[p] - want[p]).abs() < 1e-4, "{got:?} vs {want:?}");
            assert!((cg[p] - want[p]).abs() < 1e-4, "{cg:?} vs {want:?}");
        }
        // Without them the map is the unregularised solve, whose norm is larger.
        let loose = fit_map_implicit(&feats, &inter, &other, d, c, MapReg::ridge(1e-6)).unwrap();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(norm(&loose) > norm(&got) * 1.01, "{loose:?} vs {got:?}");
    }

    /// With a single feature shared by every row, the map is that row-independent vector
    /// which best explains the interactions: it must score the popular item side higher.
    #[test]
    fn feature_map_learns_what_the_interactions_say() {
        // Two "other" vectors: o0 along e0, o1 along e1. Rows (items) with the feature are liked
        // by o0 only, so the fitted vector must score o0 above o1.
        let other = vec![1.0, 0.0, 0.0, 1.0];
        let feats = Csr::from_triples(3, 1, &[(0, 0, 1.0), (1, 0, 1.0), (2, 0, 1.0)]);
        let inter = Csr::from_triples(3, 2, &[(0, 0, 1.0), (1, 0, 1.0), (2, 0, 1.0)]);
        let fit = |feats: &Csr, inter: &Csr| {
            fit_map_implicit(
                feats,
                inter,
                &other,
                2,
                FoldIn::default(),
                MapReg::ridge(0.1),
            )
            .unwrap()
        };
        let w = fit(&feats, &inter);
        assert!(w[0] > 0.5 && w[1].abs() < 0.1, "{w:?}");
        // A row without interactions is not fitted on (cold rows must not teach the map).
        let inter = Csr::from_triples(3, 2, &[(0, 0, 1.0)]);
        let w1 = fit(&feats, &inter);
        let single = Csr::from_triples(1, 1, &[(0, 0, 1.0)]);
        let inter1 = Csr::from_triples(1, 2, &[(0, 0, 1.0)]);
        let w2 = fit(&single, &inter1);
        assert_eq!(w1, w2);
    }
}
