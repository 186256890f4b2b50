//! Direct convolution with output channels in the vector lanes (native forward, and the
//! stride-1 backward-data through its adjoint).
//!
//! A register tile holds `KV` vectors of output channels at `P` neighbouring output
//! positions of one row. Per kernel tap it loads `KV` vectors of packed weights and, for each
//! position, broadcasts the one input value that position meets: `P * KV` FMAs, read straight
//! from the (column-padded) image. The positions are the broadcast operand, so a tile holds
//! any number of them up to `P`: an output row of 28 is two tiles of 14, with no junk
//! columns (the implicit im2col computes 32 per row of a 5x5 kernel's padded image: 12.5%
//! more work), no B packing, and strided rows read every other input in place (no phase
//! split). Rows outside the image are skipped by the tap walk (`blocked::Axis`), so only the
//! columns need a padded copy, and none without column padding.
//!
//! An image is computed in bands of output rows: tiles add into the band's position-major
//! block `[positions][channels]` (in L2), which is then transposed into NCHW (adding the
//! bias). Channel blocks sweep the input channels in slices whose weights stay in L1, each
//! slice continuing the tiles' sums through memory in the same order, so every output is
//! one fixed sequence of FMAs whatever the number of threads (tasks are whole images).
//!
//! Against the implicit im2col (`wide.rs`), 1 thread, thread clock, 3 alternating rounds
//! (Zen 5, ms): conv5x5 (8 x 32 -> 64, 28x28) forward 3.27 -> 2.76 and backward-data 3.30
//! -> 2.73; dilated 3x3 (64 -> 64, 56x56, dilation 2) 8.94 -> 8.17; resnet_3x3 8.78 ->
//! 8.35; resnet_s2 (stride 2) 5.04 -> 4.34. The tiles run at the GEMM's rate; what is left
//! is the padded copy of the input rows (3-7%, where the input is first read) and the
//! transposes out (3-5%).

