//! Loss functions: the loss value and its gradient with respect to the prediction.
//!
//! * [`softmax_cross_entropy`]: fused softmax + cross-entropy over logits with integer labels.

mod softmax_xent;

pub use softmax_xent::{
    softmax_cross_entropy, softmax_cross_entropy_reference, ClassLabel, SoftmaxXent,
};

/// How per-sample losses are combined into the returned loss (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reduction {
    /// The mean over the samples that count (for cross-entropy: those not ignored).
    #[default]
    Mean,
    /// The sum over the samples.
    Sum,
}
