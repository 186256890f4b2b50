//! Mean squared error: `loss_i = (pred_i - target_i)^2`, `dloss_i/dpred_i = 2 (pred_i - target_i)`.

use super::pointwise::{run_on, run_reference, Scalar};
use super::Reduction;
use crate::error::KernelError;
use crate::Backend;
use num_traits::Float;

#[inline(always)]
fn term<T: Float>(x: T, y: T) -> Option<(T, T)> {
    let d = x - y;
    Some((d * d, (d + d)))
}

/// MSE loss of `pred` against `target` (same length), reduced by `reduction`; when `grad` is
/// given it receives `d loss / d pred` in the same pass (`2 (pred - target) / n` for the mean).
///
/// NaN in either input gives a NaN loss and NaN gradients at that element; `inf - inf` is NaN.
/// The loss is accumulated in f64 in a fixed block order (identical bits for any thread
/// count). `Backend::OpenBlas` runs the native path; `Backend::Reference` the plain loop.
///
/// Errors: `target` not of `pred`'s length, `grad` shorter than `pred`.
pub fn mse_loss(
    backend: Backend,
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
) -> Result<f32, KernelError> {
    run_on(backend, pred, target, reduction, grad, Scalar(term))
}

/// Reference of [`mse_loss`]: a plain loop in `T` (the tests run it in f64).
pub fn mse_loss_reference<T: Float>(
    pred: &[T],
    target: &[T],
    reduction: Reduction,
    grad: Option<&mut [T]>,
) -> Result<T, KernelError> {
    run_reference(pred, target, reduction, grad, term)
}
