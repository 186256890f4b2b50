//! Implicit im2col on the native backend: the column matrix is never built.
//!
//! Stride 1 first. Output position `(oh, ow)` is given the "wide" column `oh * wp + ow`, as
//! if the output were as wide as the (padded) input. Then kernel tap `(ci, r, s)` meets input
//! element `ci * hp * wp + r * dh * wp + s * dw + column` for every column: each row of the
//! column matrix is one contiguous run of the image, at an offset from a small row table. The
//! GEMM packs its B panels straight from the image through that table (`gemm::Gather`), so
//! im2col's pass over `c * r * s` copies of the image, and its writes, disappear; the GEMM
//! packs B anyway. The forward pays for the `wp - ow` junk columns per output row
//! (`dw * (s - 1)`, plus the padding), computed and dropped when the output is scattered
//! into place, which also adds the bias: 3% more work for 58-wide ResNet maps. Where the junk
//! would be more (MNIST's 13-wide maps: 18%) the forward gathers the output positions densely
//! instead (`dense_forward`), as the backward-weight pass always does (it reduces over them).
//!
//! Stride `(sh, sw)`: the padded image is split into its `sh * sw` phases (rows `a` mod `sh`,
//! columns `b` mod `sw`), each a `hq x wq` plane. Tap `(r, s)` reads phase
//! `(r*dh mod sh, s*dw mod sw)` at offset `(r*dh / sh) * wq + s*dw / sw`, contiguously again,
//! so strided convolutions are a stride-1 gather over the phase planes (junk `wq - ow`).
//! Padded or strided inputs are first copied into that zero-bordered, phase-split buffer
//! (one pass over the image); a plain stride-1 unpadded input is read in place.
//!
//! The weight gradient reduces over the output positions, so its B is the gathered input
//! transposed: each tap's row of positions becomes a column of the packed panel. For short
//! output rows and 16 or more channels per group it reads a channels-last copy of the
//! images instead (see [`channels_last`]): one transpose per image, not one per tap.
//!
//! Tasks are `ipt` whole images (one GEMM each, `ipt * seg_len` columns wide), a wave of
//! `slots` tasks at a time in parallel, each with its own slot of workspace. Forward writes
//! disjoint images, so no result depends on the thread count.

use super::direct::sum_copy;
use super::gemm_path::{
    dims, gather as gather_images, reduce_partials, reduce_partials_permuted, scatter, Dims,
};
use super::params::{Conv2dParams, MAX_SLOTS, WS_BUDGET};
use super::phases::{padded, split_row2};
use crate::error::{checked_product, checked_sum, KernelError};
use crate::gemm::{gemm_gather, Gather};
use crate::simd::{dispatch, transpose8x8, Isa, SimdFn, Vector};
use crate::Gemm;
use rayon::prelude::*;
use std::cell::Cell;

/// Columns per task the plan aims for: wide enough that the GEMM splits over threads and
/// amortises packing its A, small enough that the task's output block stays in L2.
const WIDE_COLS: usize = 2048;

/// Fewest tasks per call (batch permitting).
const MIN_TASKS: usize = 4;

/// Shallowest `c/groups * r * s` that takes the implicit path.
pub(crate) const MIN_DEPTH: usize = 32;

/// The implicit-im2col plan: a function of the shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WidePlan {
    /// Images per task.
    pub(crate) ipt: usize,
    /// Tasks in flight per wave.
    pub(crate) slots: usize,
    /// Phase plane height and width (the padded input's for stride 1).
    hq: usize,
    wq: usize,
    /// Elements per channel of the (split) input.
    chan: usize,
    /// Wide columns per image that hold outputs: `(oh - 1) * wq + ow`.
    valid: usize,
    /// Columns per image in the GEMM (`valid`: the last row's junk is not computed).
    seg_len: usize,
    /// Whether the forward computes the output positions only (see [`dense_forward`]).
    dense: bool,
    /// Whether the weight gradient reads a channels-last copy (see [`channels_last`]).
    nhwc: bool,
    /// Per slot: the padded, phase-split copy of the task's images (0 when the input is read
    /// in place, unless the channels-last copy needs the room), the wide output.
    pad_len: usize,
    out_len: usize,
    part_len: usize,
    /// Per slot, after the partial gradient: the weight gradient's `dy` plane sums of the
    /// task's images (`[ipt][k]`, for the bias gradient).
    sums_len: usize,
}

