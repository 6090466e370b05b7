//! On-disk formats of models and indexes. The layout of a model directory is described once, in
//! [`model`]; [`write`](mod@write) and [`read`] are the build and read paths. All writes are atomic
//! ([`atomic`]); memory mapping happens only in [`mmap`].

pub mod atomic;
pub mod frame;
pub mod mmap;
pub mod model;
pub mod npy;
pub mod read;
pub mod write;

pub use model::{CatalogueEntry, ModelMeta};
pub use npy::Matrix;
pub use read::Model;
pub use write::{save, ModelParts};
