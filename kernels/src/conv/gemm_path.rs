//! The im2col + GEMM passes (native and OpenBLAS GEMM), f32.
//!
//! Work is split into tasks (see `Plan`): either a few whole small images sharing one column
//! tile (the GEMM gets a wide N instead of one narrow product per image), or one large image
//! walked tile by tile. Each column tile (`[c*r*s, <= 512]`) is built and consumed while it
//! sits in L2. Tasks run a wave at a time, each wave's tasks in parallel (rayon) with their
//! own workspace slot; the native GEMM may split further inside.
//!
//! No result depends on how tasks are spread over threads: forward and backward-data write
//! disjoint images, and backward-weight accumulates each task's tiles in order into its own
//! partial gradient and adds the partials in task order.

use super::im2col::{col2im, col2im_image, im2col};
use super::params::Conv2dParams;
use crate::error::KernelError;
use crate::{gemm, Backend, Gemm};
use rayon::prelude::*;
use std::cell::Cell;

/// Elements of dw per task of the partial-gradient reduction.
const REDUCE_BLOCK: usize = 4096;

/// Shapes shared by the passes (here and in `wide.rs`).
pub(super) struct Dims {
    pub(super) cg: usize,
    pub(super) kg: usize,
    /// Rows of one group's column matrix: `cg * r * s`.
    pub(super) crs: usize,
    pub(super) hw: usize,
    pub(super) ohw: usize,
    pub(super) chw: usize,
    pub(super) kohw: usize,
}

pub(super) fn dims(p: &Conv2dParams) -> Dims {
    let (cg, kg) = (p.c / p.groups, p.k / p.groups);
    Dims {
        cg,
        kg,
        crs: cg * p.r * p.s,
        hw: p.h * p.w,
        ohw: p.oh * p.ow,
        chw: p.c * p.h * p.w,
        kohw: p.k * p.oh * p.ow,
    }
}

/// OpenBLAS threads itself, so its tasks run one after another on the calling thread.
fn min_len(backend: Backend) -> usize {
    if backend == Backend::Native {
        1
    } else {
        usize::MAX
    }
}

/// The column tiles `(p0, p1)` of one image.
fn tiles(p: &Conv2dParams, d: &Dims) -> impl Iterator<Item = (usize, usize)> {
    let (ohw, t) = (d.ohw, p.plan.tile);
    (0..ohw).step_by(t).map(move |p0| (p0, (p0 + t).min(ohw)))
}

/// Splits a slot into (column tile, gathered tile, partial dw).
fn slot_parts<'a>(p: &Conv2dParams, slot: &'a mut [f32]) -> [&'a mut [f32]; 3] {
    let (col, rest) = slot.split_at_mut(p.plan.col_len);
    let (buf, part) = rest.split_at_mut(p.plan.buf_len);
    [col, buf, &mut part[..p.plan.part_len]]
}

/// Gathers `imgs` images of `[k, ohw]` into `buf` as `[k, imgs * ohw]`.
pub(super) fn gather(d: &Dims, images: &[f32], buf: &mut [f32]) {
    let width = images.len() / d.kohw * d.ohw;
    for (i, img) in images.chunks_exact(d.kohw).enumerate() {
        for (k, row) in img.chunks_exact(d.ohw).enumerate() {
            buf[k * width + i * d.ohw..k * width + (i + 1) * d.ohw].copy_from_slice(row);
        }
    }
}

