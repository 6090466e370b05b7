//! One module per on-disk dataset format; each holds its reader and its writer, so that a
//! format's layout is described in exactly one place.

pub mod atomic;
pub mod attributes;
pub mod common;
pub mod generic;
pub mod ml100k;
pub mod ml1m;
pub mod mlcsv;
