//! Losses: the loss value and its gradient with respect to the predictions in one pass.
//!
//! * [`softmax_cross_entropy`]: fused softmax + cross-entropy over logits with integer labels.
//! * Element-wise losses ([`mse_loss`], [`bce_with_logits_loss`], [`hinge_loss`]) take
//!   predictions and targets of the same length, a [`Reduction`], and an optional gradient
//!   buffer; each has a reference generic over [`num_traits::Float`].

pub mod bce;
pub mod hinge;
pub mod mse;
mod pointwise;
mod softmax_xent;

pub use bce::{bce_with_logits_loss, bce_with_logits_loss_reference};
pub use hinge::{hinge_loss, hinge_loss_reference};
pub use mse::{mse_loss, mse_loss_reference};
pub use softmax_xent::{
    softmax_cross_entropy, softmax_cross_entropy_reference, ClassLabel, SoftmaxXent,
};

/// How per-sample (or per-element) losses are combined into the returned loss (PyTorch's
/// `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reduction {
    /// The mean over the terms that count (for cross-entropy: the samples not ignored; for
    /// the element-wise losses: all elements, NaN for an empty input as in PyTorch).
    #[default]
    Mean,
    /// The sum (0 for an empty input).
    Sum,
}
