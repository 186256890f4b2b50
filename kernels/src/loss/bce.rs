//! Binary cross-entropy with logits, in the stable form
//! `loss_i = max(x, 0) - x y + log1p(exp(-|x|))` (PyTorch's `binary_cross_entropy_with_logits`
//! without weights), with `dloss_i/dx_i = sigmoid(x) - y`.

use super::pointwise::{run_on, run_reference, Terms};
use super::Reduction;
use crate::error::KernelError;
use crate::simd::math::{exp, log1p_unit};
use crate::simd::Vector;
use crate::Backend;
use num_traits::Float;

/// `a * b`, but 0 when `b == 0` (so an infinite logit with a label of exactly 0 or 1 costs 0,
/// not NaN).
#[inline(always)]
fn mul0<T: Float>(a: T, b: T) -> T {
    if b == T::zero() {
        T::zero()
    } else {
        a * b
    }
}

#[inline(always)]
fn term<T: Float>(x: T, y: T) -> Option<(T, T)> {
    let e = (-x.abs()).exp();
    // max(x, 0) - x y, written per sign so that x = +-inf with y = 1 / 0 is exact.
    let linear = if x >= T::zero() {
        mul0(x, T::one() - y)
    } else {
        mul0(-x, y)
    };
    let sigmoid = if x >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    };
    Some((linear + e.ln_1p(), sigmoid - y))
}

/// The native terms: vector `exp` and `log1p` of [`crate::simd::math`] (a few ulps, see
/// there), the scalar [`term`] for a chunk's tail.
struct Bce;

impl Terms for Bce {
    #[inline(always)]
    fn term(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        term(x, y)
    }

    #[inline(always)]
    fn chunk<V: Vector<Elem = f32>>(
        &self,
        x: &[f32],
        y: &[f32],
        loss: &mut [f32],
        dloss: &mut [f32],
    ) -> bool {
        let n = x.len().min(y.len()).min(loss.len()).min(dloss.len());
        let mut i = 0;
        while i + V::LANES <= n {
            // SAFETY: `i + LANES <= n` elements are readable in `x`, `y` and writable in
            // `loss`, `dloss`.
            unsafe {
                let (l, d) = vector_term(V::load(x.as_ptr().add(i)), V::load(y.as_ptr().add(i)));
                l.store(loss.as_mut_ptr().add(i));
                d.store(dloss.as_mut_ptr().add(i));
            }
            i += V::LANES;
        }
        for j in i..n {
            (loss[j], dloss[j]) = term(x[j], y[j]).unwrap_or((f32::NAN, f32::NAN));
        }
        true
    }
}

/// [`term`] on vectors, with the same special cases: the linear part per sign of `x`, and a
/// factor of exactly 0 kills an infinite logit.
#[inline(always)]
fn vector_term<V: Vector<Elem = f32>>(x: V, y: V) -> (V, V) {
    let (zero, one) = (V::zero(), V::splat(1.0));
    let e = exp(zero.sub(x.abs()));
    let neg = x.lt(zero);
    let a = V::select(neg, zero.sub(x), x);
    let b = V::select(neg, y, one.sub(y));
    let linear = V::select(b.eq(zero), zero, a.mul(b));
    let sigmoid = V::select(neg, e, one).div(one.add(e));
    (linear.add(log1p_unit(e)), sigmoid.sub(y))
}

/// Binary cross-entropy of logits `pred` against probabilities `target` (same length; any
/// value is accepted, usually `0..=1`), reduced by `reduction`; when `grad` is given it receives
/// `d loss / d pred = (sigmoid(pred) - target) * scale` in the same pass (`scale = 1 / n` for
/// the mean).
///
/// Stable for any finite logit (no overflow of `exp`). Infinite logits give the limit: `+inf`
/// costs `inf` unless its label is exactly 1 (then 0), likewise `-inf` with label 0; their
/// gradients are `1 - y` and `-y`. NaN in either input gives NaN. The loss is accumulated in
/// f64 in a fixed block order (identical bits for any thread count). `Backend::OpenBlas` runs
/// the native path; `Backend::Reference` the plain loop.
///
/// Errors: `target` not of `pred`'s length, `grad` shorter than `pred`.
pub fn bce_with_logits_loss(
    backend: Backend,
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
) -> Result<f32, KernelError> {
    run_on(backend, pred, target, reduction, grad, Bce)
}

/// Reference of [`bce_with_logits_loss`]: a plain loop in `T` (the tests run it in f64).
pub fn bce_with_logits_loss_reference<T: Float>(
    pred: &[T],
    target: &[T],
    reduction: Reduction,
    grad: Option<&mut [T]>,
) -> Result<T, KernelError> {
    run_reference(pred, target, reduction, grad, term)
}