impl WidePlan {
    /// Workspace elements of one slot.
    pub(crate) fn slot_len(&self) -> usize {
        self.pad_len + self.out_len + self.part_len + self.sums_len
    }
}

/// The plan for `p`, or `None` when the implicit path does not apply (1x1 stride-1 and
/// depthwise convolutions have their own paths).
pub(crate) fn plan(p: &Conv2dParams, part_len: usize) -> Result<Option<WidePlan>, KernelError> {
    if p.is_pointwise() || p.is_depthwise() || p.oh == 0 || p.ow == 0 {
        return Ok(None);
    }
    // A shallow product (MNIST's first layer: c * r * s = 9) is bound by writing its output,
    // and the wide output block and the scatter pass would double that; im2col is cheap there.
    if (p.c / p.groups) * p.r * p.s < MIN_DEPTH {
        return Ok(None);
    }
    // `out_dim` checked these sums.
    let (sh, sw) = p.stride;
    let (hp, wp) = p.padded_hw();
    let (hq, wq) = (hp.div_ceil(sh), wp.div_ceil(sw));
    let chan = checked_product("workspace", &[sh, sw, hq, wq])?;
    let valid = checked_product("workspace", &[p.oh - 1, wq])? + p.ow;
    let dense = dense_forward(p.ow, wq);
    let seg_len = if dense { p.oh * p.ow } else { valid };
    let n = p.n.max(1);
    // At least MIN_TASKS tasks when the batch allows: the input copy (padding, phase split)
    // and the output scatter run inside a task, so one task would leave them serial.
    let tasks = (n.saturating_mul(seg_len) / WIDE_COLS).clamp(MIN_TASKS.min(n), n);
    let ipt = n.div_ceil(tasks);
    let nhwc = channels_last(p);
    let pad_len = if p.pad == (0, 0, 0, 0) && p.stride == (1, 1) && !nhwc {
        0
    } else {
        checked_product("workspace", &[ipt, p.c, chan])?
    };
    let out_len = checked_product("workspace", &[p.k, ipt, seg_len])?;
    let sums_len = checked_product("workspace", &[p.k, ipt])?;
    let slot = checked_sum("workspace", &[pad_len, out_len, part_len, sums_len])?;
    let slots = (WS_BUDGET / slot.max(1)).clamp(1, MAX_SLOTS.min(n.div_ceil(ipt)));
    checked_product("workspace", &[slots, slot])?;
    Ok(Some(WidePlan {
        ipt,
        slots,
        hq,
        wq,
        chan,
        valid,
        seg_len,
        dense,
        nhwc,
        pad_len,
        out_len,
        part_len,
        sums_len,
    }))
}

/// Whether the weight gradient transposes each task's images to channels-last (padded
/// `[h][w][c]`) once, instead of packing B from the image through the tap table: the
/// GEMM's B is then `[positions][taps * channels]` with each tap's channels contiguous, so
/// its panels pack as plain copies, not transposes of every tap's row (9 per element for a
/// 3x3 kernel, in runs as short as an output row). Needs at least 16 channels per group (a
/// 32-column panel then spans at most two taps). Same sums in the same order, so the same
/// bits as the other layout. Taken for output rows under 32 wide, where the transposed runs
/// are short; measured at 2 threads, 3 alternating rounds: mnist_c2 0.94-0.99 -> 0.85-0.89
/// ms, conv5x5 (28 wide) 1.82-1.88 -> 1.73-1.76; on 56-wide rows (resnet_3x3, dilated) the
/// extra pass over the images cost as much as it saved, or more.
fn channels_last(p: &Conv2dParams) -> bool {
    let cg = p.c / p.groups;
    cg >= 16 && cg.is_multiple_of(8) && p.ow < 32
}

/// Whether the forward gathers the output positions densely (the gather's `line`) instead
/// of computing the wide columns: when the junk would be more than an eighth of the work
/// (MNIST's 11-wide maps in 13-wide images: 15%) and output rows are at least 8 wide (a
/// dense panel of 16 columns then packs as at most 3 runs per row). Dense packing costs
/// about two more copies per panel row than wide; measured on mnist_c2 forward: 3.56-3.73 ms
/// wide, 3.45-3.48 dense at 1 thread; 1.97-1.99 and 1.85-1.89 at 2.
fn dense_forward(ow: usize, wq: usize) -> bool {
    ow >= 8 && 8 * (wq - ow) > wq
}

