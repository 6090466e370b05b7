//! Compressed sparse row storage of weighted interactions.

use serde::{Deserialize, Serialize};

/// A sparse `rows × cols` matrix in CSR form: row `r` holds `indices[indptr[r]..indptr[r+1]]`
/// (sorted ascending) with the matching `values`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<u64>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from (row, col, value) triples, which must be free of duplicate (row, col) pairs.
    /// Within a row the columns are sorted.
    pub fn from_triples(rows: usize, cols: usize, triples: &[(u32, u32, f32)]) -> Self {
        let mut counts = vec![0u64; rows + 1];
        for &(r, _, _) in triples {
            counts[r as usize + 1] += 1;
        }
        for i in 0..rows {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; triples.len()];
        let mut values = vec![0f32; triples.len()];
        for &(r, c, v) in triples {
            let p = next[r as usize] as usize;
            indices[p] = c;
            values[p] = v;
            next[r as usize] += 1;
        }
        let mut m = Csr {
            rows,
            cols,
            indptr,
            indices,
            values,
        };
        m.sort_rows();
        m
    }

    fn sort_rows(&mut self) {
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..self.rows {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            if self.indices[a..b].windows(2).all(|w| w[0] < w[1]) {
                continue;
            }
            pairs.clear();
            pairs.extend(
                self.indices[a..b]
                    .iter()
                    .copied()
                    .zip(self.values[a..b].iter().copied()),
            );
            pairs.sort_by_key(|p| p.0);
            for (k, (c, v)) in pairs.iter().enumerate() {
                self.indices[a + k] = *c;
                self.values[a + k] = *v;
            }
        }
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Column indices of row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r] as usize..self.indptr[r + 1] as usize]
    }

    /// Values of row `r`.
    #[inline]
    pub fn row_values(&self, r: usize) -> &[f32] {
        &self.values[self.indptr[r] as usize..self.indptr[r + 1] as usize]
    }

    /// Number of entries in row `r`.
    #[inline]
    pub fn degree(&self, r: usize) -> usize {
        (self.indptr[r + 1] - self.indptr[r]) as usize
    }

    /// True when row `r` contains column `c` (binary search).
    pub fn contains(&self, r: usize, c: u32) -> bool {
        self.row(r).binary_search(&c).is_ok()
    }

    /// The transpose (CSR of the transpose = CSC of self).
    pub fn transpose(&self) -> Csr {
        self.transpose_where(|_| true)
    }

    /// The transpose of the entries whose value passes `keep`.
    pub fn transpose_where(&self, keep: impl Fn(f32) -> bool) -> Csr {
        let mut triples = Vec::with_capacity(self.nnz());
        for r in 0..self.rows {
            for (c, v) in self.row(r).iter().zip(self.row_values(r)) {
                if keep(*v) {
                    triples.push((*c, r as u32, *v));
                }
            }
        }
        Csr::from_triples(self.cols, self.rows, &triples)
    }

    /// Checks the structural invariants; used by the model loader before trusting a file.
    pub fn validate(&self) -> Result<(), String> {
        if self.indptr.len() != self.rows + 1 {
            return Err(format!(
                "indptr has {} entries, expected {}",
                self.indptr.len(),
                self.rows + 1
            ));
        }
        if self.indptr[0] != 0 || *self.indptr.last().unwrap() as usize != self.indices.len() {
            return Err("indptr does not span the index array".into());
        }
        if self.values.len() != self.indices.len() {
            return Err("values and indices differ in length".into());
        }
        for r in 0..self.rows {
            if self.indptr[r] > self.indptr[r + 1] {
                return Err(format!("indptr decreases at row {r}"));
            }
        }
        if let Some(&c) = self.indices.iter().find(|&&c| c as usize >= self.cols) {
            return Err(format!("column {c} out of range (cols = {})", self.cols));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_transpose_contains() {
        let t = [(1, 2, 1.0), (0, 1, 2.0), (1, 0, 3.0), (2, 2, 4.0)];
        let m = Csr::from_triples(3, 3, &t);
        assert_eq!(m.row(1), &[0, 2]);
        assert_eq!(m.row_values(1), &[3.0, 1.0]);
        assert!(m.contains(2, 2) && !m.contains(0, 0));
        let mt = m.transpose();
        assert_eq!(mt.row(2), &[1, 2]);
        assert_eq!(mt.row_values(2), &[1.0, 4.0]);
        assert_eq!(mt.transpose(), m);
        m.validate().unwrap();
        let mut bad = m.clone();
        bad.indices[0] = 9;
        assert!(bad.validate().is_err());
    }
}
