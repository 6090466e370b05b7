//! The library's one error type. Every variant carries the structured context a user needs to fix
//! the problem (file, line, field, what was expected). `anyhow` is used only in `main.rs`.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in lshrec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system level failure on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A field that could not be parsed.
    #[error("{path}:{line}: field `{field}`: expected {expected}, found {found:?}")]
    Parse {
        path: PathBuf,
        line: usize,
        field: String,
        expected: String,
        found: String,
    },

    /// A line with too few (or too many) fields, for example a truncated last line.
    #[error("{path}:{line}: expected {expected} fields separated by {delimiter:?}, found {found}")]
    FieldCount {
        path: PathBuf,
        line: usize,
        expected: usize,
        found: usize,
        delimiter: String,
    },

    /// A numeric value outside its allowed range (for example a rating of 7 on a 1-5 scale).
    #[error(
        "{path}:{line}: field `{field}`: value {value} is outside the allowed range [{min}, {max}]"
    )]
    OutOfRange {
        path: PathBuf,
        line: usize,
        field: String,
        value: f64,
        min: f64,
        max: f64,
    },

    /// A file that holds no data rows.
    #[error(
        "{path}: no data rows, the file is empty or holds only a header (expected {expected})"
    )]
    EmptyFile { path: PathBuf, expected: String },

    /// A header line that does not name the columns the format needs.
    #[error("{path}:{line}: header mismatch: expected {expected}, found the columns {found:?}")]
    Header {
        path: PathBuf,
        line: usize,
        expected: String,
        /// The header's column names, as written (whatever the delimiter).
        found: Vec<String>,
    },

    /// A directory or file whose format could not be recognised.
    #[error("{path}: cannot detect the dataset format (looked for {looked_for}); pass --format")]
    UnknownFormat { path: PathBuf, looked_for: String },

    /// A command-line or configuration value that is not acceptable.
    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: String, reason: String },

    /// A user id that is not in the model.
    #[error("unknown user id {id:?} (the model knows {known} users)")]
    UnknownUser { id: String, known: usize },

    /// An item id that is not in the model or dataset.
    #[error("unknown item id {id:?} (the catalogue has {known} items)")]
    UnknownItem { id: String, known: usize },

    /// A `k` of zero or larger than the number of candidate items.
    #[error("invalid k = {k}: k must be between 1 and the number of items ({n_items})")]
    InvalidK { k: usize, n_items: usize },

    /// A file we wrote that fails verification: bad magic, version, shape, length or checksum.
    #[error("{path}: corrupt or incompatible file: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    /// Two files that must belong together do not (dimensions, checksums, item counts).
    #[error("mismatch: {what}: expected {expected}, found {found}")]
    Mismatch {
        what: String,
        expected: String,
        found: String,
    },

    /// Training diverged: the settings (a learning rate too high, a regularisation too low) do
    /// not suit the data, so the CLI treats it as bad usage (exit code 2).
    /// `lr` is the learning rate of the models that have one (not iALS's closed-form solves).
    #[error("training diverged at epoch {epoch}: {what}; {}", diverged_hint(*.lr))]
    Diverged {
        epoch: usize,
        what: String,
        lr: Option<f32>,
    },

    /// The GPU backend was requested, but lshrec was built without the `cuda` feature.
    #[error(
        "the CUDA backend is not compiled in; rebuild with `cargo build --release --features cuda`"
    )]
    CudaNotCompiled,

    /// The GPU backend was requested, but no usable device or driver is present.
    #[error("CUDA is unavailable: {reason}")]
    CudaUnavailable { reason: String },

    /// NVRTC refused a kernel source.
    #[error("kernel {file} failed to compile for {arch}:\n{log}")]
    KernelCompile {
        file: String,
        arch: String,
        log: String,
    },

    /// A CUDA driver call failed.
    #[error("CUDA error during {during}: {reason}")]
    Cuda { during: String, reason: String },

    /// The data does not fit in the GPU's free memory.
    #[error("{what} needs {need_mib} MiB of GPU memory, but the device has {free_mib} MiB free; use --backend cpu, a smaller --dim, or a larger card")]
    GpuMemory {
        what: String,
        need_mib: u64,
        free_mib: u64,
    },
}

impl Error {
    /// A header error placed on the header's actual line (below blank or comment lines);
    /// any other error as it is.
    pub fn header_at_line(self, at: usize) -> Self {
        match self {
            Error::Header {
                path,
                expected,
                found,
                ..
            } => Error::Header {
                path,
                line: at,
                expected,
                found,
            },
            e => e,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The process exit code the CLI uses for this error: 2 for bad input or usage (divergence
    /// included: the user's settings caused it, and the message says which to change), 1 for
    /// failures of the machine (I/O on a valid path, a missing GPU).
    pub fn exit_code(&self) -> i32 {
        match self {
            // A path the user gave that cannot serve: missing, a directory where a file is
            // expected (or the reverse), already there, or not theirs to write.
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::AlreadyExists
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::InvalidFilename
                ) =>
            {
                2
            }
            Error::Io { .. }
            | Error::CudaUnavailable { .. }
            | Error::Cuda { .. }
            | Error::KernelCompile { .. }
            | Error::GpuMemory { .. } => 1,
            _ => 2,
        }
    }
}

/// What to change after a divergence: the learning rate where there is one.
fn diverged_hint(lr: Option<f32>) -> String {
    match lr {
        Some(lr) => {
            format!("try a lower learning rate (now {lr}) or a higher regularisation")
        }
        None => "try a higher regularisation (--reg) or a lower --reg-exponent".into(),
    }
}
