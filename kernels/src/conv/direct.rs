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
use super::stencil::{load_cols, stencil, Geometry, MAX_TAPS};
use crate::simd::{dispatch, load_partial, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Planes per rayon task (a plane is one image channel).
const PLANES_PER_TASK: usize = 4;
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
    let g = Geometry {
        out_w: p.ow,
        in_h: p.h,
        in_w: p.w,
        sr: p.stride.0,
        sc: p.stride.1,
    };
    let tap = |t: usize| {
        let (r, s) = (t / p.s, t % p.s);
        (
            (r * dh) as isize - pt as isize,
            (s * dw) as isize - pl as isize,
        )
    };
    y.par_chunks_mut(ohw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (yp, xp))| {
            let c = plane % p.c;
            let init = bias.map_or(0.0, |b| b[c]);
            stencil(
                isa,
                [yp],
                [&w[c * rs..(c + 1) * rs]],
                [init],
                xp,
                g,
                tap,
                rs,
            );
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
                    (
                        pt as isize - (r * dh) as isize,
                        pl as isize - (s * dw) as isize,
                    )
                };
                let g = Geometry {
                    out_w: p.w,
                    in_h: p.oh,
                    in_w: p.ow,
                    sr: 1,
                    sc: 1,
                };
                stencil(isa, [dxp], [wc], [0.0], dyp, g, tap, rs);
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
/// x(shifted by tap t) * dy`. Each `dy` vector is loaded once and meets every live tap, whose
/// accumulators (one vector per tap) interleave so their FMA chains overlap; the last partial
/// vector of a row is zero-filled, and only columns where some tap leaves the input run as
/// scalars (into separate scalar sums). The order is fixed: batch, row, column, tap.
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
        for t0 in (0..p.r * p.s).step_by(MAX_TAPS) {
            let tn = MAX_TAPS.min(p.r * p.s - t0);
            // Per tap: column offset and valid output columns.
            let mut cols = [(0usize, 0usize, 0usize); MAX_TAPS];
            for (q, c) in cols.iter_mut().take(tn).enumerate() {
                let soff = ((t0 + q) % p.s) * p.dilation.1;
                let (lo, hi) = valid_range(p.ow, p.w, soff, p.pad.2, sw);
                *c = (soff, lo, hi);
            }
            let mut acc = [V::zero(); MAX_TAPS];
            let mut sacc = [0.0f32; MAX_TAPS];
            let mut live = [(0usize, 0usize); MAX_TAPS]; // (tap, input row start)
            for b in 0..p.n {
                let plane = b * p.c + self.c;
                let xp = &self.x[plane * hw..(plane + 1) * hw];
                let dyp = &self.dy[plane * ohw..(plane + 1) * ohw];
                for (oh, g) in dyp.chunks_exact(p.ow).enumerate() {
                    let (mut n, mut jlo, mut jhi) = (0, 0, p.ow);
                    for (q, &(_, lo, hi)) in cols.iter().take(tn).enumerate() {
                        let roff = ((t0 + q) / p.s) * p.dilation.0;
                        let ih = (oh * p.stride.0 + roff).checked_sub(p.pad.0);
                        if let Some(ih) = ih.filter(|&i| i < p.h) {
                            live[n] = (q, ih * p.w);
                            (jlo, jhi) = (jlo.max(lo), jhi.min(hi));
                            n += 1;
                        }
                    }
                    let live = &live[..n];
                    let jhi = jhi.max(jlo);
                    let mut j = jlo;
                    while j < jhi {
                        let m = l.min(jhi - j);
                        // SAFETY: `g[j..j + m]` is inside the row, m <= LANES.
                        let gv = unsafe { load_partial::<V>(g[j..j + m].as_ptr(), m) };
                        for &(q, base) in live {
                            let col = base + j * sw + cols[q].0 - p.pad.2;
                            let xv = if m == l {
                                load_cols::<V>(xp, col, sw)
                            } else {
                                let mut xb = [0.0f32; 16];
                                for (e, v) in xb.iter_mut().take(m).enumerate() {
                                    *v = xp[col + e * sw];
                                }
                                // SAFETY: `xb` holds 16 >= LANES elements.
                                unsafe { V::load(xb.as_ptr()) }
                            };
                            acc[q] = xv.mul_add(gv, acc[q]);
                        }
                        j += m;
                    }
                    // Edge columns: some tap reads outside the input there.
                    for j in (0..jlo.min(p.ow)).chain(jhi..p.ow) {
                        for &(q, base) in live {
                            let (soff, lo, hi) = cols[q];
                            if j >= lo && j < hi {
                                sacc[q] += xp[base + j * sw + soff - p.pad.2] * g[j];
                            }
                        }
                    }
                }
            }
            for (q, d) in self.dw[t0..t0 + tn].iter_mut().enumerate() {
                *d = acc[q].reduce_sum() + sacc[q];
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
        sum_copy::<V>(self.s, None)
    }
}

/// The sum of `s` as [`Sum`] computes it (one vector accumulator, the tail as one partial
/// vector, lanes combined in a fixed order), copying `s` into `dst` on the way if given: a
/// copy made anyway yields the bias gradient's plane sums with the same bits.
#[inline(always)]
pub(super) fn sum_copy<V: Vector<Elem = f32>>(s: &[f32], mut dst: Option<&mut [f32]>) -> f32 {
    let l = V::LANES;
    let (mut acc, mut j) = (V::zero(), 0);
    if let Some(d) = &dst {
        assert_eq!(d.len(), s.len(), "sum_copy: lengths");
    }
    while j + l <= s.len() {
        // SAFETY: `s[j..j + l]` is inside `s` (and `dst`, as long).
        let v = unsafe { V::load(s[j..j + l].as_ptr()) };
        if let Some(d) = dst.as_deref_mut() {
            // SAFETY: as above.
            unsafe { v.store(d[j..j + l].as_mut_ptr()) };
        }
        acc = acc.add(v);
        j += l;
    }
    if j < s.len() {
        // SAFETY: `s[j..]` holds fewer than LANES elements.
        acc = acc.add(unsafe { load_partial::<V>(s[j..].as_ptr(), s.len() - j) });
        if let Some(d) = dst {
            d[j..].copy_from_slice(&s[j..]);
        }
    }
    acc.reduce_sum()
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
