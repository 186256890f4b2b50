//! Vectorized f32 transcendentals, written once over `Vector` and so compiled for every ISA.
//!
//! Every function handles the whole f32 range: +-0, subnormals, large magnitudes, +-inf and
//! NaN (NaN in, NaN out). The polynomial coefficients were fitted for this crate (Chebyshev
//! fits in `mpmath`, linearized least-squares rational fits for `tanh`, `erf` and GELU's
//! derivative). Maximum errors, measured against f64 `std` over a sweep of the whole f32 range on every ISA (see
//! `kernels/tests/simd_math.rs`, which enforces them, and `activation.rs` for GELU's
//! derivative):
//!
//! | function | max error (`e` = `f32::EPSILON * |exact|`) |
//! |---|---|
//! | `exp` | `1.0 e` (1.2e-7 relative); subnormal results 1.4e-45 absolute |
//! | `exp_nonpos_scaled_term` (a term of a sum, `x <= 0`), with FMA | `2 e` for `x >= -20`, `4 e` below |
//! | `expm1` | `2.5 e` (3.0e-7 relative) |
//! | `tanh` | `3.5 e` (4.2e-7 relative) |
//! | `sigmoid` | `2.0 e` (2.4e-7 relative); subnormal results 1.4e-45 absolute |
//! | `erf` | 3.5e-7 absolute; `3 e` relative for `|x| < 0.5` |
//! | `normal_cdf` | 2e-7 absolute; exactly 0 and 1 beyond `|x| = 4 sqrt 2` |
//! | GELU's derivative `Phi(x) + x phi(x)` | 4e-7 absolute; exactly 0 and 1 beyond `|x| = 6.2` |
//! | `log1p_unit` | `2.0 e` relative, 2.8e-45 absolute, for `y` in `[0, 1]` |
//!
//! Infinite results are exact (`exp` overflows to `inf` exactly when the true value does).

use super::Vector;

/// `log2(e)`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in a high part with trailing zero bits (so `n * LN2_HI` is exact for
/// `|n| < 512`) and the rest.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `(e^r - 1 - r) / r^2` on `[-ln2/2, ln2/2]`, lowest degree first (relative error of the
/// resulting `e^r` below 3e-8).
const EXPM1_Q: [f32; 5] = [
    0.5,
    0.166_665_77,
    0.041_666_555,
    0.008_363_173,
    0.001_392_617_6,
];

/// `(2 atanh(s) - 2s) / s^3` as a polynomial in `s^2` on `s^2 in [0, 1/9]`, lowest first.
const LOG1P_R: [f32; 4] = [0.666_666_4, 0.400_075_6, 0.282_366_2, 0.268_515];

/// `Phi(x) - 1/2 = erf(x / sqrt 2) / 2 = x P(x^2) / Q(x^2)` on `[-4 sqrt 2, 4 sqrt 2]` (fit
/// error 1.1e-8, far below the f32 evaluation's), lowest degree first. Degree 5 over 5 in `x^2`:
/// GELU is bound by these FMAs, and one fewer than the erf fit's 6 over 5 made it 11% faster
/// in cache for the same 2e-7 bound.
const PHI_P: [f32; 6] = [
    0.3989422,
    0.034692597,
    0.0047259214,
    0.00017694103,
    6.364865e-06,
    2.1818522e-08,
];
const PHI_Q: [f32; 6] = [
    1.0,
    0.25362703,
    0.029119302,
    0.0019305712,
    7.602334e-05,
    1.1712622e-06,
];

/// Where [`normal_cdf`] clamps its fit's argument: `4 sqrt 2`.
const PHI_LIM: f32 = 5.656_854;

