//! Batch-blocked direct convolution (native backend): images side by side in the vector lanes.
//!
//! A task's images are first transposed into one block of `nb = 16` images, channel-major
//! with the batch innermost: `xb[c][h][w][lane]` (cuda-convnet's CHWN layout, blocked). Then every (kernel tap, output position) pair reads one contiguous,
//! aligned vector of `nb` images, whatever the stride, padding or dilation. A register tile of
//! `MR` output channels by `nb` images at one output position (with AVX-512, half as many
//! channels at two neighbouring positions that walk the same taps) sums, tap by tap,
//! `w[row][tap]` (broadcast) times that vector: no im2col, no packing of B, no junk columns, and every
//! position's walk lists only the taps that land inside the image, so padding costs no work.
//!
//! Backward-data is the same computation on `dy`: `dx[ci][ih][iw]` sums, over output channels
//! and the taps that reach `(ih, iw)` from some `(oh, ow)`, `w[ko][ci][tap]` times
//! `dy[ko][oh][ow]`. Only the walk differs ([`Dir::Adjoint`]): for stride 2 it visits every
//! other tap. There is no column matrix to write and read back (col2im), and no product with
//! a zero.
//!
//! Tiles are written to a `[positions][rows][nb]` block and transposed back to NCHW (adding
//! the bias). Each output element is the sum of one tile over its taps in a fixed order, so
//! the split of tiles over threads cannot change a bit.
//!
//! Why: on small images the im2col GEMM spends a quarter of its time packing B (gathered
//! through a row table) or, for backward-data, in col2im. Here the transposes in and out
//! take about an eighth of a pass and the tiles run near the FMA peak; measurements in
//! [`plan`].

use super::params::{Conv2dParams, WS_BUDGET};
use crate::error::checked_product;
use crate::simd::{dispatch, transpose8x8, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Images per block: the lanes of a tile (one zmm, two ymm).
const NB: usize = 16;

/// Tile heights of the ISAs (`tile_rows`); rows are padded to a multiple of the tile's, and
/// the workspace is sized for the largest padding, so it does not depend on the ISA.
const TILE_ROWS: [usize; 3] = [2, 6, 16];

/// Bytes of a panel's weights per sweep over the output positions (see `TaskFn::run`).
const SWEEP_BYTES: usize = 16 << 10;

/// Tasks per wave the position ranges aim for (a multiple of the thread counts in use; each
/// task's result is the same however the positions are split).
const TASKS_PER_WAVE: usize = 8;

/// Which way a pass maps output positions to input positions along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Dir {
    /// Convolution: input `o * stride + t * dilation - pad`.
    Forward,
    /// Its adjoint (backward-data): the `o'` with `o' * stride + t * dilation - pad == o`.
    Adjoint,
}

/// One axis of a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Axis {
    pub(super) dir: Dir,
    pub(super) stride: usize,
    pub(super) pad: usize,
    pub(super) dilation: usize,
    pub(super) taps: usize,
    /// Extent of the input plane along this axis.
    pub(super) len: usize,
}

/// The taps that reach output index `o` along an axis: `count` taps `t0, t0 + t_step, ...`
/// reading inputs `i0, i0 + i_step, ...`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Walk {
    pub(super) t0: usize,
    pub(super) count: usize,
    pub(super) t_step: usize,
    pub(super) i0: usize,
    pub(super) i_step: isize,
}

impl Axis {
    /// The walk of output `o`, in closed form: the taps inside form one arithmetic
    /// progression in tap and in input index (a range forward; a range intersected with a
    /// residue class for the adjoint). Every tile calls this for its row and column (the
    /// tap-by-tap search it replaced took 5% of MNIST's second layer); the test
    /// `closed_form_walks_match_tap_search` checks it against [`Axis::input`] tap by tap.
    /// A walk with fewer than two taps has `t_step` 1 and `i_step` 0.
    pub(super) fn walk(&self, o: usize) -> Walk {
        let (d, st, len) = (self.dilation, self.stride, self.len);
        let none = Walk {
            t_step: 1,
            ..Walk::default()
        };
        if len == 0 || self.taps == 0 {
            return none;
        }
        // Taps t0, t0 + t_step, ... up to `t_last` (inclusive), input of t0 `i0`.
        let (t0, t_step, t_last) = match self.dir {
            Dir::Forward => {
                // input o * st + t * d - pad must lie in [0, len).
                let base = o * st;
                let lo = self.pad.saturating_sub(base).div_ceil(d);
                let Some(room) = (len + self.pad).checked_sub(base + 1) else {
                    return none;
                };
                (lo, 1, (room / d).min(self.taps - 1))
            }
            Dir::Adjoint => {
                // (o + pad - t * d) must be a multiple of st in [0, (len - 1) * st].
                let u = o + self.pad;
                let lo = u.saturating_sub((len - 1) * st).div_ceil(d);
                let Some(t0) =
                    (lo..lo + st).find(|&t| t * d <= u && (u - t * d).is_multiple_of(st))
                else {
                    return none;
                };
                (t0, st / gcd(d, st), (u / d).min(self.taps - 1))
            }
        };
        if t0 > t_last {
            return none;
        }
        let count = (t_last - t0) / t_step + 1;
        let i0 = self
            .input(o, t0)
            .expect("the first tap of a walk is inside");
        if count == 1 {
            return Walk {
                t0,
                count,
                i0,
                ..none
            };
        }
        let i1 = self
            .input(o, t0 + t_step)
            .expect("the second tap is inside");
        Walk {
            t0,
            count,
            t_step,
            i0,
            i_step: i1 as isize - i0 as isize,
        }
    }

