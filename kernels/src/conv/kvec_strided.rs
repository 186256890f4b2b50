//! Backward-data (of strided convolutions above all) as a direct convolution with input
//! channels in the vector lanes: the tiles of `kvec.rs` (which runs these shapes' forward), over `dy`.
//!
//! `dx[c][ih][iw]` sums `dy[k][oh][ow] * w[k][c][t][u]` over the taps with `oh * sh - pt +
//! t * dh = ih` and `ow * sw - pl + u = iw`: the adjoint of a strided convolution reads `dy`
//! at a fractional stride. Split by column phase `b = iw % sw`, the taps a column meets are
//! fixed: `u = u0 + sw * m` for `m < taps`, column `j` of the phase (`iw = b + sw * j`)
//! reading `dy` column `j + e - m` (see [`Phase`]). So each phase is a stride-1 correlation
//! over `dy` with a row of `taps` taps, which the tiles run unchanged (stepping `sw` taps
//! through the weights and one column back through `dy`), writing every `sw`-th position of
//! the band's position-major block. Rows need no split: the adjoint tap walk (`blocked::Axis`,
//! `Dir::Adjoint`) gives each row of `dx` the taps and rows of `dy` it meets (resnet_s2's
//! even rows one tap, odd rows two). The block holds whole rows of `dx`, which are
//! transposed into its planes as in the forward.
//!
//! With stride 1 there is one phase: the shapes without the "same" adjoint (`wide.rs`), such
//! as unpadded ones, run here too (8 x 64 -> 64, 28x28 unpadded 3x3, 2 threads: 1.27 ms
//! by GEMM + col2im, 0.95 here; 8 x 32 -> 64 at 13x13: 0.117 -> 0.113; 5x5 128 -> 128 at
//! 14x14: even).
//!
//! This replaces GEMM + col2im by channel blocks (`col_blocks.rs`) there: no column matrix
//! (for resnet_s2 9 rows per input channel, written, then read and scattered by col2im), no
//! packing of `dy`. Tasks are whole images, and each element sums its taps in one fixed
//! order, so results do not depend on the number of threads.
//!
//! resnet_s2 (8 x 128 -> 256, 28x28, stride 2), `nnkern-bench` at 2 threads (Zen 5, ms,
//! median of rounds / fastest round): 2.51 / 2.41 with `col_blocks.rs`, 2.35 / 2.21 here;
//! one thread, 4.5 against the forward's 4.3 (the same products; what is left is the
//! tiles' accumulators, reloaded per slice of `dy`'s channels over shorter tap runs: 2.25
//! taps per channel on average, against 9). Packing the weights tap by tap (a gather per
//! lane) took 5% of the pass; the 8x8 transposes of the forward's packing, under 2%.

use super::blocked::{Axis, Dir, Walks};
use super::kvec::{
    block_width, padded_rows, tile_n, tile_shape, Band, Columns, Images, TileArgs, Transpose,
    BAND_BYTES, K_ALIGN, MIN_IMAGES, SLICE_BYTES,
};
use super::params::{Conv2dParams, MAX_SLOTS, WS_BUDGET};
use crate::error::checked_product;
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// The plan: a function of the shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StridedPlan {
    /// Input channels per group (the lanes), padded to [`K_ALIGN`].
    cg_pad: usize,
    /// Columns of the padded copy of `dy`'s rows.
    cols: Columns,
    /// Rows of `dx` per band, and the most rows of `dy` a band reads.
    band: usize,
    band_in: usize,
    /// Packed weights `[groups][cg_pad / kb][k / groups][r][s][kb]`.
    a_len: usize,
    /// Per slot: the band's padded rows of `dy` (0 when read in place), its position-major
    /// block of `dx`.
    pad_len: usize,
    out_len: usize,
    /// Images (tasks) in flight per wave.
    pub(crate) slots: usize,
}

impl StridedPlan {
    pub(crate) fn workspace_len(&self) -> usize {
        self.a_len + self.slots * (self.pad_len + self.out_len)
    }
}

/// Column phase `b` of `dx` (columns `iw = b + sw * j`, `j < cols`): the column taps `u0 +
/// sw * m` (`m < taps`) reach it, tap `m` of column `j` reading `dy` column `j + e - m`
/// (the tiles step `sw` taps forward in the weights, one column back in `dy`).
#[derive(Clone, Copy, Debug)]
struct Phase {
    u0: usize,
    taps: usize,
    e: usize,
    cols: usize,
}

/// Phase `b < sw` of `p` (whose plan checked `s >= sw`, `w >= sw` and column dilation 1: every
/// phase has columns and taps).
fn phase(p: &Conv2dParams, b: usize) -> Phase {
    let sw = p.stride.1;
    // (b + pl <= sw + pl: the descriptor bounds the padded width, and sw <= w here.)
    let u0 = (b + p.pad.2) % sw;
    Phase {
        u0,
        taps: (p.s - u0).div_ceil(sw),
        e: (b + p.pad.2 - u0) / sw,
        cols: (p.w - b).div_ceil(sw),
    }
}

