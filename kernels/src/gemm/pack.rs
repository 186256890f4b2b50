//! Packing: copies a block of op(A) into MR-row panels and a block of op(B) into NR-column
//! panels, contiguous in the order the micro-kernel reads them, zero-filling the edges so the
//! micro-kernel always computes full tiles. Transposes and leading dimensions are absorbed here.
//!
//! Both layouts are "R lines interleaved": element `(line i, depth p)` goes to `p * R + i`.
//! A line is contiguous in memory for A not transposed and B transposed (an interleaving
//! transpose, `interleave`), and strided for the other two (a row copy, `copy_lines`). Both are
//! monomorphised per R so the inner loop unrolls; they are hot for small and skinny products,
//! where packing costs as much as the arithmetic.

use super::Transpose;
use num_traits::Float;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A stored operand: `data` with row stride `ld`, used as stored or transposed.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a, T> {
    pub data: &'a [T],
    pub ld: usize,
    pub trans: Transpose,
}

/// Packs `op(A)[row0..row0+mc, col0..col0+kc]` into `ceil(mc / mr)` panels of `kc * mr`.
pub(super) fn pack_a<T: Float>(
    a: Operand<'_, T>,
    mr: usize,
    row0: usize,
    mc: usize,
    col0: usize,
    kc: usize,
    out: &mut [T],
) {
    // Line i of op(A) is row i: contiguous in memory unless A is stored transposed.
    pack(a, a.trans == Transpose::No, mr, row0, mc, col0, kc, out)
}

/// Packs `op(B)[row0..row0+kc, col0..col0+nc]` into `ceil(nc / nr)` panels of `kc * nr`.
pub(super) fn pack_b<T: Float>(
    b: Operand<'_, T>,
    nr: usize,
    row0: usize,
    kc: usize,
    col0: usize,
    nc: usize,
    out: &mut [T],
) {
    // Line j of op(B) is column j: contiguous in memory only if B is stored transposed.
    pack(b, b.trans == Transpose::Yes, nr, col0, nc, row0, kc, out)
}

/// Packs lines `line0..line0+lines` at depths `depth0..depth0+kc` into panels of `r` lines.
/// `contiguous`: line `i` depth `p` is at `(line0+i)*ld + depth0+p`; else at
/// `(depth0+p)*ld + line0+i`.
#[allow(clippy::too_many_arguments)]
fn pack<T: Float>(
    x: Operand<'_, T>,
    contiguous: bool,
    r: usize,
    line0: usize,
    lines: usize,
    depth0: usize,
    kc: usize,
    out: &mut [T],
) {
    let panels = lines.div_ceil(r);
    assert!(out.len() >= panels * kc * r, "pack buffer too small");
    // The last element the block addresses must be inside the slice (the caller validated the
    // whole operand; this makes the unchecked reads below local to this function).
    if lines > 0 && kc > 0 {
        let last = if contiguous {
            (line0 + lines - 1) * x.ld + depth0 + kc - 1
        } else {
            (depth0 + kc - 1) * x.ld + line0 + lines - 1
        };
        assert!(last < x.data.len(), "pack source out of bounds");
    }
    if !contiguous {
        // Depth-major: each source row is read once, front to back, across all panels, so
        // the hardware prefetcher streams it (panel by panel would touch `kc` rows `ld` apart
        // for every 16 elements and wait on memory latency).
        for p in 0..kc {
            let row = &x.data[(depth0 + p) * x.ld + line0..(depth0 + p) * x.ld + line0 + lines];
            for (q, src) in row.chunks(r).enumerate() {
                let dst = &mut out[q * kc * r + p * r..q * kc * r + (p + 1) * r];
                dst[..src.len()].copy_from_slice(src);
                dst[src.len()..].fill(T::zero());
            }
        }
        return;
    }
    for q in 0..panels {
        let i0 = q * r;
        let n = r.min(lines - i0);
        let panel = &mut out[q * kc * r..(q + 1) * kc * r];
        // SAFETY: every read is inside the block checked above (lines i0..i0+n < lines,
        // depths < kc), every write inside `panel` (kc * r elements).
        unsafe {
            let src = x.data.as_ptr().add((line0 + i0) * x.ld + depth0);
            match r {
                4 => interleave::<T, 4>(src, x.ld, n, kc, panel),
                6 => interleave::<T, 6>(src, x.ld, n, kc, panel),
                8 => interleave::<T, 8>(src, x.ld, n, kc, panel),
                16 => interleave::<T, 16>(src, x.ld, n, kc, panel),
                _ => interleave_any(src, x.ld, r, n, kc, panel),
            }
        }
    }
}

/// `out[p * R + i] = src[i * ld + p]` for `i < n`, zero for `n <= i < R`.
///
/// # Safety
/// `src` is valid for reads at `i * ld + p` for `i < n`, `p < kc`; `out.len() == kc * R`.
#[inline(always)]
unsafe fn interleave<T: Float, const R: usize>(
    src: *const T,
    ld: usize,
    n: usize,
    kc: usize,
    out: &mut [T],
) {
    if n < R {
        return unsafe { interleave_any(src, ld, R, n, kc, out) };
    }
    let mut rows = [src; R];
    for (i, row) in rows.iter_mut().enumerate() {
        *row = unsafe { src.add(i * ld) };
    }
    for (p, dst) in out.chunks_exact_mut(R).enumerate().take(kc) {
        for i in 0..R {
            // SAFETY: p < kc and i < R = n (caller's contract).
            dst[i] = unsafe { *rows[i].add(p) };
        }
    }
}

/// `interleave` for any `r` and partial panels.
///
/// # Safety
/// As `interleave`, with `out.len() == kc * r`.
unsafe fn interleave_any<T: Float>(
    src: *const T,
    ld: usize,
    r: usize,
    n: usize,
    kc: usize,
    out: &mut [T],
) {
    for (p, dst) in out.chunks_exact_mut(r).enumerate().take(kc) {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: p < kc, i < n (caller's contract).
            *d = if i < n {
                unsafe { *src.add(i * ld + p) }
            } else {
                T::zero()
            };
        }
    }
}

/// Runs `f` on a 64-byte-aligned scratch slice of `len` elements taken from this thread's
/// cache `tls`. The cache grows to the largest size seen and is reused, so steady-state calls
/// do not allocate; a re-entrant call on the same thread finds the cache taken and allocates.
pub(super) fn with_scratch<T: Float, R>(
    tls: &'static LocalKey<RefCell<Vec<T>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let pad = 64 / std::mem::size_of::<T>();
    let mut buf = tls.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < len + pad {
        buf.resize(len + pad, T::zero());
    }
    let offset = buf.as_ptr().align_offset(64).min(pad);
    let result = f(&mut buf[offset..offset + len]);
    tls.with(|b| {
        let mut slot = b.borrow_mut();
        if slot.capacity() < buf.capacity() {
            *slot = buf;
        }
    });
    result
}
