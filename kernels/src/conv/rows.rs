//! Row kernels of the direct convolutions (`shallow.rs`, `depthwise.rs`): an input whose every
//! tap read is contiguous and in bounds (an unpadded stride-1 image, or a padded, phase-split
//! copy of one), read through tap offsets: tap `t` of output row `oh`, column `j` is input
//! element `off[t] + oh * stride + j`.
//!
//! An output row is covered by vectors of columns `0, LANES, ...`; when `ow` is not a multiple
//! of LANES the last vector starts at `ow - LANES` and overlaps the one before. Outputs
//! recompute the overlap (same bits); reductions mask it out of their products with an `and`
//! (so even `0 * inf` adds nothing). Rows narrower than a vector run one column at a time,
//! through the same code with `f32` (the scalar ISA's vector).

use crate::simd::Vector;

/// Most taps a direct kernel takes per sweep.
pub(crate) const MAX_TAPS: usize = 64;

/// An input read through tap offsets (see the module doc).
#[derive(Clone, Copy)]
pub(crate) struct Taps<'a> {
    pub(crate) x: &'a [f32],
    pub(crate) off: &'a [usize],
    pub(crate) stride: usize,
    pub(crate) ow: usize,
}

impl Taps<'_> {
    /// Whether every tap read for `oh` output rows lies inside `x`; the kernels below rely on
    /// it (their callers assert it once per plane).
    pub(crate) fn in_bounds(&self, oh: usize) -> bool {
        let last = self.off.iter().copied().max().unwrap_or(0);
        oh == 0 || (oh - 1) * self.stride + last + self.ow <= self.x.len()
    }
}

/// Output row `oh` of `KB` planes: `out[kk][j] = init[kk] + sum_t w[kk * taps + t] * input`,
/// for `KB` in 1..=2 (`out` holds the rows, `plane` elements apart).
///
/// # Safety
/// `t.in_bounds(oh + 1)`; `out + kk * plane` is valid for `ow` writes for `kk < KB`.
#[inline(always)]
pub(crate) unsafe fn conv_row<V: Vector<Elem = f32>, const KB: usize>(
    t: Taps<'_>,
    oh: usize,
    w: &[f32],
    init: [f32; KB],
    out: *mut f32,
    plane: usize,
) {
    // Rows narrower than a vector run one column at a time (`f32` is the scalar ISA's vector).
    // SAFETY: forwarded.
    unsafe {
        if t.ow < V::LANES {
            conv_row_vectors::<f32, KB>(t, oh, w, init, out, plane)
        } else {
            conv_row_vectors::<V, KB>(t, oh, w, init, out, plane)
        }
    }
}

/// [`conv_row`] for `LANES <= ow`.
///
/// # Safety
/// As [`conv_row`].
#[inline(always)]
unsafe fn conv_row_vectors<V: Vector<Elem = f32>, const KB: usize>(
    t: Taps<'_>,
    oh: usize,
    w: &[f32],
    init: [f32; KB],
    out: *mut f32,
    plane: usize,
) {
    let l = V::LANES;
    // 8 accumulators: enough independent FMA chains for both FMA pipes.
    let max_u = 8 / KB;
    let nv = t.ow.div_ceil(l);
    let mut v = 0;
    while v < nv {
        let u = max_u.min(nv - v);
        // SAFETY (each arm): forwarded; columns `v..v + u` exist.
        unsafe {
            match u {
                8 => conv_block::<V, KB, 8>(t, oh, v, w, init, out, plane),
                7 => conv_block::<V, KB, 7>(t, oh, v, w, init, out, plane),
                6 => conv_block::<V, KB, 6>(t, oh, v, w, init, out, plane),
                5 => conv_block::<V, KB, 5>(t, oh, v, w, init, out, plane),
                4 => conv_block::<V, KB, 4>(t, oh, v, w, init, out, plane),
                3 => conv_block::<V, KB, 3>(t, oh, v, w, init, out, plane),
                2 => conv_block::<V, KB, 2>(t, oh, v, w, init, out, plane),
                _ => conv_block::<V, KB, 1>(t, oh, v, w, init, out, plane),
            }
        }
        v += u;
    }
}

/// Column vectors `v..v + U` of [`conv_row`].
///
/// # Safety
/// As [`conv_row`], with `(v + U - 1) * LANES < ow` and `LANES <= ow`.
#[inline(always)]
unsafe fn conv_block<V: Vector<Elem = f32>, const KB: usize, const U: usize>(
    t: Taps<'_>,
    oh: usize,
    v: usize,
    w: &[f32],
    init: [f32; KB],
    out: *mut f32,
    plane: usize,
) {
    let (l, taps) = (V::LANES, t.off.len());
    let mut cols = [0usize; U];
    for (u, j) in cols.iter_mut().enumerate() {
        *j = ((v + u) * l).min(t.ow - l);
    }
    let mut acc = [[V::zero(); U]; KB];
    for (a, &i) in acc.iter_mut().zip(&init) {
        *a = [V::splat(i); U];
    }
    let row = t.x[oh * t.stride..].as_ptr();
    for (ti, &o) in t.off.iter().enumerate() {
        let mut xs = [V::zero(); U];
        for (x, &j) in xs.iter_mut().zip(&cols) {
            // SAFETY: `j + LANES <= ow`: inside `x` (`in_bounds`).
            *x = unsafe { V::load(row.add(o + j)) };
        }
        for (kk, a) in acc.iter_mut().enumerate() {
            let wv = V::splat(w[kk * taps + ti]);
            for (a, &x) in a.iter_mut().zip(&xs) {
                *a = wv.mul_add(x, *a);
            }
        }
    }
    for (kk, a) in acc.iter().enumerate() {
        for (a, &j) in a.iter().zip(&cols) {
            // SAFETY: `j + LANES <= ow`, inside the caller's output row.
            unsafe { a.store(out.add(kk * plane + j)) };
        }
    }
}

