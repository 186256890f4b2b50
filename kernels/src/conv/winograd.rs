//! Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", CVPR 2016): the native forward and backward-data passes of 3x3, stride-1,
//! undilated convolutions.
//!
//! Why: the direct paths run these shapes near the FMA peak, so what is left to gain is in the
//! number of multiplies. A 2x2 block of outputs (a "tile") of one output channel is
//! `A^T [sum over input channels of (G g G^T) * (B^T d B)] A`, with `d` the tile's 4x4 input
//! patch, `g` the 3x3 filter and `*` elementwise. Summed over channels in the transformed
//! domain, the pass becomes 16 independent matrix products, one per element `e` of the 4x4
//! transformed tile: `M[e] = U[e] V[e]` (`U[e]`: output x input channels, the transformed
//! weights; `V[e]`: input channels x tiles, the transformed input). That is 16 multiplies per
//! channel pair and tile instead of 36 (2.25 times fewer; fewer saved where tiles overhang an
//! odd output edge).
//!
//! Backward-data is the forward pass of the adjoint convolution: `dy` padded by `2 - pad`
//! into `dx`, the weights transposed per group and flipped. Only the weight transform differs.
//!
//! Layout: channels in the vector lanes. A task (some tile rows of one image) first copies its
//! input rows channels-last into a zero-padded block, so the input transform of a tile reads
//! its 4x4 patch as 16 vectors of channels and writes `V[e][t][c]` in whole vectors, however
//! narrow the image. The products broadcast `V` (`MR` tiles) against vectors of `U[e][c][k]`
//! (output channels in the lanes) into `M[e][t][k]`; the output transform writes a
//! channels-last block of the outputs, copied into the NCHW output at the end. (A first
//! version kept tiles in the lanes, vectors along tile rows: on 13x13 planes its transforms,
//! mostly partial vectors and short copies, took 60% of the time and it lost to the direct
//! path.) No result depends on how the tiles are split into tasks or tasks over threads.
//!
//! Numerics: the transforms add, subtract and halve, so results differ from the plain sums by
//! rounding: within a small multiple of the plain sums' error bound, taken over the 4x4 input
//! patch instead of the 3x3 window. Integer-valued data small enough is exact (the tests
//! check that bit for bit). A NaN input reaches exactly the outputs whose window holds it, as
//! in the plain sums. An infinite input or weight may give NaN where the plain sum gives an
//! infinity (`inf - inf` in the transforms). A NaN or infinite weight also reaches outputs
//! whose tap lies in the padding (`0 * inf`), as on the im2col GEMM path.

use super::blocked::fills;
use super::params::{Conv2dParams, WS_BUDGET};
use crate::error::checked_product;
use crate::gemm::SharedPtr;
use crate::simd::{dispatch, transpose8x8, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Elements of a transformed 4x4 tile.
const E: usize = 16;
/// Channels are padded to a multiple of this (the widest vector) in `V`, `U` and `M`.
const LANES_MAX: usize = 16;
/// f32 elements of one task's `V` and `M` the task size aims at: both stay in L2 while the 16
/// products run over them.
const TASK_BUDGET: usize = 160 << 10;
/// Task slots, each working through its share of the tasks in order (its buffers stay
/// warm); enough to keep the threads of a small pool busy whatever the task count.
const SLOTS: usize = 8;
/// Elements of `U` that stay in L2 (256 KiB) next to a task's buffers.
const U_IN_L2: usize = 64 << 10;
/// Fewest input and output channels per group: below, the transforms cost more than the
/// multiplies they save.
const MIN_CHANNELS: usize = 16;

/// The plan: a function of the shape only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WinogradPlan {
    /// Whether the native forward (backward-data) pass runs here.
    pub(crate) forward: bool,
    pub(crate) backward_data: bool,
    /// Transformed weights (the larger pass's), then per slot its buffers.
    u_len: usize,
    slot_len: usize,
    pub(crate) slots: usize,
}

