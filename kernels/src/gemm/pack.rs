//! Packing: copies a block of op(A) into MR-row panels and a block of op(B) into NR-column
//! panels, contiguous in the order the micro-kernel reads them, zero-filling the edges so the
//! micro-kernel always computes full tiles. Transposes and leading dimensions are absorbed here.

use super::Transpose;
use num_traits::Float;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A block of a stored operand: `op(X)[row0.., col0..]` of a matrix stored with stride `ld`.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a, T> {
    pub data: &'a [T],
    pub ld: usize,
    pub trans: Transpose,
}

/// Packs `op(A)[row0..row0+mc, col0..col0+kc]` into `ceil(mc / mr)` panels of `kc * mr`:
/// panel `q` holds rows `q*mr..`, element `(i, p)` at `p * mr + i`.
pub(super) fn pack_a<T: Float>(
    a: Operand<'_, T>,
    mr: usize,
    row0: usize,
    mc: usize,
    col0: usize,
    kc: usize,
    out: &mut [T],
) {
    for (q, panel) in out
        .chunks_exact_mut(kc * mr)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let i0 = q * mr;
        let rows = mr.min(mc - i0);
        match a.trans {
            Transpose::No => {
                // Row i of op(A) is contiguous in memory: scatter it with stride mr.
                for i in 0..rows {
                    let start = (row0 + i0 + i) * a.ld + col0;
                    for (p, &x) in a.data[start..start + kc].iter().enumerate() {
                        panel[p * mr + i] = x;
                    }
                }
                if rows < mr {
                    for p in 0..kc {
                        panel[p * mr + rows..(p + 1) * mr].fill(T::zero());
                    }
                }
            }
            Transpose::Yes => {
                // Column p of op(A) is row p of stored A: copy mr contiguous elements.
                for p in 0..kc {
                    let start = (col0 + p) * a.ld + row0 + i0;
                    let dst = &mut panel[p * mr..(p + 1) * mr];
                    dst[..rows].copy_from_slice(&a.data[start..start + rows]);
                    dst[rows..].fill(T::zero());
                }
            }
        }
    }
}

/// Packs `op(B)[row0..row0+kc, col0..col0+nc]` into `ceil(nc / nr)` panels of `kc * nr`:
/// panel `q` holds columns `q*nr..`, element `(p, j)` at `p * nr + j`.
pub(super) fn pack_b<T: Float>(
    b: Operand<'_, T>,
    nr: usize,
    row0: usize,
    kc: usize,
    col0: usize,
    nc: usize,
    out: &mut [T],
) {
    for (q, panel) in out
        .chunks_exact_mut(kc * nr)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let j0 = q * nr;
        let cols = nr.min(nc - j0);
        match b.trans {
            Transpose::No => {
                for p in 0..kc {
                    let start = (row0 + p) * b.ld + col0 + j0;
                    let dst = &mut panel[p * nr..(p + 1) * nr];
                    dst[..cols].copy_from_slice(&b.data[start..start + cols]);
                    dst[cols..].fill(T::zero());
                }
            }
            Transpose::Yes => {
                for j in 0..cols {
                    let start = (col0 + j0 + j) * b.ld + row0;
                    for (p, &x) in b.data[start..start + kc].iter().enumerate() {
                        panel[p * nr + j] = x;
                    }
                }
                if cols < nr {
                    for p in 0..kc {
                        panel[p * nr + cols..(p + 1) * nr].fill(T::zero());
                    }
                }
            }
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