/// Scatters `buf` (`[k, imgs * seg]`: per image `seg` columns, output row `oh` starting at
/// column `oh * row`) into images of `[k, oh, ow]`, adding the bias. Dense columns (im2col):
/// `seg = oh * ow`, `row = ow`; wide ones (`wide.rs`) skip the junk columns past `ow`.
pub(super) fn scatter(
    p: &Conv2dParams,
    (seg, row): (usize, usize),
    buf: &[f32],
    images: &mut [f32],
    bias: Option<&[f32]>,
) {
    let d = dims(p);
    let width = images.len() / d.kohw * seg;
    for (i, img) in images.chunks_exact_mut(d.kohw).enumerate() {
        for (k, plane) in img.chunks_exact_mut(d.ohw).enumerate() {
            let bv = bias.map_or(0.0, |b| b[k]);
            let src = &buf[k * width + i * seg..];
            for (out, src) in plane.chunks_exact_mut(p.ow).zip(src.chunks(row)) {
                out.iter_mut().zip(src).for_each(|(o, &v)| *o = v + bv);
            }
        }
    }
}

/// Forward pass.
pub(crate) fn forward(
    backend: Backend,
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let (ipt, slots) = (p.plan.ipt, p.plan.slots);
    let task = |(yt, xt, slot): (&mut [f32], &[f32], &mut [f32])| -> Result<(), KernelError> {
        let [col, buf, _] = slot_parts(p, slot);
        let imgs = xt.len() / d.chw;
        if ipt > 1 {
            let width = imgs * d.ohw;
            for (i, xi) in xt.chunks_exact(d.chw).enumerate() {
                im2col(p, xi, &mut col[i * d.ohw..], width, (0, d.ohw), 0, p.c);
            }
            let g = Gemm::new(d.kg, width, d.crs).ldb(width).ldc(width);
            for grp in 0..p.groups {
                let a = &w[grp * d.kg * d.crs..];
                gemm(
                    backend,
                    &g,
                    a,
                    &col[grp * d.crs * width..],
                    &mut buf[grp * d.kg * width..],
                )?;
            }
            scatter(p, (d.ohw, p.ow), buf, yt, bias);
            return Ok(());
        }
        for (p0, p1) in tiles(p, &d) {
            let width = p1 - p0;
            let (src, ld, gstride) = if p.is_pointwise() {
                (&xt[p0..], d.hw, d.cg * d.hw)
            } else {
                im2col(p, xt, col, width, (p0, p1), 0, p.c);
                (&col[..], width, d.crs * width)
            };
            let g = Gemm::new(d.kg, width, d.crs).ldb(ld).ldc(d.ohw);
            for grp in 0..p.groups {
                let a = &w[grp * d.kg * d.crs..];
                let c = &mut yt[grp * d.kg * d.ohw + p0..];
                gemm(backend, &g, a, &src[grp * gstride..], c)?;
            }
            if let Some(b) = bias {
                for (row, &bv) in yt.chunks_exact_mut(d.ohw).zip(b) {
                    row[p0..p1].iter_mut().for_each(|v| *v += bv);
                }
            }
        }
        Ok(())
    };
    for (yw, xw) in y
        .chunks_mut(slots * ipt * d.kohw)
        .zip(x.chunks(slots * ipt * d.chw))
    {
        yw.par_chunks_mut(ipt * d.kohw)
            .zip(xw.par_chunks(ipt * d.chw))
            .zip(ws.par_chunks_mut(p.slot_len()))
            .with_min_len(min_len(backend))
            .try_for_each(|((yt, xt), slot)| task((yt, xt, slot)))?;
    }
    Ok(())
}

