//! Direct kernels where im2col + GEMM is weak: depthwise convolutions (`groups == c == k`:
//! per channel a GEMM with one row, all overhead) and the bias gradient.
//!
//! The depthwise forward (and the stride-1 backward-data, which is a forward pass over `dy`
//! with the kernel flipped) is a stencil: each output row keeps a vector of outputs in a
//! register while the kernel taps stream by, so `y` is written once instead of once per tap.
//! Bodies are written once over [`Vector`] and dispatched per ISA. Each output element is
//! reduced over its taps in `(r, s)` order (the weight gradient over the batch first), and
//! planes are split over threads whole, so results do not depend on the thread count.

use super::im2col::valid_range;
use super::params::Conv2dParams;
use crate::simd::{dispatch, load_partial, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Planes per rayon task (a plane is one image channel).
const PLANES_PER_TASK: usize = 4;
/// Taps handled per stencil sweep (more taps take several sweeps, accumulating).
const MAX_TAPS: usize = 64;

/// One sweep of a 2D stencil over a plane: `out[i, j] (+)= sum_t w_t * inp[i*sr + dr_t,
/// j*sc + dc_t]`, taps outside the input skipped.
struct Stencil<'a> {
    out: &'a mut [f32],
    out_w: usize,
    inp: &'a [f32],
    in_h: usize,
    in_w: usize,
    /// Row and column strides of the input walk.
    sr: usize,
    sc: usize,
    /// `(weight, row offset, column offset)` per tap, in order.
    taps: &'a [(f32, isize, isize)],
    /// Starting value of each output (ignored when `accumulate`).
    init: f32,
    accumulate: bool,
}

/// Loads `LANES` input values at columns `col, col + sc, ...` of `row` (all inside).
#[inline(always)]
fn load_cols<V: Vector<Elem = f32>>(row: &[f32], col: usize, sc: usize) -> V {
    if sc == 1 {
        let s = &row[col..col + V::LANES];
        // SAFETY: `s` holds exactly LANES elements.
        unsafe { V::load(s.as_ptr()) }
    } else {
        let mut buf = [0.0f32; 16];
        for (l, b) in buf.iter_mut().take(V::LANES).enumerate() {
            *b = row[col + l * sc];
        }
        // SAFETY: `buf` holds 16 >= LANES elements.
        unsafe { V::load(buf.as_ptr()) }
    }
}

impl SimdFn<f32> for Stencil<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let lanes = V::LANES;
        let (in_h, in_w, sc) = (self.in_h as isize, self.in_w as isize, self.sc as isize);
        let mut live = [(0.0f32, 0usize, 0isize); MAX_TAPS];
        for (i, out_row) in self.out.chunks_exact_mut(self.out_w).enumerate() {
            // The taps whose input row exists for this output row.
            let mut n = 0;
            for &(w, dr, dc) in self.taps {
                let ir = (i * self.sr) as isize + dr;
                if (0..in_h).contains(&ir) {
                    live[n] = (w, ir as usize * self.in_w, dc);
                    n += 1;
                }
            }
            let live = &live[..n];
            // Interior columns: every live tap's input column inside the row.
            let (mut jlo, mut jhi) = (0isize, self.out_w as isize);
            for &(_, _, dc) in live {
                jlo = jlo.max((-dc + sc - 1).div_euclid(sc));
                jhi = jhi.min((in_w - dc + sc - 1).div_euclid(sc));
            }
            let (jlo, jhi) = (jlo.max(0) as usize, jhi.max(0) as usize);
            let scalar = |j: usize, o: &mut f32| {
                let mut acc = if self.accumulate { *o } else { self.init };
                for &(w, base, dc) in live {
                    let c = (j * self.sc) as isize + dc;
                    if (0..in_w).contains(&c) {
                        acc += w * self.inp[base + c as usize];
                    }
                }
                *o = acc;
            };
            let mut j = 0;
            while j < out_row.len() {
                if j >= jlo && j + lanes <= jhi {
                    let o = &mut out_row[j..j + lanes];
                    let mut acc = if self.accumulate {
                        // SAFETY: `o` holds LANES elements.
                        unsafe { V::load(o.as_ptr()) }
                    } else {
                        V::splat(self.init)
                    };
                    for &(w, base, dc) in live {
                        let col = ((j * self.sc) as isize + dc) as usize;
                        let v = load_cols::<V>(&self.inp[base..base + self.in_w], col, self.sc);
                        acc = V::splat(w).mul_add(v, acc);
                    }
                    // SAFETY: `o` holds LANES elements.
                    unsafe { acc.store(o.as_mut_ptr()) };
                    j += lanes;
                } else {
                    scalar(j, &mut out_row[j]);
                    j += 1;
                }
            }
        }
    }
}

