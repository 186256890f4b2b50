//! The layers: each a few lines around one kernel call per pass.

mod activation;
mod basic;
mod conv;
mod linear;
mod pool;

pub use activation::{ActKind, Activation, Softmax};
pub use basic::{Dropout, Flatten};
pub use conv::{Conv2d, Conv2dOptions};
pub use linear::Linear;
pub use pool::{AvgPool2d, GlobalAvgPool, MaxPool2d};