    /// The input index tap `t` of output `o` reads, if inside the input.
    fn input(&self, o: usize, t: usize) -> Option<usize> {
        // (The descriptor bounds these sums by the padded extent.)
        match self.dir {
            Dir::Forward => (o * self.stride + t * self.dilation).checked_sub(self.pad),
            Dir::Adjoint => (o + self.pad)
                .checked_sub(t * self.dilation)
                .filter(|v| v % self.stride == 0)
                .map(|v| v / self.stride),
        }
        .filter(|&i| i < self.len)
    }
}

/// Outputs per axis whose walks a task computes up front ([`Walks`]).
const WALK_CACHE: usize = 64;

/// The walks of an axis's first [`WALK_CACHE`] outputs, computed once per task: a task
/// visits every position once per group, channel sweep and panel, and computing the walks
/// each time took 5% of MNIST's second layer. Outputs past the cache compute theirs.
pub(super) struct Walks {
    axis: Axis,
    cached: [Walk; WALK_CACHE],
}

impl Walks {
    pub(super) fn new(axis: Axis) -> Walks {
        Walks {
            axis,
            cached: std::array::from_fn(|o| axis.walk(o)),
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, o: usize) -> Walk {
        match self.cached.get(o) {
            Some(&w) => w,
            None => self.axis.walk(o),
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One pass as a direct convolution of a blocked input plane: `rows` output channels per
/// group, each summing `depth` input channels (per group) over the taps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Pass {
    dir: Dir,
    groups: usize,
    depth: usize,
    rows: usize,
    taps: (usize, usize),
    axes: [Axis; 2],
    in_plane: (usize, usize),
    out_plane: (usize, usize),
}

impl Pass {
    fn new(p: &Conv2dParams, dir: Dir) -> Pass {
        let (cg, kg) = (p.c / p.groups, p.k / p.groups);
        let (depth, rows, in_plane, out_plane) = match dir {
            Dir::Forward => (cg, kg, (p.h, p.w), (p.oh, p.ow)),
            Dir::Adjoint => (kg, cg, (p.oh, p.ow), (p.h, p.w)),
        };
        let axis = |stride, pad, dilation, taps, len| Axis {
            dir,
            stride,
            pad,
            dilation,
            taps,
            len,
        };
        Pass {
            dir,
            groups: p.groups,
            depth,
            rows,
            taps: (p.r, p.s),
            axes: [
                axis(p.stride.0, p.pad.0, p.dilation.0, p.r, in_plane.0),
                axis(p.stride.1, p.pad.2, p.dilation.1, p.s, in_plane.1),
            ],
            in_plane,
            out_plane,
        }
    }

    fn in_len(&self) -> usize {
        self.groups * self.depth * self.in_plane.0 * self.in_plane.1
    }

    fn positions(&self) -> usize {
        self.out_plane.0 * self.out_plane.1
    }

    /// Packed weights for tiles of `mr` rows: `[group][panel][depth][r][s][mr]`, rows past
    /// `rows` zero; panels in parallel.
    fn pack_weights(&self, w: &[f32], mr: usize, out: &mut [f32]) {
        let rs = self.taps.0 * self.taps.1;
        let panels = self.rows.div_ceil(mr);
        let panel_len = self.depth * rs * mr;
        out.par_chunks_exact_mut(panel_len)
            .take(self.groups * panels)
            .enumerate()
            .for_each(|(gp, panel)| {
                let (g, row0) = (gp / panels, gp % panels * mr);
                for (jt, v) in panel.chunks_exact_mut(mr).enumerate() {
                    let (j, t) = (jt / rs, jt % rs);
                    for (m, v) in v.iter_mut().enumerate() {
                        let row = row0 + m;
                        let (ko, ci) = match self.dir {
                            Dir::Forward => (g * self.rows + row, j),
                            Dir::Adjoint => (g * self.depth + j, row),
                        };
                        let at = (ko * self.weight_cg() + ci) * rs + t;
                        *v = if row < self.rows { w[at] } else { 0.0 };
                    }
                }
            });
    }

    /// Input channels per group of the weight tensor `[k, c/groups, r, s]`.
    fn weight_cg(&self) -> usize {
        match self.dir {
            Dir::Forward => self.depth,
            Dir::Adjoint => self.rows,
        }
    }
}

/// The plan of the batch-blocked path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BlockedPlan {
    /// Blocks in flight per wave.
    wave: usize,
    /// Workspace: packed weights, then per block its input and output blocks.
    a_len: usize,
    block_len: usize,
    /// Bytes of a panel's weights per sweep ([`SWEEP_BYTES`]; tests set less).
    sweep_bytes: usize,
    /// Whether the native forward (backward-data) pass runs here (see [`plan`]).
    pub(crate) forward: bool,
    pub(crate) backward_data: bool,
}

impl BlockedPlan {
    pub(crate) fn workspace_len(&self) -> usize {
        self.a_len + self.wave * self.block_len
    }

    /// At most `images` images in flight (but one block at least).
    pub(crate) fn limit_wave(&mut self, images: usize) {
        self.wave = self.wave.min(images / NB).max(1);
    }
}

/// Elements per position of an output block of `rows` rows: one spare row, so positions are
/// not a power of two apart (64 rows of 16 lanes would be 4 KiB: the 8 positions one
/// transpose in `from_blocked` reads would share an L1 set and alias the stores).
fn pos_stride(rows: usize, nb: usize) -> usize {
    (rows + 1) * nb
}

/// Rows per group padded for every tile height (`None` on overflow).
fn rows_pad(rows: usize) -> Option<usize> {
    TILE_ROWS
        .iter()
        .map(|&m| rows.checked_next_multiple_of(m))
        .try_fold(rows, |acc, r| Some(acc.max(r?)))
}

/// Whether `used` lanes or rows fill blocks of `block` to at least seven eighths.
pub(super) fn fills(used: usize, block: usize) -> bool {
    used.checked_next_multiple_of(block)
        .is_some_and(|all| 8 * used as u128 >= 7 * all as u128)
}

/// The plan for `p`, if the native passes use this path for either pass: batches of at least
/// 16 images that fill 16-lane blocks, output rows (channels per group) that fill the tiles
/// of AVX-512 (16) and AVX2 (6), and a block that fits the workspace budget.
///
/// Measured at 2 threads against the implicit-im2col path (`wide.rs`), time ratios forward /
/// backward-data, 2 or 3 alternating rounds: MNIST's second layer (64 images, 32 -> 64, 13x13,
/// 3x3) 0.93 / 0.75; 64 x 32 -> 64 at 32x32, pad 1: 0.92 / 1.03; same at stride 2, 64 -> 128:
/// 0.71 / 0.98; 32 x 256 -> 256 at 7x7: 0.80 / 0.69; 64 x 16 -> 32 at 12x12, 5x5: 0.95 /
/// 0.74. Blocks of 8 images (batch 8: 12 x 8 AVX2 tiles, or 16-lane tiles over two positions)
/// were slower than the GEMM paths on every ResNet shape (1.2 to 1.7), so small batches keep
/// those. The backward-weight pass keeps the GEMM too: a blocked reduction over positions
/// streamed both operands from L2 for every tile (1.1 to 2 times slower on MNIST's layer).
pub(crate) fn plan(p: &Conv2dParams) -> Option<BlockedPlan> {
    let lanes = p.n >= NB && fills(p.n, NB);
    let rows_fill = |rows: usize| [16, 6].iter().all(|&mr| fills(rows, mr));
    let (cg, kg) = (p.c / p.groups, p.k / p.groups);
    let mut bp = sizes(p)?;
    bp.forward = lanes && rows_fill(kg);
    bp.backward_data = lanes && rows_fill(cg);
    (bp.forward || bp.backward_data).then_some(bp)
}

/// Workspace sizes (both passes), if they fit the budget.
fn sizes(p: &Conv2dParams) -> Option<BlockedPlan> {
    let nb = NB;
    if p.is_depthwise() || p.oh == 0 || p.ow == 0 {
        return None;
    }
    let (mut a_len, mut block_len) = (0, 0);
    for dir in [Dir::Forward, Dir::Adjoint] {
        let pass = Pass::new(p, dir);
        let rp = rows_pad(pass.rows)?;
        let rs = pass.taps.0 * pass.taps.1;
        a_len = a_len.max(checked_product("", &[pass.groups, rp, pass.depth, rs]).ok()?);
        let input = checked_product("", &[pass.in_len(), nb]).ok()?;
        let rows = pass.groups.checked_mul(rp)?.checked_add(1)?;
        let output = checked_product("", &[rows, pass.positions(), nb]).ok()?;
        block_len = block_len.max(input.checked_add(output)?);
    }
    if a_len.checked_add(block_len)? > WS_BUDGET {
        return None;
    }
    let blocks = p.n.div_ceil(nb).max(1);
    let wave = ((WS_BUDGET - a_len) / block_len.max(1)).clamp(1, blocks);
    Some(BlockedPlan {
        wave,
        a_len,
        block_len,
        sweep_bytes: SWEEP_BYTES,
        forward: false,
        backward_data: false,
    })
}

/// Tile height of `isa`: as many accumulators as the registers hold next to the B vectors
/// and a broadcast (must match [`TaskFn::call`]).
fn tile_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Portable => 6,
        Isa::Scalar => 2,
    }
}