use super::blocked::{Axis, Dir};
use super::params::{Conv2dParams, MAX_SLOTS, WS_BUDGET};
use crate::error::{checked_product, KernelError};
use crate::simd::{dispatch, in_vector_context, prefetch, transpose8x8, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Output channels per group are padded to a multiple of this (the widest tile's `KV *
/// LANES`), so the packed weights' size does not depend on the ISA.
pub(super) const K_ALIGN: usize = 32;

/// Bytes of packed weights per channel slice: they stay in L1 while the slice's tiles
/// sweep a band.
pub(super) const SLICE_BYTES: usize = 20 << 10;

/// Bytes of a band's position-major output: it stays in L2 while every slice adds to it,
/// next to the band's input rows, and is transposed out while still there.
pub(super) const BAND_BYTES: usize = 128 << 10;

/// Tasks of the backward-weight pass (batch permitting): enough to balance two or four
/// threads; each adds its images into one partial gradient, and fewer partials are fewer
/// to sum (summing one per image took 8% of resnet_s2's pass).
const GRAD_TASKS: usize = 4;

/// The plan: a function of the shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KvecPlan {
    /// Output channels per group, padded to [`K_ALIGN`].
    pub(super) kg_pad: usize,
    /// Width of the column-padded input rows (`w` when there is no column padding).
    pub(super) wp: usize,
    /// Output rows per band, and the most input rows a band reads.
    pub(super) band: usize,
    pub(super) band_in: usize,
    /// Packed weights `[groups][kg_pad / kb][cg][r][s][kb]` (shared by all tasks).
    pub(super) a_len: usize,
    /// Per slot: the band's column-padded input rows (0 when read in place), its
    /// position-major output.
    pub(super) pad_len: usize,
    pub(super) out_len: usize,
    /// Images (tasks) in flight per wave.
    pub(crate) slots: usize,
    /// Backward-weight: images per task (each task sums its own partial gradient), and
    /// tasks in flight per wave.
    pub(super) grad_ipt: usize,
    pub(crate) grad_slots: usize,
}

impl KvecPlan {
    /// Workspace of either pass: the packed weights (forward) or the summed partial
    /// gradients (backward-weight), then the slots.
    pub(crate) fn workspace_len(&self) -> usize {
        self.a_len + self.slots.max(self.grad_slots) * self.grad_slot_len()
    }

    /// Elements of a backward-weight slot: a partial gradient as large as the packed
    /// weights, then a forward slot (padded rows; the band's transposed `dy`, shaped like
    /// the forward's output block).
    pub(super) fn grad_slot_len(&self) -> usize {
        self.a_len + self.pad_len + self.out_len
    }
}

/// Fewest images for these paths: their tasks are whole images (runs of images for the
/// weight gradient), so smaller batches would leave threads idle, where the implicit GEMM
/// (`wide.rs`) splits one image's columns over the threads.
pub(super) const MIN_IMAGES: usize = 4;

/// The plan for `p`, if its native forward runs here: at least [`MIN_IMAGES`] images,
/// column stride 1 or 2, at least 32 output channels per group filling blocks of 32 to
/// seven eighths, a depth of at least 32 (shallower products are bound by their output),
/// not pointwise or depthwise.
pub(crate) fn plan(p: &Conv2dParams) -> Result<Option<KvecPlan>, KernelError> {
    // An optional path: sizes that overflow simply leave the shape to the others.
    Ok(sizes(p))
}

fn sizes(p: &Conv2dParams) -> Option<KvecPlan> {
    let (cg, kg) = (p.c / p.groups, p.k / p.groups);
    let kg_pad = kg.checked_next_multiple_of(K_ALIGN)?;
    let applies = p.n >= MIN_IMAGES
        && !p.is_pointwise()
        && !p.is_depthwise()
        && p.oh > 0
        && p.ow > 0
        && p.stride.1 <= 2
        && kg >= K_ALIGN
        && 8 * kg as u128 >= 7 * kg_pad as u128
        && cg as u128 * p.r as u128 * p.s as u128 >= 32;
    if !applies {
        return None;
    }
    let size = |f: &[usize]| checked_product("", f).ok();
    let wp = p.w.checked_add(p.pad.2)?.checked_add(p.pad.3)?;
    let kout = size(&[p.groups, kg_pad])?;
    let a_len = size(&[kout, cg, p.r, p.s])?;
    let row_bytes = size(&[p.ow, kout, 4])?;
    let band = (BAND_BYTES / row_bytes).clamp(1, p.oh);
    let band = p.oh.div_ceil(p.oh.div_ceil(band));
    let band_in = (band - 1)
        .checked_mul(p.stride.0)?
        .checked_add((p.r - 1).checked_mul(p.dilation.0)?)?
        .checked_add(1)?
        .min(p.h);
    let pad_len = if wp == p.w {
        0
    } else {
        size(&[p.c, band_in, wp])?
    };
    let out_len = size(&[band, p.ow, kout])?;
    let slot = a_len.checked_add(pad_len)?.checked_add(out_len)?;
    let fit = WS_BUDGET.saturating_sub(a_len) / slot.max(1);
    let n = p.n.max(1);
    let slots = fit.clamp(1, MAX_SLOTS.min(n));
    // Backward-weight: GRAD_TASKS tasks (batch permitting), so that few partials are summed.
    let grad_ipt = n.div_ceil(GRAD_TASKS.min(n));
    let grad_slots = fit.clamp(1, MAX_SLOTS.min(n.div_ceil(grad_ipt)));
    a_len.checked_add(slots.max(grad_slots).checked_mul(slot)?)?;
    Some(KvecPlan {
        kg_pad,
        wp,
        band,
        band_in,
        a_len,
        pad_len,
        out_len,
        slots,
        grad_ipt,
        grad_slots,
    })
}

/// Vectors of output channels per tile and most positions per tile, for `lanes`-wide
/// vectors: `P * KV` accumulators and `KV` weight vectors in the registers (AVX-512: 28 +
/// 2 of 32 zmm; AVX2: 12 + 2 of 16 ymm).
pub(super) fn tile_shape(lanes: usize) -> (usize, usize) {
    match lanes {
        16 => (2, 14),
        _ => (2, 6),
    }
}

/// Where the packed weights come from.
#[derive(Clone, Copy)]
enum Weights<'a> {
    /// This convolution's `[k][c/groups][r][s]`.
    Forward(&'a [f32]),
    /// The weights of the convolution whose adjoint this is (`[c][k/groups][r][s]` in this
    /// one's terms), read transposed per group and flipped.
    Adjoint(&'a [f32]),
}

/// Forward pass: `y = conv(x, w) + bias`.
pub(crate) fn forward(
    p: &Conv2dParams,
    kp: &KvecPlan,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) {
    run(p, kp, x, Weights::Forward(w), bias, y, ws)
}

/// Backward-data of a stride-1 convolution as the forward pass of its adjoint `a` (see
/// `Conv2dParams::adjoint`): `dx` from `dy` and the original weights `w`.
pub(crate) fn backward_data(
    a: &Conv2dParams,
    kp: &KvecPlan,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) {
    run(a, kp, dy, Weights::Adjoint(w), None, dx, ws)
}

fn run(
    p: &Conv2dParams,
    kp: &KvecPlan,
    x: &[f32],
    w: Weights,
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) {
    let isa = Isa::active();
    let (a, slots) = ws.split_at_mut(kp.a_len);
    pack_weights(isa, p, kp, w, a);
    let images = Images {
        p,
        plan: kp,
        a,
        x,
        y,
        slots: (kp.slots, kp.pad_len, kp.out_len),
        rows: (p.oh, kp.band),
        width: p.ow,
        chans: (p.k, kp.kg_pad),
        bias,
    };
    images.run(isa, slots, |xi, pad, band| band_rows(p, kp, band, xi, pad));
}

/// The images of a pass whose tasks are whole images, each computed in bands of output rows
/// ([`Band`]) into a position-major block, then transposed into its planes: the forward
/// (plan `P` = [`KvecPlan`]) and `kvec_strided.rs`'s backward-data.
pub(super) struct Images<'a, P> {
    pub(super) p: &'a Conv2dParams,
    pub(super) plan: &'a P,
    /// Packed weights.
    pub(super) a: &'a [f32],
    /// The inputs and outputs of all images.
    pub(super) x: &'a [f32],
    pub(super) y: &'a mut [f32],
    /// Images in flight per wave, and per slot: padded input rows, position-major block.
    pub(super) slots: (usize, usize, usize),
    /// Output rows, rows per band; positions per output row.
    pub(super) rows: (usize, usize),
    pub(super) width: usize,
    /// Output channels, and per group padded (the block's layout); their bias.
    pub(super) chans: (usize, usize),
    pub(super) bias: Option<&'a [f32]>,
}

impl<P: Sync> Images<'_, P>
where
    for<'b> Band<'b, P>: SimdFn<f32, Output = ()>,
{
    /// Every band of every image, images of a wave in parallel, each with its slot of `ws`:
    /// `src_rows(x, pad, band)` gives the band's input rows (in `pad` or in place) and the
    /// first one's index.
    pub(super) fn run(
        self,
        isa: Isa,
        ws: &mut [f32],
        src_rows: impl for<'b> Fn(&'b [f32], &'b mut [f32], (usize, usize)) -> (&'b [f32], usize) + Sync,
    ) {
        let (n_slots, pad_len, out_len) = self.slots;
        let (rows, band) = self.rows;
        let (k, kg_pad) = self.chans;
        let groups = self.p.groups;
        let (out_row, plane) = (self.width * groups * kg_pad, rows * self.width);
        let (chw, yhw) = (self.x.len() / self.p.n.max(1), k * plane);
        for (yw, xw) in self
            .y
            .chunks_mut(n_slots * yhw)
            .zip(self.x.chunks(n_slots * chw))
        {
            yw.par_chunks_mut(yhw)
                .zip(xw.par_chunks(chw))
                .zip(ws.par_chunks_mut(pad_len + out_len))
                .for_each(|((yi, xi), slot)| {
                    let (pad, out) = slot.split_at_mut(pad_len);
                    for r0 in (0..rows).step_by(band) {
                        let band = (r0, band.min(rows - r0));
                        let out = &mut out[..band.1 * out_row];
                        let (src, row0) = src_rows(xi, &mut *pad, band);
                        let image = Band {
                            p: self.p,
                            plan: self.plan,
                            a: self.a,
                            src,
                            row0,
                            band,
                            out: &mut *out,
                        };
                        dispatch(isa, image);
                        let planes = ToPlanes {
                            k,
                            groups,
                            kg_pad,
                            plane,
                            out,
                            bias: self.bias,
                            q0: r0 * self.width,
                            y: yi,
                        };
                        dispatch(isa, planes);
                    }
                });
        }
    }
}

