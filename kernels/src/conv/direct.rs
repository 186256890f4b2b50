//! Direct kernels where im2col + GEMM is weak: depthwise convolutions (`groups == c == k`:
//! per channel a GEMM with one row, all overhead) and the bias gradient.
//!
//! Each output element is reduced over the kernel taps in `(r, s)` order (batch first for the
//! weight gradient), planes are split over threads whole, so results do not depend on the
//! thread count.

use super::im2col::valid_range;
use super::params::Conv2dParams;
use rayon::prelude::*;

/// Planes per rayon task (a plane is one image channel).
const PLANES_PER_TASK: usize = 4;

/// Calls `f(r, s, oh, lo, hi, ih, iw0)` for every tap and every output row it reaches: output
/// columns `lo..hi` of row `oh` read input row `ih` from column `iw0` with the width stride.
#[inline(always)]
fn for_each_tap_row(p: &Conv2dParams, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    for r in 0..p.r {
        let roff = r * p.dilation.0;
        let (oh_lo, oh_hi) = valid_range(p.oh, p.h, roff, p.pad.0, p.stride.0);
        for s in 0..p.s {
            let soff = s * p.dilation.1;
            let (lo, hi) = valid_range(p.ow, p.w, soff, p.pad.2, p.stride.1);
            if lo >= hi {
                continue;
            }
            let iw0 = lo * p.stride.1 + soff - p.pad.2;
            for oh in oh_lo..oh_hi {
                let ih = oh * p.stride.0 + roff - p.pad.0;
                f(r * p.s + s, oh, lo, hi, ih, iw0);
            }
        }
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
    let (hw, ohw, rs) = (p.h * p.w, p.oh * p.ow, p.r * p.s);
    let sw = p.stride.1;
    y.par_chunks_mut(ohw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (yp, xp))| {
            let c = plane % p.c;
            yp.fill(bias.map_or(0.0, |b| b[c]));
            let wc = &w[c * rs..(c + 1) * rs];
            for_each_tap_row(p, |t, oh, lo, hi, ih, iw0| {
                let wv = wc[t];
                let out = &mut yp[oh * p.ow + lo..oh * p.ow + hi];
                let src = &xp[ih * p.w + iw0..];
                if sw == 1 {
                    for (o, &v) in out.iter_mut().zip(src) {
                        *o += wv * v;
                    }
                } else {
                    for (j, o) in out.iter_mut().enumerate() {
                        *o += wv * src[j * sw];
                    }
                }
            });
        });
}

/// Depthwise backward-data: each input-gradient plane gathers its taps' contributions.
pub(crate) fn depthwise_backward_data(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (hw, ohw, rs) = (p.h * p.w, p.oh * p.ow, p.r * p.s);
    let sw = p.stride.1;
    dx.par_chunks_mut(hw)
        .zip(dy.par_chunks(ohw))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (dxp, dyp))| {
            let c = plane % p.c;
            dxp.fill(0.0);
            let wc = &w[c * rs..(c + 1) * rs];
            for_each_tap_row(p, |t, oh, lo, hi, ih, iw0| {
                let wv = wc[t];
                let src = &dyp[oh * p.ow + lo..oh * p.ow + hi];
                let dst = &mut dxp[ih * p.w + iw0..];
                if sw == 1 {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d += wv * v;
                    }
                } else {
                    for (j, &v) in src.iter().enumerate() {
                        let d = &mut dst[j * sw];
                        *d += wv * v;
                    }
                }
            });
        });
}

/// Depthwise backward-weight: `dw[c, r, s]` is a dot product of shifted input rows with
/// output-gradient rows over the batch, in batch order.
pub(crate) fn depthwise_backward_weight(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (hw, ohw, rs) = (p.h * p.w, p.oh * p.ow, p.r * p.s);
    let sw = p.stride.1;
    dw.par_chunks_mut(rs).enumerate().for_each(|(c, dwc)| {
        let mut acc = [Lanes::default(); 64];
        let acc = if rs <= 64 {
            &mut acc[..rs]
        } else {
            // Large kernels: one pass per tap block keeps the accumulators on the stack.
            &mut acc[..]
        };
        for t0 in (0..rs).step_by(acc.len()) {
            let tn = acc.len().min(rs - t0);
            acc.iter_mut().for_each(|a| *a = Lanes::default());
            for b in 0..p.n {
                let plane = b * p.c + c;
                let xp = &x[plane * hw..(plane + 1) * hw];
                let dyp = &dy[plane * ohw..(plane + 1) * ohw];
                for_each_tap_row(p, |t, oh, lo, hi, ih, iw0| {
                    if t < t0 || t >= t0 + tn {
                        return;
                    }
                    let g = &dyp[oh * p.ow + lo..oh * p.ow + hi];
                    let src = &xp[ih * p.w + iw0..];
                    let a = &mut acc[t - t0];
                    if sw == 1 {
                        a.dot(&src[..g.len()], g);
                    } else {
                        for (j, &gv) in g.iter().enumerate() {
                            a.0[j % LANES] += src[j * sw] * gv;
                        }
                    }
                });
            }
            for (d, a) in dwc[t0..t0 + tn].iter_mut().zip(acc.iter()) {
                *d = a.sum();
            }
        }
    });
}

const LANES: usize = 8;

/// Eight running sums, added lane-wise (vectorizable) and combined in a fixed order.
#[derive(Clone, Copy, Default)]
struct Lanes([f32; LANES]);

impl Lanes {
    #[inline(always)]
    fn dot(&mut self, a: &[f32], b: &[f32]) {
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for ((s, &u), &v) in self.0.iter_mut().zip(x).zip(y) {
                *s += u * v;
            }
        }
        for (l, (&x, &y)) in ar.iter().zip(br).enumerate() {
            self.0[l] += x * y;
        }
    }
    #[inline(always)]
    fn add(&mut self, a: &[f32]) {
        let ac = a.chunks_exact(LANES);
        let ar = ac.remainder();
        for x in ac {
            for (s, &v) in self.0.iter_mut().zip(x) {
                *s += v;
            }
        }
        for (l, &x) in ar.iter().enumerate() {
            self.0[l] += x;
        }
    }
    #[inline(always)]
    fn sum(&self) -> f32 {
        let s = self.0;
        ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
    }
}

/// `db[k] = sum of g[n, k, hw]` over the batch and positions, in a fixed order per channel.
pub(crate) fn bias_grad(n: usize, k: usize, hw: usize, g: &[f32], db: &mut [f32]) {
    db.par_iter_mut()
        .enumerate()
        .with_min_len(8)
        .for_each(|(ko, d)| {
            let mut acc = Lanes::default();
            for b in 0..n {
                let base = (b * k + ko) * hw;
                acc.add(&g[base..base + hw]);
            }
            *d = acc.sum();
        });
}
