//! Activations, softmax / log-softmax and the vectorized math under them: accuracy over the
//! whole f32 range per ISA, proptest against the f64 references, finite differences of every
//! backward, in-place forms, thread-count determinism and bad input.

use nnkern_kernels::activation::*;
use nnkern_kernels::simd::math::{eval, MathFn};
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;

const EPS: f64 = f32::EPSILON as f64;
/// The smallest positive subnormal f32.
const DENORM: f64 = 1.401_298_464_324_817e-45;

const ALL_ACTS: [Activation; 9] = [
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Elu(1.5),
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Gelu,
    Activation::GeluTanh,
    Activation::Silu,
    Activation::Softplus,
];

/// `got` matches `want` within `bound` (NaN matches NaN; infinities must match exactly).
fn close(got: f32, want: f64, bound: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if (want as f32).is_infinite() {
        return got == want as f32;
    }
    (got as f64 - want).abs() <= bound
}

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

/// Forward error bound for `act` at `x` with reference value `want` (see the module docs of
/// `activation`): a few ulp of the result, plus the erf absolute error scaled by `x/2` for
/// GELU and the sigmoid argument's rounding, amplified by its size, for tanh-GELU.
fn fwd_bound(act: Activation, x: f64, want: f64) -> f64 {
    let z = 1.6 * (x + 0.044715 * x * x * x);
    let (amp, abs) = match act {
        Activation::Gelu => (1.0, 3.5e-7 * 0.5 * x.abs()),
        Activation::GeluTanh => (1.0 + z.abs().min(200.0), 0.0),
        _ => (1.0, 0.0),
    };
    8.0 * EPS * amp * want.abs() + abs + 4.0 * DENORM * x.abs().clamp(1.0, 1e3)
}

/// Backward error bound: the forward-style error of the derivative at `x`, plus what an
/// output-based backward inherits from its saved `y`'s own error.
fn bwd_bound(act: Activation, x: f64, y: f64, dy: f64, want: f64) -> f64 {
    let inherit = if act.backward_uses_output() {
        2.0 * dy.abs() * fwd_bound(act, x, y)
    } else {
        0.0
    };
    let x = x.clamp(-1e3, 1e3); // the bound's growth stops where the derivative saturates
    let z = 1.6 * (x + 0.044715 * x * x * x);
    let scale = match act {
        Activation::Gelu => 16.0 * EPS * dy.abs() * (1.0 + x.abs()) + 3.5e-7 * dy.abs(),
        Activation::GeluTanh => {
            16.0 * EPS * dy.abs() * (1.0 + z.abs().min(300.0)) * (1.0 + x.abs())
        }
        Activation::Silu | Activation::Softplus => 16.0 * EPS * dy.abs() * (1.0 + x.abs()),
        _ => 0.0,
    };
    16.0 * EPS * want.abs() + inherit + scale + 4.0 * DENORM * dy.abs()
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -12.0f32..12.0,
        2 => -120.0f32..120.0,
        1 => -1e-3f32..1e-3,
        1 => prop::sample::select(vec![
            0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, -1e-40, 1e30, -1e30,
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn forward_and_backward_match_f64_reference(
        x in prop::collection::vec(value(), 0..200),
        seed in 0u64..1000,
    ) {
        let n = x.len();
        let dy: Vec<f32> = (0..n).map(|i| ((i as u64 * 7919 + seed) % 200) as f32 / 100.0 - 1.0).collect();
        for act in ALL_ACTS {
            for isa in Isa::ALL {
                let (mut y, mut dx) = (vec![0.0f32; n], vec![0.0f32; n]);
                with_isa(isa, || {
                    activation_forward(Backend::Native, act, &x, &mut y).unwrap();
                    activation_backward(Backend::Native, act, &x, &y, &dy, &mut dx).unwrap();
                });
                for i in 0..n {
                    let xi = x[i] as f64;
                    let want = activation_forward_scalar(act, xi);
                    prop_assert!(close(y[i], want, fwd_bound(act, xi, want)),
                        "{act:?} {isa:?} forward x={xi:e}: got {:e} want {want:e}", y[i]);
                    if !xi.is_finite() && act.backward_uses_output() {
                        continue; // the derivative at the saturated output is its limit
                    }
                    let y64 = activation_forward_scalar(act, xi);
                    let g = dy[i] as f64;
                    let want_dx = activation_backward_scalar(act, xi, y64, g);
                    prop_assert!(close(dx[i], want_dx, bwd_bound(act, xi, y64, g, want_dx)),
                        "{act:?} {isa:?} backward x={xi:e} y={:e}: got {:e} want {want_dx:e}", y[i], dx[i]);
                }
            }
        }
    }

    #[test]
    fn inplace_forms_match_out_of_place_bitwise(x in prop::collection::vec(value(), 0..100)) {
        let dy: Vec<f32> = x.iter().map(|v| v.sin()).collect();
        for act in ALL_ACTS {
            let (mut y, mut dx) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
            activation_forward(Backend::Native, act, &x, &mut y).unwrap();
            activation_backward(Backend::Native, act, &x, &y, &dy, &mut dx).unwrap();
            let mut xy = x.clone();
            activation_forward_inplace(Backend::Native, act, &mut xy).unwrap();
            let mut g = dy.clone();
            activation_backward_inplace(Backend::Native, act, &x, &y, &mut g).unwrap();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&xy), bits(&y));
            prop_assert_eq!(bits(&g), bits(&dx));
        }
    }
}