/// `Phi(x) + x phi(x) - 1/2 = x P(x^2) / Q(x^2)` on `[-6.2, 6.2]` (fit error 1.6e-7), the
/// derivative of GELU for [`gelu_grad_ratio`], lowest degree first. Degree 6 over 5 in `x^2`:
/// two FMAs fewer than a 7 over 6 fit (error 7.9e-9, 3e-7 after f32 evaluation) made the
/// backward 14% faster in cache, for a bound of 4e-7 instead of 3e-7.
const GELU_GRAD_P: [f32; 7] = [
    0.79788566,
    -0.030092616,
    0.014280624,
    2.9247745e-05,
    3.7518825e-05,
    2.3395468e-07,
    -1.461471e-10,
];
const GELU_GRAD_Q: [f32; 6] = [
    1.0,
    0.29562908,
    0.041414972,
    0.003602116,
    0.00019743525,
    9.7938255e-06,
];
/// Past `|x| = 6.2` GELU's derivative rounds to 0 or 1 (it is within 1.1e-8 of them).
const GELU_GRAD_LIM: f32 = 6.2;

/// `tanh(x) = x P(x^2) / Q(x^2)` on `[0, 9]` (fit relative error 6.4e-8), lowest first.
const TANH_P: [f32; 6] = [
    1.0,
    0.129_227_12,
    0.002_924_334_8,
    9.296_628e-6,
    -1.285_539_9e-8,
    1.841_620_5e-11,
];
const TANH_Q: [f32; 4] = [1.0, 0.462_560_1, 0.023_778_262, 2.285_710_4e-4];

/// `erf(x) = x P(x^2) / Q(x^2)` on `[-4, 4]` (fit error 1.9e-9), lowest degree first.
const ERF_P: [f32; 7] = [
    std::f32::consts::FRAC_2_SQRT_PI,
    0.184_719_42,
    0.054_366_73,
    0.003_844_398,
    3.841_549_5e-4,
    4.818_214_5e-6,
    -1.385_812_8e-8,
];
const ERF_Q: [f32; 6] = [
    1.0,
    0.497_036_85,
    0.113_859_26,
    0.015_468_002,
    0.001_312_577_8,
    6.437_118e-5,
];

#[inline(always)]
fn s<V: Vector<Elem = f32>>(c: f32) -> V {
    V::splat(c)
}

/// Polynomial with coefficients lowest degree first, by Horner's rule: `N - 1` FMAs, the
/// fewest operations (these loops are bound by FMA throughput, not latency: measured, an
/// Estrin scheme's extra multiplies cost more than its shorter chains gain).
#[inline(always)]
fn poly<V: Vector<Elem = f32>, const N: usize>(x: V, c: &[f32; N]) -> V {
    let mut acc = s::<V>(c[N - 1]);
    for i in (0..N - 1).rev() {
        acc = acc.mul_add(x, s(c[i]));
    }
    acc
}

/// `1.5 * 2^23`: adding it to a float of magnitude below 2^22 rounds to an integer (ties to
/// even) and subtracting it back gives that integer exactly.
const ROUNDER: f32 = 12_582_912.0;

/// `(e^r - 1 - r) / r^2` by Estrin's scheme from `r` and `r2 = r^2` (which the caller needs
/// anyway): the same operation count as Horner's rule with half its latency, and these
/// loops are bound by latency times operation count (how many iterations the out-of-order
/// window overlaps), measured.
#[inline(always)]
fn expm1_q<V: Vector<Elem = f32>>(r: V, r2: V) -> V {
    let lo = r.mul_add(s(EXPM1_Q[1]), s(EXPM1_Q[0]));
    let hi = r.mul_add(s(EXPM1_Q[3]), s(EXPM1_Q[2]));
    r2.mul_add(r2.mul_add(s(EXPM1_Q[4]), hi), lo)
}

/// Splits `x = n ln2 + r` with integer `n` and `|r| <= ln2/2` (Cody-Waite), returning
/// `(t, n, e^r - 1)` where `t = x log2(e) + magic` rounded (so `n = t - magic`; `magic` is
/// [`ROUNDER`] plus any bias the caller wants in `t`'s low bits). `|x|` must be below 2^21
/// (callers clamp).
#[inline(always)]
fn reduce<V: Vector<Elem = f32>>(x: V, magic: f32) -> (V, V, V) {
    let t = x.mul_add(s(LOG2E), s(magic));
    let n = t.sub(s(magic));
    let r = n.mul_add(s(-LN2_HI), x);
    let r = n.mul_add(s(-LN2_LO), r);
    let r2 = r.mul(r);
    (t, n, r2.mul_add(expm1_q(r, r2), r))
}

