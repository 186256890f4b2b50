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
use crate::simd::math::{exp, exp_nonpos, exp_nonpos_scaled, EXP_SCALE};
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

/// Writes `out[j] = exp(x[j] - m)` (if `STORE`) and returns `sum_j exp(x[j] - m)`, summed in
/// lane-wise partial sums then across lanes (a fixed order for a given ISA). Without `STORE`
/// the terms are summed scaled by `EXP_SCALE` (see [`exp_nonpos_scaled`]) and the sum scaled
/// back once: one multiply per vector fewer, and the same sum (scaling by a power of two is
/// exact; only terms below `f32::MIN_POSITIVE` round differently, far below the sum's ulp).
#[inline(always)]
pub(crate) fn row_exp_sum<V: Vector<Elem = f32>, const STORE: bool>(
    x: &[f32],
    m: f32,
    out: &mut [f32],
) -> f32 {
    let l = V::LANES;
    let n = x.len();
    debug_assert!(!STORE || out.len() == n);
    let vm = V::splat(m);
    let term = |d: V| {
        if STORE {
            exp_nonpos(d)
        } else {
            exp_nonpos_scaled(d)
        }
    };
    let (mut s0, mut s1) = (V::zero(), V::zero());
    let mut i = 0;
    // SAFETY: loads and stores cover `LANES` elements starting below `n - LANES + 1`;
    // `out` has length `n` when `STORE`.
    unsafe {
        while i + 2 * l <= n {
            let p = x.as_ptr().add(i);
            let e0 = term(V::load(p).sub(vm));
            let e1 = term(V::load(p.add(l)).sub(vm));
            if STORE {
                e0.store(out.as_mut_ptr().add(i));
                e1.store(out.as_mut_ptr().add(i + l));
            }
            s0 = s0.add(e0);
            s1 = s1.add(e1);
            i += 2 * l;
        }
        if i + l <= n {
            let e0 = term(V::load(x.as_ptr().add(i)).sub(vm));
            if STORE {
                e0.store(out.as_mut_ptr().add(i));
            }
            s0 = s0.add(e0);
            i += l;
        }
    }
    let mut sum = s0.add(s1).reduce_sum();
    for j in i..n {
        if STORE {
            let e = exp_nonpos::<f32>(x[j] - m);
            out[j] = e;
            sum += e;
        } else {
            sum += exp_nonpos_scaled::<f32>(x[j] - m);
        }
    }
    if STORE {
        sum
    } else {
        sum * (1.0 / EXP_SCALE)
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
    let isa = Isa::active();
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
        let s = row_exp_sum::<V, true>(x, m, y);
        row_affine::<V>(y, 1.0 / s, 0.0);
    }
}

#[derive(Clone, Copy)]
struct LogSoftmaxFwd;
impl RowKernel for LogSoftmaxFwd {
    #[inline(always)]
    fn row<V: Vector<Elem = f32>>(self, x: &[f32], _: &[f32], y: &mut [f32]) {
        let m = row_max::<V>(x);
        let s = row_exp_sum::<V, false>(x, m, &mut []);
        // y = (x - m) - ln s: subtracting m first keeps large logits exact.
        let ls = s.ln();
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