/// The input rows the output rows `band = (oh0, rows)` read: the image itself with its
/// first row 0, or those rows copied with their columns zero-padded (`[c][band_in][wp]`)
/// and the first one's index.
pub(super) fn band_rows<'a>(
    p: &Conv2dParams,
    kp: &KvecPlan,
    (oh0, rows): (usize, usize),
    x: &'a [f32],
    pad: &'a mut [f32],
) -> (&'a [f32], usize) {
    let (pt, sh, dh) = (p.pad.0, p.stride.0, p.dilation.0);
    let lo = (oh0 * sh).saturating_sub(pt).min(p.h);
    let hi = ((oh0 + rows - 1) * sh + (p.r - 1) * dh + 1)
        .saturating_sub(pt)
        .min(p.h);
    let cols = Columns {
        w: p.w,
        left: p.pad.2,
        wp: kp.wp,
    };
    padded_rows(x, p.h, (lo, hi), cols, kp.band_in, pad)
}

/// How many planes ahead [`padded_rows`] prefetches.
const PREFETCH_PLANES: usize = 2;

/// Columns of a padded copy: `left` zero columns, then the `w` of the image, then zeros up
/// to `wp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Columns {
    pub(super) w: usize,
    pub(super) left: usize,
    pub(super) wp: usize,
}