/// `e^x = (1 + em1) 2^n` from [`reduce`]'s parts, for integer-valued `n` in
/// `[-152, 130]`: `2^n` in two exact factors, the first `n` clamped to the normal range and
/// the second the (small) rest, so that the last multiply rounds once into the subnormals,
/// or overflows to infinity exactly when the true result does. The `1 +` is fused into the
/// first scaling (one rounding instead of two).
#[inline(always)]
fn exp_parts<V: Vector<Elem = f32>>(n: V, em1: V) -> V {
    let n1 = n.at_least(s(-126.0)).at_most(s(127.0));
    let s1 = n1.pow2i();
    em1.mul_add(s1, s1).mul(n.sub(n1).pow2i())
}

/// `e^x`. Overflows to `+inf` above 88.72, underflows through the subnormals to `+0` below
/// -103.97; `exp(-inf) = 0`, `exp(+inf) = inf`, NaN propagates.
#[inline(always)]
pub(crate) fn exp<V: Vector<Elem = f32>>(x: V) -> V {
    // Beyond these bounds the result is already 0 or inf; clamping keeps `n` in range
    // (NaN stays NaN).
    let xc = x.at_least(s(-104.0)).at_most(s(89.0));
    let (_, n, em1) = reduce(xc, ROUNDER);
    exp_parts(n, em1)
}

/// `log2` of [`EXP_SCALE`].
const EXP_SCALE_LOG2: f32 = 32.0;
/// The factor [`exp_nonpos_scaled`] returns its result times: `e^x 2^32` is a normal float
/// for every `x >= -109`, and at most `2^32` for `x <= 0`.
pub(crate) const EXP_SCALE: f32 = 4_294_967_296.0;

/// `e^x 2^32` for `x <= 0` (or NaN; positive inputs give unspecified values), never
/// subnormal: the scaling is one exact power of two taken from the rounding sum itself (the
/// bias 127 + 32 folded into the rounding constant), so the result is `(1 + em1) 2^(n + 32)`
/// with one rounding, the very rounding `e^x` gets where it is normal. Callers divide the
/// scale out where it costs nothing (a quotient, a constant), so that subnormal results
/// are rounded once, at that last step. Inputs below -109 count as -109 (`e^-109` is far
/// below half the smallest subnormal, so results still round to 0 there).
#[inline(always)]
pub(crate) fn exp_nonpos_scaled<V: Vector<Elem = f32>>(x: V) -> V {
    // n >= -157, so n + 127 + 32 >= 2: a normal exponent (NaN stays NaN).
    let xc = x.at_least(s(-109.0));
    let (t, _, em1) = reduce(xc, ROUNDER + 127.0 + EXP_SCALE_LOG2);
    let scale = t.pow2_biased();
    em1.mul_add(scale, scale)
}

/// `(e^r - 1 - r) / r^2` on `[-ln2/2, ln2/2]` one degree lower than [`EXPM1_Q`], for
/// [`exp_nonpos_scaled_term`] (relative error of the resulting `e^r` below 1.1e-7).
const EXPM1_Q_TERM: [f32; 4] = [0.499_992_3, 0.166_671_14, 0.041_890_114, 0.008_312_525];

