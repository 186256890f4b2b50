//! Direct kernels for shallow convolutions: one group, stride 1, no padding or dilation, and
//! few taps (shallower than the implicit GEMM's `MIN_DEPTH`, e.g. MNIST's first layer: one
//! channel, 3x3). There a
//! GEMM is all overhead: its depth is the 9 taps, so im2col + GEMM writes every output twice
//! (column tile, then the scatter adding the bias) and the weight gradient packs the whole of
//! `dy` to reduce it against 9 columns. Here each output row is computed in registers and
//! written once (two output channels share each input load), and the weight gradient reduces
//! `dy` in registers, one accumulator per tap and channel (three channels share each input
//! load), an image's planes staying in L1 while its taps run. The image itself is the row kernels' input
//! (`rows.rs`): tap `(ci, r, s)` of output row `oh` reads row `oh + r` of channel `ci` from
//! column `s`, and `s + ow <= w`.
//!
//! Sums run in a fixed order (taps; batch, row, column vector), and the work is split over
//! images (forward) or output channels (weight gradient), so results do not depend on the
//! thread count. Measured on MNIST's first layer (64 images, 1 -> 32 channels, 28x28, 3x3) at
//! 2 threads: forward 0.42 -> 0.23 ms, weight gradient 0.69 -> 0.35 ms (im2col + GEMM before;
//! 0.54 ms at 1 thread since the channel blocks).

use super::direct::sum_copy;
use super::params::Conv2dParams;
use super::rows::{conv_row, dot_rows, tail_keep, Taps, MAX_TAPS};
use super::wide::MIN_DEPTH;
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Taps per register block of the weight gradient (one accumulator per tap and channel).
const TB: usize = 3;

/// Whether the direct kernels take `p`.
pub(crate) fn applies(p: &Conv2dParams) -> bool {
    p.groups == 1
        && p.stride == (1, 1)
        && p.dilation == (1, 1)
        && p.pad == (0, 0, 0, 0)
        && p.c * p.r * p.s < MIN_DEPTH
        && p.ow >= 16
        && p.oh > 0
}

/// Offsets of the taps `(ci, r, s)` in an image, from the start of output row `oh`'s input
/// row.
fn tap_offsets(p: &Conv2dParams) -> ([usize; MAX_TAPS], usize) {
    let mut off = [0; MAX_TAPS];
    let n = p.c * p.r * p.s;
    for (t, o) in off.iter_mut().take(n).enumerate() {
        let (ci, r, s) = (t / (p.r * p.s), t / p.s % p.r, t % p.s);
        *o = ci * p.h * p.w + r * p.w + s;
    }
    (off, n)
}