thread_local! {
    /// The row table, kept between calls so steady-state calls do not allocate (taken out
    /// while in use, so a nested call on the same thread simply builds its own).
    static ROWS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with the row table of one group: the offset of tap `(ci, r, s)` in a (padded,
/// phase-split) image.
fn with_rows<R>(p: &Conv2dParams, wp: &WidePlan, f: impl FnOnce(&[usize]) -> R) -> R {
    let mut rows = ROWS.with(Cell::take);
    rows.clear();
    let (sh, sw) = p.stride;
    for ci in 0..p.c / p.groups {
        for r in 0..p.r {
            let (ra, rq) = ((r * p.dilation.0) % sh, (r * p.dilation.0) / sh);
            for s in 0..p.s {
                let (sb, sq) = ((s * p.dilation.1) % sw, (s * p.dilation.1) / sw);
                let phase = (ra * sw + sb) * wp.hq * wp.wq;
                rows.push(ci * wp.chan + phase + rq * wp.wq + sq);
            }
        }
    }
    let out = f(&rows);
    ROWS.with(|c| c.set(rows));
    out
}

/// [`split_images`] in the active ISA's target-feature context, where the copies
/// vectorize.
struct SplitImages<'a> {
    p: &'a Conv2dParams,
    wp: &'a WidePlan,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl SimdFn<f32> for SplitImages<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        split_images::<V>(self.p, self.wp, self.x, self.out)
    }
}

/// Copies image channels `[h, w]` into their zero-padded phase planes: phase `(a, b)` of a
/// channel holds padded rows `a, a + sh, ...` and columns `b, b + sw, ...`.
#[inline(always)]
fn split_images<V: Vector<Elem = f32>>(
    p: &Conv2dParams,
    wp: &WidePlan,
    x: &[f32],
    out: &mut [f32],
) {
    let ((sh, sw), (pt, pl)) = (p.stride, (p.pad.0, p.pad.2));
    let pq = wp.hq * wp.wq;
    // Padded row `i * sh + a` of the image, if it is an input row.
    let src_row = |i: usize, a: usize| {
        let ih = (i * sh + a).checked_sub(pt).filter(|&ih| ih < p.h)?;
        Some(ih * p.w..(ih + 1) * p.w)
    };
    for (src, dst) in x.chunks_exact(p.h * p.w).zip(out.chunks_exact_mut(wp.chan)) {
        if sw == 2 {
            // Both column phases of a padded row from one pass over it.
            for (a, planes) in dst.chunks_exact_mut(2 * pq).enumerate() {
                let (even, odd) = planes.split_at_mut(pq);
                let rows = even
                    .chunks_exact_mut(wp.wq)
                    .zip(odd.chunks_exact_mut(wp.wq));
                for (i, (even, odd)) in rows.enumerate() {
                    match src_row(i, a) {
                        Some(srow) => split_row2::<V>(&src[srow], pl, even, odd),
                        None => {
                            even.fill(0.0);
                            odd.fill(0.0);
                        }
                    }
                }
            }
            continue;
        }
        for (ph, plane) in dst.chunks_exact_mut(pq).enumerate() {
            let (a, b) = (ph / sw, ph % sw);
            for (i, row) in plane.chunks_exact_mut(wp.wq).enumerate() {
                let Some(srow) = src_row(i, a) else {
                    row.fill(0.0);
                    continue;
                };
                let srow = &src[srow];
                if sw == 1 {
                    // The padded row itself: `pl` zeros, the row, zeros.
                    row[..pl].fill(0.0);
                    row[pl..pl + p.w].copy_from_slice(srow);
                    row[pl + p.w..].fill(0.0);
                } else {
                    // Padded columns b, b + sw, ...: the input columns from the first
                    // one at or after `pl` in this phase, every sw-th.
                    for (t, v) in row.iter_mut().enumerate() {
                        *v = padded(srow, pl, t * sw + b);
                    }
                }
            }
        }
    }
}

