//! Exact scoring and top-K selection.

pub mod exact;
pub mod topk;

pub use exact::{check_k, seen_lookup, topk_exact, topk_exact_blocked};
pub use topk::{Scored, TopK};