/// Forward pass: `y = conv(x, w) + bias`.
pub(crate) fn forward(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) {
    let bp = p.plan.blocked.expect("the caller checked the plan");
    run(&Pass::new(p, Dir::Forward), &bp, x, w, bias, y, ws);
}

/// Backward-data pass: `dx` from `dy`.
pub(crate) fn backward_data(
    p: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) {
    let bp = p.plan.blocked.expect("the caller checked the plan");
    run(&Pass::new(p, Dir::Adjoint), &bp, dy, w, None, dx, ws);
}

/// Runs `pass` over the batch: `src` holds its input images, `dst` its output images.
fn run(
    pass: &Pass,
    bp: &BlockedPlan,
    src: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
    ws: &mut [f32],
) {
    let isa = Isa::active();
    let (nb, mr) = (NB, tile_rows(isa));
    let rs = pass.taps.0 * pass.taps.1;
    let (in_img, positions) = (pass.in_len(), pass.positions());
    let out_img = pass.groups * pass.rows * positions;
    let (a, blocks) = ws.split_at_mut(bp.a_len);
    let panels = pass.rows.div_ceil(mr);
    let a = &mut a[..pass.groups * panels * mr * pass.depth * rs];
    pass.pack_weights(w, mr, a);
    let a = &*a;
    let pos_len = pos_stride(pass.groups * panels * mr, nb);
    // Tasks of a block: ranges of output positions (each writes its own part of the
    // position-major output block), enough to keep every thread busy.
    let per_task = positions.div_ceil(TASKS_PER_WAVE.div_ceil(bp.wave).max(1));
    let wave_imgs = bp.wave * nb;
    for (sw, dw) in src
        .chunks(wave_imgs * in_img)
        .zip(dst.chunks_mut(wave_imgs * out_img))
    {
        let blocks = &mut blocks[..sw.len().div_ceil(nb * in_img) * bp.block_len];
        blocks
            .par_chunks_mut(bp.block_len)
            .zip(sw.par_chunks(nb * in_img))
            .for_each(|(blk, s)| {
                let bin = &mut blk[..in_img * nb];
                to_blocked(
                    isa,
                    s,
                    in_img / (pass.in_plane.0 * pass.in_plane.1),
                    nb,
                    bin,
                );
            });
        blocks.par_chunks_mut(bp.block_len).for_each(|blk| {
            let (bin, bout) = blk.split_at_mut(in_img * nb);
            let (bin, bout) = (&*bin, &mut bout[..positions * pos_len]);
            bout.par_chunks_mut(per_task * pos_len)
                .enumerate()
                .for_each(|(t, out)| {
                    let p0 = t * per_task;
                    let span = (p0, out.len() / pos_len);
                    let sweep_bytes = bp.sweep_bytes;
                    let task = TaskFn {
                        pass,
                        nb,
                        mr,
                        a,
                        b: bin,
                        out,
                        span,
                        sweep_bytes,
                    };
                    dispatch(isa, task);
                });
        });
        blocks
            .par_chunks(bp.block_len)
            .zip(dw.par_chunks_mut(nb * out_img))
            .for_each(|(blk, d)| {
                let bout = &blk[in_img * nb..][..positions * pos_len];
                from_blocked(isa, pass, bout, panels * mr, nb, bias, d);
            });
    }
}

