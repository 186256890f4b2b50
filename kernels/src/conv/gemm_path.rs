//! The im2col + GEMM passes (native and OpenBLAS GEMM), f32.
//!
//! The batch is processed in chunks of `p.chunk` images (a function of the shape only). Within
//! a chunk every image has its own column matrix `[c*r*s, oh*ow]` in the workspace and its
//! own GEMMs, so images run in parallel (rayon; the native GEMM may split further inside). No
//! result depends on how images are spread over threads: forward and backward-data write
//! disjoint images, and backward-weight computes one partial gradient per image and adds the
//! partials in image order.

use super::im2col::{col2im, im2col};
use super::params::Conv2dParams;
use crate::error::KernelError;
use crate::{gemm, Backend, Gemm};
use rayon::prelude::*;

/// Elements of dw per task of the partial-gradient reduction.
const REDUCE_BLOCK: usize = 4096;

/// Shapes shared by the passes.
struct Dims {
    kg: usize,
    /// Rows of one group's column matrix: `cg * r * s`.
    crs: usize,
    ohw: usize,
    chw: usize,
    kohw: usize,
    col: usize,
    wlen: usize,
}

fn dims(p: &Conv2dParams) -> Dims {
    let cg = p.c / p.groups;
    let kg = p.k / p.groups;
    Dims {
        kg,
        crs: cg * p.r * p.s,
        ohw: p.oh * p.ow,
        chw: p.c * p.h * p.w,
        kohw: p.k * p.oh * p.ow,
        col: p.col_len(),
        wlen: p.weight_len(),
    }
}

/// OpenBLAS threads itself, so its images run one after another on the calling thread.
fn min_len(backend: Backend) -> usize {
    if backend == Backend::Native {
        1
    } else {
        usize::MAX
    }
}

/// `y = conv(x, w) + bias` for one image: `src` is the image itself (pointwise) or its column
/// matrix.
fn forward_image(
    backend: Backend,
    p: &Conv2dParams,
    d: &Dims,
    src: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) -> Result<(), KernelError> {
    let g = Gemm::new(d.kg, d.ohw, d.crs);
    for grp in 0..p.groups {
        let a = &w[grp * d.kg * d.crs..(grp + 1) * d.kg * d.crs];
        let b = &src[grp * d.crs * d.ohw..(grp + 1) * d.crs * d.ohw];
        let c = &mut y[grp * d.kg * d.ohw..(grp + 1) * d.kg * d.ohw];
        gemm(backend, &g, a, b, c)?;
    }
    if let Some(bias) = bias {
        for (row, &bv) in y.chunks_exact_mut(d.ohw).zip(bias) {
            row.iter_mut().for_each(|v| *v += bv);
        }
    }
    Ok(())
}

/// Forward pass through im2col (skipped for pointwise shapes) and GEMM.
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
    if p.is_pointwise() {
        return y
            .par_chunks_mut(d.kohw)
            .zip(x.par_chunks(d.chw))
            .with_min_len(min_len(backend))
            .try_for_each(|(yb, xb)| forward_image(backend, p, &d, xb, w, bias, yb));
    }
    let cols = &mut ws[..p.chunk * d.col];
    for (yc, xc) in y
        .chunks_mut(p.chunk * d.kohw)
        .zip(x.chunks(p.chunk * d.chw))
    {
        yc.par_chunks_mut(d.kohw)
            .zip(xc.par_chunks(d.chw))
            .zip(cols.par_chunks_mut(d.col))
            .with_min_len(min_len(backend))
            .try_for_each(|((yb, xb), col)| {
                im2col(p, xb, col, 0, p.c);
                forward_image(backend, p, &d, col, w, bias, yb)
            })?;
    }
    Ok(())
}