/// Rows `lo..hi` of every plane of `x` (`[planes][h][w]`), their columns padded, into
/// `pad` (`[planes][band_in][wp]`): that copy and the index of its first row; or, with
/// nothing to pad, the image itself from row 0.
pub(super) fn padded_rows<'a>(
    x: &'a [f32],
    h: usize,
    (lo, hi): (usize, usize),
    cols: Columns,
    band_in: usize,
    pad: &'a mut [f32],
) -> (&'a [f32], usize) {
    let Columns { w, left, wp } = cols;
    if wp == w {
        return (x, 0);
    }
    assert!(lo <= hi && hi - lo <= band_in && hi <= h);
    in_vector_context(true, || {
        for (chan, dst) in x
            .chunks_exact(h * w)
            .zip(pad.chunks_exact_mut(band_in * wp))
        {
            let src = &chan[lo * w..hi * w];
            // The same rows PREFETCH_PLANES planes on (past `x`: harmless hints).
            let ahead = src.as_ptr().wrapping_add(PREFETCH_PLANES * h * w);
            for i in (0..src.len()).step_by(16) {
                prefetch(ahead.wrapping_add(i));
            }
            for (row, dst) in src.chunks_exact(w).zip(dst.chunks_exact_mut(wp)) {
                dst[..left].fill(0.0);
                dst[left..left + w].copy_from_slice(row);
                dst[left + w..].fill(0.0);
            }
        }
    });
    (pad, lo)
}

