//! Data loaders: the IDX file format (gzip-compressed) and the MNIST data set built on it.
//!
//! Every failure is a [`DataError`] that names the file (or directory) and says what is wrong,
//! so a user with a truncated download or a wrong path knows what to fix.

mod error;
pub mod idx;
pub mod mnist;

pub use error::DataError;
pub use idx::{read_idx, IdxArray};
pub use mnist::{Mnist, MnistSplit};
