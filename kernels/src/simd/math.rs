//! Vectorized f32 transcendentals, written once over [`Vector`] and so compiled for every ISA.
//!
//! Every function handles the whole f32 range: +-0, subnormals, large magnitudes, +-inf and
//! NaN (NaN in, NaN out). The polynomial coefficients were fitted for this crate (Chebyshev
//! fits in `mpmath`, a linearized least-squares rational fit for `erf`). Maximum errors,
//! measured against f64 `std` over a sweep of the whole f32 range on every ISA (see
//! `kernels/tests/activation.rs`, which enforces them):
//!
//! | function | result | max error |
//! |---|---|---|
//! | [`exp`] | normal results | 2 ulp (relative 2.4e-7); subnormal results abs 1.5e-45 |
//! | [`expm1`] | all | 3 ulp (relative 3.6e-7) |
//! | [`tanh`] | all | 4 ulp (relative 4.8e-7) |
//! | [`sigmoid`] | all | 4 ulp (relative 4.8e-7), subnormal results abs 1.5e-45 |
//! | [`erf`] | all | absolute 2.5e-7 (relative 4 ulp for |x| < 0.5) |
//! | [`log1p_unit`] | `y` in `[0, 1]` | 2 ulp (relative 2.4e-7) |
//!
//! (ulp here means `f32::EPSILON * |exact|`.) The tests hold the code to these numbers.

use super::Vector;

/// `log2(e)`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in a high part with trailing zero bits (so `n * LN2_HI` is exact for
/// `|n| < 512`) and the rest.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `(e^r - 1 - r) / r^2` on `[-ln2/2, ln2/2]`, highest degree first (relative error of the
/// resulting `e^r` below 3e-8).
const EXPM1_Q: [f32; 5] = [
    0.001_392_617_6,
    0.008_363_173,
    0.041_666_555,
    0.166_665_77,
    0.5,
];

/// `(2 atanh(s) - 2s) / s^3` as a polynomial in `s^2` on `s^2 in [0, 1/9]`, highest first.
const LOG1P_R: [f32; 4] = [0.268_515, 0.282_366_2, 0.400_075_6, 0.666_666_4];

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

/// Horner evaluation, coefficients highest degree first.
#[inline(always)]
fn horner<V: Vector<Elem = f32>>(x: V, c: &[f32]) -> V {
    let mut acc = s::<V>(c[0]);
    for &ci in &c[1..] {
        acc = acc.mul_add(x, s(ci));
    }
    acc
}

/// Horner evaluation, coefficients lowest degree first.
#[inline(always)]
fn horner_low<V: Vector<Elem = f32>>(x: V, c: &[f32]) -> V {
    let mut acc = s::<V>(c[c.len() - 1]);
    for &ci in c[..c.len() - 1].iter().rev() {
        acc = acc.mul_add(x, s(ci));
    }
    acc
}

/// Splits `x = n ln2 + r` with integer `n` and `|r| <= ln2/2` (Cody-Waite), returning
/// `(n, e^r - 1)`.
#[inline(always)]
fn reduce_expm1<V: Vector<Elem = f32>>(x: V) -> (V, V) {
    let n = x.mul(s(LOG2E)).round();
    let r = n.mul_add(s(-LN2_HI), x);
    let r = n.mul_add(s(-LN2_LO), r);
    let em1 = r.mul(r).mul_add(horner(r, &EXPM1_Q), r);
    (n, em1)
}

/// `p * 2^n` for integer-valued `n` in `[-150, 130]`, in two exact factors so that neither
/// leaves the normal range; the last multiply rounds once into the subnormals or overflows
/// to infinity exactly when the true result does.
#[inline(always)]
fn scale_pow2<V: Vector<Elem = f32>>(p: V, n: V) -> V {
    let n1 = n.mul(s(0.5)).round();
    let n2 = n.sub(n1);
    p.mul(n1.pow2i()).mul(n2.pow2i())
}