/// Transposes images `[imgs][ch][plane]` into the block `[ch][plane][nb]` (lanes past the
/// images zero), channels in parallel.
fn to_blocked(isa: Isa, src: &[f32], ch: usize, nb: usize, dst: &mut [f32]) {
    let img = dst.len() / nb;
    let plane = img / ch.max(1);
    dst.par_chunks_mut(plane * nb)
        .enumerate()
        .for_each(|(c, d)| {
            let (src, channel) = (src, c * plane);
            dispatch(
                isa,
                ToBlocked {
                    src,
                    img,
                    channel,
                    nb,
                    d,
                },
            );
        });
}

/// One channel of [`to_blocked`].
struct ToBlocked<'a> {
    src: &'a [f32],
    img: usize,
    /// Offset of the channel in an image.
    channel: usize,
    nb: usize,
    /// The channel's block `[plane][nb]`.
    d: &'a mut [f32],
}

impl SimdFn<f32> for ToBlocked<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (nb, d) = (self.nb, self.d);
        let plane = d.len() / nb;
        let imgs = self.src.len() / self.img;
        let row = |lane: usize| &self.src[lane * self.img + self.channel..][..plane];
        let mut lane = 0;
        // 8 x 8 blocks: 8 images' runs of 8 positions become 8 positions' runs of 8 lanes.
        while lane + 8 <= imgs {
            let mut q = 0;
            while q + 8 <= plane {
                let t = transpose8x8::<V>(std::array::from_fn(|i| &row(lane + i)[q..]));
                for (j, t) in t.iter().enumerate() {
                    d[(q + j) * nb + lane..][..8].copy_from_slice(t);
                }
                q += 8;
            }
            for i in lane..lane + 8 {
                for (qq, &v) in row(i).iter().enumerate().skip(q) {
                    d[qq * nb + i] = v;
                }
            }
            lane += 8;
        }
        for i in lane..nb {
            for q in 0..plane {
                d[q * nb + i] = if i < imgs { row(i)[q] } else { 0.0 };
            }
        }
    }
}

