//! Batch recommendation over a model, exactly or through an LSH index, with per-thread scratch.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::{Index, Scratch, SearchParams};
use crate::score::topk::TopK;
use crate::score::{check_k, topk_exact_blocked, Scored};
use crate::store::Model;

/// How to answer.
#[derive(Clone, Copy)]
pub enum Method<'a> {
    /// Every item ranked exactly: the model's, and with an index the items appended to it
    /// since its build, so that the answer is the exact one over what the index serves.
    Exact(Option<&'a Index>),
    Lsh(&'a Index, SearchParams),
}

impl Method<'_> {
    /// `"exact"` or `"lsh"`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Exact(_) => "exact",
            Method::Lsh(..) => "lsh",
        }
    }

    /// The index serving the items, if any (an appended item's id, title and genres are there).
    pub fn index(&self) -> Option<&Index> {
        match *self {
            Method::Exact(idx) => idx,
            Method::Lsh(idx, _) => Some(idx),
        }
    }
}

/// Refuses a `k` of 0 or above the items `method` can return (an index's appended items count),
/// and an index built from another model.
fn check_method(k: usize, model: &Model, method: &Method<'_>) -> Result<()> {
    if let Some(index) = method.index() {
        index.check_model(model.meta.fingerprint(), model.n_items(), model.dim())?;
    }
    check_k(k, method.index().map_or(model.n_items(), Index::n_served))
}

/// Exact top-`k` for `queries` over the model's `items` and, when `index` has any, its
/// appended items (ids from the model's item count on): each part ranked by the GEMM scorer,
/// then merged per query. `exclude(q)` holds model items only; the sorted `blocked` may hold
/// either.
fn exact<'a>(
    queries: &[f32],
    items: &[f32],
    d: usize,
    k: usize,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
    blocked: &[u32],
    index: Option<&Index>,
) -> Result<Vec<Vec<Scored>>> {
    let n = items.len() / d;
    let split = blocked.partition_point(|&b| (b as usize) < n);
    let mut lists = topk_exact_blocked(queries, items, d, k.min(n), exclude, &blocked[..split])?;
    let appended = index.map_or(&[][..], Index::appended_vectors);
    let m = appended.len() / d;
    if m == 0 {
        return Ok(lists);
    }
    let skip: Vec<u32> = blocked[split..].iter().map(|&b| b - n as u32).collect();
    let extra = topk_exact_blocked(queries, appended, d, k.min(m), &|_| &[], &skip)?;
    for (list, more) in lists.iter_mut().zip(extra) {
        let mut top = TopK::new(k);
        list.iter().for_each(|s| top.push(s.item, s.score));
        more.iter()
            .for_each(|s| top.push(s.item + n as u32, s.score));
        *list = top.into_sorted();
    }
    Ok(lists)
}

/// The top-`k` items for an ad-hoc query vector (a folded-in or cold-start user), skipping the
/// sorted item rows `exclude`.
pub fn recommend_vector(
    model: &Model,
    query: &[f32],
    exclude: &[u32],
    k: usize,
    method: Method<'_>,
) -> Result<Vec<Scored>> {
    let d = model.dim();
    if query.len() != d {
        return Err(Error::Mismatch {
            what: "query vector".into(),
            expected: d.to_string(),
            found: query.len().to_string(),
        });
    }
    // `exclude` may hold appended items: it goes where every query's shared list goes.
    Ok(recommend_queries(model, query, k, method, &|_| &[], exclude)?.remove(0))
}

/// Top-`k` lists for `users` (dense ids), excluding each user's seen items unless `keep_seen`,
/// and the sorted item ids `blocked` for every user (`--exclude-items`).
pub fn recommend(
    model: &Model,
    users: &[u32],
    k: usize,
    method: Method<'_>,
    keep_seen: bool,
    blocked: &[u32],
) -> Result<Vec<Vec<Scored>>> {
    let d = model.dim();
    let uv = model.users.as_slice();
    if let Some(&u) = users.iter().find(|&&u| u as usize >= model.n_users()) {
        return Err(Error::UnknownUser {
            id: u.to_string(),
            known: model.n_users(),
        });
    }
    let seen = |u: u32| -> &[u32] {
        match &model.seen {
            Some(s) if !keep_seen => s.row(u as usize),
            _ => &[],
        }
    };
    let mut q = Vec::with_capacity(users.len() * d);
    for &u in users {
        q.extend_from_slice(&uv[u as usize * d..(u as usize + 1) * d]);
    }
    recommend_queries(model, &q, k, method, &|r| seen(users[r]), blocked)
}

