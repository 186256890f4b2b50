//! The shared driver of the element-wise losses (MSE, BCE with logits, hinge): one pass that
//! writes the gradient and sums the loss, deterministically for any thread count.
//!
//! The input is cut into at most [`BLOCKS`] blocks whose size depends only on its length; each
//! block sums its losses in f64 (four interleaved accumulators), and the block sums are added
//! in block order. Threads take whole blocks, so the result does not depend on how many there
//! are, and the f64 sums keep the loss accurate to about f32 rounding of the final value.

use super::Reduction;
use crate::error::{check_len, check_min_len, KernelError};
use rayon::prelude::*;

/// Most blocks of one call (the partial sums live in a stack array).
const BLOCKS: usize = 64;
/// Fewest elements per block.
const BLOCK_MIN: usize = 1 << 14;
/// Below this many elements the loss runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Runs `term(pred[i], target[i]) -> Some((loss_i, dloss_i/dpred_i))` over all elements,
/// writing `grad[i] = dloss_i * scale` (if `grad` is given; `scale` is `1 / n` for the mean)
/// and returning the reduced loss. `term` returns `None` for an invalid target, which becomes
/// an error naming `target` (the gradient may then be partially written).
pub(crate) fn run(
    pred: &[f32],
    target: &[f32],
    reduction: Reduction,
    grad: Option<&mut [f32]>,
    term: impl Fn(f32, f32) -> Option<(f32, f32)> + Sync,
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
    let one = |b: usize, sum: &mut f64, grad: Option<&mut [f32]>| {
        let range = b * block..n.min((b + 1) * block);
        block_sum(&pred[range.clone()], &target[range], grad, scale, &term)
            .map(|s| *sum = s)
            .ok_or(())
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
            .position(|(&x, &y)| term(x, y).is_none())
            .unwrap_or(0);
        return Err(KernelError::InvalidParam {
            arg: "target",
            what: format!(
                "value {} at index {index} is not a valid label",
                target[index]
            ),
        });
    }
    let total = partial[..blocks].iter().sum::<f64>();
    Ok(match reduction {
        Reduction::Mean => (total / n as f64) as f32,
        Reduction::Sum => total as f32,
    })
}

/// One block: the f64 sum of its losses (`None` on an invalid target).
#[inline]
fn block_sum(
    pred: &[f32],
    target: &[f32],
    grad: Option<&mut [f32]>,
    scale: f32,
    term: &impl Fn(f32, f32) -> Option<(f32, f32)>,
) -> Option<f64> {
    let mut acc = [0.0f64; 4];
    match grad {
        Some(grad) => {
            for (i, ((&x, &y), g)) in pred.iter().zip(target).zip(grad).enumerate() {
                let (l, d) = term(x, y)?;
                acc[i % 4] += l as f64;
                *g = d * scale;
            }
        }
        None => {
            for (i, (&x, &y)) in pred.iter().zip(target).enumerate() {
                acc[i % 4] += term(x, y)?.0 as f64;
            }
        }
    }
    Some((acc[0] + acc[1]) + (acc[2] + acc[3]))
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
        let (l, d) = term(x, y).ok_or_else(|| KernelError::InvalidParam {
            arg: "target",
            what: format!("value at index {i} is not a valid label"),
        })?;
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
