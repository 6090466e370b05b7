//! The LSH index for maximum inner product search: the format ([`format`](mod@format)), the build path
//! ([`build`](mod@build)), the read path ([`read`]) and the query ([`query`]).

pub mod build;
pub mod format;
pub mod hash;
pub mod query;
pub mod read;

pub use build::{build, BuildConfig};
pub use query::{Mode, Scratch, SearchParams};
pub use read::Index;