/// Central differences of the f64 reference forward against the f64 reference backward (the
/// native backward is held to that reference above).
#[test]
fn backward_matches_finite_differences() {
    let xs = [-7.3, -2.1, -0.9, -0.3, -0.02, 0.02, 0.4, 1.1, 2.6, 6.5];
    for act in ALL_ACTS {
        for &x in &xs {
            let h = 1e-6f64;
            let f = |v: f64| activation_forward_scalar(act, v);
            let fd = (f(x + h) - f(x - h)) / (2.0 * h);
            let got = activation_backward_scalar(act, x, f(x), 1.0);
            assert!(
                (got - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                "{act:?} x={x}: {got} vs fd {fd}"
            );
        }
    }
}

#[test]
fn infinities_give_the_limits() {
    let x = [f32::NEG_INFINITY, f32::INFINITY];
    let want: [(Activation, [f32; 2]); 6] = [
        (Activation::Gelu, [0.0, f32::INFINITY]),
        (Activation::GeluTanh, [0.0, f32::INFINITY]),
        (Activation::Silu, [0.0, f32::INFINITY]),
        (Activation::Softplus, [0.0, f32::INFINITY]),
        (Activation::Elu(2.0), [-2.0, f32::INFINITY]),
        (Activation::Relu, [0.0, f32::INFINITY]),
    ];
    for (act, w) in want {
        for isa in Isa::ALL {
            let (mut y, mut dx) = ([0.0f32; 2], [0.0f32; 2]);
            with_isa(isa, || {
                activation_forward(Backend::Native, act, &x, &mut y).unwrap();
                if !act.backward_uses_output() {
                    activation_backward(Backend::Native, act, &x, &[], &[1.0; 2], &mut dx).unwrap();
                    assert_eq!(dx, [0.0, 1.0], "{act:?} {isa:?} backward");
                }
            });
            assert_eq!(y, w, "{act:?} {isa:?}");
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` in rayon pools of 1, 2 and 3 threads and checks the outputs are bitwise equal.
fn same_bits_across_pools(f: impl Fn() -> Vec<f32> + Sync) {
    let runs: Vec<Vec<u32>> = [1, 2, 3]
        .iter()
        .map(|&t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| bits(&f()))
        })
        .collect();
    assert!(runs[0] == runs[1] && runs[0] == runs[2]);
}

#[test]
fn results_identical_across_thread_counts() {
    let n = (1 << 18) + 12_345; // above the parallel threshold, with a ragged tail
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 - 5.0)
        .collect();
    for act in [Activation::Gelu, Activation::Tanh, Activation::Silu] {
        same_bits_across_pools(|| {
            let (mut y, mut dx) = (vec![0.0; n], vec![0.0; n]);
            activation_forward(Backend::Native, act, &x, &mut y).unwrap();
            activation_backward(Backend::Native, act, &x, &y, &x, &mut dx).unwrap();
            [y, dx].concat()
        });
    }
    let (rows, cols) = (n / 999, 999);
    let xs = &x[..rows * cols];
    same_bits_across_pools(|| {
        let (mut y, mut l, mut dx) = (
            vec![0.0; rows * cols],
            vec![0.0; rows * cols],
            vec![0.0; rows * cols],
        );
        softmax_forward(Backend::Native, rows, cols, xs, &mut y).unwrap();
        log_softmax_forward(Backend::Native, rows, cols, xs, &mut l).unwrap();
        softmax_backward(Backend::Native, rows, cols, &y, xs, &mut dx).unwrap();
        [y, l, dx].concat()
    });
}

/// Outputs of at least 4M elements take the non-temporal-store path: it must give the same
/// bits as the ordinary path (computed here in small pieces), for misaligned outputs too.
#[test]
fn streaming_path_matches_small_pieces() {
    let n = (1 << 22) + 37;
    let x: Vec<f32> = (0..n + 1)
        .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 - 5.0)
        .collect();
    let x = &x[1..]; // misaligned input
    for isa in Isa::ALL {
        for act in [Activation::Tanh, Activation::Relu] {
            let mut big = vec![0.0f32; n + 3];
            let mut dbig = vec![0.0f32; n + 1];
            with_isa(isa, || {
                activation_forward(Backend::Native, act, x, &mut big[3..]).unwrap();
                dbig[1..].copy_from_slice(x);
                activation_backward_inplace(Backend::Native, act, x, &big[3..], &mut dbig[1..])
                    .unwrap();
            });
            let (mut small, mut dsmall) = (vec![0.0f32; n], vec![0.0f32; n]);
            with_isa(isa, || {
                for (i, c) in x.chunks(1000).enumerate() {
                    let r = i * 1000..i * 1000 + c.len();
                    activation_forward(Backend::Native, act, c, &mut small[r.clone()]).unwrap();
                    let y = &small[r.clone()];
                    activation_backward(Backend::Native, act, c, y, c, &mut dsmall[r]).unwrap();
                }
            });
            assert!(bits(&big[3..]) == bits(&small), "{act:?} {isa:?} forward");
            assert!(
                bits(&dbig[1..]) == bits(&dsmall),
                "{act:?} {isa:?} backward"
            );
        }
    }
}

#[test]
fn bad_input_gives_errors() {
    let (x, mut y) = ([1.0f32; 4], [0.0f32; 3]);
    let e = activation_forward(Backend::Native, Activation::Tanh, &x, &mut y).unwrap_err();
    assert_eq!(
        e,
        KernelError::BufferLength {
            arg: "y",
            expected: 4,
            got: 3
        }
    );
    let mut y4 = [0.0f32; 4];
    for bad in [
        Activation::LeakyRelu(f32::NAN),
        Activation::Elu(-1.0),
        Activation::Elu(f32::INFINITY),
    ] {
        let e = activation_forward(Backend::Native, bad, &x, &mut y4).unwrap_err();
        assert!(matches!(e, KernelError::InvalidParam { .. }), "{bad:?}");
    }
    let mut dx = [0.0f32; 4];
    // Tanh reads y: a short y is an error, a short x is not looked at.
    let e = activation_backward(
        Backend::Native,
        Activation::Tanh,
        &[],
        &[0.0; 3],
        &x,
        &mut dx,
    );
    assert_eq!(
        e.unwrap_err(),
        KernelError::BufferLength {
            arg: "y",
            expected: 4,
            got: 3
        }
    );
    let e = activation_backward(
        Backend::Native,
        Activation::Gelu,
        &[0.0; 5],
        &[],
        &x,
        &mut dx,
    );
    assert_eq!(
        e.unwrap_err(),
        KernelError::BufferLength {
            arg: "x",
            expected: 4,
            got: 5
        }
    );
    let e = activation_backward(
        Backend::Native,
        Activation::Gelu,
        &x,
        &[],
        &x,
        &mut [0.0; 2],
    );
    assert_eq!(
        e.unwrap_err(),
        KernelError::BufferLength {
            arg: "dx",
            expected: 4,
            got: 2
        }
    );
    let e = activation_backward_inplace(Backend::Native, Activation::Relu, &[], &[0.0; 1], &mut dx);
    assert!(e.is_err());
    // Softmax: shape products, overflow.
    let e = softmax_forward(Backend::Native, 2, 3, &[0.0; 6], &mut [0.0; 5]).unwrap_err();
    assert_eq!(
        e,
        KernelError::BufferLength {
            arg: "y",
            expected: 6,
            got: 5
        }
    );
    let e = log_softmax_forward(Backend::Native, usize::MAX, 2, &[], &mut []).unwrap_err();
    assert_eq!(e, KernelError::Overflow { arg: "rows * cols" });
    let e = softmax_backward(Backend::Native, 2, 2, &[0.0; 4], &[0.0; 3], &mut [0.0; 4]);
    assert_eq!(
        e.unwrap_err(),
        KernelError::BufferLength {
            arg: "dy",
            expected: 4,
            got: 3
        }
    );
    let e = log_softmax_backward(Backend::Native, 1, 2, &[0.0; 2], &[0.0; 2], &mut [0.0; 1]);
    assert!(e.is_err());
    assert!(softmax_forward(Backend::Native, 0, 5, &[], &mut []).is_ok());
}

fn softmax_row_ref(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut y, mut l) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    softmax_forward_reference(1, x.len(), x, &mut y).unwrap();
    log_softmax_forward_reference(1, x.len(), x, &mut l).unwrap();
    (y, l)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn softmax_matches_f64_reference(
        rows in 1usize..5,
        cols in 1usize..70,
        big in prop::bool::ANY,
        seed in 0u64..10_000,
    ) {
        let n = rows * cols;
        let mag = if big { 1e4 } else { 10.0 };
        let mut x: Vec<f32> = (0..n).map(|i| (((i as u64 + 1) * 2_654_435_761 + seed) % 20_001) as f32 / 10_000.0 - 1.0).map(|v| v * mag).collect();
        if cols > 2 { x[1] = f32::NEG_INFINITY; }
        let dy: Vec<f32> = (0..n).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
        for isa in Isa::ALL {
            let (mut y, mut l, mut dxs, mut dxl) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            with_isa(isa, || {
                softmax_forward(Backend::Native, rows, cols, &x, &mut y).unwrap();
                log_softmax_forward(Backend::Native, rows, cols, &x, &mut l).unwrap();
                softmax_backward(Backend::Native, rows, cols, &y, &dy, &mut dxs).unwrap();
                log_softmax_backward(Backend::Native, rows, cols, &l, &dy, &mut dxl).unwrap();
            });
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                let x64: Vec<f64> = x[s.clone()].iter().map(|&v| v as f64).collect();
                let (y64, l64) = softmax_row_ref(&x64);
                let m = x64.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let c = cols as f64;
                // The row sum carries up to ~cols roundings; each term's exp a couple of ulp.
                for j in 0..cols {
                    let (i, want) = (r * cols + j, y64[j]);
                    prop_assert!(close(y[i], want, EPS * (8.0 + c) * want + 4.0 * DENORM), "softmax {isa:?} {:e} vs {want:e}", y[i]);
                    let lb = EPS * (2.0 * (x64[j] - m).abs() + 8.0 + c);
                    prop_assert!(close(l[i], l64[j], lb), "log_softmax {isa:?} {:e} vs {:e}", l[i], l64[j]);
                }
                // Backward of the f32 outputs against the f64 formula on the same outputs.
                let y32: Vec<f64> = y[s.clone()].iter().map(|&v| v as f64).collect();
                let l32: Vec<f64> = l[s.clone()].iter().map(|&v| v as f64).collect();
                let g: Vec<f64> = dy[s.clone()].iter().map(|&v| v as f64).collect();
                let (mut ws, mut wl) = (vec![0.0; cols], vec![0.0; cols]);
                softmax_backward_reference(1, cols, &y32, &g, &mut ws).unwrap();
                log_softmax_backward_reference(1, cols, &l32, &g, &mut wl).unwrap();
                let gsum: f64 = g.iter().map(|v| v.abs()).sum();
                for j in 0..cols {
                    let i = r * cols + j;
                    prop_assert!(close(dxs[i], ws[j], EPS * (8.0 + c) * (y32[j] * (1.0 + gsum) + ws[j].abs())));
                    prop_assert!(close(dxl[i], wl[j], EPS * (8.0 + c) * (gsum + wl[j].abs())));
                }
            }
        }
    }
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let x = [0.3, -1.2, 2.2, 0.7, -0.4];
    let w = [0.9, -0.3, 0.5, 1.7, -1.1]; // L = sum_j w_j y_j, so dL/dy = w
    let n = x.len();
    type Fwd = fn(usize, usize, &[f64], &mut [f64]) -> Result<(), KernelError>;
    type Bwd = fn(usize, usize, &[f64], &[f64], &mut [f64]) -> Result<(), KernelError>;
    let pairs: [(Fwd, Bwd); 2] = [
        (softmax_forward_reference, softmax_backward_reference),
        (
            log_softmax_forward_reference,
            log_softmax_backward_reference,
        ),
    ];
    for (fwd, bwd) in pairs {
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; n];
            fwd(1, n, x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; n];
        fwd(1, n, &x, &mut y).unwrap();
        let mut dx = vec![0.0; n];
        bwd(1, n, &y, &w, &mut dx).unwrap();
        for j in 0..n {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[j] += 1e-6;
            b[j] -= 1e-6;
            let fd = (loss(&a) - loss(&b)) / 2e-6;
            assert!((dx[j] - fd).abs() < 1e-7, "{j}: {} vs {fd}", dx[j]);
        }
    }
}