/// `dst = w^T dy` per group for one image: the columns (or, pointwise, dx itself).
fn data_image(
    backend: Backend,
    p: &Conv2dParams,
    d: &Dims,
    dy: &[f32],
    w: &[f32],
    dst: &mut [f32],
) -> Result<(), KernelError> {
    let g = Gemm::new(d.crs, d.ohw, d.kg).trans_a(true);
    for grp in 0..p.groups {
        let a = &w[grp * d.kg * d.crs..(grp + 1) * d.kg * d.crs];
        let b = &dy[grp * d.kg * d.ohw..(grp + 1) * d.kg * d.ohw];
        let c = &mut dst[grp * d.crs * d.ohw..(grp + 1) * d.crs * d.ohw];
        gemm(backend, &g, a, b, c)?;
    }
    Ok(())
}

/// Backward-data pass: GEMM into columns, then col2im (pointwise: GEMM straight into dx).
pub(crate) fn backward_data(
    backend: Backend,
    p: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    if p.is_pointwise() {
        return dx
            .par_chunks_mut(d.chw)
            .zip(dy.par_chunks(d.kohw))
            .with_min_len(min_len(backend))
            .try_for_each(|(dxb, dyb)| data_image(backend, p, &d, dyb, w, dxb));
    }
    let cols = &mut ws[..p.chunk * d.col];
    for (dxc, dyc) in dx
        .chunks_mut(p.chunk * d.chw)
        .zip(dy.chunks(p.chunk * d.kohw))
    {
        dxc.par_chunks_mut(d.chw)
            .zip(dyc.par_chunks(d.kohw))
            .zip(cols.par_chunks_mut(d.col))
            .with_min_len(min_len(backend))
            .try_for_each(|((dxb, dyb), col)| {
                data_image(backend, p, &d, dyb, w, col)?;
                dxb.fill(0.0);
                col2im(p, col, dxb, 0, p.c);
                Ok(())
            })?;
    }
    Ok(())
}

/// Backward-weight pass: per image `dw_b = dy_b col_b^T` (per group) into its own partial,
/// then `dw += dw_0 + dw_1 + ...` in image order, chunk after chunk.
pub(crate) fn backward_weight(
    backend: Backend,
    p: &Conv2dParams,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let (cols, partials) = ws.split_at_mut(p.chunk * d.col);
    let partials = &mut partials[..p.chunk * d.wlen];
    let g = Gemm::new(d.kg, d.crs, d.ohw).trans_b(true);
    for (ci, (xc, dyc)) in x
        .chunks(p.chunk * d.chw)
        .zip(dy.chunks(p.chunk * d.kohw))
        .enumerate()
    {
        let images = xc.len() / d.chw;
        partials
            .par_chunks_mut(d.wlen)
            .zip(cols.par_chunks_mut(d.col))
            .zip(xc.par_chunks(d.chw).zip(dyc.par_chunks(d.kohw)))
            .with_min_len(min_len(backend))
            .try_for_each(|((part, col), (xb, dyb))| {
                let src: &[f32] = if p.is_pointwise() {
                    xb
                } else {
                    im2col(p, xb, col, 0, p.c);
                    col
                };
                for grp in 0..p.groups {
                    let a = &dyb[grp * d.kg * d.ohw..(grp + 1) * d.kg * d.ohw];
                    let b = &src[grp * d.crs * d.ohw..(grp + 1) * d.crs * d.ohw];
                    let c = &mut part[grp * d.kg * d.crs..(grp + 1) * d.kg * d.crs];
                    gemm(backend, &g, a, b, c)?;
                }
                Ok::<(), KernelError>(())
            })?;
        let parts = &partials[..images * d.wlen];
        let first = ci == 0;
        // Each element gets its partials in image order, whatever the split over threads.
        dw.par_chunks_mut(REDUCE_BLOCK)
            .enumerate()
            .for_each(|(blk, out)| {
                let off = blk * REDUCE_BLOCK;
                let len = out.len();
                if first {
                    out.fill(0.0);
                }
                for part in parts.chunks_exact(d.wlen) {
                    for (o, &v) in out.iter_mut().zip(&part[off..off + len]) {
                        *o += v;
                    }
                }
            });
    }
    Ok(())
}
