//! Depthwise convolutions (`groups == c == k`) on padded planes: each input plane is first
//! copied into a zero-bordered scratch, split into its `sh * sw` stride phases (rows `a` mod
//! `sh`, columns `b` mod `sw`; see `wide.rs`), where every tap of every output row is one
//! contiguous, in-bounds run. The row kernels of `rows.rs` then need no edge cases: no scalar
//! border columns, no per-row tap bookkeeping, no strided gathers. The copy is one pass over a
//! plane that stays in L1/L2.
//!
//! - Forward: per output row, up to 8 column vectors in registers while the taps stream by.
//! - Backward-data, stride 1: the forward pass over `dy` with the kernel flipped and the
//!   complementary padding (`dilation * (r - 1) - pad`; padding beyond the kernel's extent
//!   keeps the tap-by-tap scatter of `direct.rs`). Larger strides: phase by phase, each a
//!   stride-1 pass over a bordered `dy` (see [`backward_data_strided`]).
//! - Backward-weight: per channel, one accumulator per tap over the batch's rows of `dy`.
//!
//! Padding cells are zeros that meet the weights, as in the GEMM paths (an infinite weight
//! makes the outputs it touches NaN there too). Planes are split over threads whole, and each
//! sum runs in a fixed order, so results do not depend on the thread count.

use super::params::Conv2dParams;
use super::phases::{merge_row2, split_row2, take_even};
use super::rows::{conv_row, dot_rows, tail_keep, Taps, MAX_TAPS};
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use rayon::prelude::*;
use std::cell::Cell;

/// Planes per rayon task (a plane is one image channel).
const PLANES_PER_TASK: usize = 4;

/// Taps per register block of the weight gradient (3x3 in one).
const TB: usize = 9;

/// A zero-padded, phase-split copy of an `h x w` plane, as the stencils read it.
#[derive(Clone, Copy)]
struct Padded {
    h: usize,
    w: usize,
    /// Padding above and left (below and right follow from `hq`, `wq`).
    top: usize,
    left: usize,
    /// Strides: the number of phases per axis.
    sh: usize,
    sw: usize,
    /// Phase plane height and width.
    hq: usize,
    wq: usize,
}

/// Largest ratio of a padded copy to its plane (besides a fixed allowance for tiny planes).
const MAX_PLANE_GROWTH: usize = 4;

impl Padded {
    /// The copy for an `h x w` plane padded by `(top, bottom, left, right)`, read with strides
    /// `(sh, sw)`; `None` if its size overflows or is far larger than the plane (extreme
    /// padding, dilation or stride: the thread-local copy would be a huge hidden allocation,
    /// and the caller falls back to the stencil kernels, which need none).
    fn new(
        h: usize,
        w: usize,
        pad: (usize, usize, usize, usize),
        sh: usize,
        sw: usize,
    ) -> Option<Self> {
        let hp = h.checked_add(pad.0)?.checked_add(pad.1)?;
        let wp = w.checked_add(pad.2)?.checked_add(pad.3)?;
        let pad = Padded {
            h,
            w,
            top: pad.0,
            left: pad.2,
            sh,
            sw,
            hq: hp.div_ceil(sh),
            wq: wp.div_ceil(sw),
        };
        let len = [pad.sw, pad.hq, pad.wq]
            .iter()
            .try_fold(pad.sh, |a, &b| a.checked_mul(b))?;
        (len <= MAX_PLANE_GROWTH
            .saturating_mul(h * w)
            .saturating_add(1 << 16))
        .then_some(pad)
    }

    fn len(&self) -> usize {
        self.sh * self.sw * self.hq * self.wq
    }

    /// Where padded element `(dr, dc)` (from a row's first element) lands: in phase
    /// `(dr mod sh, dc mod sw)`, at `(dr / sh, dc / sw)`. The row and column parts add up.
    fn offset(&self, dr: usize, dc: usize) -> usize {
        self.row_offset(dr) + self.col_offset(dc)
    }

    fn row_offset(&self, dr: usize) -> usize {
        ((dr % self.sh) * self.sw * self.hq + dr / self.sh) * self.wq
    }

    fn col_offset(&self, dc: usize) -> usize {
        (dc % self.sw) * self.hq * self.wq + dc / self.sw
    }

