//! Max pooling forward for strides 1 and 2 with any window and padding, over blocks of
//! [`BLOCK`] outputs of a row: each window cell is one strided gather of `BLOCK` values and one
//! compare-and-select, which the compiler vectorises (`Vector` has no integer lanes for the
//! argmax nor strided loads).
//!
//! Cells are visited in the reference's order (window rows top to bottom, each left to right)
//! with the same update rule, so values and argmaxes are identical to the reference. Padding
//! columns hold `-inf` in a padded copy of the plane: `-inf` never replaces the running
//! maximum (which starts at `-inf` on the window's first real cell), so a padded cell is never
//! chosen, exactly as if it were skipped.

use super::max::take;
use super::rowops::{block_starts, set_sum, BLOCK};
use super::Pool2dParams;
use crate::simd::Vector;

/// Floats of the padded plane copy (on the stack).
pub(super) const PLANE_BUF: usize = 8192;

/// Whether [`forward_plane`] handles `p`.
pub(super) fn applies(p: &Pool2dParams) -> bool {
    let padded_plane = p.h.saturating_mul(p.w + 2 * p.pw);
    p.ow >= BLOCK && matches!(p.sw, 1 | 2) && (p.pw == 0 || padded_plane <= PLANE_BUF)
}

/// A buffer for the padded plane copy, padding cells `-inf` (never overwritten).
#[inline(always)]
pub(super) fn plane_buffer() -> [f32; PLANE_BUF] {
    [f32::NEG_INFINITY; PLANE_BUF]
}

/// One plane (`applies(p)` holds).
#[inline(always)]
pub(super) fn forward_plane<V: Vector<Elem = f32>>(
    p: &Pool2dParams,
    x: &[f32],
    buf: &mut [f32; PLANE_BUF],
    y: &mut [f32],
    arg: &mut [u32],
) {
    let (src, pitch): (&[f32], usize) = if p.pw == 0 {
        (x, p.w)
    } else {
        let pitch = p.w + 2 * p.pw;
        for ih in 0..p.h {
            set_sum::<V>(
                &mut buf[ih * pitch + p.pw..][..p.w],
                &x[ih * p.w..][..p.w],
                &[],
            );
        }
        (&buf[..p.h * pitch], pitch)
    };
    // Literal kernel widths let the compiler unroll the common cases.
    match (p.sw, p.kw) {
        (2, 2) => rows::<2>(p, src, pitch, 2, y, arg),
        (2, 3) => rows::<2>(p, src, pitch, 3, y, arg),
        (2, kw) => rows::<2>(p, src, pitch, kw, y, arg),
        (_, 3) => rows::<1>(p, src, pitch, 3, y, arg),
        (_, kw) => rows::<1>(p, src, pitch, kw, y, arg),
    }
}

/// All output rows of a plane; `src` holds the (padded) input rows `pitch` apart.
#[inline(always)]
fn rows<const SW: usize>(
    p: &Pool2dParams,
    src: &[f32],
    pitch: usize,
    kw: usize,
    y: &mut [f32],
    arg: &mut [u32],
) {
    for oh in 0..p.oh {
        let (h0, h1) = p.rows(oh);
        let y = &mut y[oh * p.ow..][..p.ow];
        let arg = &mut arg[oh * p.ow..][..p.ow];
        for j in block_starts(p.ow) {
            let mut m = [f32::NEG_INFINITY; BLOCK];
            let mut k = [0u32; BLOCK];
            for (jj, k) in k.iter_mut().enumerate() {
                *k = (h0 * p.w + p.cols(j + jj).0) as u32;
            }
            for ih in h0..h1 {
                let r = &src[ih * pitch + SW * j..][..SW * (BLOCK - 1) + kw];
                // Plane offset of padded column `SW * j`; it wraps for padding cells, which
                // hold -inf and are never chosen.
                let base = ((ih * p.w + SW * j) as u32).wrapping_sub(p.pw as u32);
                for t in 0..kw {
                    let taps = &r[t..][..SW * (BLOCK - 1) + 1];
                    for jj in 0..BLOCK {
                        let at = base.wrapping_add((t + SW * jj) as u32);
                        (m[jj], k[jj]) = take(m[jj], k[jj], taps[SW * jj], at);
                    }
                }
            }
            y[j..][..BLOCK].copy_from_slice(&m);
            arg[j..][..BLOCK].copy_from_slice(&k);
        }
    }
}
