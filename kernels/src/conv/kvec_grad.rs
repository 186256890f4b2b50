//! Weight gradient with output channels in the vector lanes (native backend): the
//! counterpart of `kvec.rs`'s forward.
//!
//! `dw[k][ci][r][s]` sums, over the batch and the output positions, `dy[k][pos]` times the
//! input value tap `(ci, r, s)` meets at `pos`. A register tile holds `KV` vectors of output
//! channels for `P` taps: the taps `(ci, s)` of one kernel row `r` over a few channels. Per
//! output position it loads `KV` vectors of `dy` (transposed to `[positions][channels]`, one
//! band at a time) and broadcasts the `P` input values, `P * KV` FMAs; the depth of the
//! product is the positions, so the accumulators stay in registers over a whole band. The
//! input is read in place (its columns zero-padded per band as in the forward); output rows
//! whose tap row `r` falls outside the image are skipped, which is exact. No im2col, no
//! transposed copies of the image per tap (the implicit path's B for the weight gradient).
//!
//! Tasks are fixed runs of images (a function of the shape), each adding into its own
//! partial gradient (packed like the forward's weights) image by image; the partials are
//! summed in task order, so the result does not depend on the number of threads.
//!
//! Against the implicit im2col (`wide.rs`, which transposes each tap's rows into B), 1
//! thread, thread clock, 3 alternating rounds (Zen 5, ms): resnet_3x3 9.75 -> 8.08,
//! conv5x5 2.91 -> 2.72, dilated 3x3 9.81 -> 8.42; resnet_s2 about even (4.6). A tile of
//! one vector of channels by 14 taps ran resnet_3x3 at 8.8; offsets of the taps held in an
//! array (not a pointer per channel and constant column offsets) spilled, at 14.7.

use super::direct::bias_grad;
use super::gemm_path::reduce_partials;
use super::kvec::{
    band_rows, block_width, block_width_of, tile_shape, Geometry, KvecPlan, Transpose,
};
use super::params::Conv2dParams;
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Backward-weight pass: `dw` (and `dbias`) from `x` and `dy`.
pub(crate) fn backward_weight(
    p: &Conv2dParams,
    kp: &KvecPlan,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    ws: &mut [f32],
) {
    if let Some(db) = dbias {
        bias_grad(p.n, p.k, p.oh * p.ow, dy, db);
    }
    let isa = Isa::active();
    let (total, slots) = ws.split_at_mut(kp.a_len);
    let slot_len = kp.grad_slot_len();
    let (chw, kohw) = (p.c * p.h * p.w, p.k * p.oh * p.ow);
    let ipt = kp.grad_ipt;
    for (wave, (dyw, xw)) in dy
        .chunks(kp.grad_slots * ipt * kohw)
        .zip(x.chunks(kp.grad_slots * ipt * chw))
        .enumerate()
    {
        let used = &mut slots[..xw.len().div_ceil(ipt * chw) * slot_len];
        used.par_chunks_mut(slot_len)
            .zip(xw.par_chunks(ipt * chw).zip(dyw.par_chunks(ipt * kohw)))
            .for_each(|(slot, (xt, dyt_imgs))| {
                let (part, rest) = slot.split_at_mut(kp.a_len);
                let (pad, dyt) = rest.split_at_mut(kp.pad_len);
                // The task's images one after another, each band adding to the partial.
                for (i, (xi, dyi)) in xt.chunks(chw).zip(dyt_imgs.chunks(kohw)).enumerate() {
                    for oh0 in (0..p.oh).step_by(kp.band) {
                        let band = (oh0, kp.band.min(p.oh - oh0));
                        let dyt = &mut dyt[..band.1 * p.ow * p.groups * kp.kg_pad];
                        transpose_dy(isa, p, kp, dyi, band, dyt);
                        let (src, row0) = band_rows(p, kp, band, xi, pad);
                        let dyt = &*dyt;
                        let first = i == 0 && oh0 == 0;
                        let args = Band {
                            p,
                            kp,
                            src,
                            row0,
                            band,
                            dyt,
                            part: &mut *part,
                            first,
                        };
                        dispatch(isa, args);
                    }
                }
            });
        reduce_partials(total, used, slot_len, 0, wave == 0);
    }
    unpack(isa, p, kp, total, dw);
}