    /// `row_offset(first + i)` for `i = 0, 1, ...`, stepping through the row phases instead
    /// of dividing per row (the divisions were 7% of a stride-2 backward-data).
    fn row_offsets(&self, first: usize) -> impl Iterator<Item = usize> {
        let (sh, phase, wq) = (self.sh, self.sw * self.hq * self.wq, self.wq);
        let (mut a, mut q) = (first % sh, first / sh);
        std::iter::from_fn(move || {
            let at = a * phase + q * wq;
            a += 1;
            if a == sh {
                (a, q) = (0, q + 1);
            }
            Some(at)
        })
    }

    /// Writes `src` (`h x w`) into `dst` (`len()`), zeros around it (the stride-2 column
    /// split in `V`'s shuffles).
    #[inline(always)]
    fn fill<V: Vector<Elem = f32>>(&self, src: &[f32], dst: &mut [f32]) {
        // Strides 1 and 2 write whole rows of the phases, padding included, so only the
        // padding rows need zeros (zeroing the whole copy first was 6% of a stride-2
        // forward); other strides zero it all.
        if self.sw > 2 {
            dst.fill(0.0);
        } else {
            for pr in (0..self.top).chain(self.top + self.h..self.hq * self.sh) {
                for b in 0..self.sw {
                    let at = self.offset(pr, b);
                    dst[at..at + self.wq].fill(0.0);
                }
            }
        }
        let plane = self.hq * self.wq;
        let rows = src.chunks_exact(self.w).zip(self.row_offsets(self.top));
        for (row, base) in rows {
            if self.sw == 1 {
                let (l, w) = (self.left, self.w);
                dst[base..base + l].fill(0.0);
                dst[base + l..base + l + w].copy_from_slice(row);
                dst[base + l + w..base + self.wq].fill(0.0);
            } else if self.sw == 2 {
                // Both phase rows whole, padding included.
                let (head, odd) = dst.split_at_mut(base + plane);
                split_row2::<V>(
                    row,
                    self.left,
                    &mut head[base..base + self.wq],
                    &mut odd[..self.wq],
                );
            } else {
                // Columns `j0, j0 + sw, ...` land side by side in one phase.
                for j0 in 0..self.sw.min(self.w) {
                    let at = base + self.col_offset(j0 + self.left);
                    let n = (self.w - j0).div_ceil(self.sw);
                    let src = row[j0..].iter().step_by(self.sw);
                    dst[at..at + n]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(d, &v)| *d = v);
                }
            }
        }
    }

    /// The inverse of [`fill`](Self::fill): reads the `h x w` plane back out of `src`.
    #[inline(always)]
    fn unfill<V: Vector<Elem = f32>>(&self, src: &[f32], dst: &mut [f32]) {
        let plane = self.hq * self.wq;
        let rows = dst.chunks_exact_mut(self.w).zip(self.row_offsets(self.top));
        for (row, base) in rows {
            if self.sw == 2 {
                let (e, o) = (base, base + plane);
                merge_row2::<V>(&src[e..e + self.wq], &src[o..o + self.wq], self.left, row);
                continue;
            }
            for j0 in 0..self.sw.min(self.w) {
                let at = base + self.col_offset(j0 + self.left);
                let n = (self.w - j0).div_ceil(self.sw);
                let out = row[j0..].iter_mut().step_by(self.sw);
                out.zip(&src[at..at + n]).for_each(|(d, &v)| *d = v);
            }
        }
    }

    /// Tap offsets of an `r x s` kernel with dilation `(dh, dw)`, in `(r, s)` order, flipped
    /// (last tap first) if `flip`.
    fn taps(&self, r: usize, s: usize, dil: (usize, usize), flip: bool) -> [usize; MAX_TAPS] {
        let mut off = [0; MAX_TAPS];
        for (t, o) in off.iter_mut().take(r * s).enumerate() {
            let t = if flip { r * s - 1 - t } else { t };
            *o = self.offset(t / s * dil.0, t % s * dil.1);
        }
        off
    }
}

thread_local! {
    /// One padded plane, kept between calls (taken out while in use).
    static PLANE: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with a scratch of `len` elements.
fn with_plane<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = PLANE.with(Cell::take);
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    PLANE.with(|c| c.set(buf));
    r
}

/// The padded input plane of `p`'s forward and backward-weight passes.
fn input_plane(p: &Conv2dParams) -> Option<Padded> {
    Padded::new(p.h, p.w, p.pad, p.stride.0, p.stride.1)
}

