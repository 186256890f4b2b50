//! The shared driver of the element-wise losses (MSE, BCE with logits, hinge): one pass that
//! writes the gradient and sums the loss, deterministically for any thread count.
//!
//! The input is cut into at most [`BLOCKS`] blocks whose size depends only on its length; each
//! block sums its losses in f64 (four interleaved accumulators), and the block sums are added
//! in block order. Threads take whole blocks, so the result does not depend on how many there
//! are, and the f64 sums keep the loss accurate to about f32 rounding of the final value.

use super::Reduction;
use crate::error::{check_len, check_min_len, KernelError};
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use crate::Backend;
use rayon::prelude::*;

/// Elements per chunk handed to [`Terms::chunk`] (a multiple of every vector width).
const CHUNK: usize = 64;

/// The per-element terms of a loss.
pub(crate) trait Terms: Sync {
    /// `(loss_i, dloss_i / dpred_i)` of one element, or `None` for an invalid target.
    fn term(&self, x: f32, y: f32) -> Option<(f32, f32)>;

    /// The terms of a chunk of at most [`CHUNK`] elements into `loss` and `dloss` (same
    /// lengths); `false` if a target is invalid. The default maps [`Terms::term`]; a loss
    /// overrides it with vector code.
    #[inline(always)]
    fn chunk<V: Vector<Elem = f32>>(
        &self,
        x: &[f32],
        y: &[f32],
        loss: &mut [f32],
        dloss: &mut [f32],
    ) -> bool {
        let mut ok = true;
        for (((&x, &y), l), d) in x.iter().zip(y).zip(loss).zip(dloss) {
            match self.term(x, y) {
                Some((lv, dv)) => (*l, *d) = (lv, dv),
                None => ok = false,
            }
        }
        ok
    }
}

/// A loss given by its scalar term alone.
pub(crate) struct Scalar<F>(pub(crate) F);

impl<F: Fn(f32, f32) -> Option<(f32, f32)> + Sync> Terms for Scalar<F> {
    #[inline(always)]
    fn term(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        (self.0)(x, y)
    }
}

/// Most blocks of one call (the partial sums live in a stack array).
const BLOCKS: usize = 64;
/// Fewest elements per block.
const BLOCK_MIN: usize = 1 << 14;
/// Below this many elements the loss runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// The backend switch of every element-wise loss: `Backend::Reference` runs the plain loop
/// over the scalar term (in f32), the others the native driver [`run`].
pub(crate) fn run_on(
    backend: Backend,
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
    terms: impl Terms,
) -> Result<f32, KernelError> {
    match backend {
        Backend::Reference => run_reference(pred, target, reduction, grad, |x, y| terms.term(x, y)),
        Backend::Native | Backend::OpenBlas => run(pred, target, reduction, grad, terms),
    }
}

/// Runs the loss's terms over all elements, writing `grad[i] = dloss_i * scale` (if `grad`
/// is given; `scale` is `1 / n` for the mean) and returning the reduced loss. An invalid
/// target becomes an error naming `target` (the gradient may then be partially written).
pub(crate) fn run(
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
    terms: impl Terms,
) -> Result<f32, KernelError> {
    let n = pred.len();
    check_len("target", n, target.len())?;
    if let Some(g) = &grad {
        check_min_len("grad", n, g.len())?;
    }
    let scale = match reduction {
        Reduction::Mean => 1.0 / n as f32,
        Reduction::Sum => 1.0,
    };
    let block = BLOCK_MIN.max(n.div_ceil(BLOCKS));
    let blocks = n.div_ceil(block);
    let mut partial = [0.0f64; BLOCKS];
    let isa = Isa::active();
    let one = |b: usize, sum: &mut f64, grad: Option<&mut [f32]>| {
        let range = b * block..n.min((b + 1) * block);
        let (pred, target) = (&pred[range.clone()], &target[range]);
        let job = BlockSum {
            pred,
            target,
            grad,
            scale,
            terms: &terms,
        };
        dispatch(isa, job).map(|s| *sum = s).ok_or(())
    };
    let failed = match grad {
        Some(g) if n >= PARALLEL_MIN => partial[..blocks]
            .par_iter_mut()
            .zip(g[..n].par_chunks_mut(block))
            .enumerate()
            .try_for_each(|(b, (s, g))| one(b, s, Some(g))),
        None if n >= PARALLEL_MIN => partial[..blocks]
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(b, s)| one(b, s, None)),
        Some(g) => partial[..blocks]
            .iter_mut()
            .zip(g[..n].chunks_mut(block))
            .enumerate()
            .try_for_each(|(b, (s, g))| one(b, s, Some(g))),
        None => partial[..blocks]
            .iter_mut()
            .enumerate()
            .try_for_each(|(b, s)| one(b, s, None)),
    };
    if failed.is_err() {
        let index = pred
            .iter()
            .zip(target)
            .position(|(&x, &y)| terms.term(x, y).is_none())
            .unwrap_or(0);
        return Err(invalid_target(index, target[index] as f64));
    }
    let total = partial[..blocks].iter().sum::<f64>();
    Ok(match reduction {
        Reduction::Mean => (total / n as f64) as f32,
        Reduction::Sum => total as f32,
    })
}