/// The plan for `p`, if its native backward-data runs here (where neither the batch-blocked
/// path nor the stride-1 "same" adjoint takes it first): column dilation 1, at least as many
/// column taps as the column stride, not pointwise (one GEMM per image), at least
/// [`MIN_IMAGES`] images, at least 32 input channels per group filling blocks of 32 to
/// seven eighths, and a depth per output of at least 32 on average. `None` also when a size
/// overflows (another path takes the shape).
pub(crate) fn plan(p: &Conv2dParams) -> Option<StridedPlan> {
    let (cg, kg) = (p.c / p.groups, p.k / p.groups);
    let cg_pad = cg.checked_next_multiple_of(K_ALIGN)?;
    let (sh, sw) = p.stride;
    let applies = p.n >= MIN_IMAGES
        && !p.is_depthwise()
        && !p.is_pointwise()
        && p.oh > 0
        && p.ow > 0
        && p.dilation.1 == 1
        && p.s >= sw
        && p.w >= sw
        && cg >= K_ALIGN
        && 8 * cg as u128 >= 7 * cg_pad as u128
        && kg as u128 * p.r as u128 * p.s as u128 >= 32 * sh as u128 * sw as u128;
    if !applies {
        return None;
    }
    let size = |f: &[usize]| checked_product("", f).ok();
    // Zero columns around dy's rows so that every phase's tiles read whole rows of taps.
    let (mut left, mut right) = (0, 0);
    for b in 0..sw {
        let ph = phase(p, b);
        left = left.max((ph.taps - 1).saturating_sub(ph.e));
        right = right.max((ph.cols + ph.e).saturating_sub(p.ow));
    }
    let wp = left.checked_add(p.ow)?.checked_add(right)?;
    let cout = size(&[p.groups, cg_pad])?;
    let a_len = size(&[cout, kg, p.r, p.s])?;
    let row_bytes = size(&[p.w, cout, 4])?;
    let band = (BAND_BYTES / row_bytes).clamp(1, p.h);
    let band = p.h.div_ceil(p.h.div_ceil(band));
    // Rows lo..hi of dy (see `dy_rows`): at most this many.
    let band_in =
        ((band - 1).checked_add((p.r - 1).checked_mul(p.dilation.0)?)? / sh + 1).min(p.oh);
    let pad_len = if wp == p.ow {
        0
    } else {
        size(&[p.k, band_in, wp])?
    };
    let out_len = size(&[band, p.w, cout])?;
    let slot = pad_len.checked_add(out_len)?;
    let fit = WS_BUDGET.saturating_sub(a_len) / slot.max(1);
    let slots = fit.clamp(1, MAX_SLOTS.min(p.n));
    a_len.checked_add(slots.checked_mul(slot)?)?;
    Some(StridedPlan {
        cg_pad,
        cols: Columns { w: p.ow, left, wp },
        band,
        band_in,
        a_len,
        pad_len,
        out_len,
        slots,
    })
}

/// The rows `lo..hi` of `dy` that rows `ih0..ih0 + rows` of `dx` read: `oh * sh - pt + t *
/// dh = ih` with `t < r`.
fn dy_rows(p: &Conv2dParams, (ih0, rows): (usize, usize)) -> (usize, usize) {
    let (pt, sh, reach) = (p.pad.0, p.stride.0, (p.r - 1) * p.dilation.0);
    let lo = (ih0 + pt).saturating_sub(reach).div_ceil(sh).min(p.oh);
    let hi = ((ih0 + rows - 1 + pt) / sh + 1).min(p.oh);
    (lo, hi.max(lo))
}

/// Backward-data pass: `dx` from `dy` and the weights `w` (`[k][c / groups][r][s]`).
pub(crate) fn backward_data(
    p: &Conv2dParams,
    sp: &StridedPlan,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) {
    let isa = Isa::active();
    let (a, slots) = ws.split_at_mut(sp.a_len);
    pack_weights(isa, p, sp, w, a);
    let images = Images {
        p,
        plan: sp,
        a,
        x: dy,
        y: dx,
        slots: (sp.slots, sp.pad_len, sp.out_len),
        rows: (p.h, sp.band),
        width: p.w,
        chans: (p.c, sp.cg_pad),
        bias: None,
    };
    images.run(isa, slots, |dyi, pad, band| {
        padded_rows(dyi, p.oh, dy_rows(p, band), sp.cols, sp.band_in, pad)
    });
}

/// Packs the weights into `[groups][block][kg][r][s][kb]`, input channels past `cg` zero:
/// per output channel, the `[kb][r * s]` block of the block's input channels, transposed;
/// blocks in parallel.
fn pack_weights(isa: Isa, p: &Conv2dParams, sp: &StridedPlan, w: &[f32], a: &mut [f32]) {
    let kb = block_width(isa);
    let (cg, kg, rs) = (p.c / p.groups, p.k / p.groups, p.r * p.s);
    let blocks = sp.cg_pad / kb;
    a.par_chunks_exact_mut(kg * rs * kb)
        .enumerate()
        .for_each(|(gb, dst)| {
            let (g, c0) = (gb / blocks, gb % blocks * kb);
            let lanes = kb.min(cg.saturating_sub(c0));
            dst.fill(0.0);
            for (j, dst) in dst.chunks_exact_mut(rs * kb).enumerate() {
                let t = Transpose {
                    src: &w[((g * kg + j) * cg + c0) * rs..],
                    src_row: rs,
                    rows: lanes,
                    cols: rs,
                    dst,
                    dst_row: kb,
                };
                dispatch(isa, t);
            }
        });
}