/// The task's input as the GEMM reads it: the images themselves, or their padded copy.
fn source<'a>(p: &Conv2dParams, wp: &WidePlan, xt: &'a [f32], pad: &'a mut [f32]) -> &'a [f32] {
    if p.pad == (0, 0, 0, 0) && p.stride == (1, 1) {
        // Read in place (the slot's copy area, if any, serves the channels-last layout).
        return xt;
    }
    let imgs = xt.len() / (p.c * p.h * p.w);
    let pad = &mut pad[..imgs * p.c * wp.chan];
    dispatch(
        Isa::active(),
        SplitImages {
            p,
            wp,
            x: xt,
            out: pad,
        },
    );
    pad
}

/// The gather reading one group's taps from a task's (padded) images: over the wide columns
/// (forward), or over the output positions only (`compact`, backward-weight: the junk
/// columns would be reduced over, so they are skipped rather than computed).
fn gather<'a>(p: &Conv2dParams, wp: &WidePlan, rows: &'a [usize], compact: bool) -> Gather<'a> {
    let (seg_len, seg_valid, line) = if compact {
        let ohw = p.oh * p.ow;
        (ohw, ohw, Some((wp.wq, p.ow)))
    } else {
        (wp.seg_len, wp.valid, None)
    };
    Gather {
        row: rows,
        seg_len,
        seg_valid,
        seg_stride: p.c * wp.chan,
        line,
        seg_off: None,
    }
}

/// Forward pass (native backend).
pub(crate) fn forward(
    p: &Conv2dParams,
    wp: &WidePlan,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let plane = wp.chan;
    with_rows(p, wp, |rows| {
        let task = |yt: &mut [f32], xt: &[f32], slot: &mut [f32]| -> Result<(), KernelError> {
            let (pad, rest) = slot.split_at_mut(wp.pad_len);
            let out = &mut rest[..wp.out_len];
            let src = source(p, wp, xt, pad);
            let width = xt.len() / d.chw * wp.seg_len;
            let g = Gemm::new(d.kg, width, d.crs).ldc(width);
            for grp in 0..p.groups {
                let (a, b) = (&w[grp * d.kg * d.crs..], &src[grp * d.cg * plane..]);
                gemm_gather(
                    &g,
                    a,
                    b,
                    gather(p, wp, rows, wp.dense),
                    &mut out[grp * d.kg * width..],
                )?;
            }
            // Into place (dropping any junk columns), adding the bias.
            let row = if wp.dense { p.ow } else { wp.wq };
            scatter(p, (wp.seg_len, row), out, yt, bias);
            Ok(())
        };
        let per = wp.slots * wp.ipt;
        for (yw, xw) in y.chunks_mut(per * d.kohw).zip(x.chunks(per * d.chw)) {
            yw.par_chunks_mut(wp.ipt * d.kohw)
                .zip(xw.par_chunks(wp.ipt * d.chw))
                .zip(ws.par_chunks_mut(wp.slot_len()))
                .try_for_each(|((yt, xt), slot)| task(yt, xt, slot))?;
        }
        Ok(())
    })
}