impl WinogradPlan {
    pub(crate) fn workspace_len(&self) -> usize {
        self.u_len + self.slots * self.slot_len
    }
}

/// One pass as a forward convolution.
#[derive(Clone, Copy, Debug)]
struct Job {
    n: usize,
    groups: usize,
    /// Input and output channels per group, and both padded to [`LANES_MAX`].
    cin: usize,
    kout: usize,
    cpad: usize,
    kpad: usize,
    /// Input and output planes (height, width).
    input: (usize, usize),
    output: (usize, usize),
    /// Top and left zero padding (the bottom and right follow from the planes).
    pad: (usize, usize),
    /// Tile rows and columns per image.
    tiles: (usize, usize),
    /// Tile rows per task (tasks do not cross images).
    rows: usize,
    /// Backward-data: the pass's weights are the convolution's transposed and flipped.
    adjoint: bool,
}

impl Job {
    /// The pass of `p` (forward, or backward-data when `adjoint`; then every pad is at most 2).
    fn new(p: &Conv2dParams, adjoint: bool) -> Job {
        let (cg, kg) = (p.c / p.groups, p.k / p.groups);
        let (cin, kout, input, output, pad) = if adjoint {
            (kg, cg, (p.oh, p.ow), (p.h, p.w), (2 - p.pad.0, 2 - p.pad.2))
        } else {
            (cg, kg, (p.h, p.w), (p.oh, p.ow), (p.pad.0, p.pad.2))
        };
        let tiles = (output.0.div_ceil(2), output.1.div_ceil(2));
        let mut job = Job {
            n: p.n,
            groups: p.groups,
            cin,
            kout,
            cpad: cin.next_multiple_of(LANES_MAX),
            kpad: kout.next_multiple_of(LANES_MAX),
            input,
            output,
            pad,
            tiles,
            rows: 1,
            adjoint,
        };
        let per_row = E * job.groups * (job.cpad + job.kpad) * tiles.1;
        job.rows = (TASK_BUDGET / per_row.max(1)).clamp(1, tiles.0.max(1));
        job
    }

    /// Channels of `V` per tile (all groups), and of `M`.
    fn cs(&self) -> usize {
        self.groups * self.cpad
    }
    fn ks(&self) -> usize {
        self.groups * self.kpad
    }

    /// Tasks per image, and in all.
    fn per_image(&self) -> usize {
        self.tiles.0.div_ceil(self.rows)
    }
    fn tasks(&self) -> usize {
        self.n * self.per_image()
    }

    /// Whether the pass gains here (`None` on overflow): each task's products read all of
    /// `U` once, so a task of few tiles (small planes) with a `U` larger than L2 streams it
    /// from L3 for little work. 32 images of 256 -> 256 channels at 7x7 (16 tiles per task,
    /// 4 MiB of `U`), 2 threads: forward 6.3-7.0 ms against 5.6-6.5 on the batch-blocked
    /// direct path, backward-data about even; 64 images of 32 -> 64 at 13x13 (36 tiles,
    /// 128 KiB): forward 0.66 against 1.1 ms.
    fn pays(&self) -> Option<bool> {
        Some(self.rows * self.tiles.1 >= 32 || self.u_len()? <= U_IN_L2)
    }

    /// Elements of the transformed weights `[groups][cin][E][kpad]`.
    fn u_len(&self) -> Option<usize> {
        checked_product("", &[self.groups, E, self.cin, self.kpad]).ok()
    }

