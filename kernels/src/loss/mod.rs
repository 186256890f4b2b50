//! Losses: the loss value and its gradient with respect to the predictions in one pass.
//!
//! Element-wise losses ([`mse_loss`], [`bce_with_logits_loss`], [`hinge_loss`]) take
//! predictions and targets of the same length, a [`Reduction`], and an optional gradient
//! buffer; each has a reference generic over [`num_traits::Float`].

pub mod bce;
pub mod hinge;
pub mod mse;
mod pointwise;

pub use bce::{bce_with_logits_loss, bce_with_logits_loss_reference};
pub use hinge::{hinge_loss, hinge_loss_reference};
pub use mse::{mse_loss, mse_loss_reference};
pub use pointwise::Reduction;
