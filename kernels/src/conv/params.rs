//! The validated convolution descriptor and its builder.

use crate::error::{checked_mul, checked_product, checked_sum, KernelError};

/// Output positions per GEMM call the im2col paths aim for: the column tile
/// `[c*r*s, TILE_TARGET]` then stays in L2 between im2col and the GEMM that reads it, and the
/// GEMM's N is wide enough for its micro-kernel.
const TILE_TARGET: usize = 512;
/// Upper bound (f32 elements, 1 MiB) of one column tile, so that it stays mostly in L2 next to the
/// GEMM's packed blocks; deep `c*r*s` gets narrower tiles.
pub(crate) const TILE_BUDGET: usize = 1 << 18;
/// Most tasks in flight per wave, each with its own slot of workspace (fixed, never the thread
/// count, so results do not depend on it). Small slots allow many, so small images need few
/// waves (each wave ends in a barrier); `WS_BUDGET` bounds the total.
pub(crate) const MAX_SLOTS: usize = 64;
/// Upper bound (f32 elements) of the workspace when more than one slot is used.
pub(crate) const WS_BUDGET: usize = 1 << 22;

/// A validated 2D convolution: input `[n, c, h, w]`, weight `[k, c / groups, r, s]`, output
/// `[n, k, oh, ow]`, all NCHW row-major (the PyTorch convention).
///
/// Built with [`Conv2dParams::builder`] (or [`Conv2dParams::new`] for the plain case: stride 1,
/// no padding, dilation 1, one group). Once built, every size the passes use is known to fit in
/// `usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) k: usize,
    pub(crate) r: usize,
    pub(crate) s: usize,
    pub(crate) stride: (usize, usize),
    /// top, bottom, left, right
    pub(crate) pad: (usize, usize, usize, usize),
    pub(crate) dilation: (usize, usize),
    pub(crate) groups: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    /// Execution plan of the im2col paths (fixed by the shape, never by the thread count).
    pub(crate) plan: Plan,
}

/// How the im2col paths split the work: tasks of `ipt` whole images (one column tile of
/// `ipt * oh * ow` positions) or, when an image has more than `tile` positions, tasks of one
/// image walked in column tiles of at most `tile` positions; `slots` tasks run per wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Plan {
    pub(crate) ipt: usize,
    pub(crate) tile: usize,
    pub(crate) slots: usize,
    /// Per slot: column tile, gathered-output tile, partial weight gradient.
    pub(crate) col_len: usize,
    pub(crate) buf_len: usize,
    pub(crate) part_len: usize,
    /// The implicit-im2col plan of the native stride-1 passes (see `wide.rs`), if they use it.
    pub(crate) wide: Option<super::wide::WidePlan>,
    /// The batch-blocked direct plan (see `blocked.rs`), if the native passes use it.
    pub(crate) blocked: Option<super::blocked::BlockedPlan>,
    /// The channel-block plan of the native backward-data (see `col_blocks.rs`), if it
    /// applies.
    pub(crate) col_blocks: Option<super::col_blocks::ColBlockPlan>,
    /// The direct plan with output channels in the vector lanes (see `kvec.rs`), if the
    /// native forward uses it.
    pub(crate) kvec: Option<super::kvec::KvecPlan>,
    /// The direct backward-data plan of strided convolutions with input channels in the
    /// vector lanes (see `kvec_strided.rs`), if it applies.
    pub(crate) kvec_strided: Option<super::kvec_strided::StridedPlan>,
    /// The Winograd F(2x2, 3x3) plan (see `winograd.rs`), if a native pass uses it.
    pub(crate) winograd: Option<super::winograd::WinogradPlan>,
}

/// Builder of [`Conv2dParams`]; every setter changes one field, [`build`](Self::build)
/// validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dBuilder {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    r: usize,
    s: usize,
    stride: (usize, usize),
    pad: (usize, usize, usize, usize),
    dilation: (usize, usize),
    groups: usize,
}

