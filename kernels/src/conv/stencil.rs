//! A 2D stencil over one input plane into `Q` output planes at once:
//! `out_q[i, j] (+)= sum_t w_q[t] * inp[i*sr + dr_t, j*sc + dc_t]`, taps outside the input
//! skipped. This is the depthwise (and single-input-channel) convolution forward, and the
//! stride-1 depthwise backward-data (a forward pass over `dy` with the kernel flipped).
//!
//! Outputs stay in registers while the taps stream by, so each output is written once. A tap
//! FMA depends on the previous one, so the kernel keeps four independent chains: four output
//! planes sharing each input load (`Q = 4`), or four column vectors of one plane (`Q = 1`).
//! Interior columns (every live tap inside the row) run as vectors, the edges as scalars; the
//! last interior columns are one overlapping vector (recomputing gives the same bits).

use crate::simd::{dispatch, Isa, SimdFn, Vector};

/// Taps handled per sweep (more taps take several sweeps, accumulating).
pub(crate) const MAX_TAPS: usize = 64;

/// The shape of a stencil: output row width, input plane size, input strides.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) out_w: usize,
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    pub(crate) sr: usize,
    pub(crate) sc: usize,
}

struct Sweep<'a, const Q: usize> {
    outs: [&'a mut [f32]; Q],
    weights: [&'a [f32]; Q],
    inits: [f32; Q],
    inp: &'a [f32],
    g: Geometry,
    /// `(row offset, column offset)` per tap.
    taps: &'a [(isize, isize)],
    accumulate: bool,
}

/// A live tap of one output row: its index, input row start and column offset, and where its
/// vector loads read: `vinp[vbase + j + vdc + lane]` for output column `j + lane`.
#[derive(Clone, Copy, Default)]
struct Live {
    t: usize,
    base: usize,
    dc: isize,
    vbase: usize,
    vdc: isize,
}

/// Floats of the per-row scratch that holds, for column-strided stencils, each live tap's input
/// row de-interleaved to its phase (so vector loads are contiguous).
const SCRATCH: usize = 4096;

/// One output row's live taps and what the blocks need. Methods, not closures, so they inline
/// into the ISA's target-feature function.
struct Row<'a, V, const Q: usize> {
    live: &'a [Live],
    /// What vector loads read: the input itself, or the de-interleaved scratch.
    vinp: &'a [f32],
    /// Column-strided and no scratch: vector loads gather.
    gather: bool,
    weights: &'a [&'a [f32]; Q],
    /// `weights[q][t]` splatted, per tap.
    splat: &'a [[V; Q]],
    inits: &'a [f32; Q],
    inp: &'a [f32],
    in_w: usize,
    sc: usize,
    accumulate: bool,
}

/// Loads `LANES` values at columns `col, col + sc, ...` of `row` (all inside).
#[inline(always)]
pub(crate) fn load_cols<V: Vector<Elem = f32>>(row: &[f32], col: usize, sc: usize) -> V {
    if sc == 1 {
        let s = &row[col..col + V::LANES];
        // SAFETY: `s` holds exactly LANES elements.
        unsafe { V::load(s.as_ptr()) }
    } else {
        let mut buf = [0.0f32; 16];
        for (l, b) in buf.iter_mut().take(V::LANES).enumerate() {
            *b = row[col + l * sc];
        }
        // SAFETY: `buf` holds 16 >= LANES elements.
        unsafe { V::load(buf.as_ptr()) }
    }
}