/// [`exp_nonpos_scaled`] for the terms of a sum whose largest term is at least 1 (softmax's
/// `sum_j e^(x_j - max)`), two multiply-adds cheaper: `x = n ln2 + r` with a single `ln 2`
/// constant, and a polynomial one degree lower. The constant's error (1.9e-9) times `n`
/// grows with `|x|`, and so does the relative error (see the module table: `2 e` down to
/// -20, `4 e` at -109), but a term's contribution to such a sum is `e^x`: its absolute error
/// peaks near `x = -1`, below `2 e` of the sum. Measured over the loss-only
/// softmax-cross-entropy, these two multiply-adds (of ten) were 18% of its time.
///
/// The one-constant reduction needs a fused multiply-add (unfused, `n ln 2` rounds to 35 e
/// at -109): ISAs without one get [`exp_nonpos_scaled`].
#[inline(always)]
pub(crate) fn exp_nonpos_scaled_term<V: Vector<Elem = f32>>(x: V) -> V {
    if !V::FUSED {
        return exp_nonpos_scaled(x);
    }
    let xc = x.at_least(s(-109.0));
    let magic = ROUNDER + 127.0 + EXP_SCALE_LOG2;
    let t = xc.mul_add(s(LOG2E), s(magic));
    let n = t.sub(s(magic));
    let r = n.mul_add(s(-std::f32::consts::LN_2), xc);
    let r2 = r.mul(r);
    let lo = r.mul_add(s(EXPM1_Q_TERM[1]), s(EXPM1_Q_TERM[0]));
    let hi = r.mul_add(s(EXPM1_Q_TERM[3]), s(EXPM1_Q_TERM[2]));
    let em1 = r2.mul_add(r2.mul_add(hi, lo), r);
    let scale = t.pow2_biased();
    em1.mul_add(scale, scale)
}

/// `e^x` for `x <= 0` (or NaN; positive inputs give unspecified values): [`exp`] without the
/// overflow side, for softmax and the normal density, whose arguments are never positive.
/// Same accuracy as [`exp`] (the same roundings: scaling by `2^-32` is exact for normal
/// results and rounds subnormal ones once).
#[inline(always)]
pub(crate) fn exp_nonpos<V: Vector<Elem = f32>>(x: V) -> V {
    exp_nonpos_scaled(x).mul(s(1.0 / EXP_SCALE))
}

/// `e^x - 1` without cancellation near 0. `expm1(-inf) = -1`, `expm1(+inf) = inf`, `-0` and
/// subnormals are returned unchanged, NaN propagates.
#[inline(always)]
pub(crate) fn expm1<V: Vector<Elem = f32>>(x: V) -> V {
    // Below -18, e^x < 2^-25 and the result rounds to -1.
    let xc = x.at_least(s(-18.0)).at_most(s(89.0));
    let (_, n, em1) = reduce(xc, ROUNDER);
    // n == 0: the reduced value is the answer (|x| <= ln2/2); otherwise |result| >= 0.29 and
    // 2^n (e^r) - 1 loses at most a bit.
    let big = exp_parts(n, em1).sub(s(1.0));
    let y = V::select(n.eq(V::zero()), em1, big);
    // Tiny inputs (and -0) are their own expm1; the polynomial would lose the sign of -0.
    V::select(x.abs().lt(s(1.0e-10)), x, y)
}

/// The sign bit of `x` as a mask-like value (`-0.0` where negative, `+0.0` elsewhere).
#[inline(always)]
fn sign_bit<V: Vector<Elem = f32>>(x: V) -> V {
    x.and(s(-0.0))
}

/// `tanh(x) = x P(x^2) / Q(x^2)` on `|x| <= 9` (beyond, the f32 result is +-1), odd by
/// construction (evaluated on `|x|`, sign put back): keeps -0 and subnormals, NaN propagates.
#[inline(always)]
pub(crate) fn tanh<V: Vector<Elem = f32>>(x: V) -> V {
    let a = x.abs().at_most(s(9.0));
    let t = a.mul(a);
    let p = poly(t, &TANH_P);
    let q = poly(t, &TANH_Q);
    a.mul(p).div(q).at_most(s(1.0)).or(sign_bit(x))
}

/// The logistic function `1 / (1 + e^-x)`, computed from `e = exp(-|x|) <= 1` as `1/(1+e)` or
/// `e/(1+e)`, so it never overflows and keeps its relative accuracy down into the subnormal
/// results of large negative `x`: numerator and denominator both carry the `2^32` of
/// [`exp_nonpos_scaled`], which the division cancels with the one rounding it makes anyway.
/// `sigmoid(-inf) = 0`, `sigmoid(inf) = 1`, NaN propagates.
#[inline(always)]
pub(crate) fn sigmoid<V: Vector<Elem = f32>>(x: V) -> V {
    sigmoid_finish(x, sigmoid_start(x))
}