impl Conv2dBuilder {
    /// Stride along height and width (both at least 1).
    pub fn stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }
    /// Symmetric zero padding: `ph` rows on top and bottom, `pw` columns left and right.
    pub fn pad(mut self, ph: usize, pw: usize) -> Self {
        self.pad = (ph, ph, pw, pw);
        self
    }
    /// Zero padding on each side (asymmetric allowed).
    pub fn padding(mut self, top: usize, bottom: usize, left: usize, right: usize) -> Self {
        self.pad = (top, bottom, left, right);
        self
    }
    /// Dilation along height and width (both at least 1).
    pub fn dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }
    /// Channel groups: `c` and `k` must be multiples; `groups == c` is a depthwise convolution.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// Validates and returns the descriptor.
    ///
    /// Errors: `InvalidParam` for a zero dimension (other than the batch `n`, which may be
    /// zero: every pass is then a no-op), zero stride, dilation or groups, `c` or `k` not
    /// divisible by `groups`, a dilated kernel larger than the padded input, or a stride or
    /// dilation above 2^31 - 1;
    /// `Overflow` when a buffer size does not fit in `usize`.
    pub fn build(self) -> Result<Conv2dParams, KernelError> {
        let b = self;
        let positive = [
            ("c", b.c),
            ("h", b.h),
            ("w", b.w),
            ("k", b.k),
            ("r", b.r),
            ("s", b.s),
            ("stride_h", b.stride.0),
            ("stride_w", b.stride.1),
            ("dilation_h", b.dilation.0),
            ("dilation_w", b.dilation.1),
            ("groups", b.groups),
        ];
        for (arg, v) in positive {
            if v == 0 {
                return Err(invalid(arg, "must be at least 1".into()));
            }
        }
        // The stencil kernels step through rows with signed arithmetic in units of stride and
        // dilation, so those must fit in i32: larger ones are refused instead of wrapping.
        // (Huge sizes and paddings fail the overflow checks below.)
        let steps = [
            ("stride_h", b.stride.0),
            ("stride_w", b.stride.1),
            ("dilation_h", b.dilation.0),
            ("dilation_w", b.dilation.1),
        ];
        for (arg, v) in steps {
            if v > i32::MAX as usize {
                return Err(invalid(arg, format!("{v} exceeds 2^31 - 1")));
            }
        }
        if !b.c.is_multiple_of(b.groups) {
            let what = format!("c = {} is not divisible by groups = {}", b.c, b.groups);
            return Err(invalid("c", what));
        }
        if !b.k.is_multiple_of(b.groups) {
            let what = format!("k = {} is not divisible by groups = {}", b.k, b.groups);
            return Err(invalid("k", what));
        }
        let oh = out_dim("r", b.h, b.pad.0, b.pad.1, b.r, b.dilation.0, b.stride.0)?;
        let ow = out_dim("s", b.w, b.pad.2, b.pad.3, b.s, b.dilation.1, b.stride.1)?;
        let mut p = Conv2dParams {
            n: b.n,
            c: b.c,
            h: b.h,
            w: b.w,
            k: b.k,
            r: b.r,
            s: b.s,
            stride: b.stride,
            pad: b.pad,
            dilation: b.dilation,
            groups: b.groups,
            oh,
            ow,
            plan: Plan {
                ipt: 1,
                tile: 1,
                slots: 1,
                col_len: 0,
                buf_len: 0,
                part_len: 0,
                wide: None,
                blocked: None,
                col_blocks: None,
                kvec: None,
                kvec_strided: None,
                winograd: None,
            },
        };
        // Every buffer size the passes compute must fit (checked once, here).
        checked_product("x", &[b.n, b.c, b.h, b.w])?;
        checked_product("y", &[b.n, b.k, oh, ow])?;
        // Per image too: with n == 0 the products above are 0 whatever the image size, but
        // the passes still compute c*h*w and k*oh*ow.
        checked_product("x", &[b.c, b.h, b.w])?;
        checked_product("y", &[b.k, oh, ow])?;
        checked_product("weight", &[b.k, b.c / b.groups, b.r, b.s])?;
        p.plan = plan(&p, usize::MAX)?;
        Ok(p)
    }
}