/// One band of rows of `dx` of one image: every group, channel block, slice of `dy`'s
/// channels, row, column phase and position chunk.
impl SimdFn<f32> for Band<'_, StridedPlan> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        self.run::<V, 2>(tile_shape(V::LANES).1)
    }
}

impl Band<'_, StridedPlan> {
    #[inline(always)]
    fn run<V: Vector<Elem = f32>, const KV: usize>(self, pmax: usize) {
        let (p, sp) = (self.p, self.plan);
        let kb = KV * V::LANES;
        let (ih0, rows) = self.band;
        let (kg, r, sw, wp) = (p.k / p.groups, p.r, p.stride.1, sp.cols.wp);
        let (kout, blocks) = (p.groups * sp.cg_pad, sp.cg_pad / kb);
        let src_rows = self.src.len() / (p.k * wp);
        // The tiles' reads and writes stay inside these.
        assert_eq!(self.a.len(), sp.a_len);
        assert_eq!(self.src.len(), p.k * src_rows * wp);
        assert_eq!(self.out.len(), rows * p.w * kout);
        assert_eq!(sp.a_len, kout * kg * r * p.s);
        let axis = Axis {
            dir: Dir::Adjoint,
            stride: p.stride.0,
            pad: p.pad.0,
            dilation: p.dilation.0,
            taps: r,
            len: p.oh,
        };
        let walks = Walks::new(axis);
        // A row meets at most ceil(r / sh) row taps: the weights a slice's rows read.
        let slice = (SLICE_BYTES / (r.div_ceil(p.stride.0) * p.s * kb * 4)).clamp(1, kg);
        let slice = kg.div_ceil(kg.div_ceil(slice));
        let (a_ptr, x_ptr, o_ptr) = (self.a.as_ptr(), self.src.as_ptr(), self.out.as_mut_ptr());
        let rs_kb = r * p.s * kb;
        for g in 0..p.groups {
            for blk in 0..blocks {
                for c0 in (0..kg).step_by(slice) {
                    let a0 = ((g * blocks + blk) * kg + c0) * rs_kb;
                    let x0 = (g * kg + c0) * src_rows * wp;
                    for row in 0..rows {
                        let wr = walks.get(ih0 + row);
                        let chans = if wr.count == 0 {
                            0
                        } else {
                            // The walk's rows of dy, i0 down to its last, lie in the band's.
                            let last = wr.i0 as isize + wr.i_step * (wr.count as isize - 1);
                            assert!(wr.i0 < self.row0 + src_rows && last >= self.row0 as isize);
                            slice.min(kg - c0)
                        };
                        let ir = wr.i0.wrapping_sub(self.row0);
                        for b in 0..sw {
                            let ph = phase(p, b);
                            // Column j0's first tap reads dy column j0 + e.
                            // (Wrapping: a row with no taps has no row of dy.)
                            let x_row =
                                (x0 + ph.e + sp.cols.left).wrapping_add(ir.wrapping_mul(wp));
                            let chunks = ph.cols.div_ceil(pmax);
                            let mut j0 = 0;
                            for chunk in 0..chunks {
                                let np = ph.cols / chunks + usize::from(chunk < ph.cols % chunks);
                                let t = TileArgs {
                                    a: a_ptr.wrapping_add(a0 + (wr.t0 * p.s + ph.u0) * kb),
                                    x: x_ptr.wrapping_add(x_row.wrapping_add(j0)),
                                    chans,
                                    chan: (rs_kb, src_rows * wp),
                                    row_walk: (
                                        wr.count,
                                        wr.t_step * p.s * kb,
                                        wr.i_step * wp as isize,
                                    ),
                                    col: (ph.taps, sw * kb, -1),
                                    out: o_ptr.wrapping_add(
                                        (row * p.w + b + sw * j0) * kout + g * sp.cg_pad + blk * kb,
                                    ),
                                    out_pos: sw * kout,
                                    accumulate: c0 > 0,
                                };
                                // SAFETY: the walk's taps are `< r` and its rows of dy lie in
                                // the band's (asserted); the column taps `u0 + sw * m < s`
                                // read columns `j0 + q + e - m + left` (`q < np`, `m < taps`)
                                // from `e + left - (taps - 1) >= 0` to `cols - 1 + e + left <
                                // wp` (the plan's padding); channels `c0 + j < kg` of group
                                // `g` in `src` and in block `(g, blk)` of `a`. Positions `b +
                                // sw * (j0 + q) < w` of the band's rows, `kb` channels from
                                // `g * cg_pad + blk * kb`: inside `out` (lengths asserted).
                                unsafe { tile_n::<V, KV, 1>(np, &t) };
                                j0 += np;
                            }
                        }
                    }
                }
            }
        }
    }
}
