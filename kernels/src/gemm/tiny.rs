//! Tiny products (`m * n * k <= TINY`, e.g. 16 x 16 x 16) computed directly: for these the
//! packed frame's fixed costs (thread-local scratch, packing both operands, edge tiles through
//! a buffer) take longer than the arithmetic. `op(B)` is copied row-major into a stack buffer
//! padded to whole vectors, then each row of C is a few vector accumulators over the depth.
//!
//! Each element is summed in order of depth with the same fused multiply-add as the packed
//! micro-kernels, then scaled by alpha and beta as their full tiles are; it runs on the
//! calling thread, so the bits do not depend on the thread count.

use super::{Gemm, Layout, Transpose};
use crate::simd::{dispatch, Isa, SimdElem, SimdFn, Vector};
use num_traits::Float;
use std::mem::MaybeUninit;

/// Largest `m * n * k` computed directly.
const TINY: usize = 4096;

/// Elements of the padded copy of `op(B)` (`k` rows of `n` rounded up to 16).
const B_MAX: usize = 4096;

/// Computes a tiny product directly; false (doing nothing) if the product is not tiny.
pub(super) fn run<T: SimdElem + Float>(
    g: &Gemm<T>,
    l: Layout,
    a: &[T],
    b: &[T],
    c: &mut [T],
) -> bool {
    let (m, n, k) = (g.m, g.n, g.k);
    if m.saturating_mul(n).saturating_mul(k) > TINY || k.saturating_mul(n.div_ceil(16) * 16) > B_MAX
    {
        return false;
    }
    dispatch(Isa::active(), Tiny { g, l, a, b, c });
    true
}

struct Tiny<'a, T> {
    g: &'a Gemm<T>,
    l: Layout,
    a: &'a [T],
    b: &'a [T],
    c: &'a mut [T],
}

impl<T: SimdElem + Float> SimdFn<T> for Tiny<'_, T> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let (g, l) = (self.g, self.l);
        let (m, n, k, lanes) = (g.m, g.n, g.k, V::LANES);
        let width = n.div_ceil(lanes) * lanes;
        // Only the `k * width` elements used are written (zeroing the whole buffer would cost
        // as much as the product).
        let mut buf = [MaybeUninit::<T>::uninit(); B_MAX];
        let bb = &mut buf[..k * width];
        for (p, row) in bb.chunks_exact_mut(width).enumerate() {
            let (head, pad) = row.split_at_mut(n);
            match g.trans_b {
                Transpose::No => {
                    let src = &self.b[p * l.ldb..p * l.ldb + n];
                    head.iter_mut()
                        .zip(src)
                        .for_each(|(d, &v)| *d = MaybeUninit::new(v));
                }
                Transpose::Yes => {
                    for (j, d) in head.iter_mut().enumerate() {
                        *d = MaybeUninit::new(self.b[j * l.ldb + p]);
                    }
                }
            }
            pad.fill(MaybeUninit::new(T::zero()));
        }
        // SAFETY: every element of `bb` was written just above.
        let bb: &[T] = unsafe { std::slice::from_raw_parts(bb.as_ptr().cast::<T>(), bb.len()) };
        let a_at = |i: usize, p: usize| match g.trans_a {
            Transpose::No => self.a[i * l.lda + p],
            Transpose::Yes => self.a[p * l.lda + i],
        };
        let (zero, one) = (T::zero(), T::one());
        let mut lane = [T::zero(); 32];
        // Blocks of 4 rows x 2 vectors: 8 independent FMA chains (one chain at a time would
        // wait on the FMA latency at every depth). Rows past `m` repeat the last row and
        // are not stored; a block one vector wide adds zeros to its second accumulators.
        for i0 in (0..m).step_by(4) {
            let rows = 4.min(m - i0);
            for j0 in (0..width).step_by(2 * lanes) {
                let two = j0 + 2 * lanes <= width;
                let mut acc = [[V::zero(); 2]; 4];
                for p in 0..k {
                    let at = p * width + j0;
                    let bv = &bb[at..at + if two { 2 * lanes } else { lanes }];
                    // SAFETY: `bv` holds LANES (and, if `two`, 2 * LANES) elements.
                    let b0 = unsafe { V::load(bv.as_ptr()) };
                    let b1 = if two {
                        // SAFETY: as above.
                        unsafe { V::load(bv.as_ptr().add(lanes)) }
                    } else {
                        V::zero()
                    };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let av = V::splat(a_at(i0 + r.min(rows - 1), p));
                        acc[0] = av.mul_add(b0, acc[0]);
                        acc[1] = av.mul_add(b1, acc[1]);
                    }
                }
                let cols = n.min(j0 + 2 * lanes) - j0;
                for (r, acc) in acc.iter().take(rows).enumerate() {
                    // SAFETY: `lane` holds 32 >= 2 * LANES elements.
                    unsafe {
                        acc[0].store(lane.as_mut_ptr());
                        acc[1].store(lane.as_mut_ptr().add(lanes));
                    }
                    let at = (i0 + r) * l.ldc + j0;
                    for (o, &x) in self.c[at..at + cols].iter_mut().zip(&lane) {
                        // As the micro-kernels' `store_full`.
                        *o = match (g.alpha == one, g.beta == zero, g.beta == one) {
                            (true, true, _) => x,
                            (_, true, _) => x * g.alpha,
                            (true, _, true) => x + *o,
                            _ => x.mul_add(g.alpha, *o * g.beta),
                        };
                    }
                }
            }
        }
    }
}
