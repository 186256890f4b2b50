//! The error type of the data loaders.

use std::fmt;
use std::path::PathBuf;

/// What went wrong while loading a data file. Each variant names the path it is about.
#[derive(Debug)]
pub enum DataError {
    /// The data directory does not exist (or is not a directory).
    MissingDir {
        /// The directory as given.
        dir: PathBuf,
        /// What the user can do to get the data there.
        hint: String,
    },
    /// The file could not be opened or read (missing, unreadable).
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid gzip stream: not gzip at all, truncated, or corrupt.
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The decompressed content is not what the IDX format (or the data set) requires:
    /// wrong magic number, wrong dimensions, too short or too long, a bad label.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
}

impl DataError {
    /// A [`DataError::Format`] about `path`.
    pub(crate) fn format(path: &std::path::Path, what: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::MissingDir { dir, hint } => {
                let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                write!(
                    f,
                    "data directory {} not found (looked in {}); {hint}",
                    dir.display(),
                    shown.display()
                )
            }
            DataError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            DataError::Gzip { path, source } => write!(
                f,
                "{} is not a valid gzip file (truncated or corrupt?): {source}",
                path.display()
            ),
            DataError::Format { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::Gzip { source, .. } => Some(source),
            _ => None,
        }
    }
}
