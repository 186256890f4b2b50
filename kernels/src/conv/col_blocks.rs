//! Backward-data on the native GEMM by blocks of input channels, for the shapes with neither
//! an adjoint formulation (`wide.rs`: stride 1, "same" padding) nor the batch-blocked one:
//! strided convolutions above all.
//!
//! A task is a block of `cb` input channels (of one group) over `ipt` whole images: one GEMM
//! computes its `cb * r * s` rows of the column matrix over all those images
//! (`w[group]^T dy`, B read straight from `dy` through a row table: image `i`'s output
//! gradient is segment `i`, so full panels are read in place, see `gemm::frame`), then col2im
//! adds them into the block's channels of each image. The per-image GEMM of `gemm_path` (M =
//! `c * r * s`, N = one image) packed all of the transposed weights once per image: for
//! resnet_s2 (1152 x 256 of them against 196 columns) that packing was 17% of the pass. Here
//! each block packs its own `cb * r * s` rows once for `ipt` images, and the column block it
//! fills stays in L2 for col2im.
//!
//! Tasks write disjoint blocks of `dx` (channels of images), and each element of `dx` sums
//! its taps in the same order as `gemm_path` (same column values, same col2im), so results
//! are those bits, whatever the number of threads.

use super::gemm_path::dims;
use super::im2col::col2im_image;
use super::params::{Conv2dParams, MAX_SLOTS, TILE_BUDGET, WS_BUDGET};
use crate::error::{checked_product, KernelError};
use crate::gemm::{gemm_gather, Gather, SharedPtr};
use crate::Gemm;
use rayon::prelude::*;
use std::cell::Cell;

/// Column-matrix rows a block aims for: one row block of the GEMM (MC of the f32 kernels).
const BLOCK_ROWS: usize = 144;

/// Fewest tasks per call (shape permitting), so that two threads stay balanced.
const MIN_TASKS: usize = 4;

/// The channel-block plan: a function of the shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ColBlockPlan {
    /// Input channels per block (the last block of a group may have fewer).
    cb: usize,
    /// Images per task.
    pub(crate) ipt: usize,
    /// Tasks in flight per wave, each with its own column block of `col_len`.
    pub(crate) slots: usize,
    pub(crate) col_len: usize,
}

/// The plan for `p`, or `None` when whole images of a block do not fit the column budget
/// (large images keep `gemm_path`'s position tiles) or another path applies.
pub(crate) fn plan(p: &Conv2dParams) -> Result<Option<ColBlockPlan>, KernelError> {
    if p.is_pointwise() || p.is_depthwise() || p.oh == 0 || p.ow == 0 || p.n == 0 {
        return Ok(None);
    }
    let (cg, rs) = (p.c / p.groups, p.r * p.s);
    let cb = (BLOCK_ROWS / rs).clamp(1, cg);
    let image = checked_product("workspace", &[cb, rs, p.oh, p.ow])?;
    if image > TILE_BUDGET {
        return Ok(None);
    }
    let blocks = p.groups * cg.div_ceil(cb);
    // As many images per task as the budget holds, but at least MIN_TASKS tasks.
    let chunks = (p.n * image)
        .div_ceil(TILE_BUDGET)
        .max(MIN_TASKS.div_ceil(blocks))
        .min(p.n);
    let ipt = p.n.div_ceil(chunks);
    let col_len = ipt * image;
    let tasks = p.n.div_ceil(ipt) * blocks;
    let slots = (WS_BUDGET / col_len).clamp(1, MAX_SLOTS.min(tasks));
    Ok(Some(ColBlockPlan {
        cb,
        ipt,
        slots,
        col_len,
    }))
}

impl ColBlockPlan {
    /// Workspace of the pass.
    pub(crate) fn workspace_len(&self) -> usize {
        self.slots * self.col_len
    }
}

thread_local! {
    /// The row table of `dy` (output channel `k` at `k * oh * ow`), kept between calls.
    static ROWS: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
}

/// Backward-data pass (native backend), see the module doc.
pub(crate) fn backward_data(
    p: &Conv2dParams,
    cp: &ColBlockPlan,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    let d = dims(p);
    let rs = p.r * p.s;
    let per_group = d.cg.div_ceil(cp.cb);
    let blocks = p.groups * per_group;
    let tasks = p.n.div_ceil(cp.ipt) * blocks;
    // Tasks write disjoint blocks of dx: (image chunk, channel block) pairs.
    let dx_ptr = SharedPtr(dx.as_mut_ptr());
    let mut rows = ROWS.with(Cell::take);
    rows.clear();
    rows.extend((0..d.kg).map(|k| k * d.ohw));
    let task = |t: usize, col: &mut [f32]| -> Result<(), KernelError> {
        let (chunk, blk) = (t / blocks, t % blocks);
        let (g, c0) = (blk / per_group, blk % per_group * cp.cb);
        let cbe = cp.cb.min(d.cg - c0);
        let img0 = chunk * cp.ipt;
        let imgs = cp.ipt.min(p.n - img0);
        let width = imgs * d.ohw;
        // op(A)[i][k] = w[g][k][c0 * rs + i]: the block's taps, transposed.
        let a = &w[g * d.kg * d.crs + c0 * rs..];
        let b = &dy[img0 * d.kohw + g * d.kg * d.ohw..];
        let gather = Gather {
            row: &rows,
            seg_len: d.ohw,
            seg_valid: d.ohw,
            seg_stride: d.kohw,
            line: None,
            seg_off: None,
        };
        let gm = Gemm::new(cbe * rs, width, d.kg)
            .trans_a(true)
            .lda(d.crs)
            .ldc(width);
        let col = &mut col[..cbe * rs * width];
        gemm_gather(&gm, a, b, gather, col)?;
        for i in 0..imgs {
            let at = (img0 + i) * d.chw + (g * d.cg + c0) * d.hw;
            // SAFETY: `at..at + cbe * hw` lies in dx (image img0 + i < n, channels
            // g * cg + c0 .. + cbe <= c), and no other task writes it: tasks differ in their
            // image chunk or their channel block.
            let dxi = unsafe { std::slice::from_raw_parts_mut(dx_ptr.get().add(at), cbe * d.hw) };
            col2im_image(p, &col[i * d.ohw..], width, dxi);
        }
        Ok(())
    };
    let mut result = Ok(());
    for wave in (0..tasks).step_by(cp.slots) {
        let n_wave = cp.slots.min(tasks - wave);
        result = ws[..n_wave * cp.col_len]
            .par_chunks_mut(cp.col_len)
            .enumerate()
            .try_for_each(|(i, col)| task(wave + i, col));
        if result.is_err() {
            break;
        }
    }
    ROWS.with(|c| c.set(rows));
    result
}