/// `e^x`. Overflows to `+inf` above 88.72, underflows through the subnormals to `+0` below
/// -103.97; `exp(-inf) = 0`, `exp(+inf) = inf`, NaN propagates.
#[inline(always)]
pub(crate) fn exp<V: Vector<Elem = f32>>(x: V) -> V {
    // Beyond these bounds the result is already 0 or inf; clamping keeps `n` in range
    // (`max`/`min` propagate NaN).
    let xc = x.max(s(-104.0)).min(s(89.0));
    let (n, em1) = reduce_expm1(xc);
    scale_pow2(em1.add(s(1.0)), n)
}

/// `e^x - 1` without cancellation near 0. `expm1(-inf) = -1`, `expm1(+inf) = inf`, `-0` and
/// subnormals are returned unchanged, NaN propagates.
#[inline(always)]
pub(crate) fn expm1<V: Vector<Elem = f32>>(x: V) -> V {
    // Below -18, e^x < 2^-25 and the result rounds to -1.
    let xc = x.max(s(-18.0)).min(s(89.0));
    let (n, em1) = reduce_expm1(xc);
    // n == 0: the reduced value is the answer (|x| <= ln2/2); otherwise |result| >= 0.29 and
    // 2^n (e^r) - 1 loses at most a bit.
    let big = scale_pow2(em1.add(s(1.0)), n).sub(s(1.0));
    let y = V::select(n.eq(V::zero()), em1, big);
    // Tiny inputs (and -0) are their own expm1; the polynomial would lose the sign of -0.
    V::select(x.abs().lt(s(1.0e-10)), x, y)
}

/// The sign bit of `x` as a mask-like value (`-0.0` where negative, `+0.0` elsewhere).
#[inline(always)]
fn sign_bit<V: Vector<Elem = f32>>(x: V) -> V {
    x.and(s(-0.0))
}

/// `tanh(x)`, odd by construction: `tanh(|x|) = expm1(2|x|) / (expm1(2|x|) + 2)`, sign put
/// back. Saturates to +-1 beyond |x| = 9 (where the f32 result is +-1), keeps -0 and
/// subnormals, NaN propagates.
#[inline(always)]
pub(crate) fn tanh<V: Vector<Elem = f32>>(x: V) -> V {
    let a = x.abs().min(s(9.0));
    let e = expm1(a.add(a));
    let t = e.div(e.add(s(2.0)));
    t.or(sign_bit(x))
}

/// The logistic function `1 / (1 + e^-x)`, computed from `e = exp(-|x|) <= 1` as `1/(1+e)` or
/// `e/(1+e)`, so it never overflows and keeps its relative accuracy down into the subnormal
/// results of large negative `x`. `sigmoid(-inf) = 0`, `sigmoid(inf) = 1`, NaN propagates.
#[inline(always)]
pub(crate) fn sigmoid<V: Vector<Elem = f32>>(x: V) -> V {
    let e = exp(V::zero().sub(x.abs()));
    let num = V::select(x.lt(V::zero()), e, s(1.0));
    num.div(e.add(s(1.0)))
}

/// The error function. Clamped to `[-4, 4]` (beyond which erf is +-1 in f32); -0 stays -0,
/// NaN propagates.
#[inline(always)]
pub(crate) fn erf<V: Vector<Elem = f32>>(x: V) -> V {
    let xc = x.max(s(-4.0)).min(s(4.0));
    let t = xc.mul(xc);
    let p = horner_low(t, &ERF_P);
    let q = horner_low(t, &ERF_Q);
    xc.mul(p.div(q)).max(s(-1.0)).min(s(1.0))
}

/// `ln(1 + y)` for `y` in `[0, 1]` (the range softplus needs), as `2 atanh(y / (2 + y))`:
/// no cancellation for small `y`. NaN propagates.
#[inline(always)]
pub(crate) fn log1p_unit<V: Vector<Elem = f32>>(y: V) -> V {
    let z = y.div(y.add(s(2.0)));
    let z2 = z.mul(z);
    let r = horner(z2, &LOG1P_R);
    z.mul(z2).mul_add(r, z.add(z))
}