fn invalid(arg: &'static str, what: String) -> KernelError {
    KernelError::InvalidParam { arg, what }
}

/// Output length along one axis, or an error if the dilated kernel exceeds the padded input.
fn out_dim(
    arg: &'static str,
    len: usize,
    pad_lo: usize,
    pad_hi: usize,
    kernel: usize,
    dilation: usize,
    stride: usize,
) -> Result<usize, KernelError> {
    let padded = len
        .checked_add(pad_lo)
        .and_then(|v| v.checked_add(pad_hi))
        .ok_or(KernelError::Overflow { arg: "padding" })?;
    let span = checked_mul("dilation", dilation, kernel - 1)?
        .checked_add(1)
        .ok_or(KernelError::Overflow { arg: "dilation" })?;
    if span > padded {
        let what =
            format!("dilated kernel extent {span} is larger than the padded input extent {padded}");
        return Err(invalid(arg, what));
    }
    Ok((padded - span) / stride + 1)
}

/// Chooses the tiling of the im2col paths (see [`Plan`]).
fn plan(p: &Conv2dParams, max_tile: usize) -> Result<Plan, KernelError> {
    let ohw = checked_mul("y", p.oh, p.ow)?;
    let crs = checked_product("workspace", &[p.c, p.r, p.s])?;
    let target = (TILE_BUDGET / crs)
        .clamp(16, TILE_TARGET)
        .min(max_tile.max(1));
    let (ipt, tile) = if ohw <= target && !p.is_pointwise() {
        let ipt = (target / ohw).clamp(1, p.n.max(1));
        (ipt, ipt * ohw)
    } else {
        let tiles = ohw.div_ceil(target);
        (1, ohw.div_ceil(tiles))
    };
    let col_len = if p.is_pointwise() {
        0
    } else {
        checked_mul("workspace", crs, tile)?
    };
    let buf_len = if ipt > 1 {
        checked_mul("workspace", p.k, tile)?
    } else {
        0
    };
    let part_len = p.weight_len();
    if p.is_depthwise() {
        // The direct depthwise kernels need no workspace.
        return Ok(Plan {
            ipt: 1,
            tile: ohw.max(1),
            slots: 1,
            col_len: 0,
            buf_len: 0,
            part_len: 0,
            wide: None,
            blocked: None,
            col_blocks: None,
            kvec: None,
            kvec_strided: None,
            winograd: None,
        });
    }
    let slot = checked_sum("workspace", &[col_len, buf_len, part_len])?;
    let tasks = p.n.div_ceil(ipt).max(1);
    let slots = (WS_BUDGET / slot.max(1)).clamp(1, MAX_SLOTS.min(tasks));
    checked_mul("workspace", slots, slot)?;
    Ok(Plan {
        ipt,
        tile,
        slots,
        col_len,
        buf_len,
        part_len,
        wide: super::wide::plan(p, part_len)?,
        blocked: super::blocked::plan(p),
        col_blocks: super::col_blocks::plan(p)?,
        kvec: super::kvec::plan(p)?,
        kvec_strided: super::kvec_strided::plan(p),
        winograd: super::winograd::plan(p),
    })
}