/// One block: the f64 sum of its losses (`None` on an invalid target), the gradient written.
struct BlockSum<'a, T> {
    pred: &'a [f32],
    target: &'a [f32],
    grad: Option<&'a mut [f32]>,
    scale: f32,
    terms: &'a T,
}

impl<T: Terms> SimdFn<f32> for BlockSum<'_, T> {
    type Output = Option<f64>;
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> Option<f64> {
        let mut acc = [0.0f64; 4];
        let (mut loss, mut dloss) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
        let mut grad = self.grad;
        let chunks = self.pred.chunks(CHUNK).zip(self.target.chunks(CHUNK));
        for (c, (x, y)) in chunks.enumerate() {
            let (loss, dloss) = (&mut loss[..x.len()], &mut dloss[..x.len()]);
            if !self.terms.chunk::<V>(x, y, loss, dloss) {
                return None;
            }
            // CHUNK is a multiple of 4, so element i always lands in acc[i % 4].
            for (i, &l) in loss.iter().enumerate() {
                acc[i % 4] += l as f64;
            }
            if let Some(g) = grad.as_deref_mut() {
                for (g, &d) in g[c * CHUNK..][..x.len()].iter_mut().zip(dloss.iter()) {
                    *g = d * self.scale;
                }
            }
        }
        Some((acc[0] + acc[1]) + (acc[2] + acc[3]))
    }
}

/// The reference driver: the same contract as [`run`], a plain loop in `T`.
pub(crate) fn run_reference<T: num_traits::Float>(
    pred: &[T],
    target: &[T],
    reduction: Reduction,
    mut grad: Option<&mut [T]>,
    term: impl Fn(T, T) -> Option<(T, T)>,
) -> Result<T, KernelError> {
    let n = pred.len();
    check_len("target", n, target.len())?;
    if let Some(g) = &grad {
        check_min_len("grad", n, g.len())?;
    }
    let count = T::from(n).expect("a length is representable");
    let scale = match reduction {
        Reduction::Mean => T::one() / count,
        Reduction::Sum => T::one(),
    };
    let mut sum = T::zero();
    for (i, (&x, &y)) in pred.iter().zip(target).enumerate() {
        let (l, d) = term(x, y).ok_or_else(|| invalid_target(i, y.to_f64().unwrap_or(f64::NAN)))?;
        sum = sum + l;
        if let Some(g) = grad.as_deref_mut() {
            g[i] = d * scale;
        }
    }
    Ok(match reduction {
        Reduction::Mean => sum / count,
        Reduction::Sum => sum,
    })
}

/// The error of an invalid target. Both drivers build it here, from the value widened to f64,
/// so the native path (f32) and the reference (f32 or f64) report the same error for the same
/// input (the fuzz target compares them).
fn invalid_target(index: usize, value: f64) -> KernelError {
    KernelError::InvalidParam {
        arg: "target",
        what: format!("value {value} at index {index} is not a valid label"),
    }
}