/// Output rows per task of [`from_blocked`].
const OUT_CHUNKS: usize = 8;

/// Transposes the output block `[positions][groups * rows_pad + 1][nb]` into images
/// `[imgs][groups * rows][positions]`, adding the bias; ranges of rows in parallel.
fn from_blocked(
    isa: Isa,
    pass: &Pass,
    blk: &[f32],
    rows_pad: usize,
    nb: usize,
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    let positions = pass.positions();
    let rows = pass.groups * pass.rows;
    let per = rows.div_ceil(OUT_CHUNKS);
    let imgs = dst.len() / (rows * positions);
    // Each task writes one range of rows of every image: split each image accordingly.
    let mut parts: [[&mut [f32]; 16]; OUT_CHUNKS] = Default::default();
    for (lane, img) in dst.chunks_mut(rows * positions).enumerate() {
        let mut rest = img;
        for part in parts.iter_mut() {
            let (head, tail) = rest.split_at_mut((per * positions).min(rest.len()));
            part[lane] = head;
            rest = tail;
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .for_each(|(chunk, mut out)| {
            let row0 = chunk * per;
            for row in row0..(row0 + per).min(rows) {
                let (g, r) = (row / pass.rows, row % pass.rows);
                let s = &blk[(g * rows_pad + r) * nb..];
                let (bias, o0) = (bias.map_or(0.0, |b| b[row]), (row - row0) * positions);
                let out = &mut out[..imgs];
                let step = pos_stride(pass.groups * rows_pad, nb);
                dispatch(
                    isa,
                    FromBlocked {
                        s,
                        step,
                        positions,
                        bias,
                        out,
                        o0,
                    },
                );
            }
        });
}

/// One output row of [`from_blocked`].
struct FromBlocked<'a, 'b> {
    /// The row's `nb` lanes of each position, `step` apart.
    s: &'a [f32],
    step: usize,
    positions: usize,
    bias: f32,
    /// Per image, its part of the output; the row starts at `o0`.
    out: &'a mut [&'b mut [f32]],
    o0: usize,
}

impl SimdFn<f32> for FromBlocked<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (s, b, o0) = (self.s, self.bias, self.o0);
        let (out, positions, step) = (self.out, self.positions, self.step);
        let imgs = out.len();
        let mut lane = 0;
        while lane + 8 <= imgs {
            let mut q = 0;
            while q + 8 <= positions {
                let rows8 = std::array::from_fn(|i| &s[(q + i) * step + lane..]);
                for (j, t) in transpose8x8::<V>(rows8).iter().enumerate() {
                    let o = &mut out[lane + j][o0 + q..o0 + q + 8];
                    o.iter_mut().zip(t).for_each(|(o, &v)| *o = v + b);
                }
                q += 8;
            }
            for i in lane..lane + 8 {
                for qq in q..positions {
                    out[i][o0 + qq] = s[qq * step + i] + b;
                }
            }
            lane += 8;
        }
        for (i, o) in out.iter_mut().enumerate().skip(lane) {
            for (qq, o) in o[o0..o0 + positions].iter_mut().enumerate() {
                *o = s[qq * step + i] + b;
            }
        }
    }
}