    /// Elements of a task's buffers: `V` (`[E][tiles][cs]`), `M` (`[E][tiles][ks]`), the
    /// padded channels-last input rows (`[2 rows + 2][2 tile columns + 2][cs]`), the
    /// channels-last output rows (`[2 rows][2 tile columns + 2][ks]`) and the bias in `M`'s
    /// channel layout (`[ks]`).
    fn slot_len(&self) -> Option<usize> {
        let tiles = self.rows.checked_mul(self.tiles.1)?;
        let v = checked_product("", &[E, tiles, self.cs()]).ok()?;
        let m = checked_product("", &[E, tiles, self.ks()]).ok()?;
        let cols = 2 * self.tiles.1 + 2;
        let x = checked_product("", &[2 * self.rows + 2, cols, self.cs()]).ok()?;
        let y = checked_product("", &[2 * self.rows, cols, self.ks()]).ok()?;
        v.checked_add(m)?
            .checked_add(x)?
            .checked_add(y)?
            .checked_add(self.ks())
    }
}

/// The plan for `p`, if either native pass runs here: a 3x3, stride-1, undilated, not
/// depthwise convolution with at least [`MIN_CHANNELS`] input and output channels per group,
/// filling vectors of 16 to seven eighths (backward-data: also padding at most 2 on every
/// side), where it gains ([`Job::pays`]), and whose transformed weights and one task slot
/// fit the workspace budget.
pub(crate) fn plan(p: &Conv2dParams) -> Option<WinogradPlan> {
    let (cg, kg) = (p.c / p.groups, p.k / p.groups);
    let applies = p.r == 3
        && p.s == 3
        && p.stride == (1, 1)
        && p.dilation == (1, 1)
        && !p.is_depthwise()
        && p.n > 0
        && p.oh > 0
        && p.ow > 0
        && cg >= MIN_CHANNELS
        && kg >= MIN_CHANNELS
        && fills(cg, LANES_MAX)
        && fills(kg, LANES_MAX);
    if !applies {
        return None;
    }
    let (pt, pb, pl, pr) = p.pad;
    // (The adjoint's padding is 2 - pad: only for pads of at most 2.)
    let fwd = Some(Job::new(p, false)).filter(|j| j.pays() == Some(true));
    let bwd = (pt.max(pb).max(pl).max(pr) <= 2)
        .then(|| Job::new(p, true))
        .filter(|j| j.pays() == Some(true));
    let (forward, backward_data) = (fwd.is_some(), bwd.is_some());
    if !forward && !backward_data {
        return None;
    }
    let jobs = [fwd, bwd];
    let (mut u_len, mut slot_len, mut tasks) = (0, 0, 1);
    for job in jobs.iter().flatten() {
        u_len = u_len.max(job.u_len()?);
        slot_len = slot_len.max(job.slot_len()?);
        tasks = tasks.max(job.tasks());
    }
    if u_len.checked_add(slot_len)? > WS_BUDGET {
        return None;
    }
    let slots = ((WS_BUDGET - u_len) / slot_len).clamp(1, SLOTS.min(tasks));
    Some(WinogradPlan {
        forward,
        backward_data,
        u_len,
        slot_len,
        slots,
    })
}

/// Forward pass: `y = conv(x, w) + bias`.
pub(crate) fn forward(
    p: &Conv2dParams,
    wp: &WinogradPlan,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) {
    run(&Job::new(p, false), wp, x, w, bias, y, ws);
}

/// Backward-data pass: `dx` from `dy`.
pub(crate) fn backward_data(
    p: &Conv2dParams,
    wp: &WinogradPlan,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) {
    run(&Job::new(p, true), wp, dy, w, None, dx, ws);
}

/// Runs `job` over the batch: `src` its input images, `dst` its output images.
fn run(
    job: &Job,
    wp: &WinogradPlan,
    src: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
    ws: &mut [f32],
) {
    let isa = Isa::active();
    let (u, slots) = ws.split_at_mut(wp.u_len);
    let u = &mut u[..job.u_len().expect("the plan checked the size")];
    transform_weights(job, w, u);
    let u = &*u;
    let (ih, iw) = job.input;
    let (oh, ow) = job.output;
    assert_eq!(src.len(), job.n * job.groups * job.cin * ih * iw);
    assert_eq!(dst.len(), job.n * job.groups * job.kout * oh * ow);
    let tasks = job.tasks();
    let per_slot = tasks.div_ceil(wp.slots.min(tasks).max(1));
    let out = SharedPtr(dst.as_mut_ptr());
    slots
        .par_chunks_mut(wp.slot_len)
        .take(tasks.div_ceil(per_slot))
        .enumerate()
        .for_each(|(s, slot)| {
            for t in s * per_slot..((s + 1) * per_slot).min(tasks) {
                let (img, part) = (t / job.per_image(), t % job.per_image());
                let ty0 = part * job.rows;
                let task = TaskFn {
                    job,
                    u,
                    src,
                    bias,
                    out,
                    img,
                    rows: (ty0, (ty0 + job.rows).min(job.tiles.0)),
                    slot: &mut *slot,
                };
                dispatch(isa, task);
            }
        });
}