/// Whether the padded-plane kernels take `p` (at most `MAX_TAPS` taps).
pub(crate) fn applies(p: &Conv2dParams) -> bool {
    p.is_depthwise() && p.r * p.s <= MAX_TAPS && p.oh > 0 && p.ow > 0 && input_plane(p).is_some()
}

/// Depthwise forward.
///
/// Column stride 2 reads the input as its two column phases (the split is two shuffles per
/// vector; 3x3 stride 2 on 56x56 planes, 1 thread: 1.2 ms computing the rows at every
/// column and keeping the even ones, 0.96-1.0 phase-split). Larger column strides compute
/// the rows at every column and keep every `sw`-th (their split would be scalar moves).
pub(crate) fn forward(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (sh, sw) = p.stride;
    let split = if sw == 2 { 2 } else { 1 };
    let pad = Padded::new(p.h, p.w, p.pad, sh, split).expect("applies() checked the plane");
    let off = pad.taps(p.r, p.s, p.dilation, false);
    let rs = p.r * p.s;
    let init = |c: usize| bias.map_or(0.0, |b| b[c]);
    let ws = |c: usize| &w[c * rs..(c + 1) * rs];
    let out = (p.oh, p.ow, sw / split);
    planes(p.c, pad, &off[..rs], out, x, y, ws, init);
}

/// Depthwise backward-data, stride 1 with padding at most the kernel's extent: the forward
/// pass over `dy` with the flipped kernel. Returns false (doing nothing) for other shapes.
pub(crate) fn backward_data(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) -> bool {
    let (er, es) = ((p.r - 1) * p.dilation.0, (p.s - 1) * p.dilation.1);
    let (pt, pb, pl, pr) = p.pad;
    if p.stride != (1, 1) || pt.max(pb) > er || pl.max(pr) > es {
        return false;
    }
    let Some(pad) = Padded::new(p.oh, p.ow, (er - pt, er - pb, es - pl, es - pr), 1, 1) else {
        return false;
    };
    let off = pad.taps(p.r, p.s, p.dilation, true);
    let rs = p.r * p.s;
    let ws = |c: usize| &w[c * rs..(c + 1) * rs];
    planes(p.c, pad, &off[..rs], (p.h, p.w, 1), dy, dx, ws, |_| 0.0);
    true
}

/// Depthwise backward-data for strides above 1, phase by phase: phase `(a, b)` of the padded
/// `dx` (see [`Padded`]) only receives the taps with `r * dh mod sh == a` and `s * dw mod sw
/// == b`, and for those it is a stride-1 correlation of `dy` at offsets `(-(r * dh / sh),
/// -(s * dw / sw))`. So each phase is a row-kernel pass over a zero-bordered copy of `dy`,
/// and the phases are copied back out into `dx` (dropping the padding).
pub(crate) fn backward_data_strided(
    p: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
) -> bool {
    let (sh, sw) = p.stride;
    let Some(out) = input_plane(p) else {
        return false;
    };
    let (top, left) = ((p.r - 1) * p.dilation.0 / sh, (p.s - 1) * p.dilation.1 / sw);
    let (bottom, right) = (out.hq.saturating_sub(p.oh), out.wq.saturating_sub(p.ow));
    let Some(inp) = Padded::new(p.oh, p.ow, (top, bottom, left, right), 1, 1) else {
        return false;
    };
    let Some(len) = inp.len().checked_add(out.len()) else {
        return false;
    };
    let isa = Isa::active().for_row(p.ow);
    let rs = p.r * p.s;
    // Each tap's phase of the padded `dx`, and its offset into the bordered `dy`.
    let (mut phase, mut off) = ([0usize; MAX_TAPS], [0usize; MAX_TAPS]);
    for t in 0..rs {
        let (dr, dc) = (t / p.s * p.dilation.0, t % p.s * p.dilation.1);
        phase[t] = (dr % sh) * sw + dc % sw;
        off[t] = inp.offset(top - dr / sh, left - dc / sw);
    }
    dx.par_chunks_mut(p.h * p.w)
        .zip(dy.par_chunks(p.oh * p.ow))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (dxp, dyp))| {
            with_plane(len, |scratch| {
                let c = plane % p.c;
                let job = Phases {
                    p,
                    inp,
                    out,
                    phase: &phase[..rs],
                    off: &off[..rs],
                    w: &w[c * rs..(c + 1) * rs],
                    dy: dyp,
                    dx: dxp,
                    scratch,
                };
                dispatch(isa, job);
            })
        });
    true
}

