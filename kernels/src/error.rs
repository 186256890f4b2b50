//! The one error type of the kernel crate.

use std::fmt;

/// What was wrong with a kernel call. Every variant names the argument at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// A slice is shorter than its shape requires.
    BufferTooShort {
        arg: &'static str,
        expected: usize,
        got: usize,
    },
    /// A slice must have exactly this length.
    BufferLength {
        arg: &'static str,
        expected: usize,
        got: usize,
    },
    /// A leading dimension is smaller than the row it must hold.
    LeadingDimension {
        arg: &'static str,
        min: usize,
        got: usize,
    },
    /// A size product does not fit in `usize`.
    Overflow { arg: &'static str },
    /// A parameter is out of its valid range; `what` says the rule.
    InvalidParam { arg: &'static str, what: String },
    /// A label or index is outside `0..bound`.
    IndexOutOfRange {
        arg: &'static str,
        index: i64,
        bound: usize,
    },
    /// The backend is not compiled into this build (e.g. OpenBLAS without `--features openblas`).
    BackendUnavailable { backend: &'static str },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::BufferTooShort { arg, expected, got } => write!(
                f,
                "buffer `{arg}` too short: needs at least {expected} elements, got {got}"
            ),
            KernelError::BufferLength { arg, expected, got } => write!(
                f,
                "buffer `{arg}` has the wrong length: expected {expected} elements, got {got}"
            ),
            KernelError::LeadingDimension { arg, min, got } => write!(
                f,
                "leading dimension `{arg}` too small: must be at least {min}, got {got}"
            ),
            KernelError::Overflow { arg } => {
                write!(f, "size of `{arg}` overflows usize")
            }
            KernelError::InvalidParam { arg, what } => {
                write!(f, "invalid parameter `{arg}`: {what}")
            }
            KernelError::IndexOutOfRange { arg, index, bound } => write!(
                f,
                "`{arg}` index {index} out of range: must be in 0..{bound}"
            ),
            KernelError::BackendUnavailable { backend } => write!(
                f,
                "backend `{backend}` is not compiled in (build with `--features {backend}`)"
            ),
        }
    }
}

impl std::error::Error for KernelError {}

/// `a * b`, or an overflow error naming `arg`.
pub fn checked_mul(arg: &'static str, a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or(KernelError::Overflow { arg })
}

/// The sum of `terms`, or an overflow error naming `arg`.
pub fn checked_sum(arg: &'static str, terms: &[usize]) -> Result<usize, KernelError> {
    terms
        .iter()
        .try_fold(0usize, |acc, &t| acc.checked_add(t))
        .ok_or(KernelError::Overflow { arg })
}

/// The product of `dims`, or an overflow error naming `arg`.
pub fn checked_product(arg: &'static str, dims: &[usize]) -> Result<usize, KernelError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| checked_mul(arg, acc, d))
}

/// Fails unless `buf_len >= needed`.
pub fn check_min_len(arg: &'static str, needed: usize, buf_len: usize) -> Result<(), KernelError> {
    if buf_len < needed {
        Err(KernelError::BufferTooShort {
            arg,
            expected: needed,
            got: buf_len,
        })
    } else {
        Ok(())
    }
}

/// Fails unless `buf_len == expected`.
pub fn check_len(arg: &'static str, expected: usize, buf_len: usize) -> Result<(), KernelError> {
    if buf_len != expected {
        Err(KernelError::BufferLength {
            arg,
            expected,
            got: buf_len,
        })
    } else {
        Ok(())
    }
}