/// Runs the stencil of `taps` (any number, in sweeps of `MAX_TAPS`).
#[allow(clippy::too_many_arguments)]
fn stencil(
    isa: Isa,
    out: &mut [f32],
    out_w: usize,
    inp: &[f32],
    (in_h, in_w): (usize, usize),
    (sr, sc): (usize, usize),
    taps: impl Fn(usize) -> (f32, isize, isize),
    n_taps: usize,
    init: f32,
) {
    let mut buf = [(0.0f32, 0isize, 0isize); MAX_TAPS];
    for t0 in (0..n_taps.max(1)).step_by(MAX_TAPS) {
        let tn = MAX_TAPS.min(n_taps - t0);
        for (t, b) in buf.iter_mut().take(tn).enumerate() {
            *b = taps(t0 + t);
        }
        let f = Stencil {
            out: &mut *out,
            out_w,
            inp,
            in_h,
            in_w,
            sr,
            sc,
            taps: &buf[..tn],
            init,
            accumulate: t0 > 0,
        };
        dispatch(isa, f);
    }
}

/// Depthwise forward: each output plane is its bias plus the weighted, shifted input plane.
pub(crate) fn depthwise_forward(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let isa = Isa::active();
    let (hw, ohw, rs) = (p.h * p.w, p.oh * p.ow, p.r * p.s);
    let (dh, dw, pt, pl) = (p.dilation.0, p.dilation.1, p.pad.0, p.pad.2);
    y.par_chunks_mut(ohw.max(1))
        .zip(x.par_chunks(hw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (yp, xp))| {
            let c = plane % p.c;
            let wc = &w[c * rs..(c + 1) * rs];
            let tap = |t: usize| {
                let (r, s) = (t / p.s, t % p.s);
                let dr = (r * dh) as isize - pt as isize;
                (wc[t], dr, (s * dw) as isize - pl as isize)
            };
            let init = bias.map_or(0.0, |b| b[c]);
            stencil(isa, yp, p.ow, xp, (p.h, p.w), p.stride, tap, rs, init);
        });
}

/// Depthwise backward-data. Stride 1: a stencil over `dy` with the flipped kernel. Larger
/// strides: each tap's contributions are scattered into `dx`.
pub(crate) fn depthwise_backward_data(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let isa = Isa::active();
    let (hw, ohw, rs) = (p.h * p.w, p.oh * p.ow, p.r * p.s);
    let (dh, dw, pt, pl) = (p.dilation.0, p.dilation.1, p.pad.0, p.pad.2);
    dx.par_chunks_mut(hw)
        .zip(dy.par_chunks(ohw.max(1)))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (dxp, dyp))| {
            let c = plane % p.c;
            let wc = &w[c * rs..(c + 1) * rs];
            if p.stride == (1, 1) {
                let tap = |t: usize| {
                    let (r, s) = (t / p.s, t % p.s);
                    let dr = pt as isize - (r * dh) as isize;
                    (wc[t], dr, pl as isize - (s * dw) as isize)
                };
                stencil(isa, dxp, p.w, dyp, (p.oh, p.ow), (1, 1), tap, rs, 0.0);
            } else {
                scatter_taps(p, wc, dyp, dxp);
            }
        });
}

/// `dx += w_t * dy` shifted, tap by tap (strided backward-data of one plane).
fn scatter_taps(p: &Conv2dParams, wc: &[f32], dyp: &[f32], dxp: &mut [f32]) {
    dxp.fill(0.0);
    let sw = p.stride.1;
    for r in 0..p.r {
        let roff = r * p.dilation.0;
        let (oh_lo, oh_hi) = valid_range(p.oh, p.h, roff, p.pad.0, p.stride.0);
        for s in 0..p.s {
            let soff = s * p.dilation.1;
            let (lo, hi) = valid_range(p.ow, p.w, soff, p.pad.2, sw);
            if lo >= hi {
                continue;
            }
            let wv = wc[r * p.s + s];
            let iw0 = lo * sw + soff - p.pad.2;
            for oh in oh_lo..oh_hi {
                let ih = oh * p.stride.0 + roff - p.pad.0;
                let src = &dyp[oh * p.ow + lo..oh * p.ow + hi];
                let dst = &mut dxp[ih * p.w + iw0..];
                for (j, &v) in src.iter().enumerate() {
                    dst[j * sw] += wv * v;
                }
            }
        }
    }
}