/// Backward-weight pass (native backend): per task, `dy` (its images side by side) times the
/// gathered input over the output positions, transposed, into the task's partial gradient;
/// the partials are added in task order (`reduce_partials`). With `db`, the bias gradient
/// too: each task sums its `dy` planes as `direct::bias_grad` does (while gathering them, see
/// [`GatherSum`]), and the sums are added image by image in order, so the same bits without
/// a pass of its own over `dy` (4% of mnist_c2's weight gradient).
pub(crate) fn backward_weight(
    p: &Conv2dParams,
    wp: &WidePlan,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let plane = wp.chan;
    let (hp, wpad) = p.padded_hw();
    let want_bias = db.is_some();
    with_rows(p, wp, |rows| {
        with_channels_last_rows(p, wp, |pos, taps| {
            let task = |xt: &[f32], dyt: &[f32], slot: &mut [f32]| -> Result<(), KernelError> {
                let (pad, rest) = slot.split_at_mut(wp.pad_len);
                let (out, rest) = rest.split_at_mut(wp.out_len);
                let (part, sums) = rest.split_at_mut(wp.part_len);
                let width = xt.len() / d.chw * d.ohw;
                // A is dy with the task's images side by side: one image is that already.
                let one = xt.len() == d.chw;
                if want_bias {
                    let buf = (!one).then_some(&mut *out);
                    let images = dyt;
                    dispatch(
                        Isa::active(),
                        GatherSum {
                            d: &d,
                            images,
                            buf,
                            sums,
                        },
                    );
                } else if !one {
                    gather_images(&d, dyt, out);
                }
                let out: &[f32] = if one { dyt } else { out };
                // B: the channels-last copy read through the position and tap tables (a
                // group's channels `cg` further on), or the (padded) images through the row
                // table, transposed (a group's planes further on).
                let (src, g, group_off, gather) = if wp.nhwc {
                    let xl = &mut pad[..xt.len() / d.chw * p.c * hp * wpad];
                    dispatch(Isa::active(), ToChannelsLast { p, x: xt, out: xl });
                    let gather = Gather {
                        row: pos,
                        seg_len: d.cg,
                        seg_valid: d.cg,
                        seg_stride: 0,
                        line: None,
                        seg_off: Some(taps),
                    };
                    (&*xl, Gemm::new(d.kg, d.crs, width), d.cg, gather)
                } else {
                    let g = Gemm::new(d.kg, d.crs, width).trans_b(true);
                    let src = source(p, wp, xt, pad);
                    (src, g, d.cg * plane, gather(p, wp, rows, true))
                };
                let g = g.lda(width);
                for grp in 0..p.groups {
                    let (a, b) = (&out[grp * d.kg * width..], &src[grp * group_off..]);
                    let c = &mut part[grp * d.kg * d.crs..(grp + 1) * d.kg * d.crs];
                    gemm_gather(&g, a, b, gather, c)?;
                }
                Ok(())
            };
            let per = wp.slots * wp.ipt;
            let slot_len = wp.slot_len();
            for (wave, (xw, dyw)) in x
                .chunks(per * d.chw)
                .zip(dy.chunks(per * d.kohw))
                .enumerate()
            {
                xw.par_chunks(wp.ipt * d.chw)
                    .zip(dyw.par_chunks(wp.ipt * d.kohw))
                    .zip(ws.par_chunks_mut(slot_len))
                    .try_for_each(|((xt, dyt), slot)| task(xt, dyt, slot))?;
                let tasks = xw.len().div_ceil(wp.ipt * d.chw);
                let (off, first) = (wp.pad_len + wp.out_len, wave == 0);
                let parts = &ws[..tasks * slot_len];
                if let Some(db) = db.as_deref_mut() {
                    if first {
                        db.fill(0.0);
                    }
                    // Image by image, in order (the wave's last task may hold fewer).
                    let sums = parts.chunks_exact(slot_len).flat_map(|slot| {
                        slot[off + wp.part_len..][..wp.sums_len].chunks_exact(p.k)
                    });
                    for s in sums.take(xw.len() / d.chw) {
                        db.iter_mut().zip(s).for_each(|(d, &v)| *d += v);
                    }
                }
                if wp.nhwc {
                    // The partials hold [k][tap][channel]: into dw's [k][channel][tap].
                    let shape = (d.cg, p.r * p.s);
                    reduce_partials_permuted(dw, parts, (slot_len, off), first, shape);
                } else {
                    reduce_partials(dw, parts, slot_len, off, first);
                }
            }
            Ok(())
        })
    })
}

/// The `dy` plane sums of a task's images into `sums` (`[image][k]`), each as
/// `direct::bias_grad` sums it (`direct::sum_copy`); with `buf`, the images are also
/// gathered side by side into it (as `gather_images` does) in the same pass.
struct GatherSum<'a> {
    d: &'a Dims,
    images: &'a [f32],
    buf: Option<&'a mut [f32]>,
    sums: &'a mut [f32],
}

impl SimdFn<f32> for GatherSum<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (d, mut buf) = (self.d, self.buf);
        let width = self.images.len() / d.kohw * d.ohw;
        let sums = self.sums.chunks_exact_mut(d.kohw / d.ohw);
        for (i, (img, sums)) in self.images.chunks_exact(d.kohw).zip(sums).enumerate() {
            for (ko, (plane, s)) in img.chunks_exact(d.ohw).zip(sums).enumerate() {
                let dst = buf
                    .as_deref_mut()
                    .map(|b| &mut b[ko * width + i * d.ohw..][..d.ohw]);
                *s = sum_copy::<V>(plane, dst);
            }
        }
    }
}