/// Packs the weights into `[group][block][cg][r][s][kb]`, channels past `kg` zero (`kb =
/// KV * LANES` of the ISA), blocks in parallel.
fn pack_weights(isa: Isa, p: &Conv2dParams, kp: &KvecPlan, w: Weights, a: &mut [f32]) {
    let kb = block_width(isa);
    let (cg, kg, rs) = (p.c / p.groups, p.k / p.groups, p.r * p.s);
    let per = kp.kg_pad / kb;
    a.par_chunks_exact_mut(cg * rs * kb)
        .enumerate()
        .for_each(|(gb, dst)| {
            let (g, k0) = (gb / per, gb % per * kb);
            let lanes = kb.min(kg.saturating_sub(k0));
            let crs = cg * rs;
            match w {
                Weights::Forward(w) => {
                    dst.fill(0.0);
                    dispatch(
                        isa,
                        Transpose {
                            src: &w[(g * kg + k0) * crs..],
                            src_row: crs,
                            rows: lanes,
                            cols: crs,
                            dst,
                            dst_row: kb,
                        },
                    );
                }
                Weights::Adjoint(w) => {
                    for (jt, v) in dst.chunks_exact_mut(kb).enumerate() {
                        let (j, t) = (jt / rs, jt % rs);
                        for (i, v) in v.iter_mut().enumerate() {
                            // Original weight [g * cg + j][k0 + i][rs - 1 - t].
                            let at = ((g * cg + j) * kg + k0 + i) * rs + rs - 1 - t;
                            *v = if i < lanes { w[at] } else { 0.0 };
                        }
                    }
                }
            }
        });
}

/// The channels per block of `isa`'s tile.
pub(super) fn block_width(isa: Isa) -> usize {
    struct BlockWidth;
    impl SimdFn<f32> for BlockWidth {
        type Output = usize;
        #[inline(always)]
        fn call<V: Vector<Elem = f32>>(self) -> usize {
            block_width_of::<V>()
        }
    }
    dispatch(isa, BlockWidth)
}

/// The channels per block of the tile of `V`.
pub(super) fn block_width_of<V: Vector>() -> usize {
    tile_shape(V::LANES).0 * V::LANES
}

/// `dst[j * dst_row + i] = src[i * src_row + j]` for `i < rows`, `j < cols`: by 8 x 8
/// blocks, scalar at the edges. (Weights into and out of the packed layout, `dy` into
/// positions by channels.)
pub(super) struct Transpose<'a> {
    pub(super) src: &'a [f32],
    pub(super) src_row: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) dst: &'a mut [f32],
    pub(super) dst_row: usize,
}

impl SimdFn<f32> for Transpose<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (src, sr, dst, dr) = (self.src, self.src_row, self.dst, self.dst_row);
        let (rows, cols) = (self.rows, self.cols);
        let mut i0 = 0;
        while i0 + 8 <= rows {
            let mut j0 = 0;
            while j0 + 8 <= cols {
                let t = transpose8x8::<V>(std::array::from_fn(|i| &src[(i0 + i) * sr + j0..][..8]));
                for (j, t) in t.iter().enumerate() {
                    dst[(j0 + j) * dr + i0..][..8].copy_from_slice(t);
                }
                j0 += 8;
            }
            for i in i0..i0 + 8 {
                for j in j0..cols {
                    dst[j * dr + i] = src[i * sr + j];
                }
            }
            i0 += 8;
        }
        for i in i0..rows {
            for j in 0..cols {
                dst[j * dr + i] = src[i * sr + j];
            }
        }
    }
}