/// One `dx` plane from its `dy` plane through the phases of the padded `dx` (see
/// [`backward_data_strided`]): `scratch` holds the bordered `dy`, then the phases.
struct Phases<'a> {
    p: &'a Conv2dParams,
    inp: Padded,
    out: Padded,
    /// Per tap: its phase and its offset into the bordered `dy`.
    phase: &'a [usize],
    off: &'a [usize],
    w: &'a [f32],
    dy: &'a [f32],
    dx: &'a mut [f32],
    scratch: &'a mut [f32],
}

impl SimdFn<f32> for Phases<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (p, out) = (self.p, self.out);
        let (sh, sw) = (p.stride.0, p.stride.1);
        let plane = out.hq * out.wq;
        let (dy, phases) = self.scratch.split_at_mut(self.inp.len());
        self.inp.fill::<V>(self.dy, dy);
        for (ph, phase) in phases[..sh * sw * plane]
            .chunks_exact_mut(plane)
            .enumerate()
        {
            // This phase's taps: offsets into the bordered `dy`, and weights.
            let (mut off, mut wt, mut n) = ([0usize; MAX_TAPS], [0.0f32; MAX_TAPS], 0);
            for t in (0..self.w.len()).filter(|&t| self.phase[t] == ph) {
                off[n] = self.off[t];
                wt[n] = self.w[t];
                n += 1;
            }
            let t = Taps {
                x: dy,
                off: &off[..n],
                stride: self.inp.wq,
                ow: out.wq,
            };
            assert!(t.in_bounds(out.hq), "depthwise: bordered dy too short");
            for (i, row) in phase.chunks_exact_mut(out.wq).enumerate() {
                // SAFETY: `in_bounds` above; `row` holds the phase's `wq` outputs of row i.
                unsafe { conv_row::<V, 1>(t, i, &wt[..n], [0.0], row.as_mut_ptr(), 0) };
            }
        }
        out.unfill::<V>(phases, self.dx);
    }
}

/// Every plane of `out` (`out_h x out_w`) from the matching plane of `inp` (`pad.h x
/// pad.w`), planes in parallel: channel `c` with weights `ws(c)` and initial value
/// `init(c)`; output column `j` is the row kernel's column `j * sub`.
#[allow(clippy::too_many_arguments)]
fn planes<'w>(
    c: usize,
    pad: Padded,
    off: &[usize],
    (out_h, out_w, sub): (usize, usize, usize),
    inp: &[f32],
    out: &mut [f32],
    ws: impl Fn(usize) -> &'w [f32] + Sync,
    init: impl Fn(usize) -> f32 + Sync,
) {
    let isa = Isa::active().for_row(out_w);
    out.par_chunks_mut(out_h * out_w)
        .zip(inp.par_chunks(pad.h * pad.w))
        .enumerate()
        .with_min_len(PLANES_PER_TASK)
        .for_each(|(plane, (o, i))| {
            let full = (out_w.max(1) - 1) * sub + 1;
            let tmp = if sub > 1 { full } else { 0 };
            with_plane(pad.len() + tmp, |scratch| {
                let (scratch, tmp) = scratch.split_at_mut(pad.len());
                let plane = Plane {
                    pad,
                    inp: i,
                    scratch,
                    off,
                    row: if sub > 1 { full } else { out_w },
                    out_h,
                    w: ws(plane % c),
                    b: init(plane % c),
                    out: o,
                    sub,
                    tmp,
                };
                dispatch(isa, plane);
            })
        });
}

/// One output plane of a padded-plane stencil over input plane `inp` (copied into
/// `scratch`): every `sub`-th column of the row kernel's `row`, through `tmp` when `sub > 1`.
struct Plane<'a> {
    pad: Padded,
    inp: &'a [f32],
    scratch: &'a mut [f32],
    off: &'a [usize],
    row: usize,
    out_h: usize,
    w: &'a [f32],
    b: f32,
    out: &'a mut [f32],
    sub: usize,
    tmp: &'a mut [f32],
}