/// Forward pass, images in parallel.
pub(crate) fn forward(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let isa = Isa::active();
    let (chw, kohw) = (p.c * p.h * p.w, p.k * p.oh * p.ow);
    y.par_chunks_mut(kohw)
        .zip(x.par_chunks(chw))
        .for_each(|(yi, xi)| {
            let (p, w) = (p, w);
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
    fn call<V: Vector<Elem = f32>>(self) {
        let p = self.p;
        let (off, taps) = tap_offsets(p);
        let t = Taps {
            x: self.x,
            off: &off[..taps],
            stride: p.w,
            ow: p.ow,
        };
        assert!(t.in_bounds(p.oh), "shallow conv: input too short");
        let ohw = p.oh * p.ow;
        assert_eq!(self.y.len(), p.k * ohw, "shallow conv: output length");
        let b = |k: usize| self.bias.map_or(0.0, |b| b[k]);
        // Plane pair by plane pair, so the output is written front to back (the image's
        // rows stay in L1 meanwhile).
        for k in (0..p.k).step_by(2) {
            for oh in 0..p.oh {
                let w = &self.w[k * taps..];
                let out = self.y[k * ohw + oh * p.ow..].as_mut_ptr();
                // SAFETY: `in_bounds` above; output rows `oh` of planes `k` (and `k + 1`) are
                // inside `y`.
                unsafe {
                    if k + 1 < p.k {
                        conv_row::<V, 2>(t, oh, w, [b(k), b(k + 1)], out, ohw);
                    } else {
                        conv_row::<V, 1>(t, oh, w, [b(k)], out, ohw);
                    }
                }
            }
        }
    }
}

/// Backward-weight pass, blocks of [`KB`] output channels in parallel (each weight reduced by
/// one task, in a fixed order).
///
/// With `db`, also the bias gradient, from each image's `dy` planes while they are in L1
/// (`direct::bias_grad` read all of `dy` again: a fifth of mnist_c1's pass), summed as
/// there: per channel, plane sums (`direct::sum_copy`) added in image order, so the same bits.
pub(crate) fn backward_weight(
    p: &Conv2dParams,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    let isa = Isa::active();
    let taps = p.c * p.r * p.s;
    let run = |blk: usize, dwb: &mut [f32], db: Option<&mut [f32]>| {
        let g = WeightGrad {
            p,
            k0: blk * KB,
            x,
            dy,
            dw: dwb,
            db,
        };
        let kb = g.dw.len() / taps;
        match kb {
            3 => dispatch(isa, Block::<3>(g)),
            2 => dispatch(isa, Block::<2>(g)),
            _ => dispatch(isa, Block::<1>(g)),
        }
    };
    let blocks = dw.par_chunks_mut(KB * taps).enumerate();
    match db {
        Some(db) => blocks
            .zip(db.par_chunks_mut(KB))
            .for_each(|((blk, dwb), dbb)| run(blk, dwb, Some(dbb))),
        None => blocks.for_each(|(blk, dwb)| run(blk, dwb, None)),
    }
}

/// Output channels per weight-gradient task (the `match` in [`backward_weight`] has an arm
/// for each count up to it): three planes of `dy` share each input load, and three planes
/// times [`TB`] taps are 9 accumulators, which with the loaded vectors still fit in
/// registers (four planes spill). Measured on mnist_c1 at 1 thread, alternately: one channel
/// by 9 taps 0.68 ms, 2 x 3 0.64, 4 x 2 0.58, 5 x 2 0.61, 4 x 3 0.88, 3 x 3 0.54.
const KB: usize = 3;

/// The weight gradient of output channels `k0..k0 + dw.len() / taps`: `dw[kk][t] = sum over
/// images, rows and columns of dy[k0 + kk] * x (shifted by tap t)`.
struct WeightGrad<'a> {
    p: &'a Conv2dParams,
    k0: usize,
    x: &'a [f32],
    dy: &'a [f32],
    dw: &'a mut [f32],
    /// The bias gradient of the same channels, if wanted.
    db: Option<&'a mut [f32]>,
}

/// [`WeightGrad`] for `B` channels.
struct Block<'a, const B: usize>(WeightGrad<'a>);

impl<const B: usize> SimdFn<f32> for Block<'_, B> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let g = self.0;
        let p = g.p;
        let (mut off, taps) = tap_offsets(p);
        // A last, partial group of taps is filled up with copies of tap 0 (in bounds; their
        // sums are dropped), so every group runs the same kernel.
        let groups = taps.div_ceil(TB);
        let first = off[0];
        off[taps..groups * TB].fill(first);
        let (chw, ohw) = (p.c * p.h * p.w, p.oh * p.ow);
        let keep = tail_keep::<V>(p.ow);
        // Accumulators of every tap group, kept across images (an image's `dy` planes and
        // input stay in L1 while its groups run).
        let mut acc = [[[V::zero(); TB]; B]; MAX_TAPS / TB + 1];
        let mut sacc = [[[0.0f32; TB]; B]; MAX_TAPS / TB + 1];
        let mut bias = [0.0f32; B];
        for b in 0..p.n {
            let mut planes = [&g.dy[..0]; B];
            for (kk, pl) in planes.iter_mut().enumerate() {
                *pl = &g.dy[(b * p.k + g.k0 + kk) * ohw..][..ohw];
            }
            for (q, (acc, sacc)) in acc.iter_mut().zip(&mut sacc).take(groups).enumerate() {
                let off = &off[q * TB..(q + 1) * TB];
                let t = Taps {
                    x: &g.x[b * chw..(b + 1) * chw],
                    off,
                    stride: p.w,
                    ow: p.ow,
                };
                assert!(t.in_bounds(p.oh), "shallow conv: input too short");
                // SAFETY: `in_bounds` just checked; `off.len() == TB`.
                unsafe { dot_rows::<V, B, TB>(acc, sacc, t, planes, keep) };
            }
            if g.db.is_some() {
                for (d, s) in bias.iter_mut().zip(planes) {
                    *d += sum_copy::<V>(s, None);
                }
            }
        }
        if let Some(db) = g.db {
            db.copy_from_slice(&bias[..db.len()]);
        }
        for (kk, dwk) in g.dw.chunks_exact_mut(taps).enumerate() {
            for (t, d) in dwk.iter_mut().enumerate() {
                let (q, tt) = (t / TB, t % TB);
                *d = acc[q][kk][tt].reduce_sum() + sacc[q][kk][tt];
            }
        }
    }
}