impl<V: Vector<Elem = f32>, const Q: usize> Row<'_, V, Q> {
    /// Output column `j` of every plane, bounds-checked per tap (the edges).
    #[inline(always)]
    fn scalar(&self, rows: &mut [&mut [f32]; Q], j: usize) {
        for (q, row) in rows.iter_mut().enumerate() {
            let mut acc = if self.accumulate {
                row[j]
            } else {
                self.inits[q]
            };
            for lv in self.live {
                let c = (j * self.sc) as isize + lv.dc;
                if (0..self.in_w as isize).contains(&c) {
                    acc += self.weights[q][lv.t] * self.inp[lv.base + c as usize];
                }
            }
            row[j] = acc;
        }
    }

    /// Output columns `j..j + U * LANES` of every plane, all interior.
    #[inline(always)]
    fn block<const U: usize>(&self, rows: &mut [&mut [f32]; Q], j: usize) {
        let l = V::LANES;
        let mut acc = [[V::zero(); U]; Q];
        for (q, aq) in acc.iter_mut().enumerate() {
            for (u, a) in aq.iter_mut().enumerate() {
                *a = if self.accumulate {
                    let o = &rows[q][j + u * l..j + (u + 1) * l];
                    // SAFETY: `o` holds LANES elements.
                    unsafe { V::load(o.as_ptr()) }
                } else {
                    V::splat(self.inits[q])
                };
            }
        }
        for lv in self.live {
            let mut xs = [V::zero(); U];
            for (u, x) in xs.iter_mut().enumerate() {
                *x = if self.gather {
                    let col = (((j + u * l) * self.sc) as isize + lv.dc) as usize;
                    load_cols::<V>(&self.inp[lv.base..lv.base + self.in_w], col, self.sc)
                } else {
                    let at = lv.vbase + ((j + u * l) as isize + lv.vdc) as usize;
                    debug_assert!(at + l <= self.vinp.len());
                    // SAFETY: interior columns: every lane's input column is inside the input
                    // row (the caller's `jlo..jhi` guarantees it), hence inside the row (or
                    // its de-interleaved phase) that `vbase` starts.
                    unsafe { V::load(self.vinp.as_ptr().add(at)) }
                };
            }
            for (aq, &wv) in acc.iter_mut().zip(&self.splat[lv.t]) {
                for (a, &x) in aq.iter_mut().zip(&xs) {
                    *a = wv.mul_add(x, *a);
                }
            }
        }
        for (q, aq) in acc.iter().enumerate() {
            for (u, a) in aq.iter().enumerate() {
                let o = &mut rows[q][j + u * l..j + (u + 1) * l];
                // SAFETY: `o` holds LANES elements.
                unsafe { a.store(o.as_mut_ptr()) };
            }
        }
    }
}

