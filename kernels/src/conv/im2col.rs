//! im2col and col2im for one image and a range of output positions: the column matrix whose
//! row `(ci, r, s)` holds, for output positions `p0..p1` (flattened `oh * ow + ow`), the input
//! value that kernel tap meets (zero in the padding). Rows are filled run by run: the valid
//! output columns of a tap form one interval, computed once per tap instead of testing bounds
//! per element.

use super::params::Conv2dParams;
use super::phases::merge_row2;
use crate::simd::{dispatch, Isa, SimdFn, Vector};
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

/// Copies a run of an image row. Runs are often short (one output row of a small image), and
/// a `memcpy` call per run costs more than the copy: short runs use fixed-size (inlined)
/// copies that overlap in the middle.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    match n {
        0..=3 => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s),
        4..=8 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..n]);
        }
        9..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..n]);
        }
        17..=32 => {
            dst[..16].copy_from_slice(&src[..16]);
            dst[n - 16..].copy_from_slice(&src[n - 16..n]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Zero-fills a run (short ones with fixed-size stores, like [`copy_run`]).
#[inline(always)]
fn zero_run<T: Float>(dst: &mut [T]) {
    let n = dst.len();
    match n {
        0..=3 => dst.iter_mut().for_each(|d| *d = T::zero()),
        4..=8 => {
            dst[..4].fill(T::zero());
            dst[n - 4..].fill(T::zero());
        }
        9..=16 => {
            dst[..8].fill(T::zero());
            dst[n - 8..].fill(T::zero());
        }
        _ => dst.fill(T::zero()),
    }
}

/// One tap's geometry: output rows `oh.0..oh.1` and columns `ow.0..ow.1` read inside the
/// input, at input row `oh * sh + roff - pt` and column `ow * sw + soff - pl`.
struct Tap {
    oh: (usize, usize),
    ow: (usize, usize),
    roff: usize,
    soff: usize,
}

#[inline]
fn tap(p: &Conv2dParams, r: usize, s: usize) -> Tap {
    let (roff, soff) = (r * p.dilation.0, s * p.dilation.1);
    Tap {
        oh: valid_range(p.oh, p.h, roff, p.pad.0, p.stride.0),
        ow: valid_range(p.ow, p.w, soff, p.pad.2, p.stride.1),
        roff,
        soff,
    }
}

/// Calls `f(row, start, a, b, valid)` for every column-matrix row (tap of channels
/// `c0..c0+nc`) and every output row `oh` that positions `p0..p1` touch: `a..b` are the output
/// columns of that row inside the range, `start` the column-matrix column of `a`, `valid` the sub-range reading inside the input as
/// `Some((lo, hi, ih, iw_lo))` (input row and column of output column `lo`).
#[inline(always)]
fn for_each_run(
    p: &Conv2dParams,
    c0: usize,
    nc: usize,
    (p0, p1): (usize, usize),
    mut f: impl FnMut(usize, usize, usize, usize, Option<(usize, usize, usize, usize)>),
) {
    if p0 >= p1 {
        return;
    }
    let (oh0, oh1) = (p0 / p.ow, (p1 - 1) / p.ow + 1);
    let mut row = 0;
    for ci in c0..c0 + nc {
        for r in 0..p.r {
            for s in 0..p.s {
                let t = tap(p, r, s);
                for oh in oh0..oh1 {
                    let a = p0.saturating_sub(oh * p.ow);
                    let b = (p1 - oh * p.ow).min(p.ow);
                    let (lo, hi) = (t.ow.0.max(a), t.ow.1.min(b));
                    let valid = (oh >= t.oh.0 && oh < t.oh.1 && lo < hi).then(|| {
                        let ih = oh * p.stride.0 + t.roff - p.pad.0;
                        (lo, hi, ci * p.h + ih, lo * p.stride.1 + t.soff - p.pad.2)
                    });
                    f(row, oh * p.ow + a - p0, a, b, valid);
                }
                row += 1;
            }
        }
    }
}

/// Fills columns `0..p1-p0` of `col` (rows of stride `ld`) with the im2col of image `x`
/// (`[c, h, w]`) for output positions `p0..p1`; only channels `c0..c0 + nc` (rows
/// `0..nc*r*s`).
pub(crate) fn im2col<T: Float>(
    p: &Conv2dParams,
    x: &[T],
    col: &mut [T],
    ld: usize,
    range: (usize, usize),
    c0: usize,
    nc: usize,
) {
    let sw = p.stride.1;
    for_each_run(p, c0, nc, range, |row, start, a, b, valid| {
        let base = row * ld + start;
        let out = &mut col[base..base + (b - a)];
        let Some((lo, hi, ihrow, iw)) = valid else {
            zero_run(out);
            return;
        };
        zero_run(&mut out[..lo - a]);
        zero_run(&mut out[hi - a..]);
        let out = &mut out[lo - a..hi - a];
        let src = &x[ihrow * p.w..(ihrow + 1) * p.w];
        if sw == 1 {
            copy_run(out, &src[iw..iw + (hi - lo)]);
        } else {
            for (j, o) in out.iter_mut().enumerate() {
                *o = src[iw + j * sw];
            }
        }
    });
}

/// [`col2im`] of whole images of an unpadded stride-1 convolution: every tap's output row is
/// one run inside the input row, so the adds are plain vector loops with no bookkeeping (for
/// 13-wide MNIST maps the generic walk spent more on its runs than on the adds). Same order of
/// contributions per input element as [`col2im`], so the same bits.
struct Col2imPlain<'a> {
    p: &'a Conv2dParams,
    col: &'a [f32],
    ld: usize,
    dx: &'a mut [f32],
}

impl SimdFn<f32> for Col2imPlain<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let p = self.p;
        let (l, ow, hw) = (V::LANES, p.ow, p.h * p.w);
        let mut row = 0;
        for ci in 0..self.dx.len() / hw {
            for r in 0..p.r {
                for s in 0..p.s {
                    let base = ci * hw + r * p.dilation.0 * p.w + s * p.dilation.1;
                    let crow = &self.col[row * self.ld..row * self.ld + p.oh * ow];
                    row += 1;
                    for (oh, src) in crow.chunks_exact(ow).enumerate() {
                        let dst = &mut self.dx[base + oh * p.w..base + oh * p.w + ow];
                        let mut j = 0;
                        while j + l <= ow {
                            // SAFETY: `j + LANES <= ow`: inside `dst` and `src`.
                            unsafe {
                                let v = V::load(dst[j..].as_ptr()).add(V::load(src[j..].as_ptr()));
                                v.store(dst[j..].as_mut_ptr());
                            }
                            j += l;
                        }
                        for (d, &v) in dst[j..].iter_mut().zip(&src[j..]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// [`col2im`] of one whole image (positions `0..oh*ow`; the channels `dx` holds, the first
/// of them at row 0 of `col`) into `dx`, which it overwrites: the plain vector path for
/// unpadded stride-1 convolutions and the phase rows of [`col2im_image_sw2`] for column
/// stride 2 (which writes every row whole, so needs no zeroing first).
pub(crate) fn col2im_image(p: &Conv2dParams, col: &[f32], ld: usize, dx: &mut [f32]) {
    if p.stride == (1, 1) && p.pad == (0, 0, 0, 0) {
        dx.fill(0.0);
        dispatch(Isa::active(), Col2imPlain { p, col, ld, dx });
    } else if p.stride.1 == 2 && phase_width(p) <= PHASE_ROW_MAX {
        dispatch(Isa::active(), Col2imSw2 { p, col, ld, dx });
    } else {
        let nc = dx.len() / (p.h * p.w);
        dx.fill(0.0);
        col2im(p, col, ld, dx, (0, p.oh * p.ow), 0, nc);
    }
}

/// Widest phase row [`col2im_image_sw2`] sums on the stack.
const PHASE_ROW_MAX: usize = 512;

/// Columns of a column phase of the padded image (stride 2).
fn phase_width(p: &Conv2dParams) -> usize {
    p.padded_hw().1.div_ceil(2)
}

/// [`col2im_image_sw2`] in the active ISA's target-feature context.
struct Col2imSw2<'a> {
    p: &'a Conv2dParams,
    col: &'a [f32],
    ld: usize,
    dx: &'a mut [f32],
}

impl SimdFn<f32> for Col2imSw2<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        col2im_image_sw2::<V>(self.p, self.col, self.ld, self.dx)
    }
}

/// [`col2im_image`] for column stride 2, row by row of `dx` (which it overwrites): each
/// input row is summed as its two column phases, where every tap's output row adds as one
/// contiguous run (vector adds), then merged into place (shuffles). The per-element scatter
/// at stride 2 of [`col2im`] was scalar: 18% of resnet_s2's backward-data. Each element
/// receives its taps in the same order (r, then s) as there.
#[inline(always)]
fn col2im_image_sw2<V: Vector<Elem = f32>>(
    p: &Conv2dParams,
    col: &[f32],
    ld: usize,
    dx: &mut [f32],
) {
    let (sh, (dh, dw), (pt, pl)) = (p.stride.0, p.dilation, (p.pad.0, p.pad.2));
    let wq = phase_width(p);
    let mut buf = [0.0f32; 2 * PHASE_ROW_MAX];
    let (even, odd) = buf[..2 * wq].split_at_mut(wq);
    for (row, out) in dx.chunks_exact_mut(p.w).enumerate() {
        let (ci, ih) = (row / p.h, row % p.h);
        even.fill(0.0);
        odd.fill(0.0);
        for r in 0..p.r {
            // The output row whose tap r lands on padded row ih + pt, if any.
            let Some(v) = (ih + pt).checked_sub(r * dh).filter(|v| v % sh == 0) else {
                continue;
            };
            let oh = v / sh;
            if oh >= p.oh {
                continue;
            }
            for s in 0..p.s {
                // Output column j meets padded column 2j + s*dw: phase (s*dw) mod 2, at
                // j + (s*dw) / 2 (inside the phase row: the descriptor fits the kernel).
                let (phase, q0) = ((s * dw) % 2, (s * dw) / 2);
                let dst = if phase == 0 { &mut *even } else { &mut *odd };
                let src = &col[((ci * p.r + r) * p.s + s) * ld + oh * p.ow..][..p.ow];
                for (d, &v) in dst[q0..q0 + p.ow].iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
        merge_row2::<V>(even, odd, pl, out);
    }
}

/// Adds columns `0..p1-p0` of `col` (rows of stride `ld`, positions `p0..p1`) back into the
/// image gradient `dx` (`[c, h, w]`, channels `c0..c0 + nc`): the adjoint of [`im2col`]. Each
/// input element receives its contributions in a fixed order (channel, r, s, position).
pub(crate) fn col2im<T: Float>(
    p: &Conv2dParams,
    col: &[T],
    ld: usize,
    dx: &mut [T],
    range: (usize, usize),
    c0: usize,
    nc: usize,
) {
    let sw = p.stride.1;
    for_each_run(p, c0, nc, range, |row, start, a, _, valid| {
        let Some((lo, hi, ihrow, iw)) = valid else {
            return;
        };
        let first = row * ld + start + (lo - a);
        let src = &col[first..first + (hi - lo)];
        let dst = &mut dx[ihrow * p.w..(ihrow + 1) * p.w];
        if sw == 1 {
            for (d, &v) in dst[iw..iw + (hi - lo)].iter_mut().zip(src) {
                *d = *d + v;
            }
        } else {
            for (j, &v) in src.iter().enumerate() {
                let d = &mut dst[iw + j * sw];
                *d = *d + v;
            }
        }
    });
}
