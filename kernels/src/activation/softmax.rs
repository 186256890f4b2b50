//! Softmax and log-softmax along the last axis of a row-major `[rows, cols]` tensor, forward
//! and backward, and the SIMD row primitives (max, exp-and-sum) that the fused
//! softmax-cross-entropy loss shares.
//!
//! Each row is computed by itself in a fixed order, so results are identical for any thread
//! count. Rows are stable for any finite logits (the row maximum is subtracted first) and
//! accept `-inf` entries (probability 0); a row that is all `-inf`, or holds `+inf` or NaN,
//! gives NaN (as in PyTorch).

use super::driver::{PAR_CHUNK, PAR_MIN_LEN};
use crate::error::{check_len, checked_mul, KernelError};
use crate::simd::math::{exp, exp_nonpos, exp_nonpos_scaled_term, EXP_SCALE};
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use crate::Backend;
use rayon::prelude::*;

/// The maximum of a row (`-inf` for an empty row). A NaN entry may or may not show in the
/// result: every caller goes on to compute `x - max` for each entry, which turns the NaN
/// into NaN outputs anyway, so the cheap one-instruction max is used.
#[inline(always)]
pub(crate) fn row_max<V: Vector<Elem = f32>>(x: &[f32]) -> f32 {
    let l = V::LANES;
    let n = x.len();
    let mut i = 0;
    let mut m = f32::NEG_INFINITY;
    if n >= 4 * l {
        let ninf = V::splat(f32::NEG_INFINITY);
        let (mut a, mut b, mut c, mut d) = (ninf, ninf, ninf, ninf);
        // SAFETY: every load reads `LANES` elements starting below `n - LANES + 1`.
        unsafe {
            while i + 4 * l <= n {
                let p = x.as_ptr().add(i);
                a = V::load(p).at_least(a);
                b = V::load(p.add(l)).at_least(b);
                c = V::load(p.add(2 * l)).at_least(c);
                d = V::load(p.add(3 * l)).at_least(d);
                i += 4 * l;
            }
        }
        m = a.max(b).max(c.max(d)).reduce_max();
    }
    for &v in &x[i..] {
        m = Vector::max(m, v);
    }
    m
}

/// Writes `out[j] = exp(x[j] - m)` and returns `sum_j exp(x[j] - m)`, summed in lane-wise
/// partial sums then across lanes (a fixed order for a given ISA).
#[inline(always)]
pub(crate) fn row_exp_sum<V: Vector<Elem = f32>>(x: &[f32], m: f32, out: &mut [f32]) -> f32 {
    let l = V::LANES;
    let n = x.len();
    debug_assert!(out.len() == n);
    let vm = V::splat(m);
    let (mut s0, mut s1) = (V::zero(), V::zero());
    let mut i = 0;
    // SAFETY: loads and stores cover `LANES` elements starting below `n - LANES + 1`, and
    // `out` has length `n`.
    unsafe {
        while i + 2 * l <= n {
            let p = x.as_ptr().add(i);
            let e0 = exp_nonpos(V::load(p).sub(vm));
            let e1 = exp_nonpos(V::load(p.add(l)).sub(vm));
            e0.store(out.as_mut_ptr().add(i));
            e1.store(out.as_mut_ptr().add(i + l));
            s0 = s0.add(e0);
            s1 = s1.add(e1);
            i += 2 * l;
        }
        if i + l <= n {
            let e0 = exp_nonpos(V::load(x.as_ptr().add(i)).sub(vm));
            e0.store(out.as_mut_ptr().add(i));
            s0 = s0.add(e0);
            i += l;
        }
    }
    let mut sum = s0.add(s1).reduce_sum();
    for j in i..n {
        let e = exp_nonpos::<f32>(x[j] - m);
        out[j] = e;
        sum += e;
    }
    sum
}

