//! Compute backends for training: the CPU (rayon, faer) and NVIDIA GPUs (hand-written kernels
//! launched through cudarc, behind the `cuda` cargo feature, with dynamic loading so that builds
//! and tests need no CUDA at all; see [`crate::gpu`]).
//!
//! `--backend auto` probes for a driver without panicking (cudarc's context constructor panics
//! when libcuda is missing, so the library's presence is checked first and the device count is
//! read under `catch_unwind`) and falls back to the CPU with one informational line.

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The GPU when one is usable, else the CPU (with a note).
    Auto,
    Cpu,
    Cuda,
}

/// The backend a run uses.
#[derive(Clone)]
pub enum Backend {
    Cpu,
    /// An opened GPU with its kernels (compiled on first use).
    #[cfg(feature = "cuda")]
    Cuda(std::sync::Arc<crate::gpu::cuda::Gpu>),
}

impl Backend {
    /// A short description for logs and model metadata.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            #[cfg(feature = "cuda")]
            Backend::Cuda(g) => format!("cuda ({})", g.name()),
        }
    }

    /// True for the CPU.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Backend::Cpu)
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(feature = "cuda")]
fn open_gpu() -> Result<Backend> {
    Ok(Backend::Cuda(crate::gpu::cuda::Gpu::open()?))
}

#[cfg(not(feature = "cuda"))]
fn open_gpu() -> Result<Backend> {
    Err(Error::CudaNotCompiled)
}

/// Resolves a choice into a backend, plus an informational line when `auto` fell back.
pub fn select(choice: BackendChoice) -> Result<(Backend, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((Backend::Cpu, None)),
        BackendChoice::Cuda => open_gpu().map(|b| (b, None)),
        BackendChoice::Auto => match open_gpu() {
            Ok(b) => {
                let note = format!("note: training on the GPU: {}", b.describe());
                Ok((b, Some(note)))
            }
            Err(e) => {
                let why = match e {
                    Error::CudaNotCompiled => {
                        "this build has no CUDA backend (cargo feature `cuda`)".to_string()
                    }
                    e => e.to_string(),
                };
                Ok((
                    Backend::Cpu,
                    Some(format!("note: training on the CPU: {why}")),
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_resolve_without_panicking() {
        let (b, note) = select(BackendChoice::Cpu).unwrap();
        assert!(b.is_cpu() && note.is_none());
        let (b, note) = select(BackendChoice::Auto).unwrap();
        let note = note.unwrap();
        match select(BackendChoice::Cuda) {
            // A machine with a usable GPU (and the feature): auto picks it too.
            Ok(_) => assert!(!b.is_cpu() && note.starts_with("note: training on the GPU")),
            Err(e) => {
                assert!(b.is_cpu());
                assert!(note.starts_with("note: training on the CPU"), "{note}");
                #[cfg(not(feature = "cuda"))]
                assert!(matches!(e, Error::CudaNotCompiled), "{e}");
                #[cfg(feature = "cuda")]
                assert!(matches!(e, Error::CudaUnavailable { .. }), "{e}");
            }
        }
    }
}