/// Fills `u` (`[groups][cin][E][kpad]`, channels past `kout` zero) with `G g G^T` for every
/// filter `g` of the pass, input channels in parallel (each a contiguous block).
fn transform_weights(job: &Job, w: &[f32], u: &mut [f32]) {
    let (cin, kout, kpad) = (job.cin, job.kout, job.kpad);
    u.par_chunks_mut(E * kpad)
        .enumerate()
        .for_each(|(gc, block)| {
            let (g, c) = (gc / cin, gc % cin);
            for kk in 0..kpad {
                let t = if kk < kout {
                    transform_filter(&filter(job, w, g, kk, c))
                } else {
                    [0.0; E]
                };
                for (e, v) in t.iter().enumerate() {
                    block[e * kpad + kk] = *v;
                }
            }
        });
}

/// The pass's 3x3 filter from its input channel `c` to its output channel `kk` of group `g`.
fn filter(job: &Job, w: &[f32], g: usize, kk: usize, c: usize) -> [f32; 9] {
    let mut f = [0.0; 9];
    if job.adjoint {
        // Convolution output channel g * cin + c, input channel kk of the group, flipped.
        let taps = &w[((g * job.cin + c) * job.kout + kk) * 9..][..9];
        for (f, t) in f.iter_mut().zip(taps.iter().rev()) {
            *f = *t;
        }
    } else {
        f.copy_from_slice(&w[((g * job.kout + kk) * job.cin + c) * 9..][..9]);
    }
    f
}

/// `G f G^T` (4x4, row-major) of a 3x3 filter, with `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2;
/// 0 0 1]`.
fn transform_filter(f: &[f32; 9]) -> [f32; E] {
    let g = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let cols = [0, 1, 2].map(|j| g(f[j], f[3 + j], f[6 + j]));
    let mut u = [0.0; E];
    for i in 0..4 {
        u[4 * i..4 * i + 4].copy_from_slice(&g(cols[0][i], cols[1][i], cols[2][i]));
    }
    u
}

/// One task: tile rows `rows` of image `img`, through one slot.
struct TaskFn<'a> {
    job: &'a Job,
    u: &'a [f32],
    src: &'a [f32],
    bias: Option<&'a [f32]>,
    /// The pass's output; this task writes only its tiles' outputs.
    out: SharedPtr<f32>,
    img: usize,
    rows: (usize, usize),
    slot: &'a mut [f32],
}

impl SimdFn<f32> for TaskFn<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        match V::LANES {
            16 => self.run::<V, 12>(),
            8 => self.run::<V, 6>(),
            1 => self.run::<V, 4>(),
            _ => unreachable!("no tile for {} lanes", V::LANES),
        }
    }
}