/// The first half of [`sigmoid`]: `exp(-|x|) 2^32`.
#[inline(always)]
pub(crate) fn sigmoid_start<V: Vector<Elem = f32>>(x: V) -> V {
    // `x | -0.0` is `-|x|`.
    exp_nonpos_scaled(x.or(s(-0.0)))
}

/// The rest of [`sigmoid`] from `e = sigmoid_start(x)`.
#[inline(always)]
pub(crate) fn sigmoid_finish<V: Vector<Elem = f32>>(x: V, e: V) -> V {
    let num = V::select(x.lt(V::zero()), e, s(EXP_SCALE));
    num.div(e.add(s(EXP_SCALE)))
}

/// The error function. Clamped to `[-4, 4]` (beyond which erf is +-1 in f32); -0 stays -0,
/// NaN propagates.
#[inline(always)]
pub(crate) fn erf<V: Vector<Elem = f32>>(x: V) -> V {
    let xc = x.at_least(s(-4.0)).at_most(s(4.0));
    let t = xc.mul(xc);
    let p = poly(t, &ERF_P);
    let q = poly(t, &ERF_Q);
    xc.mul(p.div(q)).at_least(s(-1.0)).at_most(s(1.0))
}

/// The standard normal CDF `Phi(x) = (1 + erf(x / sqrt 2)) / 2`, from the erf fit with the
/// scalings folded in (two operations fewer than through [`erf`]); absolute error below
/// 2e-7, NaN propagates. The fit is evaluated at `|x|` clamped to `4 sqrt 2` but scaled by the
/// unclamped `x`: past the clamp `x r` runs beyond `+-1/2`, so clamping the result to
/// `[0, 1]` gives exactly 0 and 1 there (and at `+-inf`) without a separate select.
#[inline(always)]
pub(crate) fn normal_cdf<V: Vector<Elem = f32>>(x: V) -> V {
    normal_cdf_finish(x, normal_cdf_ratio(x))
}

/// The first half of [`normal_cdf`]: the fit's ratio `r` at the clamped `x^2`.
#[inline(always)]
pub(crate) fn normal_cdf_ratio<V: Vector<Elem = f32>>(x: V) -> V {
    ratio_of_square(x, PHI_LIM, &PHI_P, &PHI_Q)
}

/// `P(t) / Q(t)` at `t = min(x^2, lim^2)`: clamping `x^2` is clamping `|x|` (one operation
/// instead of two; NaN stays NaN).
#[inline(always)]
fn ratio_of_square<V: Vector<Elem = f32>, const N: usize, const M: usize>(
    x: V,
    lim: f32,
    p: &[f32; N],
    q: &[f32; M],
) -> V {
    let t = x.mul(x).at_most(s(lim * lim));
    poly(t, p).div(poly(t, q))
}

/// The rest of [`normal_cdf`] from `r = normal_cdf_ratio(x)`.
#[inline(always)]
pub(crate) fn normal_cdf_finish<V: Vector<Elem = f32>>(x: V, r: V) -> V {
    x.mul_add(r, s(0.5)).at_least(V::zero()).at_most(s(1.0))
}

/// `Phi(x) + x phi(x)`, the derivative of GELU's `x Phi(x)`, fitted directly (like
/// [`normal_cdf`]) as `1/2 + x P(x^2) / Q(x^2)`: no exponential (one costs as much as the
/// whole fit). Absolute error below 4e-7 (the fit's 1.6e-7 plus the f32 evaluation of its
/// degree-12 ratio); exactly 0 and 1 beyond `|x| = 6.2`; NaN propagates.
///
/// This is the first half: the ratio `P/Q` at the clamped `x^2`; the rest is
/// [`gelu_grad_finish`].
#[inline(always)]
pub(crate) fn gelu_grad_ratio<V: Vector<Elem = f32>>(x: V) -> V {
    ratio_of_square(x, GELU_GRAD_LIM, &GELU_GRAD_P, &GELU_GRAD_Q)
}