/// `(r, ln s)` with `s = sum_j exp(x[j] - r)`, in one pass over the row (all a loss-only
/// softmax-cross-entropy or a log-softmax needs): `r` is the row's maximum if `EXACT_MAX`,
/// else some value at least the maximum and at most [`BOUND_SLACK`] above it (the loss
/// `ln s + r - x_y` is the same for any `r`, computed in f64). A separate maximum pass cost
/// 15-20% of the loss-only forward, as it reads the row from L2 or L3 once more (measured).
///
/// The terms are summed relative to a running bound `b`: it starts at the first entry plus
/// [`BOUND_SLACK`] and is raised (to the new maximum plus the slack, rescaling the sum) only
/// when a chunk of entries exceeds it, which the slack makes rare (raising to each new
/// maximum happened in a third of the chunks of a random 1000-class row, each a
/// mispredicted branch and an exponential). With `EXACT_MAX` the maximum `m` is tracked
/// beside it and the logarithm converted to it exactly, `ln s_m = ln s_b + (b - m)` in f64:
/// log-softmax's `x - m` then stays exact near the maximum. Terms use
/// [`exp_nonpos_scaled_term`] (`s` within about `3 e` plus the rounding of the sum).
///
/// A row of nothing but `-inf` gives `r = -inf` (with `EXACT_MAX`) or `ln s = -inf`; NaN or
/// `+inf` entries make `ln s` NaN. Either way the caller's result is NaN.
#[inline(always)]
pub(crate) fn row_log_sum_exp<V: Vector<Elem = f32>, const EXACT_MAX: bool>(
    x: &[f32],
) -> (f32, f64) {
    let l = V::LANES;
    let n = x.len();
    let mut v = Online::<V>::new(x.first().copied().unwrap_or(0.0));
    let mut i = 0;
    // SAFETY: loads cover `LANES` elements starting below `n - LANES + 1`.
    unsafe {
        let p = x.as_ptr();
        while i + 4 * l <= n {
            let q = p.add(i);
            v.add::<4, EXACT_MAX>([
                V::load(q),
                V::load(q.add(l)),
                V::load(q.add(2 * l)),
                V::load(q.add(3 * l)),
            ]);
            i += 4 * l;
        }
        while i + l <= n {
            v.add::<1, EXACT_MAX>([V::load(p.add(i))]);
            i += l;
        }
    }
    if i < n {
        // The last partial vector, padded with `-inf` (zero terms, no effect on the maximum).
        let mut pad = [f32::NEG_INFINITY; 16];
        pad[..n - i].copy_from_slice(&x[i..]);
        // SAFETY: `pad` holds 16 >= LANES elements.
        v.add::<1, EXACT_MAX>([unsafe { V::load(pad.as_ptr()) }]);
    }
    let ln_s = ((v.sum.reduce_sum() * (1.0 / EXP_SCALE)) as f64).ln();
    if EXACT_MAX {
        let m = max_lane(v.max);
        // `b - m` (in `[0, BOUND_SLACK]`, or NaN) is exact in f64.
        (m, ln_s + (v.bound as f64 - m as f64))
    } else if v.bound == -f32::MAX && ln_s < 0.0 {
        // The bound never rose, so every entry is `-f32::MAX` (a term of 1) or `-inf`: a sum
        // below 1 means all `-inf`, whose clamped terms (`e^-109`, not 0) need not round to 0.
        (v.bound, f64::NEG_INFINITY)
    } else {
        (v.bound, ln_s)
    }
}

/// The largest lane of `v`, without [`Vector::reduce_max`]'s NaN checks (a NaN entry makes
/// its term, and so the sum, NaN anyway).
#[inline(always)]
fn max_lane<V: Vector<Elem = f32>>(v: V) -> f32 {
    let mut lanes = [0.0f32; 16];
    // SAFETY: `lanes` holds 16 >= LANES elements.
    unsafe { v.store(lanes.as_mut_ptr()) };
    let mut m = lanes[0];
    for &x in &lanes[1..V::LANES] {
        m = m.at_least(x);
    }
    m
}

/// How far above the maximum seen [`row_log_sum_exp`] puts its bound: `e^-4` leaves the
/// largest terms far from the subnormals (they carry `2^32`), and a later entry must exceed
/// the maximum so far by 4 to make the bound move.
const BOUND_SLACK: f32 = 4.0;

/// The running state of [`row_log_sum_exp`].
struct Online<V> {
    /// The bound `b` (at least every entry seen), and splatted.
    bound: f32,
    vbound: V,
    /// Lane-wise `sum exp(x - b) 2^32` over the entries seen (as
    /// [`exp_nonpos_scaled_term`] returns them).
    sum: V,
    /// Lane-wise maximum of the entries seen.
    max: V,
}

