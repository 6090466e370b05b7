//! lshrec: a recommendation inference engine.
//!
//! - [`data`]: dataset readers and writers, id maps, CSR/CSC storage, splits, the synthetic
//!   generator.
//! - [`store`]: on-disk formats (atomic writes).
//! - [`error`]: the one error type.

pub mod bench;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod gpu;
pub mod index;
pub mod progress;
pub mod recommend;
pub mod rng;
pub mod score;
pub mod simd;
pub mod store;
pub mod train;

pub use error::{Error, Result};
