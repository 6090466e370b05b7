//! On-disk formats of models and indexes. All writes are atomic; mmap is fenced in `mmap`.

pub mod atomic;
