//! Vectorized f32 transcendentals, written once over `Vector` and so compiled for every ISA.
//!
//! Every function handles the whole f32 range: +-0, subnormals, large magnitudes, +-inf and
//! NaN (NaN in, NaN out). The polynomial coefficients were fitted for this crate (Chebyshev
//! fits in `mpmath`, linearized least-squares rational fits for `tanh` and `erf`). Maximum errors,
//! measured against f64 `std` over a sweep of the whole f32 range on every ISA (see
//! `kernels/tests/simd_math.rs`, which enforces them):
//!
//! | function | max error (`e` = `f32::EPSILON * |exact|`) |
//! |---|---|
//! | `exp` | `1.0 e` (1.2e-7 relative); subnormal results 1.4e-45 absolute |
//! | `expm1` | `2.5 e` (3.0e-7 relative) |
//! | `tanh` | `3.5 e` (4.2e-7 relative) |
//! | `sigmoid` | `2.0 e` (2.4e-7 relative); subnormal results 1.4e-45 absolute |
//! | `erf` | 3.5e-7 absolute; `3 e` relative for `|x| < 0.5` |
//! | `normal_cdf` | 2e-7 absolute; exactly 0 and 1 beyond `|x| = 4 sqrt 2` |
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

/// `Phi(x) - 1/2 = erf(x / sqrt 2) / 2 = x P(x^2) / Q(x^2)` on `[-4 sqrt 2, 4 sqrt 2]`: the erf
/// fit with `1/2` and `1/sqrt 2` folded into the coefficients, lowest degree first.
const PHI_P: [f32; 7] = [
    0.398_942_3,
    0.032_654_09,
    0.004_805_385,
    1.699e-4,
    8.488_705e-6,
    5.323_425e-8,
    -7.655_607e-11,
];
const PHI_Q: [f32; 6] = [
    1.0,
    0.248_518_42,
    0.028_464_815,
    0.001_933_500_3,
    8.203_611e-5,
    2.011_599_5e-6,
];

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

/// Splits `x = n ln2 + r` with integer `n` and `|r| <= ln2/2` (Cody-Waite), returning
/// `(n, e^r - 1)`. `|x|` must be below 2^21 (callers clamp).
#[inline(always)]
fn reduce_expm1<V: Vector<Elem = f32>>(x: V) -> (V, V) {
    let n = x.mul_add(s(LOG2E), s(ROUNDER)).sub(s(ROUNDER));
    let r = n.mul_add(s(-LN2_HI), x);
    let r = n.mul_add(s(-LN2_LO), r);
    let em1 = r.mul(r).mul_add(poly(r, &EXPM1_Q), r);
    (n, em1)
}

/// `e^x = (1 + em1) 2^n` from [`reduce_expm1`]'s parts, for integer-valued `n` in
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
    let (n, em1) = reduce_expm1(xc);
    exp_parts(n, em1)
}

/// `e^x` for `x <= 0` (or NaN; positive inputs give unspecified values): [`exp`] without the
/// overflow-side clamps, for softmax, sigmoid, softplus and the normal density, whose
/// arguments are never positive. Same accuracy as [`exp`].
#[inline(always)]
pub(crate) fn exp_nonpos<V: Vector<Elem = f32>>(x: V) -> V {
    let (n, em1) = reduce_expm1(x.at_least(s(-104.0)));
    let n1 = n.at_least(s(-126.0));
    let s1 = n1.pow2i();
    em1.mul_add(s1, s1).mul(n.sub(n1).pow2i())
}

/// `e^x - 1` without cancellation near 0. `expm1(-inf) = -1`, `expm1(+inf) = inf`, `-0` and
/// subnormals are returned unchanged, NaN propagates.
#[inline(always)]
pub(crate) fn expm1<V: Vector<Elem = f32>>(x: V) -> V {
    // Below -18, e^x < 2^-25 and the result rounds to -1.
    let xc = x.at_least(s(-18.0)).at_most(s(89.0));
    let (n, em1) = reduce_expm1(xc);
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
/// results of large negative `x`. `sigmoid(-inf) = 0`, `sigmoid(inf) = 1`, NaN propagates.
#[inline(always)]
pub(crate) fn sigmoid<V: Vector<Elem = f32>>(x: V) -> V {
    let e = exp_nonpos(V::zero().sub(x.abs()));
    let num = V::select(x.lt(V::zero()), e, s(1.0));
    num.div(e.add(s(1.0)))
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
/// 2e-7, NaN propagates.
#[inline(always)]
pub(crate) fn normal_cdf<V: Vector<Elem = f32>>(x: V) -> V {
    let lim = s(5.656_854);
    let xc = x.at_least(V::zero().sub(lim)).at_most(lim);
    let t = xc.mul(xc);
    let r = poly(t, &PHI_P).div(poly(t, &PHI_Q));
    let p = xc.mul_add(r, s(0.5)).at_least(V::zero()).at_most(s(1.0));
    // Beyond the fit, exactly 0 or 1 (the limits GELU's -inf and its gradient rely on).
    let tail = V::zero().lt(x).and(s(1.0));
    V::select(lim.lt(x.abs()), tail, p)
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