/// Backward-data pass: GEMM into column tiles, then col2im (pointwise: GEMM straight into dx).
pub(crate) fn backward_data(
    backend: Backend,
    p: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let (ipt, slots) = (p.plan.ipt, p.plan.slots);
    let task = |(dxt, dyt, slot): (&mut [f32], &[f32], &mut [f32])| -> Result<(), KernelError> {
        let [col, buf, _] = slot_parts(p, slot);
        let imgs = dyt.len() / d.kohw;
        if ipt > 1 {
            let width = imgs * d.ohw;
            gather(&d, dyt, buf);
            let g = Gemm::new(d.crs, width, d.kg)
                .trans_a(true)
                .ldb(width)
                .ldc(width);
            for grp in 0..p.groups {
                let a = &w[grp * d.kg * d.crs..];
                let b = &buf[grp * d.kg * width..];
                gemm(backend, &g, a, b, &mut col[grp * d.crs * width..])?;
            }
            for (i, dxi) in dxt.chunks_exact_mut(d.chw).enumerate() {
                col2im_image(p, &col[i * d.ohw..], width, dxi);
            }
            return Ok(());
        }
        // One tile of the whole image goes through `col2im_image`, which overwrites dx;
        // several tiles add into a zeroed dx.
        let one_tile = d.ohw > 0 && p.plan.tile >= d.ohw;
        if !p.is_pointwise() && !one_tile {
            dxt.fill(0.0);
        }
        for (p0, p1) in tiles(p, &d) {
            let width = p1 - p0;
            let (dst, ld, gstride) = if p.is_pointwise() {
                (&mut dxt[p0..], d.hw, d.cg * d.hw)
            } else {
                (&mut col[..], width, d.crs * width)
            };
            let g = Gemm::new(d.crs, width, d.kg)
                .trans_a(true)
                .ldb(d.ohw)
                .ldc(ld);
            for grp in 0..p.groups {
                let a = &w[grp * d.kg * d.crs..];
                let b = &dyt[grp * d.kg * d.ohw + p0..];
                gemm(backend, &g, a, b, &mut dst[grp * gstride..])?;
            }
            if !p.is_pointwise() {
                if one_tile {
                    col2im_image(p, col, width, dxt);
                } else {
                    col2im(p, col, width, dxt, (p0, p1), 0, p.c);
                }
            }
        }
        Ok(())
    };
    for (dxw, dyw) in dx
        .chunks_mut(slots * ipt * d.chw)
        .zip(dy.chunks(slots * ipt * d.kohw))
    {
        dxw.par_chunks_mut(ipt * d.chw)
            .zip(dyw.par_chunks(ipt * d.kohw))
            .zip(ws.par_chunks_mut(p.slot_len()))
            .with_min_len(min_len(backend))
            .try_for_each(|((dxt, dyt), slot)| task((dxt, dyt, slot)))?;
    }
    Ok(())
}

/// Backward-weight pass: each task accumulates `dy_tile col_tile^T` (per group) over its
/// tiles in order into its partial; the partials are added into dw in task order.
pub(crate) fn backward_weight(
    backend: Backend,
    p: &Conv2dParams,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let (ipt, slots) = (p.plan.ipt, p.plan.slots);
    let task = |(xt, dyt, slot): (&[f32], &[f32], &mut [f32])| -> Result<(), KernelError> {
        let [col, buf, part] = slot_parts(p, slot);
        let imgs = xt.len() / d.chw;
        if ipt > 1 {
            let width = imgs * d.ohw;
            for (i, xi) in xt.chunks_exact(d.chw).enumerate() {
                im2col(p, xi, &mut col[i * d.ohw..], width, (0, d.ohw), 0, p.c);
            }
            gather(&d, dyt, buf);
            let g = Gemm::new(d.kg, d.crs, width)
                .trans_b(true)
                .lda(width)
                .ldb(width);
            for grp in 0..p.groups {
                let a = &buf[grp * d.kg * width..];
                let b = &col[grp * d.crs * width..];
                gemm(backend, &g, a, b, &mut part[grp * d.kg * d.crs..])?;
            }
            return Ok(());
        }
        for (ti, (p0, p1)) in tiles(p, &d).enumerate() {
            let width = p1 - p0;
            let (src, ld, gstride) = if p.is_pointwise() {
                (&xt[p0..], d.hw, d.cg * d.hw)
            } else {
                im2col(p, xt, col, width, (p0, p1), 0, p.c);
                (&col[..], width, d.crs * width)
            };
            let beta = if ti == 0 { 0.0 } else { 1.0 };
            let g = Gemm::new(d.kg, d.crs, width)
                .trans_b(true)
                .lda(d.ohw)
                .ldb(ld)
                .beta(beta);
            for grp in 0..p.groups {
                let a = &dyt[grp * d.kg * d.ohw + p0..];
                gemm(
                    backend,
                    &g,
                    a,
                    &src[grp * gstride..],
                    &mut part[grp * d.kg * d.crs..],
                )?;
            }
        }
        Ok(())
    };
    let slot_len = p.slot_len();
    for (wave, (xw, dyw)) in x
        .chunks(slots * ipt * d.chw)
        .zip(dy.chunks(slots * ipt * d.kohw))
        .enumerate()
    {
        let tasks = xw.len().div_ceil(ipt * d.chw);
        xw.par_chunks(ipt * d.chw)
            .zip(dyw.par_chunks(ipt * d.kohw))
            .zip(ws.par_chunks_mut(slot_len))
            .with_min_len(min_len(backend))
            .try_for_each(|((xt, dyt), slot)| task((xt, dyt, slot)))?;
        let off = p.plan.col_len + p.plan.buf_len;
        reduce_partials(dw, &ws[..tasks * slot_len], slot_len, off, wave == 0);
    }
    Ok(())
}