/// One band of output rows of one image: every group, channel block, channel slice, row
/// and position chunk (of the forward with plan `P` = [`KvecPlan`], or of `kvec_strided.rs`'s
/// backward-data).
pub(super) struct Band<'a, P> {
    pub(super) p: &'a Conv2dParams,
    pub(super) plan: &'a P,
    /// Packed weights.
    pub(super) a: &'a [f32],
    /// Input rows `[channels][rows][wp]` from row `row0` on.
    pub(super) src: &'a [f32],
    pub(super) row0: usize,
    /// First output row, rows.
    pub(super) band: (usize, usize),
    /// Position-major output `[rows * width][groups * padded channels per group]`.
    pub(super) out: &'a mut [f32],
}

impl SimdFn<f32> for Band<'_, KvecPlan> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        // (Every constant is another copy of each tile: the most positions per tile is not
        // one, the column stride is, as the broadcasts' addressing offset.)
        let pmax = tile_shape(V::LANES).1;
        match self.p.stride.1 {
            1 => self.run::<V, 2, 1>(pmax),
            _ => self.run::<V, 2, 2>(pmax),
        }
    }
}

impl Band<'_, KvecPlan> {
    #[inline(always)]
    fn run<V: Vector<Elem = f32>, const KV: usize, const SW: usize>(self, pmax: usize) {
        let (p, kp) = (self.p, self.plan);
        let kb = KV * V::LANES;
        let (oh0, rows) = self.band;
        let lens = (self.a.len(), self.src.len(), self.out.len());
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
        assert!(SW == p.stride.1 && (ow - 1) * SW + (s - 1) * p.dilation.1 < wp);
        let slice = (SLICE_BYTES / (rs * kb * 4)).clamp(1, cg);
        let slice = cg.div_ceil(cg.div_ceil(slice));
        let chunks = ow.div_ceil(pmax);
        let (a_ptr, x_ptr, o_ptr) = (self.a.as_ptr(), self.src.as_ptr(), self.out.as_mut_ptr());
        for g in 0..p.groups {
            for b in 0..blocks {
                for c0 in (0..cg).step_by(slice) {
                    let chans = slice.min(cg - c0);
                    let a0 = ((g * blocks + b) * cg + c0) * rs * kb;
                    let x0 = (g * cg + c0) * src_rows * wp;
                    for oh in 0..rows {
                        let wr = axis.walk(oh0 + oh);
                        let chans = if wr.count == 0 { 0 } else { chans };
                        // (Rows of a walk lie in the band's input rows.)
                        let ir = wr.i0.wrapping_sub(self.row0);
                        let mut ow0 = 0;
                        for chunk in 0..chunks {
                            // Near-equal chunks of at most `pmax` positions.
                            let np = ow / chunks + usize::from(chunk < ow % chunks);
                            let t = TileArgs {
                                a: a_ptr.wrapping_add(a0 + wr.t0 * s * kb),
                                // (Wrapping: a row with no taps has no input row.)
                                x: x_ptr
                                    .wrapping_add(x0 + ow0 * SW)
                                    .wrapping_add(ir.wrapping_mul(wp)),
                                chans,
                                chan: (rs * kb, src_rows * wp),
                                row_walk: (wr.count, wr.t_step * s * kb, wr.i_step * wp as isize),
                                col: (s, kb, p.dilation.1 as isize),
                                out: o_ptr
                                    .wrapping_add((oh * ow + ow0) * kout + g * kp.kg_pad + b * kb),
                                out_pos: kout,
                                accumulate: c0 > 0,
                            };
                            // SAFETY: the row walk visits taps `< r` and input rows `< h`,
                            // all inside the band's rows `row0..row0 + src_rows` (the rows
                            // `band_rows` copied, or the whole image); the columns `ow0 *
                            // SW + q * SW + v * dw <= (ow - 1) * SW + (s - 1) * dw < wp`
                            // (asserted); channels `c0 + j < cg`: inside group `g` of `src`
                            // and block `(g, b)` of `a`. The tile's `np` positions by `kb`
                            // channels are inside `out` (lengths `Geometry::new` checked).
                            unsafe { tile_n::<V, KV, SW>(np, &t) };
                            ow0 += np;
                        }
                    }
                }
            }
        }
    }
}