impl TaskFn<'_> {
    #[inline(always)]
    fn run<V: Vector<Elem = f32>, const MR: usize>(self) {
        let job = self.job;
        let tiles = (self.rows.1 - self.rows.0) * job.tiles.1;
        let tiles_max = job.rows * job.tiles.1;
        let cols = 2 * job.tiles.1 + 2;
        let (v, rest) = self.slot.split_at_mut(E * tiles_max * job.cs());
        let (m, rest) = rest.split_at_mut(E * tiles_max * job.ks());
        let (x, rest) = rest.split_at_mut((2 * job.rows + 2) * cols * job.cs());
        let (y, rest) = rest.split_at_mut(2 * job.rows * cols * job.ks());
        // The bias in the layout of M's channels (zeros past each group's).
        let bias = self.bias.map(|b| {
            let bias_pad = &mut rest[..job.ks()];
            bias_pad.fill(0.0);
            for (gb, b) in bias_pad
                .chunks_exact_mut(job.kpad)
                .zip(b.chunks_exact(job.kout))
            {
                gb[..job.kout].copy_from_slice(b);
            }
            &*bias_pad
        });
        load_input::<V>(job, self.src, self.img, self.rows, x);
        transform_input::<V>(job, x, tiles, v);
        products::<V, MR>(job, self.u, v, m, tiles);
        transform_output::<V>(job, m, bias, tiles, y);
        store_output::<V>(job, y, self.img, self.rows, self.out);
    }
}

/// Copies the input rows of tile rows `ty0..ty1` of image `img` channels-last into `x`
/// (`[2 * rows + 2][2 * tile columns + 2][cs]`): padded row `yy`, column `xx` is input row
/// `2 * ty0 + yy - pt`, column `xx - pl`; zeros outside the input and past each group's
/// channels.
#[inline(always)]
fn load_input<V: Vector<Elem = f32>>(
    job: &Job,
    src: &[f32],
    img: usize,
    (ty0, ty1): (usize, usize),
    x: &mut [f32],
) {
    let (ih, iw) = job.input;
    let (pt, pl) = job.pad;
    let (cs, cols) = (job.cs(), 2 * job.tiles.1 + 2);
    let x = &mut x[..(2 * (ty1 - ty0) + 2) * cols * cs];
    x.fill(0.0);
    let (chans, plane) = (job.groups * job.cin, ih * iw);
    let src = &src[img * chans * plane..][..chans * plane];
    for (yy, xrow) in x.chunks_exact_mut(cols * cs).enumerate() {
        let Some(y) = (2 * ty0 + yy).checked_sub(pt).filter(|&y| y < ih) else {
            continue;
        };
        for g in 0..job.groups {
            // pl + iw <= cols: the output width 2 * tile columns >= iw + pl + pr - 2.
            let d = &mut xrow[pl * cs + g * job.cpad..][..(iw - 1) * cs + job.cin];
            let s = &src[g * job.cin * plane + y * iw..][..(job.cin - 1) * plane + iw];
            // SAFETY: element (c, x) of the group's rows is s[c * plane + x], written to
            // d[x * cs + c], c < cin, x < iw: inside both slices as sized above.
            unsafe { transpose::<V>(s.as_ptr(), plane, d.as_mut_ptr(), cs, (job.cin, iw)) };
        }
    }
}

/// `dst[j * sd + i] = src[i * sa + j]` for `i < a`, `j < b`: blocks of 8 x 8 (AVX2 shuffles
/// in a vector context), the last block of each axis overlapping the one before (the same
/// values written again), scalar where an axis is shorter than 8.
///
/// # Safety
/// Those elements of `src` are readable and those of `dst` writable, and no other reference
/// to them is alive.
#[inline(always)]
unsafe fn transpose<V: Vector<Elem = f32>>(
    src: *const f32,
    sa: usize,
    dst: *mut f32,
    sd: usize,
    (a, b): (usize, usize),
) {
    if a < 8 || b < 8 {
        for i in 0..a {
            for j in 0..b {
                // SAFETY: the caller's contract.
                unsafe { *dst.add(j * sd + i) = *src.add(i * sa + j) };
            }
        }
        return;
    }
    let starts = |n: usize| (0..n.div_ceil(8)).map(move |q| (8 * q).min(n - 8));
    for i0 in starts(a) {
        for j0 in starts(b) {
            let mut rows: [&[f32]; 8] = [&[]; 8];
            for (i, row) in rows.iter_mut().enumerate() {
                // SAFETY: rows i0 + i < a, columns j0 .. j0 + 8 <= b (the caller's contract).
                // (A loop, not `array::from_fn`: its closure is compiled outside the
                // target-feature function, a call per row.)
                *row = unsafe { std::slice::from_raw_parts(src.add((i0 + i) * sa + j0), 8) };
            }
            for (j, col) in transpose8x8::<V>(rows).iter().enumerate() {
                // SAFETY: as above, for dst.
                unsafe {
                    std::ptr::copy_nonoverlapping(col.as_ptr(), dst.add((j0 + j) * sd + i0), 8)
                };
            }
        }
    }
}