/// The weight gradient of one depthwise channel: `dw[t] = sum over images and positions of
/// x(shifted by tap t) * dy`, one vector accumulator per tap, in batch and row order.
struct DepthwiseDw<'a> {
    p: &'a Conv2dParams,
    c: usize,
    x: &'a [f32],
    dy: &'a [f32],
    dw: &'a mut [f32],
}

impl SimdFn<f32> for DepthwiseDw<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let p = self.p;
        let (hw, ohw, l, sw) = (p.h * p.w, p.oh * p.ow, V::LANES, p.stride.1);
        let rs = p.r * p.s;
        for t0 in (0..rs).step_by(MAX_TAPS) {
            let tn = MAX_TAPS.min(rs - t0);
            let mut acc = [V::zero(); MAX_TAPS];
            for b in 0..p.n {
                let plane = b * p.c + self.c;
                let xp = &self.x[plane * hw..(plane + 1) * hw];
                let dyp = &self.dy[plane * ohw..(plane + 1) * ohw];
                for (a, t) in acc.iter_mut().zip(t0..t0 + tn) {
                    let (roff, soff) = ((t / p.s) * p.dilation.0, (t % p.s) * p.dilation.1);
                    let (oh_lo, oh_hi) = valid_range(p.oh, p.h, roff, p.pad.0, p.stride.0);
                    let (lo, hi) = valid_range(p.ow, p.w, soff, p.pad.2, sw);
                    if lo >= hi {
                        continue;
                    }
                    let iw0 = lo * sw + soff - p.pad.2;
                    for oh in oh_lo..oh_hi {
                        let ih = oh * p.stride.0 + roff - p.pad.0;
                        let g = &dyp[oh * p.ow + lo..oh * p.ow + hi];
                        let xr = &xp[ih * p.w..(ih + 1) * p.w];
                        let mut j = 0;
                        while j + l <= g.len() {
                            // SAFETY: `g[j..j + l]` is inside `g`.
                            let gv = unsafe { V::load(g[j..j + l].as_ptr()) };
                            *a = load_cols::<V>(xr, iw0 + j * sw, sw).mul_add(gv, *a);
                            j += l;
                        }
                        if j < g.len() {
                            let n = g.len() - j;
                            let mut xb = [0.0f32; 16];
                            for (q, v) in xb.iter_mut().take(n).enumerate() {
                                *v = xr[iw0 + (j + q) * sw];
                            }
                            // SAFETY: both sources hold at least `n` elements, n < LANES.
                            let (xv, gv) = unsafe {
                                (
                                    load_partial::<V>(xb.as_ptr(), n),
                                    load_partial::<V>(g[j..].as_ptr(), n),
                                )
                            };
                            *a = xv.mul_add(gv, *a);
                        }
                    }
                }
            }
            for (d, a) in self.dw[t0..t0 + tn].iter_mut().zip(&acc) {
                *d = a.reduce_sum();
            }
        }
    }
}

/// Depthwise backward-weight, channels in parallel.
pub(crate) fn depthwise_backward_weight(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let isa = Isa::active();
    let rs = p.r * p.s;
    dw.par_chunks_mut(rs).enumerate().for_each(|(c, dwc)| {
        dispatch(
            isa,
            DepthwiseDw {
                p,
                c,
                x,
                dy,
                dw: dwc,
            },
        );
    });
}

/// The sum of a slice with one vector accumulator, lanes combined in a fixed order.
struct Sum<'a> {
    s: &'a [f32],
}

impl SimdFn<f32> for Sum<'_> {
    type Output = f32;
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> f32 {
        let l = V::LANES;
        let (s, mut acc, mut j) = (self.s, V::zero(), 0);
        while j + l <= s.len() {
            // SAFETY: `s[j..j + l]` is inside `s`.
            acc = acc.add(unsafe { V::load(s[j..j + l].as_ptr()) });
            j += l;
        }
        if j < s.len() {
            // SAFETY: `s[j..]` holds fewer than LANES elements.
            acc = acc.add(unsafe { load_partial::<V>(s[j..].as_ptr(), s.len() - j) });
        }
        acc.reduce_sum()
    }
}

/// `db[k] = sum of g[n, k, hw]` over the batch and positions, in a fixed order per channel.
pub(crate) fn bias_grad(n: usize, k: usize, hw: usize, g: &[f32], db: &mut [f32]) {
    let isa = Isa::active();
    db.par_iter_mut()
        .enumerate()
        .with_min_len(8)
        .for_each(|(ko, d)| {
            *d = 0.0;
            for b in 0..n {
                let base = (b * k + ko) * hw;
                *d += dispatch(
                    isa,
                    Sum {
                        s: &g[base..base + hw],
                    },
                );
            }
        });
}
