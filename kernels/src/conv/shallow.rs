//! Direct kernels for shallow convolutions: one group, stride 1, no padding or dilation, and
//! few taps (`c * r * s <= MAX_TAPS`, e.g. MNIST's first layer: one channel, 3x3). There a
//! GEMM is all overhead: its depth is the 9 taps, so im2col + GEMM writes every output twice
//! (column tile, then the scatter adding the bias) and the weight gradient packs the whole of
//! `dy` to reduce it against 9 columns. Here each output row is computed in registers and
//! written once, and the weight gradient reads `dy` once.
//!
//! An output row is covered by vectors of columns `j, j + LANES, ...`; when `ow` is not a
//! multiple of LANES the last vector starts at `ow - LANES` and overlaps the one before. The
//! forward recomputes the overlap (same bits); the weight gradient masks the overlapped lanes
//! out of its products (an `and`, so even `0 * inf` adds nothing). Every read stays inside its
//! input row: tap `(ci, r, s)` of output row `oh` reads row `oh + r` from column `s` on, and
//! `s + ow <= w`. Sums run in a fixed order (taps; batch, row, column vector), and the work is
//! split over images (forward) or output channels (weight gradient), so results do not depend
//! on the thread count.

use super::params::Conv2dParams;
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Most taps (`c * r * s`) the direct kernels take; deeper products use the GEMM.
pub(crate) const MAX_TAPS: usize = 32;

/// Output channels per register block of the forward (8 accumulators with 4 column vectors:
/// enough independent FMA chains to keep both FMA pipes busy).
const KB: usize = 2;

/// Column vectors per register block.
const U: usize = 4;

/// Taps per register block of the weight gradient (one accumulator each; 3x3 in one).
const TB: usize = 9;

/// Whether the direct kernels take `p` (the widest vector must fit an output row).
pub(crate) fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1
        && p.stride == (1, 1)
        && p.dilation == (1, 1)
        && p.pad == (0, 0, 0, 0)
        && p.c * p.r * p.s <= MAX_TAPS
        && p.ow >= 16
        && p.oh > 0
}

/// Offsets of the taps `(ci, r, s)` from the start of an image's row `oh` (in the input).
fn tap_offsets(p: &Conv2dParams) -> ([usize; MAX_TAPS], usize) {
    let mut off = [0; MAX_TAPS];
    let n = p.c * p.r * p.s;
    for (t, o) in off.iter_mut().take(n).enumerate() {
        let (ci, r, s) = (t / (p.r * p.s), t / p.s % p.r, t % p.s);
        *o = ci * p.h * p.w + r * p.w + s;
    }
    (off, n)
}

/// Whether every tap read of an image (`x` of `len` elements) is inside it: the furthest is
/// the last output row's last tap, `ow` columns long.
fn in_bounds(p: &Conv2dParams, off: &[usize], len: usize) -> bool {
    let last = off.iter().copied().max().unwrap_or(0);
    (p.oh - 1) * p.w + last + p.ow <= len
}

/// Forward pass, images in parallel.
pub(crate) fn forward(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let isa = Isa::active();
    let (chw, kohw) = (p.c * p.h * p.w, p.k * p.oh * p.ow);
    y.par_chunks_mut(kohw)
        .zip(x.par_chunks(chw))
        .for_each(|(yi, xi)| {
            dispatch(
                isa,
                Forward {
                    p,
                    x: xi,
                    w,
                    bias,
                    y: yi,
                },
            )
        });
}

/// The forward pass of one image.
struct Forward<'a> {
    p: &'a Conv2dParams,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    y: &'a mut [f32],
}

impl SimdFn<f32> for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(mut self) {
        let p = self.p;
        let (off, taps) = tap_offsets(p);
        let off = &off[..taps];
        assert!(
            in_bounds(p, off, self.x.len()),
            "shallow conv: input too short"
        );
        let nv = p.ow.div_ceil(V::LANES);
        for oh in 0..p.oh {
            for k in (0..p.k).step_by(KB) {
                for v in (0..nv).step_by(U) {
                    match (KB.min(p.k - k), U.min(nv - v)) {
                        (2, 4) => self.block::<V, 2, 4>(off, k, v, oh),
                        (2, 3) => self.block::<V, 2, 3>(off, k, v, oh),
                        (2, 2) => self.block::<V, 2, 2>(off, k, v, oh),
                        (2, _) => self.block::<V, 2, 1>(off, k, v, oh),
                        (_, 4) => self.block::<V, 1, 4>(off, k, v, oh),
                        (_, 3) => self.block::<V, 1, 3>(off, k, v, oh),
                        (_, 2) => self.block::<V, 1, 2>(off, k, v, oh),
                        _ => self.block::<V, 1, 1>(off, k, v, oh),
                    }
                }
            }
        }
    }
}