impl<const Q: usize> SimdFn<f32> for Sweep<'_, Q> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (l, g) = (V::LANES, self.g);
        let (in_h, in_w, sc) = (g.in_h as isize, g.in_w as isize, g.sc as isize);
        // Per tap, the output columns whose input column is inside the row.
        let mut cols = [(0usize, 0usize); MAX_TAPS];
        for (c, &(_, dc)) in cols.iter_mut().zip(self.taps) {
            let lo = (-dc + sc - 1).div_euclid(sc).max(0) as usize;
            let hi = (in_w - dc + sc - 1).div_euclid(sc).max(0) as usize;
            *c = (lo, hi.min(g.out_w));
        }
        let mut splat = [[V::zero(); Q]; MAX_TAPS];
        for (t, sp) in splat.iter_mut().take(self.taps.len()).enumerate() {
            for (q, v) in sp.iter_mut().enumerate() {
                *v = V::splat(self.weights[q][t]);
            }
        }
        let out_h = self.outs[0].len() / g.out_w;
        let mut outs = self.outs;
        let mut live = [Live::default(); MAX_TAPS];
        let mut scratch = [0.0f32; SCRATCH];
        let phase_len = g.in_w.div_ceil(g.sc);
        let row_block = g.sc * phase_len;
        // Column stride > 1: de-interleave input rows into their phases, so that vector loads
        // are contiguous (a lane-by-lane gather stalls on store forwarding). The whole plane
        // once when it fits the scratch, else each live tap's row per output row.
        let whole_plane = g.sc > 1 && g.in_h.checked_mul(row_block).is_some_and(|v| v <= SCRATCH);
        if whole_plane {
            for (ir, src) in self.inp.chunks_exact(g.in_w).enumerate() {
                let dst = &mut scratch[ir * row_block..(ir + 1) * row_block];
                for (ph, d) in dst.chunks_exact_mut(phase_len).enumerate() {
                    for (d, &v) in d.iter_mut().zip(src.iter().skip(ph).step_by(g.sc)) {
                        *d = v;
                    }
                }
            }
        }
        for i in 0..out_h {
            let (mut n, mut jlo, mut jhi) = (0, 0, g.out_w);
            for (t, (&(dr, dc), &(lo, hi))) in self.taps.iter().zip(&cols).enumerate() {
                let ir = (i * g.sr) as isize + dr;
                if (0..in_h).contains(&ir) {
                    let base = ir as usize * g.in_w;
                    let (vbase, vdc) = if whole_plane {
                        let ph = dc.rem_euclid(sc) as usize;
                        (ir as usize * row_block + ph * phase_len, dc.div_euclid(sc))
                    } else {
                        (base, dc)
                    };
                    live[n] = Live {
                        t,
                        base,
                        dc,
                        vbase,
                        vdc,
                    };
                    (jlo, jhi) = (jlo.max(lo), jhi.min(hi));
                    n += 1;
                }
            }
            let jhi = jhi.max(jlo);
            let per_row = g.sc > 1 && !whole_plane && n * phase_len <= SCRATCH && jhi > jlo;
            if per_row {
                for (k, lv) in live[..n].iter_mut().enumerate() {
                    let ph = lv.dc.rem_euclid(sc) as usize;
                    let src = &self.inp[lv.base..lv.base + g.in_w];
                    let dst = &mut scratch[k * phase_len..(k + 1) * phase_len];
                    for (d, &v) in dst.iter_mut().zip(src.iter().skip(ph).step_by(g.sc)) {
                        *d = v;
                    }
                    (lv.vbase, lv.vdc) = (k * phase_len, lv.dc.div_euclid(sc));
                }
            }
            let deinterleave = whole_plane || per_row;
            let row = Row::<V, Q> {
                live: &live[..n],
                vinp: if deinterleave { &scratch[..] } else { self.inp },
                gather: g.sc > 1 && !deinterleave,
                weights: &self.weights,
                splat: &splat,
                inits: &self.inits,
                inp: self.inp,
                in_w: g.in_w,
                sc: g.sc,
                accumulate: self.accumulate,
            };
            let mut rows = outs
                .each_mut()
                .map(|o| &mut o[i * g.out_w..(i + 1) * g.out_w]);
            for j in 0..jlo.min(g.out_w) {
                row.scalar(&mut rows, j);
            }
            let mut j = jlo;
            if Q == 1 {
                while j + 4 * l <= jhi {
                    row.block::<4>(&mut rows, j);
                    j += 4 * l;
                }
            }
            while j + l <= jhi {
                row.block::<1>(&mut rows, j);
                j += l;
            }
            if j < jhi && jhi - jlo >= l && !self.accumulate {
                row.block::<1>(&mut rows, jhi - l);
                j = jhi;
            }
            for j in j..g.out_w {
                row.scalar(&mut rows, j);
            }
        }
    }
}

/// Runs the stencil of `n_taps` taps (`tap(t) = (row offset, column offset)`, weights
/// `weights[q][t]`) into the `Q` planes `outs`, each starting from `inits[q]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stencil<const Q: usize>(
    isa: Isa,
    mut outs: [&mut [f32]; Q],
    weights: [&[f32]; Q],
    inits: [f32; Q],
    inp: &[f32],
    g: Geometry,
    tap: impl Fn(usize) -> (isize, isize),
    n_taps: usize,
) {
    let mut buf = [(0isize, 0isize); MAX_TAPS];
    for t0 in (0..n_taps).step_by(MAX_TAPS) {
        let tn = MAX_TAPS.min(n_taps - t0);
        for (t, b) in buf.iter_mut().take(tn).enumerate() {
            *b = tap(t0 + t);
        }
        let sweep = Sweep {
            outs: outs.each_mut().map(|o| &mut **o),
            weights: weights.map(|w| &w[t0..t0 + tn]),
            inits,
            inp,
            g,
            taps: &buf[..tn],
            accumulate: t0 > 0,
        };
        dispatch(isa, sweep);
    }
}
