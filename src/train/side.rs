//! LightFM-style side features inside training: an entity's vector is its own id embedding plus
//! the weighted sum of its feature embeddings, `v_r = e_r + Σ_f w_rf z_f`, so items that share
//! genres (or users that share demographics) share parameters. Gradients with respect to `v_r`
//! reach `e_r` and every `z_f` of the row (times `w_rf`). The exported vector stays one vector.

use crate::data::Csr;
use crate::rng::Rng;

/// Feature embeddings for one side (users or items).
#[derive(Clone, Debug)]
pub struct Side {
    /// rows × features, weights (see `data::features`).
    pub feats: Csr,
    /// features × width, row-major.
    pub z: Vec<f32>,
    pub width: usize,
}

impl Side {
    /// Feature embeddings of `width` columns for the rows of `feats`, drawn from `rng`.
    pub fn new(feats: Csr, width: usize, init_std: f32, rng: &mut Rng) -> Side {
        let z = (0..feats.cols * width)
            .map(|_| init_std * rng.normal() as f32)
            .collect();
        Side { feats, z, width }
    }

    /// Adds row `r`'s feature sum `Σ w z_f` to `out` (the first `width` values).
    #[inline]
    pub fn add(&self, r: usize, out: &mut [f32]) {
        if r >= self.feats.rows {
            return;
        }
        let w = self.width;
        for (&f, &wt) in self.feats.row(r).iter().zip(self.feats.row_values(r)) {
            for (o, z) in out
                .iter_mut()
                .zip(&self.z[f as usize * w..(f as usize + 1) * w])
            {
                *o += wt * z;
            }
        }
    }

    /// One SGD step of row `r`'s features along `grad` (the gradient-ascent direction of the
    /// row's effective vector): `z_f += lr·(w·grad − reg·z_f)`.
    #[inline]
    pub fn sgd(&mut self, r: usize, grad: &[f32], lr: f32, reg: f32) {
        if r >= self.feats.rows {
            return;
        }
        let w = self.width;
        for (&f, &wt) in self.feats.row(r).iter().zip(self.feats.row_values(r)) {
            for (z, g) in self.z[f as usize * w..(f as usize + 1) * w]
                .iter_mut()
                .zip(grad)
            {
                *z += lr * (wt * g - reg * *z);
            }
        }
    }
}

/// Which side features a model trains with.
#[derive(Clone, Debug, Default)]
pub struct Sides {
    pub users: Option<Csr>,
    pub items: Option<Csr>,
}

impl Sides {
    /// The embeddings of an SGD model with `d` factors and a folded item bias: user features of
    /// width d, item features of width d + 1 (the last column adds to the item bias), drawn from
    /// their own seeded stream so that the id embeddings and the samples stay the plain model's.
    pub fn embeddings(self, d: usize, init_std: f32, seed: u64) -> (Option<Side>, Option<Side>) {
        let mut r = Rng::stream(seed, 21);
        let users = self.users.map(|f| Side::new(f, d, init_std, &mut r));
        let items = self.items.map(|f| Side::new(f, d + 1, init_std, &mut r));
        (users, items)
    }
}
