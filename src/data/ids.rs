//! External id ↔ dense `u32` id maps.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A bijection between external string ids (as they appear in the user's files) and dense ids
/// `0..len()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    ext: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from external ids in dense order. Duplicates are rejected.
    pub fn from_ids(ids: Vec<String>) -> Result<Self, String> {
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.clone(), i as u32).is_some() {
                return Err(format!("duplicate id {id:?}"));
            }
        }
        Ok(IdMap { ext: ids, index })
    }

    /// Rebuilds the lookup table after deserialisation.
    pub fn rebuild_index(&mut self) {
        self.index = self
            .ext
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
    }

    /// The dense id of `id`, inserting it if new.
    #[inline]
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&d) = self.index.get(id) {
            return d;
        }
        let d = self.ext.len() as u32;
        self.ext.push(id.to_owned());
        self.index.insert(id.to_owned(), d);
        d
    }

    /// The dense id of `id`, if known.
    #[inline]
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id of dense id `d`.
    #[inline]
    pub fn ext(&self, d: u32) -> &str {
        &self.ext[d as usize]
    }

    /// All external ids in dense order.
    pub fn ext_ids(&self) -> &[String] {
        &self.ext
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ext.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ext.is_empty()
    }

    /// Reorders dense ids so that they follow the natural order of the external ids: numeric order
    /// when every id is an integer, byte order otherwise. Returns `perm` with `perm[old] = new`.
    /// Sorted ids make dense ids predictable (`1..=943` → `0..943` for MovieLens) and make every
    /// output independent of file row order.
    pub fn sort_natural(&mut self) -> Vec<u32> {
        let n = self.ext.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        let numeric: Option<Vec<i128>> = self.ext.iter().map(|s| s.parse::<i128>().ok()).collect();
        match numeric {
            // `7`, `07` and `007` are three ids of one value: the text breaks the tie, so the
            // order never depends on which came first in the file.
            Some(nums) => order.sort_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                (nums[a], &self.ext[a]).cmp(&(nums[b], &self.ext[b]))
            }),
            None => order.sort_by(|&a, &b| self.ext[a as usize].cmp(&self.ext[b as usize])),
        }
        let mut perm = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            perm[old as usize] = new as u32;
        }
        let mut ext = vec![String::new(); n];
        for (old, s) in std::mem::take(&mut self.ext).into_iter().enumerate() {
            ext[perm[old] as usize] = s;
        }
        self.ext = ext;
        self.rebuild_index();
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_roundtrip_and_natural_sort() {
        let mut m = IdMap::new();
        for s in ["10", "2", "33", "2", "1"] {
            m.intern(s);
        }
        assert_eq!(m.len(), 4);
        let perm = m.sort_natural();
        assert_eq!(m.ext_ids(), &["1", "2", "10", "33"]);
        // old dense ids: "10"=0, "2"=1, "33"=2, "1"=3
        assert_eq!(perm, vec![2, 1, 3, 0]);
        assert_eq!(m.get("33"), Some(3));
        let mut s = IdMap::new();
        for x in ["b", "a", "10"] {
            s.intern(x);
        }
        s.sort_natural();
        assert_eq!(s.ext_ids(), &["10", "a", "b"]);
        assert!(IdMap::from_ids(vec!["a".into(), "a".into()]).is_err());
        // Ids of one numeric value sort by their text, whatever the order they came in.
        for order in [["7", "007", "07", "-1"], ["07", "-1", "7", "007"]] {
            let mut z = IdMap::new();
            for x in order {
                z.intern(x);
            }
            z.sort_natural();
            assert_eq!(z.ext_ids(), &["-1", "007", "07", "7"]);
        }
    }
}