/// `dy`'s band of output rows, transposed to `[positions][groups * kg_pad]` (padding
/// channels zero).
fn transpose_dy(
    isa: Isa,
    p: &Conv2dParams,
    kp: &KvecPlan,
    dy: &[f32],
    (oh0, rows): (usize, usize),
    dyt: &mut [f32],
) {
    let (ohw, kg) = (p.oh * p.ow, p.k / p.groups);
    let (q0, n) = (oh0 * p.ow, rows * p.ow);
    let kout = p.groups * kp.kg_pad;
    if kg < kp.kg_pad {
        dyt.fill(0.0);
    }
    for g in 0..p.groups {
        dispatch(
            isa,
            Transpose {
                src: &dy[g * kg * ohw + q0..],
                src_row: ohw,
                rows: kg,
                cols: n,
                dst: &mut dyt[g * kp.kg_pad..],
                dst_row: kout,
            },
        );
    }
}

/// The summed partials `[group][block][cg][r][s][kb]` into `dw` `[k][cg][r][s]`, blocks in
/// parallel.
fn unpack(isa: Isa, p: &Conv2dParams, kp: &KvecPlan, total: &[f32], dw: &mut [f32]) {
    let kb = block_width(isa);
    let (kg, crs) = (p.k / p.groups, p.c / p.groups * p.r * p.s);
    let per = kp.kg_pad / kb;
    dw.par_chunks_mut(kg * crs)
        .enumerate()
        .for_each(|(g, dwg)| {
            for b in 0..per {
                let k0 = b * kb;
                let lanes = kb.min(kg.saturating_sub(k0));
                if lanes == 0 {
                    continue;
                }
                dispatch(
                    isa,
                    Transpose {
                        src: &total[(g * per + b) * crs * kb..][..crs * kb],
                        src_row: kb,
                        rows: crs,
                        cols: lanes,
                        dst: &mut dwg[k0 * crs..],
                        dst_row: crs,
                    },
                );
            }
        });
}

/// One band of one image: every group, channel block, kernel row and tile of taps.
struct Band<'a> {
    p: &'a Conv2dParams,
    kp: &'a KvecPlan,
    /// Input rows `[c][rows][wp]` from row `row0` on.
    src: &'a [f32],
    row0: usize,
    /// First output row, rows.
    band: (usize, usize),
    /// The band's `dy`, `[rows * ow][groups * kg_pad]`.
    dyt: &'a [f32],
    /// The image's partial gradient `[group][block][cg][r][s][kb]`; `first` overwrites it.
    part: &'a mut [f32],
    first: bool,
}

impl SimdFn<f32> for Band<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let pmax = tile_shape(V::LANES).1;
        // (The column stride is only a step, so it need not be a constant; the tap spacing
        // is an addressing offset, so it is: every constant is another copy of each tile.)
        match self.p.dilation.1 {
            1 => self.run::<V, 2, 1>(pmax),
            _ => self.run::<V, 2, 2>(pmax),
        }
    }
}