/// What a band's tiles index by (the forward's and the weight gradient's), checked against
/// the band's buffers.
pub(super) struct Geometry {
    pub(super) cg: usize,
    pub(super) rs: usize,
    pub(super) s: usize,
    pub(super) wp: usize,
    pub(super) ow: usize,
    /// Input rows held for the band.
    pub(super) src_rows: usize,
    /// Channels per position of the position-major blocks, and blocks of `kb` per group.
    pub(super) kout: usize,
    pub(super) blocks: usize,
    /// The row axis of the forward's tap walks.
    pub(super) axis: Axis,
}

impl Geometry {
    /// For blocks of `kb` channels and a band of `rows` output rows, with `lens` the
    /// lengths of the packed weights (or partial gradient), the band's input rows and its
    /// position-major block (output, or transposed `dy`). Panics if one disagrees: the
    /// tiles' reads and writes stay inside these.
    pub(super) fn new(
        p: &Conv2dParams,
        kp: &KvecPlan,
        kb: usize,
        (a, src, out): (usize, usize, usize),
        rows: usize,
    ) -> Geometry {
        let (cg, rs, wp) = (p.c / p.groups, p.r * p.s, kp.wp);
        let (src_rows, kout, blocks) = (src / (p.c * wp), p.groups * kp.kg_pad, kp.kg_pad / kb);
        assert_eq!(a, p.groups * blocks * cg * rs * kb);
        assert_eq!(src, p.c * src_rows * wp);
        assert_eq!(out, rows * p.ow * kout);
        let axis = Axis {
            dir: Dir::Forward,
            stride: p.stride.0,
            pad: p.pad.0,
            dilation: p.dilation.0,
            taps: p.r,
            len: p.h,
        };
        Geometry {
            cg,
            rs,
            s: p.s,
            wp,
            ow: p.ow,
            src_rows,
            kout,
            blocks,
            axis,
        }
    }
}

/// Where one tile reads and writes (see [`tile`]).
pub(super) struct TileArgs {
    /// Packed weights of the first channel and first tap of the walk (`kb` per tap).
    pub(super) a: *const f32,
    /// Input value of the first position at the first channel and tap.
    pub(super) x: *const f32,
    pub(super) chans: usize,
    /// Distance between channels in `a` and `x`.
    pub(super) chan: (usize, usize),
    /// The row walk: taps, step in `a`, step in `x`.
    pub(super) row_walk: (usize, usize, isize),
    /// Column taps, their step in `a`, in `x`.
    pub(super) col: (usize, usize, isize),
    /// Position `q`'s `kb` channels at `out + q * out_pos`.
    pub(super) out: *mut f32,
    pub(super) out_pos: usize,
    pub(super) accumulate: bool,
}

/// [`tile`] for `n` positions (`1 <= n <= 14`).
///
/// # Safety
/// As [`tile`].
#[inline(always)]
pub(super) unsafe fn tile_n<V: Vector<Elem = f32>, const KV: usize, const SW: usize>(
    n: usize,
    t: &TileArgs,
) {
    macro_rules! by_n {
        ($($n:literal)*) => {
            match n {
                // SAFETY: forwarded.
                $($n => unsafe { tile::<V, KV, $n, SW>(t) },)*
                _ => unreachable!("tiles hold 1 to 14 positions"),
            }
        };
    }
    by_n!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
}

