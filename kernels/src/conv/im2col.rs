//! im2col and col2im for one image: the column matrix `[c*r*s, oh*ow]` whose row
//! `(ci, r, s)` holds, for every output position, the input value that kernel tap meets (zero
//! in the padding). Rows are filled run by run: the valid output columns of a tap form one
//! interval, computed once per tap instead of testing bounds per element.

use super::params::Conv2dParams;
use num_traits::Float;

/// The output indices `lo..hi` whose input coordinate `o * stride + off - pad` lies in
/// `0..in_len`, where `off` is the dilated tap offset.
#[inline]
pub(crate) fn valid_range(
    out_len: usize,
    in_len: usize,
    off: usize,
    pad: usize,
    stride: usize,
) -> (usize, usize) {
    let lo = if off >= pad {
        0
    } else {
        (pad - off).div_ceil(stride)
    };
    let hi = if in_len + pad <= off {
        0
    } else {
        (in_len + pad - off).div_ceil(stride)
    };
    let hi = hi.min(out_len);
    (lo.min(hi), hi)
}

/// One tap's geometry: rows `oh_lo..oh_hi` and columns `ow_lo..ow_hi` of the output read the
/// input at row `oh * sh + r_off - pt` and column `ow * sw + s_off - pl`.
struct Tap {
    oh: (usize, usize),
    ow: (usize, usize),
    /// Input row of output row `oh.0` (meaningful when the range is non-empty).
    ih0: usize,
    /// Input column of output column `ow.0`.
    iw0: usize,
}

#[inline]
fn tap(p: &Conv2dParams, r: usize, s: usize) -> Tap {
    let (roff, soff) = (r * p.dilation.0, s * p.dilation.1);
    let oh = valid_range(p.oh, p.h, roff, p.pad.0, p.stride.0);
    let ow = valid_range(p.ow, p.w, soff, p.pad.2, p.stride.1);
    Tap {
        oh,
        ow,
        ih0: (oh.0 * p.stride.0 + roff).saturating_sub(p.pad.0),
        iw0: (ow.0 * p.stride.1 + soff).saturating_sub(p.pad.2),
    }
}

/// Fills `col` (`[c*r*s, oh*ow]`, row stride `oh*ow`) from one image `x` (`[c, h, w]`);
/// only channels `c0..c0 + nc` are written, to rows `0..nc*r*s`.
pub(crate) fn im2col<T: Float>(p: &Conv2dParams, x: &[T], col: &mut [T], c0: usize, nc: usize) {
    let (ohw, hw) = (p.oh * p.ow, p.h * p.w);
    let sw = p.stride.1;
    let mut rows = col.chunks_exact_mut(ohw);
    for ci in c0..c0 + nc {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for r in 0..p.r {
            for s in 0..p.s {
                let t = tap(p, r, s);
                let row = rows.next().expect("col holds nc*r*s rows");
                for (oh, out) in row.chunks_exact_mut(p.ow).enumerate() {
                    if oh < t.oh.0 || oh >= t.oh.1 {
                        out.fill(T::zero());
                        continue;
                    }
                    let ih = t.ih0 + (oh - t.oh.0) * p.stride.0;
                    let src = &plane[ih * p.w..(ih + 1) * p.w];
                    let (lo, hi) = t.ow;
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    if lo == hi {
                        continue; // iw0 is meaningless for an empty range
                    }
                    let out = &mut out[lo..hi];
                    if sw == 1 {
                        out.copy_from_slice(&src[t.iw0..t.iw0 + (hi - lo)]);
                    } else {
                        for (j, o) in out.iter_mut().enumerate() {
                            *o = src[t.iw0 + j * sw];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col` (`[nc*r*s, oh*ow]`) back into the image gradient `dx` (`[c, h, w]`, channels
/// `c0..c0 + nc`), which the caller zeroed: the adjoint of [`im2col`]. Each input element
/// receives its contributions in a fixed order (channel, r, s, oh, ow).
pub(crate) fn col2im<T: Float>(p: &Conv2dParams, col: &[T], dx: &mut [T], c0: usize, nc: usize) {
    let (ohw, hw) = (p.oh * p.ow, p.h * p.w);
    let sw = p.stride.1;
    let mut rows = col.chunks_exact(ohw);
    for ci in c0..c0 + nc {
        let plane = &mut dx[ci * hw..(ci + 1) * hw];
        for r in 0..p.r {
            for s in 0..p.s {
                let t = tap(p, r, s);
                let row = rows.next().expect("col holds nc*r*s rows");
                let (lo, hi) = t.ow;
                if lo == hi {
                    continue; // this tap never lands inside the input
                }
                for oh in t.oh.0..t.oh.1 {
                    let ih = t.ih0 + (oh - t.oh.0) * p.stride.0;
                    let dst = &mut plane[ih * p.w..(ih + 1) * p.w];
                    let src = &row[oh * p.ow + lo..oh * p.ow + hi];
                    if sw == 1 {
                        let dst = &mut dst[t.iw0..t.iw0 + (hi - lo)];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = *d + v;
                        }
                    } else {
                        for (j, &v) in src.iter().enumerate() {
                            let d = &mut dst[t.iw0 + j * sw];
                            *d = *d + v;
                        }
                    }
                }
            }
        }
    }
}