impl SimdFn<f32> for Plane<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        self.pad.fill::<V>(self.inp, self.scratch);
        let t = Taps {
            x: self.scratch,
            off: self.off,
            stride: self.pad.wq,
            ow: self.row,
        };
        let sub = self.sub;
        assert!(t.in_bounds(self.out_h), "depthwise: padded plane too short");
        let ow = if sub > 1 { t.ow.div_ceil(sub) } else { t.ow };
        assert_eq!(
            self.out.len(),
            self.out_h * ow,
            "depthwise: output plane length"
        );
        assert!(
            sub == 1 || self.tmp.len() == t.ow,
            "depthwise: row buffer length"
        );
        for (oh, row) in self.out.chunks_exact_mut(ow).enumerate() {
            let dst = if sub > 1 { &mut *self.tmp } else { &mut *row };
            // SAFETY: `in_bounds` above; `dst` holds the row kernel's `t.ow` outputs.
            unsafe { conv_row::<V, 1>(t, oh, self.w, [self.b], dst.as_mut_ptr(), 0) };
            if sub == 2 {
                take_even::<V>(self.tmp, row);
            } else if sub > 1 {
                let src = self.tmp.iter().step_by(sub);
                row.iter_mut().zip(src).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// Depthwise backward-weight, channels in parallel.
pub(crate) fn backward_weight(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let isa = Isa::active().for_row(p.ow);
    let pad = input_plane(p).expect("applies() checked the plane");
    let off = pad.taps(p.r, p.s, p.dilation, false);
    let rs = p.r * p.s;
    dw.par_chunks_mut(rs).enumerate().for_each(|(c, dwc)| {
        with_plane(pad.len(), |scratch| {
            let g = Grad {
                p,
                pad,
                off: &off[..rs],
                c,
                x,
                dy,
            };
            for t0 in (0..rs).step_by(TB) {
                let tn = TB.min(rs - t0);
                let sums = dispatch(
                    isa,
                    GradTaps {
                        g: &g,
                        scratch: &mut *scratch,
                        t0,
                        tn,
                    },
                );
                dwc[t0..t0 + tn].copy_from_slice(&sums[..tn]);
            }
        })
    });
}

/// The weight gradient of channel `c`.
struct Grad<'a> {
    p: &'a Conv2dParams,
    pad: Padded,
    off: &'a [usize],
    c: usize,
    x: &'a [f32],
    dy: &'a [f32],
}

/// Taps `t0..t0 + tn` of a [`Grad`] (each image's padded plane is refilled into `scratch`
/// per tap block).
struct GradTaps<'a, 'g> {
    g: &'a Grad<'g>,
    scratch: &'a mut [f32],
    t0: usize,
    tn: usize,
}

impl SimdFn<f32> for GradTaps<'_, '_> {
    type Output = [f32; TB];
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> [f32; TB] {
        match self.tn {
            9 => self.sums::<V, 9>(),
            8 => self.sums::<V, 8>(),
            7 => self.sums::<V, 7>(),
            6 => self.sums::<V, 6>(),
            5 => self.sums::<V, 5>(),
            4 => self.sums::<V, 4>(),
            3 => self.sums::<V, 3>(),
            2 => self.sums::<V, 2>(),
            _ => self.sums::<V, 1>(),
        }
    }
}

impl GradTaps<'_, '_> {
    #[inline(always)]
    fn sums<V: Vector<Elem = f32>, const T: usize>(self) -> [f32; TB] {
        let g = self.g;
        let p = g.p;
        let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
        let off = &g.off[self.t0..self.t0 + T];
        let keep = tail_keep::<V>(p.ow);
        let (mut acc, mut sacc) = ([[V::zero(); T]], [[0.0f32; T]]);
        for b in 0..p.n {
            let plane = b * p.c + g.c;
            g.pad
                .fill::<V>(&g.x[plane * hw..(plane + 1) * hw], self.scratch);
            let t = Taps {
                x: self.scratch,
                off,
                stride: g.pad.wq,
                ow: p.ow,
            };
            assert!(t.in_bounds(p.oh), "depthwise: padded plane too short");
            // SAFETY: `in_bounds` just checked; `off.len() == T`.
            unsafe {
                dot_rows::<V, 1, T>(&mut acc, &mut sacc, t, [&g.dy[plane * ohw..][..ohw]], keep)
            };
        }
        let mut sums = [0.0f32; TB];
        for ((s, a), &sa) in sums.iter_mut().zip(&acc[0]).zip(&sacc[0]) {
            *s = a.reduce_sum() + sa;
        }
        sums
    }
}