/// The lanes of a row's last vector that the vector before did not cover (all bits set).
#[inline(always)]
pub(crate) fn tail_keep<V: Vector<Elem = f32>>(ow: usize) -> V {
    let l = V::LANES;
    let dup = ow.div_ceil(l) * l - ow;
    let mut bits = [0.0f32; 16];
    for b in bits.iter_mut().take(l).skip(dup) {
        *b = f32::from_bits(u32::MAX);
    }
    // SAFETY: `bits` holds 16 >= LANES elements.
    unsafe { V::load(bits.as_ptr()) }
}

/// For each of the `KB` gradient planes `g[kk]` and the `T` taps `off`, adds `sum over rows
/// i < rows, columns j of g[kk][i * ow + j] * input(tap, i, j)` to `acc[kk][t]` (each `g[kk]`
/// holds `rows` rows of `ow`; `keep = tail_keep(ow)`). Several planes share each input load
/// (a 3x3 weight gradient is 9 FMAs per 10 loads with one plane, 9 per 6 with three). Rows
/// narrower than a vector go to `sacc`, one column at a time. Every accumulator sums in the
/// same order (rows, column vectors) whatever `KB`.
///
/// # Safety
/// `t.in_bounds(rows)`, `t.off.len() == T`.
#[inline(always)]
pub(crate) unsafe fn dot_rows<V: Vector<Elem = f32>, const KB: usize, const T: usize>(
    acc: &mut [[V; T]; KB],
    sacc: &mut [[f32; T]; KB],
    t: Taps<'_>,
    g: [&[f32]; KB],
    keep: V,
) {
    // SAFETY: forwarded.
    unsafe {
        if t.ow < V::LANES {
            dot_rows_vectors::<f32, KB, T>(sacc, t, g, tail_keep::<f32>(t.ow))
        } else {
            dot_rows_vectors::<V, KB, T>(acc, t, g, keep)
        }
    }
}

/// [`dot_rows`] for `LANES <= ow`.
///
/// # Safety
/// As [`dot_rows`].
#[inline(always)]
unsafe fn dot_rows_vectors<V: Vector<Elem = f32>, const KB: usize, const T: usize>(
    acc_out: &mut [[V; T]; KB],
    t: Taps<'_>,
    g: [&[f32]; KB],
    keep: V,
) {
    let (l, ow) = (V::LANES, t.ow);
    let off: &[usize; T] = t.off.try_into().expect("T taps");
    let rows = g[0].len() / ow;
    assert!(
        g.iter().all(|g| g.len() >= rows * ow),
        "dot_rows: short plane"
    );
    let whole = ow / l;
    // A local copy, so the accumulators live in registers for the whole sweep.
    let mut acc_l = *acc_out;
    let acc = &mut acc_l;
    for i in 0..rows {
        let row = t.x[i * t.stride..].as_ptr();
        for j in (0..whole).map(|v| v * l) {
            // SAFETY: `j + LANES <= ow`: inside row `i` of each plane.
            let gv = unsafe { load_planes::<V, KB>(&g, i * ow + j) };
            for (tt, &o) in off.iter().enumerate() {
                // SAFETY: inside `x` (`in_bounds`).
                let xv = unsafe { V::load(row.add(o + j)) };
                for (a, v) in acc.iter_mut().zip(&gv) {
                    a[tt] = v.mul_add(xv, a[tt]);
                }
            }
        }
        if whole * l < ow {
            let last = ow - l;
            // SAFETY: as above.
            let gv = unsafe { load_planes::<V, KB>(&g, i * ow + last) };
            for (tt, &o) in off.iter().enumerate() {
                // SAFETY: as above.
                let xv = unsafe { V::load(row.add(o + last)) };
                for (a, v) in acc.iter_mut().zip(&gv) {
                    a[tt] = a[tt].add(v.mul(xv).and(keep));
                }
            }
        }
    }
    *acc_out = acc_l;
}

/// A vector from each plane at `at`.
///
/// # Safety
/// Every plane holds `at + LANES` elements.
#[inline(always)]
unsafe fn load_planes<V: Vector<Elem = f32>, const KB: usize>(
    g: &[&[f32]; KB],
    at: usize,
) -> [V; KB] {
    let mut gv = [V::zero(); KB];
    for (v, g) in gv.iter_mut().zip(g) {
        // SAFETY: the caller's contract.
        *v = unsafe { V::load(g.as_ptr().add(at)) };
    }
    gv
}
