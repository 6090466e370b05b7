//! Metric definitions, exactly as in the evaluation protocols (binary relevance, full ranking).
//!
//! For one user with test set T and a ranked list L (training positives already excluded):
//! - P@K = hits/K; R@K = hits/|T|;
//! - NDCG@K = DCG/IDCG with DCG = Σ over hit ranks r (1-based) of 1/log2(r+1), and IDCG the same
//!   sum over ranks 1..min(|T|, K);
//! - MRR@K = 1/rank of the first hit within the top K (0 if none); HR@K = 1 if any hit.

use serde::Serialize;

/// The five ranking metrics at one K.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AtK {
    pub k: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub mrr: f64,
    pub hit_rate: f64,
}

impl AtK {
    fn add(&mut self, o: &AtK) {
        self.precision += o.precision;
        self.recall += o.recall;
        self.ndcg += o.ndcg;
        self.mrr += o.mrr;
        self.hit_rate += o.hit_rate;
    }

    fn scale(&mut self, s: f64) {
        self.precision *= s;
        self.recall *= s;
        self.ndcg *= s;
        self.mrr *= s;
        self.hit_rate *= s;
    }
}

/// Metrics of one user's ranked list against their sorted test items.
pub fn user_at_k(ranked: &[u32], test_sorted: &[u32], k: usize) -> AtK {
    let mut hits = 0usize;
    let mut dcg = 0f64;
    let mut first = None;
    for (r, item) in ranked.iter().take(k).enumerate() {
        if test_sorted.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((r + 2) as f64).log2();
            first.get_or_insert(r + 1);
        }
    }
    let idcg: f64 = (0..test_sorted.len().min(k))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    AtK {
        k,
        precision: hits as f64 / k as f64,
        recall: if test_sorted.is_empty() {
            0.0
        } else {
            hits as f64 / test_sorted.len() as f64
        },
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        mrr: first.map(|r| 1.0 / r as f64).unwrap_or(0.0),
        hit_rate: if hits > 0 { 1.0 } else { 0.0 },
    }
}

/// Averages per-user metrics.
pub fn mean(per_user: &[AtK], k: usize) -> AtK {
    let mut m = AtK {
        k,
        ..Default::default()
    };
    for u in per_user {
        m.add(u);
    }
    if !per_user.is_empty() {
        m.scale(1.0 / per_user.len() as f64);
    }
    m
}

/// RMSE and MAE of predictions clipped to `[lo, hi]`.
pub fn rmse_mae(pred: &[f32], truth: &[f32], lo: f32, hi: f32) -> (f64, f64) {
    let n = pred.len().max(1) as f64;
    let (mut se, mut ae) = (0f64, 0f64);
    for (p, t) in pred.iter().zip(truth) {
        let e = (p.clamp(lo, hi) - t) as f64;
        se += e * e;
        ae += e.abs();
    }
    ((se / n).sqrt(), ae / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_worked_example() {
        // Test items {3, 7, 9}; ranking 5, 3, 8, 9, 1: hits at ranks 2 and 4.
        let m = user_at_k(&[5, 3, 8, 9, 1], &[3, 7, 9], 5);
        assert!(close(m.precision, 2.0 / 5.0));
        assert!(close(m.recall, 2.0 / 3.0));
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(m.ndcg, dcg / idcg), "{}", m.ndcg);
        assert!(close(m.mrr, 0.5));
        assert!(close(m.hit_rate, 1.0));
        // K = 2 with 3 test items: IDCG over min(3, 2) = 2 ranks.
        let m2 = user_at_k(&[5, 3, 8, 9, 1], &[3, 7, 9], 2);
        assert!(close(m2.precision, 0.5));
        assert!(close(m2.recall, 1.0 / 3.0));
        assert!(close(
            m2.ndcg,
            (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())
        ));
        // A miss everywhere.
        let z = user_at_k(&[1, 2], &[3], 2);
        assert_eq!(
            (z.ndcg, z.mrr, z.hit_rate, z.precision),
            (0.0, 0.0, 0.0, 0.0)
        );
        // A perfect list has NDCG 1 even when |T| < K.
        assert!(close(user_at_k(&[4, 1, 2], &[4], 3).ndcg, 1.0));
        let avg = mean(&[m, z], 5);
        assert!(close(avg.hit_rate, 0.5));
    }

    #[test]
    fn rmse_mae_clip() {
        // Predictions 0 and 6 clip to 1 and 5.
        let (r, a) = rmse_mae(&[0.0, 6.0, 3.0], &[2.0, 4.0, 3.0], 1.0, 5.0);
        assert!(close(a, 2.0 / 3.0));
        assert!(close(r, (2.0f64 / 3.0).sqrt()));
    }
}