impl<V: Vector<Elem = f32>> Online<V> {
    /// The bound from the row's first entry, at least `-f32::MAX` (a `-inf` bound would make
    /// `-inf - b` NaN).
    #[inline(always)]
    fn new(first: f32) -> Self {
        let bound = (first + BOUND_SLACK).at_least(-f32::MAX);
        Online {
            bound,
            vbound: V::splat(bound),
            sum: V::zero(),
            max: V::splat(f32::NEG_INFINITY),
        }
    }

    /// Adds the `K` (4 or 1) vectors of entries `xs`. (Plain loops, no closures, here: a
    /// closure that LLVM declines to inline is compiled without the caller's AVX2 target
    /// feature, and every vector operation in it becomes a call, 40x slower.)
    #[inline(always)]
    fn add<const K: usize, const EXACT_MAX: bool>(&mut self, xs: [V; K]) {
        // `at_least` keeps NaN lanes of `cm` only; a NaN entry still makes its term NaN.
        let mut cm = xs[0];
        for &x in &xs[1..] {
            cm = cm.at_least(x);
        }
        if EXACT_MAX {
            self.max = self.max.at_least(cm);
        }
        if self.vbound.lt(cm).any() {
            let nb = max_lane(cm) + BOUND_SLACK;
            self.sum = self.sum.mul(V::splat(exp_nonpos::<f32>(self.bound - nb)));
            self.bound = nb;
            self.vbound = V::splat(nb);
        }
        let mut e = xs;
        for x in &mut e {
            *x = exp_nonpos_scaled_term(x.sub(self.vbound));
        }
        // A pairwise sum of the chunk, then one add on the running sum's chain.
        let chunk = if K == 4 {
            e[0].add(e[1]).add(e[2].add(e[3]))
        } else {
            let mut c = e[0];
            for &x in &e[1..] {
                c = c.add(x);
            }
            c
        };
        self.sum = self.sum.add(chunk);
    }
}

/// `y[j] = y[j] * k + c` over a row, in place.
#[inline(always)]
pub(crate) fn row_affine<V: Vector<Elem = f32>>(y: &mut [f32], k: f32, c: f32) {
    let l = V::LANES;
    let n = y.len();
    let (vk, vc) = (V::splat(k), V::splat(c));
    let p = y.as_mut_ptr();
    let mut i = 0;
    // SAFETY: loads and stores cover `LANES` elements starting below `n - LANES + 1`.
    unsafe {
        while i + l <= n {
            V::load(p.add(i)).mul_add(vk, vc).store(p.add(i));
            i += l;
        }
    }
    for v in &mut y[i..] {
        *v = *v * k + c;
    }
}

/// A per-row computation: `a` and `b` are the row's inputs (`b` unused by forwards), `out`
/// its output.
pub(crate) trait RowKernel: Copy + Send + Sync {
    fn row<V: Vector<Elem = f32>>(self, a: &[f32], b: &[f32], out: &mut [f32]);
}

struct Rows<'a, K> {
    k: K,
    cols: usize,
    a: &'a [f32],
    b: &'a [f32],
    out: &'a mut [f32],
}

impl<K: RowKernel> SimdFn<f32> for Rows<'_, K> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let c = self.cols;
        for ((a, b), out) in self
            .a
            .chunks_exact(c)
            .zip(self.b.chunks_exact(c))
            .zip(self.out.chunks_exact_mut(c))
        {
            self.k.row::<V>(a, b, out);
        }
    }
}

/// Runs `k` on every row (`a`, `b`, `out` all `rows * cols` long, `cols > 0`), over rayon
/// tasks of about [`PAR_CHUNK`] elements when the tensor is large.
fn for_rows<K: RowKernel>(k: K, cols: usize, a: &[f32], b: &[f32], out: &mut [f32]) {
    let isa = Isa::active().for_row(cols);
    let run = |a: &[f32], b: &[f32], out: &mut [f32]| {
        dispatch(isa, Rows { k, cols, a, b, out });
    };
    if out.len() >= PAR_MIN_LEN && out.len() > cols {
        let chunk = (PAR_CHUNK / cols).max(1) * cols;
        a.par_chunks(chunk)
            .zip(b.par_chunks(chunk))
            .zip(out.par_chunks_mut(chunk))
            .for_each(|((a, b), out)| run(a, b, out));
    } else {
        run(a, b, out);
    }
}

