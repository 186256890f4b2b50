//! The reference GEMM: a plain triple loop, generic over `Float`, the ground truth of the tests.

use super::{Gemm, Layout, Transpose};
use crate::error::KernelError;
use num_traits::Float;

/// `C = alpha * op(A) * op(B) + beta * C` by the definition, for any `Float` (run it in f64 to
/// verify f32 results). Same argument rules and errors as [`super::gemm`].
pub fn gemm_reference<T: Float>(
    g: &Gemm<T>,
    a: &[T],
    b: &[T],
    c: &mut [T],
) -> Result<(), KernelError> {
    let layout = g.validate(a.len(), b.len(), c.len())?;
    gemm_resolved(g, layout, a, b, c);
    Ok(())
}

pub(super) fn gemm_resolved<T: Float>(g: &Gemm<T>, l: Layout, a: &[T], b: &[T], c: &mut [T]) {
    let a_at = |i: usize, p: usize| match g.trans_a {
        Transpose::No => a[i * l.lda + p],
        Transpose::Yes => a[p * l.lda + i],
    };
    let b_at = |p: usize, j: usize| match g.trans_b {
        Transpose::No => b[p * l.ldb + j],
        Transpose::Yes => b[j * l.ldb + p],
    };
    for i in 0..g.m {
        for j in 0..g.n {
            let mut acc = T::zero();
            // BLAS: with alpha = 0, A and B are not read (NaN there does not reach C).
            for p in 0..if g.alpha == T::zero() { 0 } else { g.k } {
                acc = acc + a_at(i, p) * b_at(p, j);
            }
            let cij = &mut c[i * l.ldc + j];
            *cij = if g.beta == T::zero() {
                g.alpha * acc
            } else {
                g.alpha * acc + g.beta * *cij
            };
        }
    }
}