impl Band<'_> {
    #[inline(always)]
    fn run<V: Vector<Elem = f32>, const KV: usize, const DW: usize>(self, pmax: usize) {
        let (p, kp) = (self.p, self.kp);
        // A tile covers one block of the partial's layout (the forward's tile width).
        let kb = KV * V::LANES;
        assert_eq!(kb, block_width_of::<V>());
        let (oh0, rows) = self.band;
        let lens = (self.part.len(), self.src.len(), self.dyt.len());
        let Geometry {
            cg,
            rs,
            s,
            wp,
            ow,
            src_rows,
            kout,
            blocks,
            axis,
        } = Geometry::new(p, kp, kb, lens, rows);
        let sw = p.stride.1;
        assert!(DW == p.dilation.1 && (ow - 1) * sw + (s - 1) * DW < wp);
        // Taps per tile: runs of `sn` column taps (at most 7) of `ci_n` channels.
        let sn = s.min(7).min(pmax);
        let ci_n = (pmax / sn).max(1);
        let (part, dyt, src) = (self.part.as_mut_ptr(), self.dyt.as_ptr(), self.src.as_ptr());
        let chan = src_rows * wp;
        for r in 0..p.r {
            // The band's output rows whose tap row `r` is inside the image: a range (the
            // rows of a forward walk that include tap `r`).
            let inside = |oh: usize| {
                let w = axis.walk(oh);
                w.count > 0 && w.t0 <= r && r < w.t0 + w.count
            };
            let lo = (0..rows).find(|&o| inside(oh0 + o)).unwrap_or(rows);
            let hi = (lo..rows).find(|&o| !inside(oh0 + o)).unwrap_or(rows);
            // Input row of output row `oh0 + lo` at tap `r`, within the band's rows.
            let ir = ((oh0 + lo) * p.stride.0 + r * p.dilation.0)
                .wrapping_sub(p.pad.0)
                .wrapping_sub(self.row0);
            for g in 0..p.groups {
                for b in 0..blocks {
                    for c0 in (0..cg).step_by(ci_n) {
                        let cn = ci_n.min(cg - c0);
                        for s0 in (0..s).step_by(sn) {
                            let sl = sn.min(s - s0);
                            let t = GradArgs {
                                // (Wrapping: with no rows inside, `ir` is not a row
                                // and the tile reads no input.)
                                x: src
                                    .wrapping_add((g * cg + c0) * chan + s0 * DW)
                                    .wrapping_add(ir.wrapping_mul(wp)),
                                chan,
                                x_row: p.stride.0 * wp,
                                sw,
                                dy: dyt.wrapping_add(lo * ow * kout + g * kp.kg_pad + b * kb),
                                dy_pos: kout,
                                rows: hi - lo,
                                ow,
                                part: part.wrapping_add(
                                    ((g * blocks + b) * cg + c0) * rs * kb + (r * s + s0) * kb,
                                ),
                                part_chan: rs * kb,
                                part_tap: kb,
                                first: self.first,
                            };
                            // SAFETY: rows `lo..hi` of the band read input rows inside the
                            // image (`inside`), hence inside the band's rows (`band_rows`);
                            // columns `q * sw + (s0 + v) * DW < wp` (asserted), channels
                            // `c0 + j < cg` of group `g`; `dy` rows `lo..hi` of the band,
                            // channels of block `b`; the partial's taps `(c0 + j, r, s0 +
                            // v)` of block `(g, b)`: all inside the lengths
                            // `Geometry::new` checked.
                            unsafe { grad_tile_n::<V, KV, DW>((cn, sl), &t) };
                        }
                    }
                }
            }
        }
    }
}

/// Where one gradient tile reads and writes (see [`grad_tile`]).
struct GradArgs {
    /// Input value of the first channel's first tap at the first position; channels `chan`
    /// apart, column taps `DW` apart.
    x: *const f32,
    chan: usize,
    /// From one output row to the next, and one position to the next, in the input.
    x_row: usize,
    sw: usize,
    /// `dy` of the first position; positions `dy_pos` apart.
    dy: *const f32,
    dy_pos: usize,
    /// Output rows, positions per row.
    rows: usize,
    ow: usize,
    /// The partial of the first tap: channel `j`, column tap `v` at `j * part_chan + v *
    /// part_tap`.
    part: *mut f32,
    part_chan: usize,
    part_tap: usize,
    /// Overwrite the partial instead of adding to it.
    first: bool,
}