#[derive(Clone, Copy)]
struct SoftmaxFwd;
impl RowKernel for SoftmaxFwd {
    #[inline(always)]
    fn row<V: Vector<Elem = f32>>(self, x: &[f32], _: &[f32], y: &mut [f32]) {
        let m = row_max::<V>(x);
        let s = row_exp_sum::<V>(x, m, y);
        row_affine::<V>(y, 1.0 / s, 0.0);
    }
}

#[derive(Clone, Copy)]
struct LogSoftmaxFwd;
impl RowKernel for LogSoftmaxFwd {
    #[inline(always)]
    fn row<V: Vector<Elem = f32>>(self, x: &[f32], _: &[f32], y: &mut [f32]) {
        let (m, ls) = row_log_sum_exp::<V, true>(x);
        // y = (x - m) - ln s: subtracting m first keeps large logits exact.
        let ls = ls as f32;
        let (vm, vls) = (V::splat(m), V::splat(ls));
        let l = V::LANES;
        let mut i = 0;
        // SAFETY: loads and stores cover `LANES` elements below the row length.
        unsafe {
            while i + l <= x.len() {
                V::load(x.as_ptr().add(i))
                    .sub(vm)
                    .sub(vls)
                    .store(y.as_mut_ptr().add(i));
                i += l;
            }
        }
        for j in i..x.len() {
            y[j] = (x[j] - m) - ls;
        }
    }
}

/// `sum_j a[j] * b[j]` (if `MUL`) or `sum_j b[j]`, lane-wise partial sums then across lanes.
#[inline(always)]
fn row_dot<V: Vector<Elem = f32>, const MUL: bool>(a: &[f32], b: &[f32]) -> f32 {
    let l = V::LANES;
    let n = b.len();
    let mut acc = V::zero();
    let mut i = 0;
    // SAFETY: loads cover `LANES` elements below `n`; `a` is as long as `b` when `MUL`.
    unsafe {
        while i + l <= n {
            let vb = V::load(b.as_ptr().add(i));
            acc = if MUL {
                V::load(a.as_ptr().add(i)).mul_add(vb, acc)
            } else {
                acc.add(vb)
            };
            i += l;
        }
    }
    let mut sum = acc.reduce_sum();
    for j in i..n {
        sum += if MUL { a[j] * b[j] } else { b[j] };
    }
    sum
}

#[derive(Clone, Copy)]
struct SoftmaxBwd;
impl RowKernel for SoftmaxBwd {
    /// `dx = y * (dy - sum(dy * y))`.
    #[inline(always)]
    fn row<V: Vector<Elem = f32>>(self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let ds = row_dot::<V, true>(y, dy);
        let d = V::splat(ds);
        let l = V::LANES;
        let mut i = 0;
        // SAFETY: loads and stores cover `LANES` elements below the row length.
        unsafe {
            while i + l <= y.len() {
                let vy = V::load(y.as_ptr().add(i));
                let vd = V::load(dy.as_ptr().add(i));
                vy.mul(vd.sub(d)).store(dx.as_mut_ptr().add(i));
                i += l;
            }
        }
        for j in i..y.len() {
            dx[j] = y[j] * (dy[j] - ds);
        }
    }
}

#[derive(Clone, Copy)]
struct LogSoftmaxBwd;
impl RowKernel for LogSoftmaxBwd {
    /// `dx = dy - exp(y) * sum(dy)`.
    #[inline(always)]
    fn row<V: Vector<Elem = f32>>(self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let g = row_dot::<V, false>(y, dy);
        let vg = V::splat(-g);
        let l = V::LANES;
        let mut i = 0;
        // SAFETY: loads and stores cover `LANES` elements below the row length.
        unsafe {
            while i + l <= y.len() {
                let e = exp(V::load(y.as_ptr().add(i)));
                e.mul_add(vg, V::load(dy.as_ptr().add(i)))
                    .store(dx.as_mut_ptr().add(i));
                i += l;
            }
        }
        for j in i..y.len() {
            dx[j] = exp::<f32>(y[j]) * -g + dy[j];
        }
    }
}

