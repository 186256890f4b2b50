//! The error type of the network layer.

use nnkern_kernels::KernelError;
use std::fmt;

/// What went wrong in a layer, model, optimizer or checkpoint call.
#[derive(Debug)]
pub enum Error {
    /// A kernel refused its arguments.
    Kernel(KernelError),
    /// A tensor has the wrong shape for the layer or operation.
    Shape {
        /// Which layer or argument.
        what: String,
        /// The shape rule, e.g. "expected [N, 784]".
        expected: String,
        /// The shape given.
        got: Vec<usize>,
    },
    /// A call out of order or with invalid settings (e.g. backward before forward).
    Invalid(String),
    /// A checkpoint could not be read or does not match the model; the model is unchanged.
    Checkpoint(String),
    /// An I/O error, with the path involved.
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kernel(e) => write!(f, "kernel error: {e}"),
            Error::Shape {
                what,
                expected,
                got,
            } => write!(f, "{what}: wrong shape {got:?}, {expected}"),
            Error::Invalid(msg) => write!(f, "{msg}"),
            Error::Checkpoint(msg) => write!(f, "checkpoint: {msg}"),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Kernel(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<KernelError> for Error {
    fn from(e: KernelError) -> Error {
        Error::Kernel(e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A shape error for `what`.
pub(crate) fn shape_err(what: &str, expected: impl Into<String>, got: &[usize]) -> Error {
    Error::Shape {
        what: what.to_string(),
        expected: expected.into(),
        got: got.to_vec(),
    }
}