/// One register tile: `out[q][lane] (+)= sum over channels, row taps, column taps of
/// a[lane] * x[q * SW]`, in that fixed order, for `P` positions and `KV` vectors of
/// channels. Accumulating continues the sum through memory (same bits as one sweep).
///
/// # Safety
/// Every `a + j * chan.0 + u * row_walk.1 + v * col.1 + lane` (`lane < KV * LANES`) and `x
/// + j * chan.1 + u * row_walk.2 + v * col.2 + q * SW` (`q < P`) the loops reach is
/// readable; `out + q * out_pos + lane` is readable and writable.
#[inline(always)]
unsafe fn tile<V: Vector<Elem = f32>, const KV: usize, const P: usize, const SW: usize>(
    t: &TileArgs,
) {
    let ((a_chan, x_chan), (rc, ar, xr), (cc, ac, xc)) = (t.chan, t.row_walk, t.col);
    let at = |q: usize, v: usize| t.out.wrapping_add(q * t.out_pos + v * V::LANES);
    let mut acc = [[V::zero(); KV]; P];
    if t.accumulate {
        for (q, pos) in acc.iter_mut().enumerate() {
            for (v, acc) in pos.iter_mut().enumerate() {
                // SAFETY: inside the tile (the caller's contract).
                *acc = unsafe { V::load(at(q, v)) };
            }
        }
    }
    for j in 0..t.chans {
        let (aj, xj) = (t.a.wrapping_add(j * a_chan), t.x.wrapping_add(j * x_chan));
        for u in 0..rc {
            let mut ap = aj.wrapping_add(u * ar);
            let mut xp = xj.wrapping_offset(u as isize * xr);
            for _ in 0..cc {
                // SAFETY: a tap the loops reach (the caller's contract).
                let wv: [V; KV] = std::array::from_fn(|v| unsafe { V::load(ap.add(v * V::LANES)) });
                for (q, pos) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let xv = V::splat(unsafe { *xp.add(q * SW) });
                    for (acc, wv) in pos.iter_mut().zip(&wv) {
                        *acc = xv.mul_add(*wv, *acc);
                    }
                }
                ap = ap.wrapping_add(ac);
                xp = xp.wrapping_offset(xc);
            }
        }
    }
    for (q, pos) in acc.iter().enumerate() {
        for (v, acc) in pos.iter().enumerate() {
            // SAFETY: inside the tile (the caller's contract).
            unsafe { acc.store(at(q, v)) };
        }
    }
}

/// Transposes a band's position-major output `[positions][groups * kg_pad]` into the
/// image's `k` planes of `plane` positions (positions `q0..`), adding the bias.
struct ToPlanes<'a> {
    k: usize,
    groups: usize,
    kg_pad: usize,
    plane: usize,
    out: &'a [f32],
    bias: Option<&'a [f32]>,
    q0: usize,
    y: &'a mut [f32],
}

impl SimdFn<f32> for ToPlanes<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (ohw, kg) = (self.plane, self.k / self.groups);
        let kout = self.groups * self.kg_pad;
        let n = self.out.len() / kout;
        let col = |k: usize| (k / kg) * self.kg_pad + k % kg;
        let bias = |k: usize| self.bias.map_or(0.0, |b| b[k]);
        for (k0, planes) in (0..self.k).step_by(8).zip(self.y.chunks_mut(8 * ohw)) {
            let ks = planes.len() / ohw;
            let mut q = 0;
            // 8 channels by 8 positions at a time where the 8 channels lie in one group.
            if ks == 8 && col(k0 + 7) == col(k0) + 7 {
                let c0 = col(k0);
                while q + 8 <= n {
                    let rows = std::array::from_fn(|i| &self.out[(q + i) * kout + c0..][..8]);
                    for (j, t) in transpose8x8::<V>(rows).iter().enumerate() {
                        let bj = bias(k0 + j);
                        let o = &mut planes[j * ohw + self.q0 + q..][..8];
                        o.iter_mut().zip(t).for_each(|(o, &v)| *o = v + bj);
                    }
                    q += 8;
                }
            }
            for j in 0..ks {
                let (c, bj) = (col(k0 + j), bias(k0 + j));
                for qq in q..n {
                    planes[j * ohw + self.q0 + qq] = self.out[qq * kout + c] + bj;
                }
            }
        }
    }
}