/// Top-`k` lists for the query vectors `queries` (`n × d`, row-major: trained users' vectors,
/// or folded-in ones), each skipping the sorted item ids `exclude(r)` and the sorted `blocked`.
pub fn recommend_queries<'a>(
    model: &Model,
    queries: &[f32],
    k: usize,
    method: Method<'_>,
    exclude: &(dyn Fn(usize) -> &'a [u32] + Sync),
    blocked: &[u32],
) -> Result<Vec<Vec<Scored>>> {
    check_method(k, model, &method)?;
    let d = model.dim();
    if !queries.len().is_multiple_of(d) {
        return Err(Error::Mismatch {
            what: "query vectors".into(),
            expected: format!("a multiple of {d} values"),
            found: queries.len().to_string(),
        });
    }
    let items = model.items.as_slice();
    match method {
        Method::Exact(index) => exact(queries, items, d, k, exclude, blocked, index),
        Method::Lsh(index, params) => {
            index.check_params(&params)?;
            let p = SearchParams { k, ..params };
            Ok(queries
                .par_chunks(d)
                .enumerate()
                .map_init(
                    || (Scratch::new(model.n_items()), Vec::new()),
                    |(s, skip), (r, q)| {
                        // The search takes one list, sorted or not.
                        let skip: &[u32] = match blocked {
                            [] => exclude(r),
                            _ => {
                                skip.clear();
                                skip.extend_from_slice(exclude(r));
                                skip.extend_from_slice(blocked);
                                skip
                            }
                        };
                        index.search(items, q, skip, &p, s);
                        s.out.clone()
                    },
                )
                .collect())
        }
    }
}

/// The `k` items most like item `item` by the cosine of their vectors ("more like this"),
/// best first, ties by item id. The item itself and the sorted ids `blocked` are skipped; a
/// folded bias column (an MF model's, or `--item-bias`) is left out of the vectors, and an item
/// with a zero vector scores 0. Exact: one pass over the catalogue, split across threads.
pub fn similar_items(model: &Model, item: u32, k: usize, blocked: &[u32]) -> Result<Vec<Scored>> {
    use crate::simd::dot;
    let n = model.n_items();
    check_k(k, n)?;
    if item as usize >= n {
        return Err(Error::UnknownItem {
            id: item.to_string(),
            known: n,
        });
    }
    let (d, e) = (model.dim(), cosine_dims(model));
    let items = model.items.as_slice();
    let row = |i: usize| &items[i * d..i * d + e];
    let q = row(item as usize);
    let qn = dot(q, q).sqrt();
    const CHUNK: usize = 4096;
    let lists: Vec<Vec<Scored>> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut top = TopK::new(k);
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                if i == item as usize || blocked.binary_search(&(i as u32)).is_ok() {
                    continue;
                }
                let y = row(i);
                let norms = dot(y, y).sqrt() * qn;
                top.push(i as u32, if norms > 0.0 { dot(y, q) / norms } else { 0.0 });
            }
            top.into_sorted()
        })
        .collect();
    let mut top = TopK::new(k);
    for s in lists.iter().flatten() {
        top.push(s.item, s.score);
    }
    Ok(top.into_sorted())
}

/// The leading dimensions of an item vector that item-to-item cosines use: all but a folded
/// bias column.
fn cosine_dims(model: &Model) -> usize {
    model.dim() - usize::from(model.meta.folded_item_bias)
}

/// Every item's neighbours at once (`similar --all`): the item vectors scaled to unit length,
/// with a folded bias column left out, so that the exact scorer's inner products are the
/// cosines [`similar_items`] ranks by. A zero vector stays zero and scores 0 with every item.
pub struct Cosine {
    unit: Vec<f32>,
    n: usize,
    dim: usize,
}

impl Cosine {
    /// Scales a copy of `model`'s item vectors (`n_items × dim` floats).
    pub fn new(model: &Model) -> Cosine {
        let (d, e) = (model.dim(), cosine_dims(model));
        let mut unit = Vec::with_capacity(model.n_items() * e);
        for row in model.items.as_slice().chunks_exact(d) {
            let v = &row[..e];
            let norm = crate::simd::dot(v, v).sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            unit.extend(v.iter().map(|x| x * scale));
        }
        Cosine {
            unit,
            n: model.n_items(),
            dim: e,
        }
    }

    /// The `k` items most like each of `items` (dense ids), best first, each skipping itself and
    /// the sorted ids `blocked`; blocked GEMM tiles over the whole catalogue, as
    /// [`topk_exact_blocked`] scores users.
    pub fn top(&self, items: &[u32], k: usize, blocked: &[u32]) -> Result<Vec<Vec<Scored>>> {
        let (n, e) = (self.n, self.dim);
        check_k(k, n)?;
        if let Some(&i) = items.iter().find(|&&i| i as usize >= n) {
            return Err(Error::UnknownItem {
                id: i.to_string(),
                known: n,
            });
        }
        let mut q = Vec::with_capacity(items.len() * e);
        for &i in items {
            q.extend_from_slice(&self.unit[i as usize * e..][..e]);
        }
        topk_exact_blocked(
            &q,
            &self.unit,
            e,
            k,
            &|r| std::slice::from_ref(&items[r]),
            blocked,
        )
    }
}
