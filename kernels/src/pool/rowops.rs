//! Row helpers shared by the pooling kernels: blocks of outputs the compiler vectorises, and
//! short vector copies and adds that avoid a libc call per row.

use crate::simd::Vector;

/// Outputs per block of the vectorised row loops (max pooling, the average's horizontal pass).
/// A row is covered by blocks at 0, 8, 16, ... and a last block ending at the row's end,
/// overlapping the one before (recomputing an output writes the same values), so short rows
/// like MNIST's 13 outputs need no scalar tail.
pub(super) const BLOCK: usize = 8;

/// Starts of the blocks covering `0..len` (`len >= BLOCK`), the last one ending at `len`.
#[inline(always)]
pub(super) fn block_starts(len: usize) -> impl Iterator<Item = usize> {
    (0..len.div_ceil(BLOCK)).map(move |b| (b * BLOCK).min(len - BLOCK))
}

/// `dst[i] = a[i] + b[i]`, where an empty `a` or `b` stands for zeros (so this also copies
/// and zero-fills, inline, without a libc call per short row).
#[inline(always)]
pub(super) fn set_sum<V: Vector<Elem = f32>>(dst: &mut [f32], a: &[f32], b: &[f32]) {
    let n = dst.len();
    let (a, b) = (&a[..n.min(a.len())], &b[..n.min(b.len())]);
    let get = |s: &[f32], i: usize| {
        if s.is_empty() {
            V::zero()
        } else {
            // SAFETY: a non-empty `s` holds `n` elements and the caller has `i + LANES <= n`.
            unsafe { V::load(s.as_ptr().add(i)) }
        }
    };
    let mut i = 0;
    while i + V::LANES <= n {
        // SAFETY: `i + LANES <= n` elements of `dst` are writable.
        unsafe { get(a, i).add(get(b, i)).store(dst.as_mut_ptr().add(i)) };
        i += V::LANES;
    }
    for (j, d) in dst.iter_mut().enumerate().skip(i) {
        *d = a.get(j).copied().unwrap_or(0.0) + b.get(j).copied().unwrap_or(0.0);
    }
}

/// `acc[i] += src[i]` in vectors (same length).
#[inline(always)]
pub(super) fn add_into<V: Vector<Elem = f32>>(acc: &mut [f32], src: &[f32]) {
    let n = acc.len().min(src.len());
    let mut i = 0;
    while i + V::LANES <= n {
        // SAFETY: `i + LANES <= n` elements are readable in `src` and writable in `acc`.
        unsafe {
            let a = V::load(acc.as_ptr().add(i)).add(V::load(src.as_ptr().add(i)));
            a.store(acc.as_mut_ptr().add(i));
        }
        i += V::LANES;
    }
    for (a, s) in acc[i..n].iter_mut().zip(&src[i..n]) {
        *a += s;
    }
}