/// `V[e][t][c]` of the task's `tiles` tiles: `B^T d B` of each tile's 4x4 input patch `d`,
/// `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`, in vectors of channels.
#[inline(always)]
fn transform_input<V: Vector<Elem = f32>>(job: &Job, x: &[f32], tiles: usize, v: &mut [f32]) {
    let (cs, tx_n) = (job.cs(), job.tiles.1);
    let cols = 2 * tx_n + 2;
    let (row, plane) = (cols * cs, tiles * cs);
    assert!(x.len() >= (2 * tiles / tx_n + 2) * row && v.len() >= E * plane);
    for t in 0..tiles {
        let (ty, tx) = (t / tx_n, t % tx_n);
        let base = 2 * ty * row + 2 * tx * cs;
        for cb in (0..cs).step_by(V::LANES) {
            let mut d = [[V::zero(); 4]; 4];
            for (i, d) in d.iter_mut().enumerate() {
                for (j, d) in d.iter_mut().enumerate() {
                    // SAFETY: row 2 * ty + i < 2 * rows + 2, column 2 * tx + j < cols, channel
                    // cb + lane < cs: inside x (asserted above).
                    *d = unsafe { V::load(x.as_ptr().add(base + i * row + j * cs + cb)) };
                }
            }
            let mut r = [[V::zero(); 4]; 4];
            for j in 0..4 {
                r[0][j] = d[0][j].sub(d[2][j]);
                r[1][j] = d[1][j].add(d[2][j]);
                r[2][j] = d[2][j].sub(d[1][j]);
                r[3][j] = d[1][j].sub(d[3][j]);
            }
            for (a, r) in r.iter().enumerate() {
                let vals = [
                    r[0].sub(r[2]),
                    r[1].add(r[2]),
                    r[2].sub(r[1]),
                    r[1].sub(r[3]),
                ];
                for (b, val) in vals.iter().enumerate() {
                    // SAFETY: e < E, t < tiles, cb + lane < cs: inside v (asserted above).
                    unsafe { val.store(v.as_mut_ptr().add((4 * a + b) * plane + t * cs + cb)) };
                }
            }
        }
    }
}