thread_local! {
    /// The position and tap tables of [`with_channels_last_rows`], kept between calls.
    static CL_ROWS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with the tables of the channels-last weight gradient (empty unless the plan
/// takes it), built once per pass: where output position `(img, oh, ow)` of a task meets
/// tap (0, 0) in the padded `[h][w][c]` copy, and where each tap `(r, s)` starts from there.
fn with_channels_last_rows<R>(
    p: &Conv2dParams,
    plan: &WidePlan,
    f: impl FnOnce(&[usize], &[usize]) -> R,
) -> R {
    let mut t = CL_ROWS.with(Cell::take);
    t.clear();
    let mut positions = 0;
    if plan.nhwc {
        let (hp, wp) = p.padded_hw();
        let ((sh, sw), (dh, dw), c) = (p.stride, p.dilation, p.c);
        for img in 0..plan.ipt {
            for oh in 0..p.oh {
                for ow in 0..p.ow {
                    t.push(((img * hp + oh * sh) * wp + ow * sw) * c);
                }
            }
        }
        positions = t.len();
        for r in 0..p.r {
            for s in 0..p.s {
                t.push((r * dh * wp + s * dw) * c);
            }
        }
    }
    let out = f(&t[..positions], &t[positions..]);
    CL_ROWS.with(|c| c.set(t));
    out
}

/// Images `[c][h][w]` into their zero-padded channels-last copies `[hp][wp][c]`: 8 x 8
/// blocks of (channels, columns) transposed in registers.
struct ToChannelsLast<'a> {
    p: &'a Conv2dParams,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl SimdFn<f32> for ToChannelsLast<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let p = self.p;
        let (c, h, w) = (p.c, p.h, p.w);
        let (hp, wp) = p.padded_hw();
        let img_out = hp * wp * c;
        if p.pad != (0, 0, 0, 0) {
            self.out.fill(0.0);
        }
        for (src, dst) in self
            .x
            .chunks_exact(c * h * w)
            .zip(self.out.chunks_exact_mut(img_out))
        {
            for ih in 0..h {
                let row = &mut dst[((ih + p.pad.0) * wp + p.pad.2) * c..][..w * c];
                let at = |ci: usize| &src[(ci * h + ih) * w..][..w];
                let mut ci = 0;
                while ci + 8 <= c && w >= 8 {
                    // Blocks of 8 columns, the last one ending at the row's end (it may
                    // overlap the one before: the same values written again).
                    for iw in (0..w).step_by(8).map(|iw| iw.min(w - 8)) {
                        let t = transpose8x8::<V>(std::array::from_fn(|i| &at(ci + i)[iw..]));
                        for (j, t) in t.iter().enumerate() {
                            row[(iw + j) * c + ci..][..8].copy_from_slice(t);
                        }
                    }
                    ci += 8;
                }
                for ci in ci..c {
                    for (iw, &v) in at(ci).iter().enumerate() {
                        row[iw * c + ci] = v;
                    }
                }
            }
        }
    }
}

/// Backward-data pass of a stride-1 "same" convolution (native backend) as the forward pass
/// of its adjoint `a` (see `Conv2dParams::adjoint`): `dy` convolved with the weights
/// transposed per group and flipped, into `dx`; no col2im. The flipped weights take the
/// first `p.weight_len()` elements of `ws`.
pub(crate) fn backward_data(
    p: &Conv2dParams,
    a: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    if let Some(kp) = &a.plan.kvec {
        super::kvec::backward_data(a, kp, dy, w, dx, ws);
        return Ok(());
    }
    let (wt, ws) = ws.split_at_mut(p.weight_len());
    let (cg, kg, rs) = (p.c / p.groups, p.k / p.groups, p.r * p.s);
    // wt[g*cg + ci][ko][tap] = w[g*kg + ko][ci][rs - 1 - tap], a reversed run of taps per
    // row (per element, the index arithmetic took 0.4 ms of a 5x5 pass's 2.6).
    for (row, dst) in wt.chunks_exact_mut(rs).enumerate() {
        let (g, ci, ko) = (row / (cg * kg), row / kg % cg, row % kg);
        let src = &w[((g * kg + ko) * cg + ci) * rs..][..rs];
        for (d, &v) in dst.iter_mut().zip(src.iter().rev()) {
            *d = v;
        }
    }
    let wp = a.plan.wide.as_ref().expect("adjoint() checked the plan");
    forward(a, wp, dy, wt, None, dx, ws)
}
