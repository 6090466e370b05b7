//! The LSH index for maximum inner product search: the format ([`format`]), the build path
//! ([`build`]), the read path ([`read`]) and the query ([`query`]).

pub mod build;
pub mod format;
pub mod hash;
pub mod query;
pub mod read;

pub use build::{build, BuildConfig};
pub use query::{Mode, Scratch, SearchParams};
pub use read::Index;