/// A range of output positions of one block, every output row.
struct TaskFn<'a> {
    pass: &'a Pass,
    nb: usize,
    mr: usize,
    /// Packed weights `[group][panel][depth][r][s][mr]`.
    a: &'a [f32],
    /// The block's input `[groups * depth][plane][nb]`.
    b: &'a [f32],
    /// The task's output `[positions][groups * panels * mr + 1][nb]` ([`pos_stride`]).
    out: &'a mut [f32],
    /// First position and number of positions.
    span: (usize, usize),
    sweep_bytes: usize,
}

impl SimdFn<f32> for TaskFn<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        match V::LANES {
            16 => self.run::<V, 16, 1, 8>(),
            8 => self.run::<V, 6, 2, 0>(),
            1 => self.run::<V, 2, 16, 0>(),
            _ => unreachable!("no tile for {} lanes", V::LANES),
        }
    }
}

impl TaskFn<'_> {
    #[inline(always)]
    /// Tiles of `MR` rows at one position, or (`PAIR_ROWS > 0`, dividing `MR`) of
    /// `PAIR_ROWS` rows at two positions where two neighbours walk the same taps.
    fn run<V: Vector<Elem = f32>, const MR: usize, const NRV: usize, const PAIR_ROWS: usize>(self) {
        let (pass, nb) = (self.pass, self.nb);
        let (r, s) = pass.taps;
        let (ih, iw) = pass.in_plane;
        let ow = pass.out_plane.1;
        let (p0, count) = self.span;
        let panels = pass.rows.div_ceil(MR);
        let a_chan = r * s * MR;
        let b_chan = ih * iw * nb;
        let panel_a = pass.depth * a_chan;
        let group_b = pass.depth * b_chan;
        let pos_out = pos_stride(pass.groups * panels * MR, nb);
        // The tile's reads and writes stay inside these (see the SAFETY note below).
        assert!(self.mr == MR && NRV * V::LANES == nb);
        assert_eq!(self.a.len(), pass.groups * panels * panel_a);
        assert_eq!(self.b.len(), pass.groups * group_b);
        assert_eq!(self.out.len(), count * pos_out);
        // Channels per sweep over the positions: a panel's weights for them stay in L1 while
        // the positions' input vectors stream by (from L2, reused by every panel).
        // Balanced: 32 channels of 28 per sweep run as 16 + 16, not 28 + 4 (a short sweep
        // pays the tiles' load and store of their accumulators for little work).
        let sweep = (self.sweep_bytes / (a_chan * 4)).clamp(1, pass.depth.max(1));
        let sweep = pass
            .depth
            .div_ceil(pass.depth.div_ceil(sweep).max(1))
            .max(1);
        let (a_ptr, b_ptr, out_ptr) = (self.a.as_ptr(), self.b.as_ptr(), self.out.as_mut_ptr());
        let (row_walks, col_walks) = (Walks::new(pass.axes[0]), Walks::new(pass.axes[1]));
        for g in 0..pass.groups {
            for j0 in (0..pass.depth).step_by(sweep) {
                let chans = sweep.min(pass.depth - j0);
                for panel in 0..panels {
                    let gp = g * panels + panel;
                    let mut q = 0;
                    while q < count {
                        let (orow, ocol) = ((p0 + q) / ow, (p0 + q) % ow);
                        let (wr, wc) = (row_walks.get(orow), col_walks.get(ocol));
                        let row_walk =
                            (wr.count, wr.t_step * s * MR, wr.i_step * (iw * nb) as isize);
                        let col_walk = (wc.count, wc.t_step * MR, wc.i_step * nb as isize);
                        let a0 = gp * panel_a + j0 * a_chan + (wr.t0 * s + wc.t0) * MR;
                        let b0 = g * group_b + j0 * b_chan + (wr.i0 * iw + wc.i0) * nb;
                        let o0 = q * pos_out + gp * MR * nb;
                        let chans = if wr.count == 0 || wc.count == 0 {
                            0
                        } else {
                            chans
                        };
                        let args = |rows: usize, b_next: isize| TileArgs {
                            a: a_ptr.wrapping_add(a0 + rows),
                            b: b_ptr.wrapping_add(b0),
                            b_next,
                            depth: chans,
                            chan: (a_chan, b_chan),
                            row_walk,
                            col_walk,
                            out: out_ptr.wrapping_add(o0 + rows * nb),
                            out_row: nb,
                            out_next: pos_out,
                            accumulate: j0 > 0,
                        };
                        // With wide vectors, the next position of the row if it walks the same
                        // taps (an interior one): two positions by half the rows, per tap two
                        // B loads and 8 broadcasts for 16 FMAs instead of 1 and 16 (as the
                        // GEMM's 8 x 32 tile against 16 x 16). MNIST's second layer at 1
                        // thread (thread clock, 6 alternating rounds, Zen 5): forward
                        // 1.75-2.04 -> 1.49-1.63 ms, backward-data 1.72-1.91 -> 1.57-1.65.
                        let next = (PAIR_ROWS > 0 && q + 1 < count && ocol + 1 < ow)
                            .then(|| col_walks.get(ocol + 1))
                            .filter(|w1| {
                                (w1.t0, w1.count, w1.t_step, w1.i_step)
                                    == (wc.t0, wc.count, wc.t_step, wc.i_step)
                            });
                        // SAFETY: the walks only visit taps `t < r` (`< s`) and inputs
                        // `i < ih` (`< iw`) (`Axis::walk`), and channels `j0 + j < depth`, so
                        // A reads stay inside panel `gp` and B reads inside group `g`, within
                        // the lengths asserted above; the tile's `MR` rows of `nb` at `o0` are
                        // inside position `q`'s part of `out` (and of `q + 1`'s, paired:
                        // the same taps, their inputs `b_next` further, inside as well).
                        match next {
                            Some(w1) => {
                                let b_next = (w1.i0 as isize - wc.i0 as isize) * nb as isize;
                                for rows in (0..MR).step_by(PAIR_ROWS) {
                                    unsafe { tile::<V, PAIR_ROWS, NRV, 2>(args(rows, b_next)) };
                                }
                                q += 2;
                            }
                            None => {
                                unsafe { tile::<V, MR, NRV, 1>(args(0, 0)) };
                                q += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where one register tile reads and writes (see [`tile`]).
struct TileArgs {
    /// The weights of its first row at its first tap, rows contiguous.
    a: *const f32,
    /// The input vector of its first position at its first tap; the next position's is
    /// `b_next` further.
    b: *const f32,
    b_next: isize,
    /// Channels, and the distance between channels in A and B.
    depth: usize,
    chan: (usize, usize),
    /// The row and column walks: `(taps, a_step, b_step)`.
    row_walk: (usize, usize, isize),
    col_walk: (usize, usize, isize),
    /// Its output: row `m` at `out + m * out_row`, the next position `out_next` further;
    /// `accumulate` adds to it instead of overwriting.
    out: *mut f32,
    out_row: usize,
    out_next: usize,
    accumulate: bool,
}

/// One register tile: `out[p][m][lane] (+)= sum over channels j < depth, row taps, column
/// taps of a[m] * b[p][lane]` for `P` positions that walk the same taps, `a` and `b`
/// advancing by the walks' steps, in that fixed order. Accumulating continues the same sum
/// in the same order (the partial round-trips through memory exactly), so sweeping the
/// channels in pieces gives the bits of one sweep, and a position gets the same bits
/// whether it is computed alone or beside another.
///
/// # Safety
/// Every `a + j * a_chan + u * ar + v * ac + m` (`m < MR`) and `b + p * b_next + j * b_chan +
/// u * br + v * bc + lane` (`p < P`, `lane < NRV * LANES`) the walks reach is readable;
/// `out + p * out_next + m * out_row + lane` is readable and writable.
#[inline(always)]
unsafe fn tile<V: Vector<Elem = f32>, const MR: usize, const NRV: usize, const P: usize>(
    t: TileArgs,
) {
    let ((a_chan, b_chan), (rc, ar, br), (cc, ac, bc)) = (t.chan, t.row_walk, t.col_walk);
    let at = |p: usize, m: usize, v: usize| {
        t.out
            .wrapping_add(p * t.out_next + m * t.out_row + v * V::LANES)
    };
    let mut acc = [[[V::zero(); NRV]; P]; MR];
    if t.accumulate {
        for (m, row) in acc.iter_mut().enumerate() {
            for (p, pos) in row.iter_mut().enumerate() {
                for (v, acc) in pos.iter_mut().enumerate() {
                    // SAFETY: inside the tile (the caller's contract).
                    *acc = unsafe { V::load(at(p, m, v)) };
                }
            }
        }
    }
    for j in 0..t.depth {
        let (aj, bj) = (t.a.wrapping_add(j * a_chan), t.b.wrapping_add(j * b_chan));
        for u in 0..rc {
            let mut ap = aj.wrapping_add(u * ar);
            let mut bp = bj.wrapping_offset(u as isize * br);
            for _ in 0..cc {
                let mut bv = [[V::zero(); NRV]; P];
                for (p, bv) in bv.iter_mut().enumerate() {
                    let bq = bp.wrapping_offset(p as isize * t.b_next);
                    for (v, bv) in bv.iter_mut().enumerate() {
                        // SAFETY: a tap the walk reaches (the caller's contract).
                        *bv = unsafe { V::load(bq.add(v * V::LANES)) };
                    }
                }
                for (m, row) in acc.iter_mut().enumerate() {
                    // SAFETY: as above.
                    let av = V::splat(unsafe { *ap.add(m) });
                    for (pos, bv) in row.iter_mut().zip(&bv) {
                        for (acc, bv) in pos.iter_mut().zip(bv) {
                            *acc = av.mul_add(*bv, *acc);
                        }
                    }
                }
                ap = ap.wrapping_add(ac);
                bp = bp.wrapping_offset(bc);
            }
        }
    }
    for (m, row) in acc.iter().enumerate() {
        for (p, pos) in row.iter().enumerate() {
            for (v, acc) in pos.iter().enumerate() {
                // SAFETY: inside the tile (the caller's contract).
                unsafe { acc.store(at(p, m, v)) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::with_isa;

    /// Sweeping the channels one at a time (every tile accumulating through memory) gives
    /// the bits of the default sweep, on every ISA, both passes, with and without bias and
    /// padding; and one block per wave gives the bits of all blocks at once. (The values
    /// against the reference: `kernels/tests/conv.rs`, `batch_blocked_matches_reference`.)
    /// The closed-form walks list exactly the taps inside, for every output of many axes
    /// (strides, dilations, paddings, both directions).
    #[test]
    fn closed_form_walks_match_tap_search() {
        for dir in [Dir::Forward, Dir::Adjoint] {
            for (stride, dilation, pad, taps, len) in axes() {
                let axis = Axis {
                    dir,
                    stride,
                    pad,
                    dilation,
                    taps,
                    len,
                };
                // Outputs up to past the padded extent (walks there are empty).
                for o in 0..len + 2 * pad + 3 {
                    let w = axis.walk(o);
                    let listed: Vec<(usize, usize)> = (0..w.count)
                        .map(|n| {
                            let t = w.t0 + n * w.t_step;
                            (t, (w.i0 as isize + n as isize * w.i_step) as usize)
                        })
                        .collect();
                    let inside: Vec<(usize, usize)> = (0..taps)
                        .filter_map(|t| axis.input(o, t).map(|i| (t, i)))
                        .collect();
                    assert_eq!(listed, inside, "{axis:?} o {o}");
                }
            }
        }
    }

    fn axes() -> Vec<(usize, usize, usize, usize, usize)> {
        let mut v = Vec::new();
        for stride in 1..=4 {
            for dilation in 1..=4 {
                for pad in 0..=4 {
                    for taps in 1..=5 {
                        for len in 1..=9 {
                            v.push((stride, dilation, pad, taps, len));
                        }
                    }
                }
            }
        }
        v
    }

    #[test]
    fn sweeps_and_waves_do_not_change_bits() {
        let shapes = [
            Conv2dParams::builder(20, 32, 6, 5, 32, 3, 3).pad(1, 0),
            Conv2dParams::builder(33, 28, 7, 7, 16, 2, 3)
                .stride(2, 1)
                .dilation(1, 2),
        ];
        for b in shapes {
            let p = b.build().unwrap();
            let value = |i: usize| ((i * 7919) % 1999) as f32 / 1000.0 - 1.0;
            let (x, w): (Vec<f32>, Vec<f32>) = (
                (0..p.input_len()).map(value).collect(),
                (0..p.weight_len()).map(|i| value(i + 5)).collect(),
            );
            let (dy, bias): (Vec<f32>, Vec<f32>) = (
                (0..p.output_len()).map(|i| value(i + 11)).collect(),
                (0..p.k).map(value).collect(),
            );
            let run_both = |bp: &BlockedPlan| {
                let mut ws = vec![f32::NAN; bp.workspace_len()];
                let (mut y, mut dx) = (vec![0.0; p.output_len()], vec![0.0; p.input_len()]);
                run(
                    &Pass::new(&p, Dir::Forward),
                    bp,
                    &x,
                    &w,
                    Some(&bias),
                    &mut y,
                    &mut ws,
                );
                run(
                    &Pass::new(&p, Dir::Adjoint),
                    bp,
                    &dy,
                    &w,
                    None,
                    &mut dx,
                    &mut ws,
                );
                [y, dx].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            };
            let base = sizes(&p).unwrap();
            let mut narrow = BlockedPlan {
                sweep_bytes: 1,
                ..base
            };
            narrow.limit_wave(NB);
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                let (a, b) = with_isa(isa, || (run_both(&base), run_both(&narrow)));
                assert!(a == b, "{isa:?} {p:?}");
            }
        }
    }
}