/// `M[e][t][k] = sum over c (in order) of V[e][t][c] U[e][c][k]` for the task's tiles, per
/// group, in register tiles of `MR` tiles by two vectors of output channels.
#[inline(always)]
fn products<V: Vector<Elem = f32>, const MR: usize>(
    job: &Job,
    u: &[f32],
    v: &[f32],
    m: &mut [f32],
    tiles: usize,
) {
    let (cin, cs, ks, kpad) = (job.cin, job.cs(), job.ks(), job.kpad);
    let lanes = V::LANES;
    // The tiles' reads and writes stay inside these (see the SAFETY note below).
    assert_eq!(u.len(), job.groups * E * cin * kpad);
    assert!(v.len() >= E * tiles * cs && m.len() >= E * tiles * ks);
    let (u, v, m) = (u.as_ptr(), v.as_ptr(), m.as_mut_ptr());
    for g in 0..job.groups {
        for e in 0..E {
            let ue = u.wrapping_add((g * cin * E + e) * kpad);
            let ve = v.wrapping_add(e * tiles * cs + g * job.cpad);
            let me = m.wrapping_add(e * tiles * ks + g * kpad);
            let mut k = 0;
            while k < kpad {
                let nt = if k + 2 * lanes <= kpad { 2 } else { 1 };
                let mut t = 0;
                while t < tiles {
                    // AVX-512 (MR 12 of 32 registers) takes one or two tiles past MR into the
                    // last register tile (28 accumulators): alone, a one-tile remainder
                    // waits on its FMAs' latency (7x7 tiles per image: 49 = 4 * 12 + 1).
                    let left = tiles - t;
                    let mr = if MR == 12 && V::LANES == 16 && nt == 2 && (13..=14).contains(&left) {
                        left
                    } else if left >= MR {
                        MR
                    } else if left >= 4 {
                        4
                    } else {
                        1
                    };
                    let (a, b, o) = (
                        ve.wrapping_add(t * cs),
                        ue.wrapping_add(k),
                        me.wrapping_add(t * ks + k),
                    );
                    let strides = (cs, E * kpad, ks);
                    // SAFETY: tiles t + r < tiles of V[e] and M[e] (channels c < cin of group
                    // g, output channels k + lane < kpad of group g) and rows (c < cin, e) of
                    // U[g]: inside the lengths asserted above.
                    unsafe {
                        match (mr, nt) {
                            (13, 2) if MR == 12 => tile::<V, 13, 2>(a, b, o, strides, cin),
                            (14, 2) if MR == 12 => tile::<V, 14, 2>(a, b, o, strides, cin),
                            (m, 2) if m == MR => tile::<V, MR, 2>(a, b, o, strides, cin),
                            (m, _) if m == MR => tile::<V, MR, 1>(a, b, o, strides, cin),
                            (4, 2) => tile::<V, 4, 2>(a, b, o, strides, cin),
                            (4, _) => tile::<V, 4, 1>(a, b, o, strides, cin),
                            (_, 2) => tile::<V, 1, 2>(a, b, o, strides, cin),
                            (_, _) => tile::<V, 1, 1>(a, b, o, strides, cin),
                        }
                    }
                    t += mr;
                }
                k += nt * lanes;
            }
        }
    }
}