/// Adds the partial weight gradients held at `off` in each slot of `ws` (slots of
/// `slot_len`, one per task of a wave) into `dw`, in task order, so each element gets its
/// partials in the same order whatever the split over threads. The first wave overwrites.
pub(super) fn reduce_partials(
    dw: &mut [f32],
    ws: &[f32],
    slot_len: usize,
    off: usize,
    first: bool,
) {
    dw.par_chunks_mut(REDUCE_BLOCK)
        .enumerate()
        .for_each(|(blk, out)| {
            let (o0, n) = (blk * REDUCE_BLOCK, out.len());
            if first {
                out.fill(0.0);
            }
            for slot in ws.chunks_exact(slot_len) {
                let part = &slot[off + o0..off + o0 + n];
                for (o, &v) in out.iter_mut().zip(part) {
                    *o += v;
                }
            }
        });
}

/// [`reduce_partials`] of partials laid out `[k][tap][channel]` (`cg` channels, `rs` taps:
/// the channels-last weight gradient of `wide.rs`) into `dw` as `[k][channel][tap]`: row by
/// row of `k`, the partials are summed in task order in a row buffer (vector adds, as
/// there), which is then written out permuted (a later wave first reads its row back into
/// the buffer). The same sums in the same order as reducing, then permuting all of `dw`,
/// which took a copy of `dw` and a second pass over it.
pub(super) fn reduce_partials_permuted(
    dw: &mut [f32],
    ws: &[f32],
    (slot_len, off): (usize, usize),
    first: bool,
    (cg, rs): (usize, usize),
) {
    let crs = cg * rs;
    let rows = (REDUCE_BLOCK / crs).max(1);
    dw.par_chunks_mut(rows * crs)
        .enumerate()
        .for_each(|(blk, out)| {
            let mut buf = ROW_BUF.with(Cell::take);
            buf.resize(crs, 0.0);
            for (r, out) in out.chunks_exact_mut(crs).enumerate() {
                let o0 = off + (blk * rows + r) * crs;
                if first {
                    buf.fill(0.0);
                } else {
                    for (t, taps) in buf.chunks_exact_mut(cg).enumerate() {
                        for (b, &v) in taps.iter_mut().zip(out[t..].iter().step_by(rs)) {
                            *b = v;
                        }
                    }
                }
                for slot in ws.chunks_exact(slot_len) {
                    for (b, &v) in buf.iter_mut().zip(&slot[o0..o0 + crs]) {
                        *b += v;
                    }
                }
                for (c, taps) in out.chunks_exact_mut(rs).enumerate() {
                    for (t, o) in taps.iter_mut().enumerate() {
                        *o = buf[t * cg + c];
                    }
                }
            }
            ROW_BUF.with(|c| c.set(buf));
        });
}

thread_local! {
    /// The row buffer of [`reduce_partials_permuted`], kept between calls.
    static ROW_BUF: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}