impl Conv2dParams {
    /// Starts a builder for input `[n, c, h, w]` and `k` output channels with an `r x s`
    /// kernel; defaults: stride 1, no padding, dilation 1, one group.
    #[allow(clippy::too_many_arguments)]
    pub fn builder(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        r: usize,
        s: usize,
    ) -> Conv2dBuilder {
        Conv2dBuilder {
            n,
            c,
            h,
            w,
            k,
            r,
            s,
            stride: (1, 1),
            pad: (0, 0, 0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }

    /// The plain convolution (stride 1, no padding, dilation 1, one group), validated.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        r: usize,
        s: usize,
    ) -> Result<Conv2dParams, KernelError> {
        Self::builder(n, c, h, w, k, r, s).build()
    }

    /// A builder holding this descriptor's settings (to change one and re-validate).
    pub fn to_builder(&self) -> Conv2dBuilder {
        Conv2dBuilder {
            n: self.n,
            c: self.c,
            h: self.h,
            w: self.w,
            k: self.k,
            r: self.r,
            s: self.s,
            stride: self.stride,
            pad: self.pad,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    /// The same convolution with at most `images` images in flight at once (but at least one
    /// task): a smaller [`workspace_len`](Self::workspace_len) for memory-tight callers, at
    /// the cost of less parallelism. It can only shrink what the descriptor chose; results are
    /// identical.
    pub fn with_max_chunk(mut self, images: usize) -> Self {
        // Tasks of `ipt` images, `slots` of them in flight: at most `images` images, at least
        // one task.
        let cap = |slots: &mut usize, ipt: usize| *slots = (*slots).min(images / ipt).max(1);
        cap(&mut self.plan.slots, self.plan.ipt);
        if let Some(w) = &mut self.plan.wide {
            cap(&mut w.slots, w.ipt);
        }
        if let Some(b) = &mut self.plan.blocked {
            b.limit_wave(images);
        }
        if let Some(b) = &mut self.plan.col_blocks {
            cap(&mut b.slots, b.ipt);
        }
        if let Some(b) = &mut self.plan.kvec {
            cap(&mut b.slots, 1);
            cap(&mut b.grad_slots, b.grad_ipt);
        }
        if let Some(b) = &mut self.plan.kvec_strided {
            cap(&mut b.slots, 1);
        }
        if let Some(b) = &mut self.plan.winograd {
            cap(&mut b.slots, 1);
        }
        self
    }

    /// The same convolution with column tiles of at most `positions` output positions (at
    /// least one): less workspace, more GEMM calls. Results may differ from the default
    /// tiling only in the rounding of the weight gradient.
    pub fn with_max_tile(mut self, positions: usize) -> Self {
        if let Ok(pl) = plan(&self, positions) {
            self.plan = pl;
        }
        self
    }

    /// Images in flight at once in the im2col paths (a function of the shape only).
    pub fn chunk(&self) -> usize {
        self.plan.slots * self.plan.ipt
    }

    /// Height and width of the zero-padded input (`build` checked these sums).
    pub(crate) fn padded_hw(&self) -> (usize, usize) {
        (
            self.h + self.pad.0 + self.pad.1,
            self.w + self.pad.2 + self.pad.3,
        )
    }

    /// Batch size.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Input channels.
    pub fn c(&self) -> usize {
        self.c
    }
    /// Input height.
    pub fn h(&self) -> usize {
        self.h
    }
    /// Input width.
    pub fn w(&self) -> usize {
        self.w
    }
    /// Output channels.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Kernel height.
    pub fn r(&self) -> usize {
        self.r
    }
    /// Kernel width.
    pub fn s(&self) -> usize {
        self.s
    }
    /// `(stride_h, stride_w)`.
    pub fn stride(&self) -> (usize, usize) {
        self.stride
    }
    /// `(top, bottom, left, right)` zero padding.
    pub fn padding(&self) -> (usize, usize, usize, usize) {
        self.pad
    }
    /// `(dilation_h, dilation_w)`.
    pub fn dilation(&self) -> (usize, usize) {
        self.dilation
    }
    /// Channel groups.
    pub fn groups(&self) -> usize {
        self.groups
    }
    /// `[n, k, oh, ow]`: the output shape.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.k, self.oh, self.ow]
    }
    /// `[n, c, h, w]`: the input shape.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    /// `[k, c / groups, r, s]`: the weight shape.
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.k, self.c / self.groups, self.r, self.s]
    }
    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    /// Elements of the output.
    pub fn output_len(&self) -> usize {
        self.n * self.k * self.oh * self.ow
    }
    /// Elements of the weight.
    pub fn weight_len(&self) -> usize {
        self.k * (self.c / self.groups) * self.r * self.s
    }
    /// `2 * n * k * (c / groups) * r * s * oh * ow`: the flop count of each pass.
    pub fn flops(&self) -> f64 {
        2.0 * self.output_len() as f64 * ((self.c / self.groups) * self.r * self.s) as f64
    }
    /// Whether this is a 1x1, stride-1, unpadded, undilated convolution (a plain GEMM per
    /// image, no im2col).
    pub fn is_pointwise(&self) -> bool {
        self.r == 1 && self.s == 1 && self.stride == (1, 1) && self.pad == (0, 0, 0, 0)
    }
    /// Whether every group has one input channel and one output channel (depthwise with
    /// multiplier 1), which the native backend runs with a direct kernel.
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.c && self.groups == self.k
    }

    /// f32 elements of workspace every pass of every backend needs (the slices passed as `ws`
    /// may be longer). Bounded: the batch is processed a few tasks at a time, each with its
    /// own column tile of at most 512 output positions (or a few blocks of 16 images on the
    /// batch-blocked path, within a fixed 16 MiB budget), so this does not grow with the
    /// batch size or the image size beyond that.
    pub fn workspace_len(&self) -> usize {
        let adjoint = self
            .adjoint()
            .map_or(0, |a| self.weight_len() + a.own_workspace_len());
        self.own_workspace_len().max(adjoint)
    }

    /// Workspace of this descriptor's own passes (not the adjoint's).
    fn own_workspace_len(&self) -> usize {
        let wide = self.plan.wide.map_or(0, |w| w.slots * w.slot_len());
        let blocked = self.plan.blocked.map_or(0, |b| b.workspace_len());
        let col_blocks = self.plan.col_blocks.map_or(0, |b| b.workspace_len());
        let kvec = self.plan.kvec.map_or(0, |b| b.workspace_len());
        let kvec_strided = self.plan.kvec_strided.map_or(0, |b| b.workspace_len());
        let winograd = self.plan.winograd.map_or(0, |b| b.workspace_len());
        (self.plan.slots * self.slot_len())
            .max(winograd)
            .max(wide)
            .max(kvec)
            .max(kvec_strided)
            .max(blocked)
            .max(col_blocks)
    }

    /// The convolution whose forward pass is this one's backward-data, when the native
    /// backend runs it that way: stride 1, padding at most the dilated kernel extent, and
    /// an input no more than 10% larger than the output ("same" convolutions), so the
    /// forward formulation does no more work; it then needs no col2im (see `wide.rs`).
    /// Input `dy` (`[n, k, oh, ow]`), output `dx`, weights transposed per group and flipped.
    pub(crate) fn adjoint(&self) -> Option<Conv2dParams> {
        let (er, es) = (
            (self.r - 1) * self.dilation.0,
            (self.s - 1) * self.dilation.1,
        );
        let (pt, pb, pl, pr) = self.pad;
        // (u128: the sizes are validated as usize products, ten times one may not be.)
        let area = |a: usize, b: usize| a as u128 * b as u128;
        let same = 10 * area(self.h, self.w) <= 11 * area(self.oh, self.ow);
        if self.stride != (1, 1)
            || self.is_pointwise()
            || self.is_depthwise()
            || (self.plan.wide.is_none() && self.plan.kvec.is_none())
            || !same
            || pt.max(pb) > er
            || pl.max(pr) > es
        {
            return None;
        }
        let a = Conv2dParams::builder(self.n, self.k, self.oh, self.ow, self.c, self.r, self.s)
            .padding(er - pt, er - pb, es - pl, es - pr)
            .dilation(self.dilation.0, self.dilation.1)
            .groups(self.groups)
            .build()
            .ok()?
            .with_max_chunk(self.chunk());
        // (Its workspace comes on top of the flipped weights: that sum must fit too.)
        let fits = self
            .weight_len()
            .checked_add(a.own_workspace_len())
            .is_some();
        ((a.plan.wide.is_some() || a.plan.kvec.is_some()) && fits).then_some(a)
    }

    /// Workspace elements of one task slot.
    pub(crate) fn slot_len(&self) -> usize {
        self.plan.col_len + self.plan.buf_len + self.plan.part_len
    }
}