/// One register tile: `m[r * ms + lane] = sum over c < depth (in order) of v[r * vs + c] *
/// u[c * us + lane]` for `r < MR`, `lane < NT * LANES`, with `(vs, us, ms)` the strides.
///
/// # Safety
/// Those elements of `v` and `u` are readable, those of `m` writable.
#[inline(always)]
unsafe fn tile<V: Vector<Elem = f32>, const MR: usize, const NT: usize>(
    v: *const f32,
    u: *const f32,
    m: *mut f32,
    (vs, us, ms): (usize, usize, usize),
    depth: usize,
) {
    let mut acc = [[V::zero(); NT]; MR];
    for c in 0..depth {
        let uc = u.wrapping_add(c * us);
        let mut b = [V::zero(); NT];
        for (j, b) in b.iter_mut().enumerate() {
            // SAFETY: the caller's contract.
            *b = unsafe { V::load(uc.add(j * V::LANES)) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: the caller's contract.
            let a = V::splat(unsafe { *v.add(r * vs + c) });
            for (acc, b) in row.iter_mut().zip(&b) {
                *acc = a.mul_add(*b, *acc);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (j, acc) in row.iter().enumerate() {
            // SAFETY: the caller's contract.
            unsafe { acc.store(m.add(r * ms + j * V::LANES)) };
        }
    }
}

/// The task's outputs into `y` (`[2 * rows][2 * tile columns + 2][ks]`, channels-last): `A^T
/// M A` plus the bias (in `M`'s channel layout) of each tile, `A^T = [1 1 1 0; 0 1 -1 -1]`,
/// in vectors of output channels.
#[inline(always)]
fn transform_output<V: Vector<Elem = f32>>(
    job: &Job,
    m: &[f32],
    bias: Option<&[f32]>,
    tiles: usize,
    y: &mut [f32],
) {
    let (ks, tx_n) = (job.ks(), job.tiles.1);
    let cols = 2 * tx_n + 2;
    let (row, plane) = (cols * ks, tiles * ks);
    assert!(m.len() >= E * plane && y.len() >= 2 * tiles.div_ceil(tx_n) * row);
    assert!(bias.is_none_or(|b| b.len() == ks));
    for t in 0..tiles {
        let (ty, tx) = (t / tx_n, t % tx_n);
        let base = 2 * ty * row + 2 * tx * ks;
        for kb in (0..ks).step_by(V::LANES) {
            let mut me = [V::zero(); E];
            for (e, me) in me.iter_mut().enumerate() {
                // SAFETY: e < E, t < tiles, kb + lane < ks: inside m (asserted above).
                *me = unsafe { V::load(m.as_ptr().add(e * plane + t * ks + kb)) };
            }
            let (mut s0, mut s1) = ([V::zero(); 4], [V::zero(); 4]);
            for j in 0..4 {
                s0[j] = me[j].add(me[4 + j]).add(me[8 + j]);
                s1[j] = me[4 + j].sub(me[8 + j]).sub(me[12 + j]);
            }
            let b = match bias {
                // SAFETY: kb + lane < ks = the bias's length (asserted above).
                Some(b) => unsafe { V::load(b.as_ptr().add(kb)) },
                None => V::zero(),
            };
            let outs = [
                (0, s0[0].add(s0[1]).add(s0[2]).add(b)),
                (ks, s0[1].sub(s0[2]).sub(s0[3]).add(b)),
                (row, s1[0].add(s1[1]).add(s1[2]).add(b)),
                (row + ks, s1[1].sub(s1[2]).sub(s1[3]).add(b)),
            ];
            for (off, val) in outs {
                // SAFETY: output row 2 * ty + 1 < 2 * rows, column 2 * tx + 1 < cols,
                // channel kb + lane < ks: inside y (asserted above).
                unsafe { val.store(y.as_mut_ptr().add(base + off + kb)) };
            }
        }
    }
}

/// Copies the channels-last outputs `y` of tile rows `ty0..ty1` of image `img` into the NCHW
/// output, clipped to the output plane.
#[inline(always)]
fn store_output<V: Vector<Elem = f32>>(
    job: &Job,
    y: &[f32],
    img: usize,
    (ty0, ty1): (usize, usize),
    out: SharedPtr<f32>,
) {
    let (oh, ow) = job.output;
    let (ks, cols) = (job.ks(), 2 * job.tiles.1 + 2);
    let kouts = job.groups * job.kout;
    let rows = (2 * ty1).min(oh) - 2 * ty0;
    for r in 0..rows {
        for g in 0..job.groups {
            let s = &y[r * cols * ks + g * job.kpad..][..(ow - 1) * ks + job.kout];
            let k0 = img * kouts + g * job.kout;
            // SAFETY: element (x, k) of the row is s[x * ks + k], x < ow, k < kout: inside
            // s; it goes to output channel k0 + k, row 2 * ty0 + r < oh, column x: inside the
            // output. Only this task writes these rows of its image (tasks partition the tile
            // rows), and no other reference to them is alive.
            unsafe {
                let d = out.get().add((k0 * oh + 2 * ty0 + r) * ow);
                transpose::<V>(s.as_ptr(), ks, d, oh * ow, (ow, job.kout));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter transform of a delta at tap (i, j) is the outer product of G's columns.
    #[test]
    fn filter_transform_is_g_f_gt() {
        let gm = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0f32],
        ];
        for tap in 0..9 {
            let mut f = [0.0; 9];
            f[tap] = 1.0;
            let u = transform_filter(&f);
            for a in 0..4 {
                for b in 0..4 {
                    assert_eq!(u[4 * a + b], gm[a][tap / 3] * gm[b][tap % 3], "tap {tap}");
                }
            }
        }
    }
}