/// The rest of the GELU derivative from `r = gelu_grad_ratio(x)`.
#[inline(always)]
pub(crate) fn gelu_grad_finish<V: Vector<Elem = f32>>(x: V, r: V) -> V {
    let inside = x.mul_add(r, s(0.5));
    let tail = V::zero().lt(x).and(s(1.0));
    V::select(s::<V>(GELU_GRAD_LIM).lt(x.abs()), tail, inside)
}

/// `ln(1 + y)` for `y` in `[0, 1]` (the range softplus needs), as `2 atanh(y / (2 + y))`:
/// no cancellation for small `y`. NaN propagates.
#[inline(always)]
pub(crate) fn log1p_unit<V: Vector<Elem = f32>>(y: V) -> V {
    let z = y.div(y.add(s(2.0)));
    let z2 = z.mul(z);
    let r = poly(z2, &LOG1P_R);
    z.mul(z2).mul_add(r, z.add(z))
}

/// A vectorized function of this module, for [`eval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathFn {
    /// `e^x`.
    Exp,
    /// `e^x - 1`.
    Expm1,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `erf x`.
    Erf,
    /// The standard normal CDF `(1 + erf(x / sqrt 2)) / 2`.
    NormalCdf,
    /// `ln(1 + x)` for `x` in `[0, 1]` (outside that range the result is unspecified).
    Log1pUnit,
}

/// `y[i] = f(x[i])` with the vectorized approximations of this module on the active ISA
/// (errors as in the module table). Fails if the lengths differ.
pub fn eval(f: MathFn, x: &[f32], y: &mut [f32]) -> Result<(), crate::KernelError> {
    use crate::activation::driver::map_unary;
    crate::error::check_len("y", x.len(), y.len())?;
    use crate::activation::ops::Unary;
    macro_rules! run {
        ($func:ident) => {{
            #[derive(Clone, Copy)]
            struct F;
            impl Unary for F {
                #[inline(always)]
                fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
                    $func(x)
                }
            }
            map_unary(F, x, y)
        }};
    }
    match f {
        MathFn::Exp => run!(exp),
        MathFn::Expm1 => run!(expm1),
        MathFn::Tanh => run!(tanh),
        MathFn::Sigmoid => run!(sigmoid),
        MathFn::Erf => run!(erf),
        MathFn::NormalCdf => run!(normal_cdf),
        MathFn::Log1pUnit => run!(log1p_unit),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa, SimdFn};

    struct Terms<'a>(&'a [f32], &'a mut [f32]);
    impl SimdFn<f32> for Terms<'_> {
        type Output = ();
        fn call<V: Vector<Elem = f32>>(self) {
            for (x, y) in self
                .0
                .chunks_exact(V::LANES)
                .zip(self.1.chunks_exact_mut(V::LANES))
            {
                // SAFETY: both chunks hold LANES elements.
                unsafe { exp_nonpos_scaled_term(V::load(x.as_ptr())).store(y.as_mut_ptr()) };
            }
        }
    }

    /// [`exp_nonpos_scaled_term`]'s bound from the module table on every ISA, over a fine grid
    /// of `[-109, 0]` (and its clamp below), NaN propagating.
    #[test]
    fn exp_term_error_bound() {
        let mut xs: Vec<f32> = (0..=1_090_000).map(|i| i as f32 * -1e-4).collect();
        xs.extend([
            -1e-30,
            -f32::MIN_POSITIVE,
            -0.0,
            -120.0,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        // Whole vectors of every ISA (16 lanes at most).
        xs.resize(xs.len().div_ceil(16) * 16, 0.0);
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let mut ys = vec![0.0f32; xs.len()];
            dispatch(isa, Terms(&xs, &mut ys));
            for (&x, &y) in xs.iter().zip(&ys) {
                if x.is_nan() {
                    assert!(y.is_nan(), "{isa:?}");
                    continue;
                }
                let want = (x.max(-109.0) as f64).exp() * EXP_SCALE as f64;
                let ulps = if x >= -20.0 { 2.0 } else { 4.0 };
                let err = (y as f64 - want).abs() / (want * f32::EPSILON as f64);
                assert!(err <= ulps, "{isa:?} x {x}: {err} e");
            }
        }
    }
}
