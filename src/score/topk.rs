//! Top-K selection with a deterministic order: higher score first, and among equal scores the
//! lower item id first.

/// A scored item.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub item: u32,
    pub score: f32,
}

/// The ranking order, best first: [`better`] as an ordering. Scores compare as IEEE numbers, so
/// −0.0 and +0.0 tie and fall back to the item id, as in the GPU scorer (a total order on bits
/// would rank −0.0 below +0.0).
pub fn rank_order(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    if better(*a, *b) {
        std::cmp::Ordering::Less
    } else if better(*b, *a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// True when `a` ranks before `b`.
#[inline]
pub fn better(a: Scored, b: Scored) -> bool {
    a.score > b.score || (a.score == b.score && a.item < b.item)
}

/// A bounded min-heap holding the best `k` items seen so far. Its root is the worst kept item,
/// so a candidate is rejected with one comparison once the heap is full.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: Vec<Scored>,
}

impl TopK {
    /// An empty selector for `k` items.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    /// Empties the selector, keeping its allocation; `k` may change.
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
    }

    /// The score a new item must beat once the heap is full (−∞ before).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap[0].score
        }
    }

    /// Offers an item.
    #[inline]
    pub fn push(&mut self, item: u32, score: f32) {
        let s = Scored { item, score };
        if self.heap.len() < self.k {
            self.heap.push(s);
            self.sift_up(self.heap.len() - 1);
        } else if self.k > 0 && better(s, self.heap[0]) {
            self.heap[0] = s;
            self.sift_down(0);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if better(self.heap[p], self.heap[i]) {
                self.heap.swap(p, i);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut worst = i;
            if l < n && better(self.heap[worst], self.heap[l]) {
                worst = l;
            }
            if r < n && better(self.heap[worst], self.heap[r]) {
                worst = r;
            }
            if worst == i {
                return;
            }
            self.heap.swap(i, worst);
            i = worst;
        }
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The kept items, best first, written into `out`.
    pub fn drain_sorted(&mut self, out: &mut Vec<Scored>) {
        out.clear();
        out.extend_from_slice(&self.heap);
        out.sort_by(rank_order);
        self.heap.clear();
    }

    /// The kept items, best first.
    pub fn into_sorted(mut self) -> Vec<Scored> {
        let mut v = Vec::with_capacity(self.heap.len());
        self.drain_sorted(&mut v);
        v
    }
}

/// Reference selection: sort everything (the scalar twin of [`TopK`], for tests).
pub fn naive_topk(scores: &[f32], exclude: &[u32], k: usize) -> Vec<Scored> {
    let mut v: Vec<Scored> = scores
        .iter()
        .enumerate()
        .filter(|(i, _)| !exclude.contains(&(*i as u32)))
        .map(|(i, &s)| Scored {
            item: i as u32,
            score: s,
        })
        .collect();
    v.sort_by(rank_order);
    v.truncate(k);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn heap_equals_sort(scores in proptest::collection::vec(-4i8..4, 1..200), k in 1usize..30) {
            // Small integer scores force many ties, which must break by item id.
            let scores: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
            let mut t = TopK::new(k);
            for (i, &s) in scores.iter().enumerate() {
                t.push(i as u32, s);
            }
            prop_assert_eq!(t.into_sorted(), naive_topk(&scores, &[], k));
        }
    }
}
