//! The layers: each a few lines around one kernel call per pass.

mod activation;
mod basic;
mod linear;

pub use activation::{ActKind, Activation, Softmax};
pub use basic::{Dropout, Flatten};
pub use linear::Linear;