impl Forward<'_> {
    /// Output channels `k..k + KB2`, column vectors `v..v + U2` of output row `oh`.
    #[inline(always)]
    fn block<V: Vector<Elem = f32>, const KB2: usize, const U2: usize>(
        &mut self,
        off: &[usize],
        k: usize,
        v: usize,
        oh: usize,
    ) {
        let (p, l) = (self.p, V::LANES);
        let taps = off.len();
        let mut cols = [0usize; U2];
        for (u, j) in cols.iter_mut().enumerate() {
            *j = ((v + u) * l).min(p.ow - l);
        }
        let mut acc = [[V::zero(); U2]; KB2];
        for (kk, a) in acc.iter_mut().enumerate() {
            *a = [V::splat(self.bias.map_or(0.0, |b| b[k + kk])); U2];
        }
        let row = self.x[oh * p.w..].as_ptr();
        let wk = &self.w[k * taps..(k + KB2) * taps];
        for (t, &o) in off.iter().enumerate() {
            let mut xs = [V::zero(); U2];
            for (x, &j) in xs.iter_mut().zip(&cols) {
                // SAFETY: input row `oh + r` of channel `ci` holds columns `s + j..s + j +
                // LANES` (`j + LANES <= ow`, `s + ow <= w`): inside `x` (`in_bounds`).
                *x = unsafe { V::load(row.add(o + j)) };
            }
            for (kk, a) in acc.iter_mut().enumerate() {
                let wv = V::splat(wk[kk * taps + t]);
                for (a, &x) in a.iter_mut().zip(&xs) {
                    *a = wv.mul_add(x, *a);
                }
            }
        }
        let ohw = p.oh * p.ow;
        for (kk, a) in acc.iter().enumerate() {
            let out = &mut self.y[(k + kk) * ohw + oh * p.ow..];
            for (a, &j) in a.iter().zip(&cols) {
                let dst = &mut out[j..j + l];
                // SAFETY: `dst` holds LANES elements.
                unsafe { a.store(dst.as_mut_ptr()) };
            }
        }
    }
}

/// Backward-weight pass, output channels in parallel (each channel's taps reduced by one
/// task, in a fixed order).
pub(crate) fn backward_weight(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let isa = Isa::active();
    let taps = p.c * p.r * p.s;
    dw.par_chunks_mut(taps).enumerate().for_each(|(k, dwk)| {
        dispatch(
            isa,
            WeightGrad {
                p,
                k,
                x,
                dy,
                dw: dwk,
            },
        )
    });
}

/// The weight gradient of output channel `k`: `dw[t] = sum over images, rows and columns of
/// dy * x (shifted by tap t)`.
struct WeightGrad<'a> {
    p: &'a Conv2dParams,
    k: usize,
    x: &'a [f32],
    dy: &'a [f32],
    dw: &'a mut [f32],
}

impl SimdFn<f32> for WeightGrad<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (off, taps) = tap_offsets(self.p);
        let chw = self.p.c * self.p.h * self.p.w;
        assert!(
            in_bounds(self.p, &off[..taps], chw),
            "shallow conv: bad geometry"
        );
        for t0 in (0..taps).step_by(TB) {
            let off = &off[t0..taps.min(t0 + TB)];
            let sums = match off.len() {
                9 => self.taps::<V, 9>(off),
                8 => self.taps::<V, 8>(off),
                7 => self.taps::<V, 7>(off),
                6 => self.taps::<V, 6>(off),
                5 => self.taps::<V, 5>(off),
                4 => self.taps::<V, 4>(off),
                3 => self.taps::<V, 3>(off),
                2 => self.taps::<V, 2>(off),
                _ => self.taps::<V, 1>(off),
            };
            self.dw[t0..t0 + off.len()].copy_from_slice(&sums[..off.len()]);
        }
    }
}

impl WeightGrad<'_> {
    /// The sums of the `T` taps at `off` (one accumulator each, in registers).
    #[inline(always)]
    fn taps<V: Vector<Elem = f32>, const T: usize>(&self, off: &[usize]) -> [f32; TB] {
        let (p, l) = (self.p, V::LANES);
        let (chw, ohw) = (p.c * p.h * p.w, p.oh * p.ow);
        let off: [usize; T] = off.try_into().expect("T taps");
        // Whole vectors, then the last one (overlapping when LANES does not divide ow) with
        // the lanes the one before covered masked out.
        let whole = p.ow / l;
        let (last, dup) = (p.ow - l, whole * l + l - p.ow);
        let mut bits = [0.0f32; 16];
        for b in bits.iter_mut().take(l).skip(dup) {
            *b = f32::from_bits(u32::MAX);
        }
        // SAFETY: `bits` holds 16 >= LANES elements.
        let keep = unsafe { V::load(bits.as_ptr()) };
        let mut acc = [V::zero(); T];
        for b in 0..p.n {
            let xi = self.x[b * chw..(b + 1) * chw].as_ptr();
            let gi = &self.dy[(b * p.k + self.k) * ohw..][..ohw];
            for (oh, g) in gi.chunks_exact(p.ow).enumerate() {
                // SAFETY (loads below): `g[j..j + LANES]` is inside the dy row for `j + LANES
                // <= ow`; input row `oh + r` of channel `ci` holds columns `s + j..s + j +
                // LANES` (`s + ow <= w`), inside image `b` (`in_bounds`).
                let row = unsafe { xi.add(oh * p.w) };
                for j in (0..whole).map(|v| v * l) {
                    let gv = unsafe { V::load(g.as_ptr().add(j)) };
                    for (a, &o) in acc.iter_mut().zip(&off) {
                        *a = gv.mul_add(unsafe { V::load(row.add(o + j)) }, *a);
                    }
                }
                if dup < l {
                    let gv = unsafe { V::load(g.as_ptr().add(last)) };
                    for (a, &o) in acc.iter_mut().zip(&off) {
                        let xv = unsafe { V::load(row.add(o + last)) };
                        *a = a.add(gv.mul(xv).and(keep));
                    }
                }
            }
        }
        let mut sums = [0.0f32; TB];
        for (s, a) in sums.iter_mut().zip(&acc) {
            *s = a.reduce_sum();
        }
        sums
    }
}