/// [`grad_tile`] for `ci` channels by `s` column taps: `s <= 7`, `ci * s <= 14`.
///
/// # Safety
/// As [`grad_tile`].
#[inline(always)]
unsafe fn grad_tile_n<V: Vector<Elem = f32>, const KV: usize, const DW: usize>(
    (ci, s): (usize, usize),
    t: &GradArgs,
) {
    macro_rules! by_shape {
        ($(($c:literal, $s:literal))*) => {
            match (ci, s) {
                // SAFETY: forwarded.
                $(($c, $s) => unsafe { grad_tile::<V, KV, $c, $s, DW>(t) },)*
                _ => unreachable!("no gradient tile of {ci} x {s} taps"),
            }
        };
    }
    by_shape!((1, 1)(2, 1)(3, 1)(4, 1)(5, 1)(6, 1)(7, 1)(8, 1)(9, 1)(
        10, 1
    )(11, 1)(12, 1)(13, 1)(14, 1)(1, 2)(2, 2)(3, 2)(4, 2)(
        5, 2
    )(6, 2)(7, 2)(1, 3)(2, 3)(3, 3)(4, 3)(1, 4)(2, 4)(3, 4)(
        1, 5
    )(2, 5)(1, 6)(2, 6)(1, 7)(2, 7))
}

/// One register tile: `part[j][v][lane] (+)= sum over rows and positions q of dy[q][lane] *
/// x[j][q * sw + v * DW]`, positions in order, for `CI` channels by `S` column taps and `KV`
/// vectors of output channels.
///
/// # Safety
/// For every row `u < rows` and position `q < ow`: `dy + (u * ow + q) * dy_pos + lane`
/// (`lane < KV * LANES`) and `x + j * chan + u * x_row + q * sw + v * DW` (`j < CI`, `v <
/// S`)
/// are readable; `part + j * part_chan + v * part_tap + lane` is readable and writable.
#[inline(always)]
unsafe fn grad_tile<
    V: Vector<Elem = f32>,
    const KV: usize,
    const CI: usize,
    const S: usize,
    const DW: usize,
>(
    t: &GradArgs,
) {
    let at = |j: usize, v: usize, l: usize| {
        t.part
            .wrapping_add(j * t.part_chan + v * t.part_tap + l * V::LANES)
    };
    let mut acc = [[[V::zero(); KV]; S]; CI];
    if !t.first {
        for (j, chan) in acc.iter_mut().enumerate() {
            for (v, tap) in chan.iter_mut().enumerate() {
                for (l, acc) in tap.iter_mut().enumerate() {
                    // SAFETY: inside the partial (the caller's contract).
                    *acc = unsafe { V::load(at(j, v, l)) };
                }
            }
        }
    }
    for u in 0..t.rows {
        let mut xp: [*const f32; CI] =
            std::array::from_fn(|j| t.x.wrapping_add(j * t.chan + u * t.x_row));
        let mut dyp = t.dy.wrapping_add(u * t.ow * t.dy_pos);
        for _ in 0..t.ow {
            // SAFETY: a position of the tile (the caller's contract).
            let dv: [V; KV] = std::array::from_fn(|l| unsafe { V::load(dyp.add(l * V::LANES)) });
            for (chan, xp) in acc.iter_mut().zip(&mut xp) {
                for (v, tap) in chan.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let xv = V::splat(unsafe { *xp.add(v * DW) });
                    for (acc, dv) in tap.iter_mut().zip(&dv) {
                        *acc = xv.mul_add(*dv, *acc);
                    }
                }
                *xp = xp.wrapping_add(t.sw);
            }
            dyp = dyp.wrapping_add(t.dy_pos);
        }
    }
    for (j, chan) in acc.iter().enumerate() {
        for (v, tap) in chan.iter().enumerate() {
            for (l, acc) in tap.iter().enumerate() {
                // SAFETY: inside the partial (the caller's contract).
                unsafe { acc.store(at(j, v, l)) };
            }
        }
    }
}
