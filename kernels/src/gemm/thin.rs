//! Matrix-vector products that the packed frame serves badly: `n == 1` with the rows of
//! `op(A)` contiguous (`y = A x`), and `m == 1` with `B` stored transposed (`y = x B^T`). In
//! the frame a micro-kernel tile would use one of its 16 columns, and packing would copy the
//! whole matrix to use each element once; here each output is one SIMD dot product of a
//! contiguous row with the vector, streaming the matrix once.
//!
//! Each output is reduced by one task in a fixed order (four vector accumulators, lanes, then
//! the scalar tail), and rows split over threads in fixed blocks, so the bits do not depend on
//! the thread count.

use super::frame::{PackCache, PAR_MIN_FLOPS};
use super::pack::with_scratch;
use super::{Gemm, Layout, Transpose};
use crate::simd::{dispatch, Isa, SimdElem, SimdFn, Vector};
use num_traits::Float;
use rayon::prelude::*;

/// Outputs per rayon task.
const ROWS_PER_TASK: usize = 32;

/// `out[i] = sum_p u[i * su + p] * x[p]` for the rows of `out`.
struct Dots<'a, T> {
    u: &'a [T],
    su: usize,
    x: &'a [T],
    out: &'a mut [T],
}

impl<T: SimdElem + Float> SimdFn<T> for Dots<'_, T> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let (k, l, x) = (self.x.len(), V::LANES, self.x);
        for (i, o) in self.out.iter_mut().enumerate() {
            let row = &self.u[i * self.su..i * self.su + k];
            let mut acc = [V::zero(); 4];
            let mut p = 0;
            // SAFETY (every load): `p + (q + 1) * l <= k`, inside `row` and `x`.
            while p + 4 * l <= k {
                for (q, a) in acc.iter_mut().enumerate() {
                    let (r, v) = unsafe {
                        (
                            V::load(row[p + q * l..].as_ptr()),
                            V::load(x[p + q * l..].as_ptr()),
                        )
                    };
                    *a = r.mul_add(v, *a);
                }
                p += 4 * l;
            }
            while p + l <= k {
                let (r, v) = unsafe { (V::load(row[p..].as_ptr()), V::load(x[p..].as_ptr())) };
                acc[0] = r.mul_add(v, acc[0]);
                p += l;
            }
            let mut s = acc[0].add(acc[1]).add(acc[2].add(acc[3])).reduce_sum();
            for (&r, &v) in row[p..].iter().zip(&x[p..]) {
                s = s + r * v;
            }
            *o = s;
        }
    }
}

/// Runs the product here when it is one of the thin shapes; returns false otherwise.
pub(super) fn run<T: PackCache + SimdElem>(
    g: &Gemm<T>,
    l: Layout,
    a: &[T],
    b: &[T],
    c: &mut [T],
) -> bool {
    let (m, n, k) = (g.m, g.n, g.k);
    // (matrix, its row stride, vector, its stride, outputs, their stride in C)
    let (u, su, xs, sx, outs, sc) = if n == 1 && g.trans_a == Transpose::No {
        let sx = if g.trans_b == Transpose::Yes {
            1
        } else {
            l.ldb
        };
        (a, l.lda, b, sx, m, l.ldc)
    } else if m == 1 && g.trans_b == Transpose::Yes {
        let sx = if g.trans_a == Transpose::No { 1 } else { l.lda };
        (b, l.ldb, a, sx, n, 1)
    } else {
        return false;
    };
    // The vector is always copied into the (64-byte aligned) scratch, even when contiguous:
    // it is read once per output row, and unaligned loads of it measured 25% slower.
    with_scratch(T::cache_b(), k + outs, |buf| {
        let (x, out) = buf.split_at_mut(k);
        for (p, v) in x.iter_mut().enumerate() {
            *v = xs[p * sx];
        }
        let x = &*x;
        let isa = Isa::active();
        let dots = |q: usize, out: &mut [T]| {
            let u = &u[q * ROWS_PER_TASK * su..];
            dispatch(isa, Dots { u, su, x, out });
        };
        if 2 * outs * k >= PAR_MIN_FLOPS {
            out.par_chunks_mut(ROWS_PER_TASK)
                .enumerate()
                .for_each(|(q, o)| dots(q, o));
        } else {
            out.chunks_mut(ROWS_PER_TASK)
                .enumerate()
                .for_each(|(q, o)| dots(q, o));
        }
        for (i, &v) in out.iter().enumerate() {
            let cv = &mut c[i * sc];
            // beta = 0 overwrites (a NaN in C does not survive).
            *cv = if g.beta == T::zero() {
                g.alpha * v
            } else {
                g.alpha * v + g.beta * *cv
            };
        }
    });
    true
}
