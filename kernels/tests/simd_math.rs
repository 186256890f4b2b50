//! The vectorized f32 math (`nnkern_kernels::simd::math`): maximum error against f64 over a
//! sweep of the whole f32 range on every ISA (the numbers the module docs state), and exact
//! special values.

mod act_common;

use act_common::{close, DENORM, EPS};
use nnkern_kernels::activation::erf_reference;
use nnkern_kernels::simd::math::{eval, MathFn};
use nnkern_kernels::simd::{with_isa, Isa};

/// A sweep of the whole f32 range (every 4093rd bit pattern: all exponents, both signs,
/// subnormals, infinities, NaNs), special values, and a fine grid over [-100, 100].
fn sweep() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..1u64 << 32)
        .step_by(4093)
        .map(|b| f32::from_bits(b as u32))
        .collect();
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ]);
    xs.extend([
        1e-45,
        -1e-45,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        88.72,
        88.7228,
        88.73,
    ]);
    xs.extend([
        -87.3, -103.9, -104.5, 9.0, -9.0, 4.0, -4.0, 0.34657, -0.34657,
    ]);
    xs.extend((0..200_000).map(|i| (i as f32 - 100_000.0) * 0.001));
    xs
}

/// Max error of `f` against the f64 function `r` over the sweep, on every ISA:
/// `|got - want| <= rel * EPS * |want| + abs` (`abs` covers subnormal results).
fn check_math(f: MathFn, r: fn(f64) -> f64, rel: f64, abs: f64, domain: fn(f32) -> bool) {
    let xs: Vec<f32> = sweep().into_iter().filter(|&x| domain(x)).collect();
    let want: Vec<f64> = xs.iter().map(|&x| r(x as f64)).collect();
    for isa in Isa::ALL {
        let mut y = vec![0.0f32; xs.len()];
        with_isa(isa, || eval(f, &xs, &mut y)).unwrap();
        for i in 0..xs.len() {
            let bound = rel * EPS * want[i].abs() + abs;
            assert!(
                close(y[i], want[i], bound),
                "{f:?} on {isa:?}: x = {:e}: got {:e}, want {:e}",
                xs[i],
                y[i],
                want[i]
            );
        }
    }
}

fn any(_: f32) -> bool {
    true
}

#[test]
fn exp_error_over_whole_range() {
    check_math(MathFn::Exp, f64::exp, 1.0, DENORM, any);
}

#[test]
fn expm1_error_over_whole_range() {
    check_math(MathFn::Expm1, f64::exp_m1, 2.5, 0.0, any);
}

#[test]
fn tanh_error_over_whole_range() {
    check_math(MathFn::Tanh, f64::tanh, 3.5, 0.0, any);
}

#[test]
fn sigmoid_error_over_whole_range() {
    check_math(
        MathFn::Sigmoid,
        |x| 1.0 / (1.0 + (-x).exp()),
        2.0,
        DENORM,
        any,
    );
}

#[test]
fn erf_error_over_whole_range() {
    check_math(MathFn::Erf, erf_reference::<f64>, 3.0, 3.5e-7, any);
    // Near zero the error is relative (subnormal results: one subnormal step).
    check_math(MathFn::Erf, erf_reference::<f64>, 3.0, DENORM, |x| {
        x.abs() < 0.5
    });
}

#[test]
fn normal_cdf_error_over_whole_range() {
    let cdf = |x: f64| 0.5 * (1.0 + erf_reference(x * std::f64::consts::FRAC_1_SQRT_2));
    check_math(MathFn::NormalCdf, cdf, 0.0, 2e-7, any);
}

#[test]
fn log1p_unit_error_over_its_range() {
    check_math(MathFn::Log1pUnit, f64::ln_1p, 2.0, 2.0 * DENORM, |x| {
        (0.0..=1.0).contains(&x)
    });
}

#[test]
fn erf_reference_known_values() {
    for (x, want) in [
        (0.5f64, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
    ] {
        assert!((erf_reference(x) - want).abs() < 1e-15);
    }
    assert!((erf_reference(2.0f64) - 0.995_322_265_018_952_7).abs() < 1e-15);
    assert_eq!(erf_reference(-7.0f64), -1.0);
}

#[test]
fn math_special_values_exact() {
    let x = [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-40,
        -1e-40,
    ];
    let run = |f| {
        let mut y = [0.0f32; 7];
        eval(f, &x, &mut y).unwrap();
        y
    };
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let e = run(MathFn::Exp);
    assert_eq!(&e[..4], &[1.0, 1.0, f32::INFINITY, 0.0]);
    assert!(e[4].is_nan());
    let t = run(MathFn::Tanh);
    assert_eq!(bits(&t[..4]), bits(&[0.0, -0.0, 1.0, -1.0]));
    assert!(t[4].is_nan());
    assert_eq!(bits(&t[5..]), bits(&x[5..]), "tanh keeps subnormals");
    let m = run(MathFn::Expm1);
    assert_eq!(bits(&m[..4]), bits(&[0.0, -0.0, f32::INFINITY, -1.0]));
    assert_eq!(bits(&m[5..]), bits(&x[5..]), "expm1 keeps subnormals");
    let s = run(MathFn::Sigmoid);
    assert_eq!(&s[..4], &[0.5, 0.5, 1.0, 0.0]);
    let r = run(MathFn::Erf);
    assert_eq!(bits(&r[..4]), bits(&[0.0, -0.0, 1.0, -1.0]));
    assert!(s[4].is_nan() && r[4].is_nan() && m[4].is_nan());
}

#[test]
fn normal_cdf_is_exactly_0_and_1_beyond_4_sqrt_2() {
    // The clamp of the result to [0, 1] must reach the limits right past the fit's end (GELU's
    // -inf and its gradient rely on the exact 0).
    let lim = 4.0 * std::f32::consts::SQRT_2;
    let mut x: Vec<f32> = (1..20_000)
        .map(|k| f32::from_bits(lim.to_bits() + k))
        .collect();
    x.extend([6.0, 10.0, 1e5, 1e20, f32::MAX, f32::INFINITY]);
    x.extend(x.clone().iter().map(|v| -v));
    for isa in Isa::ALL {
        let mut y = vec![0.5f32; x.len()];
        with_isa(isa, || eval(MathFn::NormalCdf, &x, &mut y)).unwrap();
        for (&xi, &yi) in x.iter().zip(&y) {
            let want = if xi > 0.0 { 1.0 } else { 0.0 };
            assert!(yi == want, "{isa:?}: normal_cdf({xi:e}) = {yi:e}");
        }
    }
}
