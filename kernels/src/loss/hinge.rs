//! Hinge loss for binary classification: `loss_i = max(0, 1 - y x)`, with
//! `dloss_i/dx_i = -y` where `1 - y x > 0` and 0 elsewhere (the subgradient 0 at the kink).
//!
//! Label policy (every path, native ISAs and reference alike): `+1` is the positive class and
//! `-1` or `0` (also `-0.0`) the negative one, so `{-1, +1}` and `{0, 1}` labels both work.
//! Any other value (0.5, 2, NaN, ...) is `KernelError::InvalidParam { arg: "target", .. }`
//! naming the first bad index and its value, the same error on every path.

use super::pointwise::{run_on, run_reference, Scalar};
use super::Reduction;
use crate::error::KernelError;
use crate::Backend;
use num_traits::Float;

#[inline(always)]
fn term<T: Float>(x: T, label: T) -> Option<(T, T)> {
    // Labels -1 / +1, and 0 standing for -1 so that 0/1 labels work too.
    let y = if label == T::one() {
        T::one()
    } else if label == -T::one() || label == T::zero() {
        -T::one()
    } else {
        return None;
    };
    let margin = T::one() - y * x;
    Some(if margin > T::zero() {
        (margin, -y)
    } else if margin <= T::zero() {
        (T::zero(), T::zero())
    } else {
        (margin, margin) // NaN: propagate it to the loss and the gradient
    })
}

/// Hinge loss of scores `pred` against labels `target` (same length), reduced by
/// `reduction`; when `grad` is given it receives `d loss / d pred` in the same pass (`-y / n`
/// inside the margin for the mean, 0 outside and at the kink `y x = 1`).
///
/// Labels (see the module docs): `+1` is the positive class; `-1` **or `0`** the negative one
/// (so both the `{-1, +1}` and the `{0, 1}` conventions work). Any other label, NaN included,
/// is an error naming `target`, the first bad index and its value, identical on every path
/// (the gradient may then be partially written). A NaN score gives a NaN loss and
/// gradient. The loss is accumulated in f64 in a fixed block order (identical bits for any
/// thread count). `Backend::OpenBlas` runs the native path; `Backend::Reference` the plain
/// loop.
///
/// Errors: a bad label, `target` not of `pred`'s length, `grad` shorter than `pred`.
pub fn hinge_loss(
    backend: Backend,
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
) -> Result<f32, KernelError> {
    run_on(backend, pred, target, reduction, grad, Scalar(term))
}

/// Reference of [`hinge_loss`]: a plain loop in `T` (the tests run it in f64).
pub fn hinge_loss_reference<T: Float>(
    pred: &[T],
    target: &[T],
    reduction: Reduction,
    grad: Option<&mut [T]>,
) -> Result<T, KernelError> {
    run_reference(pred, target, reduction, grad, term)
}
