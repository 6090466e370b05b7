//! Evaluation: ranking metrics with full ranking over every item (each user's training positives
//! excluded), rating metrics with baseline fallbacks, and recall of an approximate top-K against
//! the exact one.

pub mod cold_users;
pub mod metrics;

use serde::Serialize;

pub use metrics::{mean, rmse_mae, user_at_k, AtK};

use crate::data::Csr;
use crate::error::Result;
use crate::score::{topk_exact, Scored};

/// Ranking metrics averaged over the evaluated users, plus each user's values.
#[derive(Clone, Debug, Serialize)]
pub struct RankingReport {
    /// Users with at least one test item.
    pub users: usize,
    pub at: Vec<AtK>,
    #[serde(skip)]
    pub per_user: Vec<(u32, Vec<AtK>)>,
}

impl RankingReport {
    /// The metrics at `k`, if computed.
    pub fn get(&self, k: usize) -> Option<&AtK> {
        self.at.iter().find(|m| m.k == k)
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let mut s = format!(
            "ranking over all items, training positives excluded, {} users\n   K      P      R   NDCG    MRR     HR\n",
            self.users
        );
        for m in &self.at {
            s.push_str(&format!(
                "{:>4} {:.4} {:.4} {:.4} {:.4} {:.4}\n",
                m.k, m.precision, m.recall, m.ndcg, m.mrr, m.hit_rate
            ));
        }
        s
    }
}

/// Evaluates user/item vectors (`score = user · item`) on `test`, excluding `train` items.
/// Users without test items are skipped; users or items absent from training still count (their
/// vectors are whatever the model gave them, usually zero).
pub fn ranking(
    users: &[f32],
    items: &[f32],
    d: usize,
    train: &Csr,
    test: &Csr,
    ks: &[usize],
) -> Result<RankingReport> {
    let n_items = items.len() / d;
    let kmax = ks.iter().copied().max().unwrap_or(10);
    crate::score::check_k(kmax, n_items)?;
    let eval_users: Vec<u32> = (0..test.rows as u32)
        .filter(|&u| test.degree(u as usize) > 0)
        .collect();
    let mut q = Vec::with_capacity(eval_users.len() * d);
    for &u in &eval_users {
        q.extend_from_slice(&users[u as usize * d..(u as usize + 1) * d]);
    }
    let empty: &[u32] = &[];
    let exclude = |r: usize| -> &[u32] {
        let u = eval_users[r] as usize;
        if u < train.rows {
            train.row(u)
        } else {
            empty
        }
    };
    let top: Vec<Vec<Scored>> = topk_exact(&q, items, d, kmax, &exclude)?;
    let mut per_user = Vec::with_capacity(eval_users.len());
    let mut ranked = Vec::with_capacity(kmax);
    for (r, &u) in eval_users.iter().enumerate() {
        ranked.clear();
        ranked.extend(top[r].iter().map(|s| s.item));
        let t = test.row(u as usize);
        per_user.push((
            u,
            ks.iter()
                .map(|&k| user_at_k(&ranked, t, k))
                .collect::<Vec<_>>(),
        ));
    }
    let at = ks
        .iter()
        .enumerate()
        .map(|(j, &k)| {
            let v: Vec<AtK> = per_user.iter().map(|(_, m)| m[j]).collect();
            mean(&v, k)
        })
        .collect();
    Ok(RankingReport {
        users: eval_users.len(),
        at,
        per_user,
    })
}

/// RMSE/MAE report.
#[derive(Clone, Debug, Serialize)]
pub struct RatingReport {
    pub rmse: f64,
    pub mae: f64,
    pub n: usize,
}

/// recall@K of approximate lists against exact ones: |approx ∩ exact| / K, averaged.
pub fn recall_vs_exact(approx: &[Vec<Scored>], exact: &[Vec<Scored>], k: usize) -> f64 {
    let mut total = 0f64;
    for (a, e) in approx.iter().zip(exact) {
        let mut es: Vec<u32> = e.iter().take(k).map(|s| s.item).collect();
        es.sort_unstable();
        let hit = a
            .iter()
            .take(k)
            .filter(|s| es.binary_search(&s.item).is_ok())
            .count();
        let denom = k.min(e.len()).max(1);
        total += hit as f64 / denom as f64;
    }
    total / exact.len().max(1) as f64
}