/// Validates a `[rows, cols]` call: every slice exactly `rows * cols` long.
pub(super) fn check(
    rows: usize,
    cols: usize,
    lens: &[(&'static str, usize)],
) -> Result<usize, KernelError> {
    let n = checked_mul("rows * cols", rows, cols)?;
    for &(arg, len) in lens {
        check_len(arg, n, len)?;
    }
    Ok(n)
}

macro_rules! row_api {
    ($(#[$doc:meta])* $name:ident, $refname:ident, $kernel:ident, fwd) => {
        $(#[$doc])*
        pub fn $name(
            backend: Backend,
            rows: usize,
            cols: usize,
            x: &[f32],
            y: &mut [f32],
        ) -> Result<(), KernelError> {
            if check(rows, cols, &[("x", x.len()), ("y", y.len())])? == 0 {
                return Ok(());
            }
            match backend {
                Backend::Reference => super::reference::$refname(rows, cols, x, y),
                _ => {
                    for_rows($kernel, cols, x, x, y);
                    Ok(())
                }
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $refname:ident, $kernel:ident, bwd) => {
        $(#[$doc])*
        pub fn $name(
            backend: Backend,
            rows: usize,
            cols: usize,
            y: &[f32],
            dy: &[f32],
            dx: &mut [f32],
        ) -> Result<(), KernelError> {
            let lens = [("y", y.len()), ("dy", dy.len()), ("dx", dx.len())];
            if check(rows, cols, &lens)? == 0 {
                return Ok(());
            }
            match backend {
                Backend::Reference => super::reference::$refname(rows, cols, y, dy, dx),
                _ => {
                    for_rows($kernel, cols, y, dy, dx);
                    Ok(())
                }
            }
        }
    };
}

row_api!(
    /// `y = softmax(x)` along the last axis of `[rows, cols]` (`OpenBlas` runs the native code).
    softmax_forward, softmax_forward_reference, SoftmaxFwd, fwd
);
row_api!(
    /// `y = log_softmax(x) = (x - max) - ln(sum exp(x - max))` along the last axis.
    log_softmax_forward, log_softmax_forward_reference, LogSoftmaxFwd, fwd
);
row_api!(
    /// Softmax backward from the output: `dx = y * (dy - sum_j dy_j y_j)` per row.
    softmax_backward, softmax_backward_reference, SoftmaxBwd, bwd
);
row_api!(
    /// Log-softmax backward from the output: `dx = dy - exp(y) * sum_j dy_j` per row.
    log_softmax_backward, log_softmax_backward_reference, LogSoftmaxBwd, bwd
);

#[cfg(test)]
mod tests {
    use super::*;

    struct OnePass<'a>(&'a [f32]);
    impl SimdFn<f32> for OnePass<'_> {
        type Output = (f32, f64);
        fn call<V: Vector<Elem = f32>>(self) -> (f32, f64) {
            row_log_sum_exp::<V, true>(self.0)
        }
    }

    /// The one-pass row function returns the exact maximum (which keeps log-softmax's
    /// `x - m` exact; the loss alone would not notice a wrong one) and `ln s` within 4 ulp of
    /// 1, on every ISA, for rows that raise its bound in every chunk and have `-inf` lanes.
    #[test]
    fn one_pass_maximum_is_exact_and_log_sum_close() {
        for c in (1..=70).chain([129, 1000]) {
            let rows: [Vec<f32>; 3] = [
                (0..c).map(|j| j as f32 * 0.75).collect(),
                (0..c)
                    .map(|j| ((j * 7919) % 101) as f32 * 3.0 - 150.0)
                    .collect(),
                (0..c)
                    .map(|j| {
                        if j % 8 == 3 {
                            f32::NEG_INFINITY
                        } else {
                            (j % 13) as f32
                        }
                    })
                    .collect(),
            ];
            for x in &rows {
                let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = x.iter().map(|&v| (v as f64 - m as f64).exp()).sum();
                for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                    let (gm, gls) = dispatch(isa, OnePass(x));
                    assert_eq!(gm, m, "{isa:?} c {c}");
                    let err = (gls - s.ln()).abs();
                    assert!(err < 4.0 * f32::EPSILON as f64, "{isa:?} c {c}: {err:e}");
                }
            }
        }
    }
}
