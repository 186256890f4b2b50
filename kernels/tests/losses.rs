//! Element-wise losses (MSE, BCE with logits, hinge): native vs the f64 reference, against
//! independent textbook formulas, finite differences, special values, determinism and errors.

use nnkern_kernels::loss::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;

const EPS: f64 = f32::EPSILON as f64;

type Native =
    fn(Backend, &[f32], &[f32], Reduction, Option<&mut [f32]>) -> Result<f32, KernelError>;
type Reference = fn(&[f64], &[f64], Reduction, Option<&mut [f64]>) -> Result<f64, KernelError>;

const LOSSES: [(&str, Native, Reference); 3] = [
    ("mse", mse_loss, mse_loss_reference::<f64>),
    (
        "bce",
        bce_with_logits_loss,
        bce_with_logits_loss_reference::<f64>,
    ),
    ("hinge", hinge_loss, hinge_loss_reference::<f64>),
];

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Predictions and targets suited to each loss.
fn inputs(kind: &str, len: usize) -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    let target: BoxedStrategy<f32> = match kind {
        "mse" => (-10.0f32..10.0).boxed(),
        "bce" => prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0].boxed(),
        _ => prop_oneof![Just(-1.0f32), Just(0.0f32), Just(1.0f32)].boxed(),
    };
    let pred = prop_oneof![-30.0f32..30.0, -3.0f32..3.0, Just(1.0f32), Just(-1.0f32)];
    (
        proptest::collection::vec(pred, len),
        proptest::collection::vec(target, len),
    )
}

/// Per-element bounds (loss term, gradient) for f32 arithmetic against the f64 reference.
fn term_bounds(kind: &str, x: f64, y: f64) -> (f64, f64) {
    match kind {
        // d = x - y rounds once, d * d and 2 d once more.
        "mse" => {
            let d = x - y;
            (4.0 * EPS * d * d, 3.0 * EPS * (2.0 * d).abs())
        }
        // Every part of the term is non-negative; exp and log1p are within a few ulps.
        "bce" => {
            let term = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
            (8.0 * EPS * term.abs() + 1e-30, 4.0 * EPS * (1.0 + y.abs()))
        }
        // 1 - y x rounds once; the gradient is exact.
        _ => (2.0 * EPS * (1.0 + x.abs()), 0.0),
    }
}

/// [`check_on`] for every ISA.
fn check(kind: &str, native: Native, reference: Reference, x: &[f32], y: &[f32]) {
    for isa in Isa::ALL {
        with_isa(isa, || check_on(kind, native, reference, x, y));
    }
}

fn check_on(kind: &str, native: Native, reference: Reference, x: &[f32], y: &[f32]) {
    for reduction in [Reduction::Mean, Reduction::Sum] {
        let n = x.len();
        let mut g_ref = vec![0.0f64; n];
        let l_ref = reference(&f64s(x), &f64s(y), reduction, Some(&mut g_ref)).unwrap();
        let scale = match reduction {
            Reduction::Mean => 1.0 / n as f64,
            Reduction::Sum => 1.0,
        };
        let mut loss_bound = 1e-30;
        let mut g = vec![f32::NAN; n];
        let l = native(Backend::Native, x, y, reduction, Some(&mut g)).unwrap();
        for i in 0..n {
            let (lb, gb) = term_bounds(kind, x[i] as f64, y[i] as f64);
            loss_bound += lb * scale;
            let bound = (gb + EPS * g_ref[i].abs()) + 1e-30;
            assert!(
                (g[i] as f64 - g_ref[i]).abs() <= bound,
                "{kind} {reduction:?} grad[{i}] x={} y={}: {} vs {}",
                x[i],
                y[i],
                g[i],
                g_ref[i]
            );
        }
        // The final f32 rounding of the loss.
        loss_bound += EPS * l_ref.abs();
        if n == 0 && reduction == Reduction::Mean {
            assert!(l.is_nan() && l_ref.is_nan());
            continue;
        }
        assert!(
            (l as f64 - l_ref).abs() <= loss_bound,
            "{kind} {reduction:?}: loss {l} vs {l_ref}, bound {loss_bound}"
        );
        // The loss without a gradient buffer is the same number.
        let l2 = native(Backend::Native, x, y, reduction, None).unwrap();
        assert_eq!(l.to_bits(), l2.to_bits());
        // The Reference backend in f32 agrees too.
        let l3 = native(Backend::Reference, x, y, reduction, None).unwrap();
        assert!((l3 as f64 - l_ref).abs() <= loss_bound + 2.0 * n as f64 * EPS * l_ref.abs());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn mse_matches_reference((x, y) in (0usize..200).prop_flat_map(|n| inputs("mse", n))) {
        check("mse", LOSSES[0].1, LOSSES[0].2, &x, &y);
    }

    #[test]
    fn bce_matches_reference((x, y) in (0usize..200).prop_flat_map(|n| inputs("bce", n))) {
        check("bce", LOSSES[1].1, LOSSES[1].2, &x, &y);
    }

    #[test]
    fn hinge_matches_reference((x, y) in (0usize..200).prop_flat_map(|n| inputs("hinge", n))) {
        check("hinge", LOSSES[2].1, LOSSES[2].2, &x, &y);
    }
}

#[test]
fn references_match_textbook_formulas() {
    let xs = [-7.5, -2.0, -0.3, 0.0, 0.4, 1.0, 3.0, 9.0];
    let ys = [0.0, 0.25, 1.0, 0.5, 1.0, 0.0, 0.75, 1.0];
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut g = [0.0; 8];
    let l = bce_with_logits_loss_reference(&xs, &ys, Reduction::Sum, Some(&mut g)).unwrap();
    let want: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| -(y * sig(x).ln() + (1.0 - y) * (1.0 - sig(x)).ln()))
        .sum();
    assert!((l - want).abs() < 1e-12, "{l} vs {want}");
    for i in 0..8 {
        assert!((g[i] - (sig(xs[i]) - ys[i])).abs() < 1e-15);
    }

    let labels = [1.0, -1.0, 0.0, 1.0, -1.0, 1.0, 0.0, 1.0];
    let l = hinge_loss_reference(&xs, &labels, Reduction::Mean, Some(&mut g)).unwrap();
    let pm = |y: f64| if y == 1.0 { 1.0 } else { -1.0 };
    let want: f64 = xs
        .iter()
        .zip(&labels)
        .map(|(&x, &y)| (1.0 - pm(y) * x).max(0.0))
        .sum();
    assert!((l - want / 8.0).abs() < 1e-15);
    // x = 1 with label 1 sits on the kink: subgradient 0.
    assert_eq!(g, [-0.125, 0.0, 0.125, -0.125, 0.125, 0.0, 0.125, 0.0]);

    let l = mse_loss_reference(&xs, &ys, Reduction::Mean, Some(&mut g)).unwrap();
    let want: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        / 8.0;
    assert!((l - want).abs() < 1e-15);
    assert!((g[0] - 2.0 * (xs[0] - ys[0]) / 8.0).abs() < 1e-15);
}

#[test]
fn gradients_match_finite_differences() {
    let x = [-3.1, -0.7, 0.2, 0.9, 1.6, 4.2];
    let targets: [(usize, [f64; 6]); 3] = [
        (0, [0.5, -1.0, 2.0, 0.1, 1.6, -4.0]),
        (1, [0.0, 1.0, 0.3, 0.9, 0.5, 1.0]),
        (2, [1.0, -1.0, 0.0, 1.0, -1.0, 1.0]),
    ];
    for (k, y) in targets {
        let (name, _, reference) = LOSSES[k];
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let mut g = [0.0; 6];
            reference(&x, &y, reduction, Some(&mut g)).unwrap();
            for i in 0..6 {
                let h = 1e-6;
                let (mut xp, mut xm) = (x, x);
                xp[i] += h;
                xm[i] -= h;
                let lp = reference(&xp, &y, reduction, None).unwrap();
                let lm = reference(&xm, &y, reduction, None).unwrap();
                let fd = (lp - lm) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-8,
                    "{name} {reduction:?} x[{i}]: {fd} vs {}",
                    g[i]
                );
            }
        }
    }
}

#[test]
fn bce_is_stable_for_huge_and_infinite_logits() {
    let inf = f32::INFINITY;
    let x = [1e4, 1e4, -1e4, -1e4, 100.0, inf, inf, -inf, -inf];
    let y = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    // Whole vectors of each case too (the vector path), on every ISA.
    for isa in Isa::ALL {
        for i in 0..9 {
            let (xs, ys) = ([x[i]; 16], [y[i]; 16]);
            let mut g = [0.0f32; 16];
            let l = with_isa(isa, || {
                bce_with_logits_loss(Backend::Native, &xs, &ys, Reduction::Sum, Some(&mut g))
            })
            .unwrap();
            let mut g1 = [0.0f32];
            let l1 =
                bce_with_logits_loss_reference(&xs[..1], &ys[..1], Reduction::Sum, Some(&mut g1))
                    .unwrap();
            assert_eq!(
                (l, g),
                (16.0 * l1, [g1[0]; 16]),
                "{isa:?} x={} y={}",
                x[i],
                y[i]
            );
        }
    }
    let mut g = [0.0f32; 9];
    let l = bce_with_logits_loss(
        Backend::Native,
        &x[..5],
        &y[..5],
        Reduction::Sum,
        Some(&mut g),
    )
    .unwrap();
    assert_eq!(l, 1e4 + 1e4 + 100.0);
    assert_eq!(&g[..5], &[1.0, 0.0, 0.0, -1.0, 1.0]);
    for (i, want) in [(5, 0.0), (6, inf), (7, 0.0), (8, inf)] {
        let mut gi = [0.0f32];
        let l = bce_with_logits_loss(
            Backend::Native,
            &x[i..=i],
            &y[i..=i],
            Reduction::Sum,
            Some(&mut gi),
        )
        .unwrap();
        assert_eq!(l, want, "x={} y={}", x[i], y[i]);
        assert_eq!(gi[0], if x[i] > 0.0 { 1.0 } else { 0.0 } - y[i]);
    }
}

#[test]
fn nan_and_inf_propagate() {
    let nan = f32::NAN;
    for (name, native, _) in LOSSES {
        let y = if name == "bce" { 0.5 } else { 1.0 };
        let mut g = [0.0f32; 3];
        let l = native(
            Backend::Native,
            &[0.5, nan, 2.0],
            &[y; 3],
            Reduction::Mean,
            Some(&mut g),
        )
        .unwrap();
        assert!(l.is_nan() && g[1].is_nan(), "{name}: {l} {g:?}");
        assert!(!g[0].is_nan() && !g[2].is_nan(), "{name}: {g:?}");
        // Full vectors, every ISA.
        for isa in Isa::ALL {
            let mut x = [0.5f32; 16];
            x[5] = nan;
            let mut g = [0.0f32; 16];
            let l = with_isa(isa, || {
                native(Backend::Native, &x, &[y; 16], Reduction::Sum, Some(&mut g))
            })
            .unwrap();
            assert!(l.is_nan() && g[5].is_nan(), "{name} {isa:?}: {l} {g:?}");
            assert_eq!(g.iter().filter(|v| v.is_nan()).count(), 1, "{name} {isa:?}");
        }
    }
    let mut g = [0.0f32; 2];
    let l = mse_loss(
        Backend::Native,
        &[f32::INFINITY, 0.0],
        &[0.0, f32::NAN],
        Reduction::Sum,
        Some(&mut g),
    )
    .unwrap();
    assert!(l.is_nan() && g[0] == f32::INFINITY && g[1].is_nan());
    let l = hinge_loss(
        Backend::Native,
        &[f32::INFINITY, f32::INFINITY],
        &[1.0, -1.0],
        Reduction::Sum,
        Some(&mut g),
    )
    .unwrap();
    assert_eq!((l, g), (f32::INFINITY, [0.0, 1.0]));
}

#[test]
fn empty_inputs() {
    for (_, native, _) in LOSSES {
        assert!(native(Backend::Native, &[], &[], Reduction::Mean, None)
            .unwrap()
            .is_nan());
        assert_eq!(
            native(Backend::Native, &[], &[], Reduction::Sum, Some(&mut [])).unwrap(),
            0.0
        );
    }
}

#[test]
fn identical_bits_for_any_thread_count() {
    let n = 300_001;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 2001) as f32 - 1000.0) * 0.01)
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut bits = Vec::new();
            for (name, native, _) in LOSSES {
                let y: Vec<f32> = (0..n)
                    .map(|i| match name {
                        "hinge" => [-1.0, 0.0, 1.0][i % 3],
                        _ => (i % 11) as f32 * 0.1,
                    })
                    .collect();
                let mut g = vec![0.0f32; n];
                for r in [Reduction::Mean, Reduction::Sum] {
                    let l = native(Backend::Native, &x, &y, r, Some(&mut g)).unwrap();
                    let l2 = native(Backend::Native, &x, &y, r, None).unwrap();
                    bits.push(l.to_bits());
                    bits.push(l2.to_bits());
                    bits.extend(g.iter().map(|v| v.to_bits()));
                }
            }
            bits
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn bad_inputs_are_errors() {
    let arg = |r: Result<f32, KernelError>| match r {
        Err(KernelError::BufferLength { arg, .. })
        | Err(KernelError::BufferTooShort { arg, .. })
        | Err(KernelError::InvalidParam { arg, .. }) => arg,
        other => panic!("unexpected {other:?}"),
    };
    for (_, native, _) in LOSSES {
        for b in [Backend::Native, Backend::Reference] {
            let x = [0.5f32; 4];
            assert_eq!(
                arg(native(b, &x, &[1.0; 3], Reduction::Mean, None)),
                "target"
            );
            assert_eq!(
                arg(native(b, &x, &[1.0; 5], Reduction::Sum, None)),
                "target"
            );
            let mut g = [0.0f32; 3];
            assert_eq!(
                arg(native(b, &x, &[1.0; 4], Reduction::Mean, Some(&mut g))),
                "grad"
            );
        }
    }
    // Hinge labels other than -1, 0, +1 (NaN included), also in the parallel path.
    let big = vec![0.5f32; 100_000];
    for bad in [0.5f32, 2.0, -0.0 - 1e-7, f32::NAN] {
        for b in [Backend::Native, Backend::Reference] {
            let r = hinge_loss(b, &[0.5, 0.5], &[1.0, bad], Reduction::Mean, None);
            assert_eq!(arg(r), "target");
        }
        let mut y = vec![1.0f32; 100_000];
        y[77_777] = bad;
        let r = hinge_loss(
            Backend::Native,
            &big,
            &y,
            Reduction::Sum,
            Some(&mut vec![0.0; 100_000]),
        );
        assert!(format!("{r:?}").contains("77777"), "{r:?}");
    }
}

/// Regression (fuzz target `losses`, seed `hinge-half-label`): a hinge label of 0.5 gave a
/// different error on the native paths than on the reference. Every path, and the f64
/// reference, must now return the same error.
#[test]
fn invalid_hinge_label_is_the_same_error_on_every_path() {
    let (x, y) = ([0.25f32, -2.0, 3.0, 1.0], [1.0f32, 0.0, 0.5, -1.0]);
    let want = hinge_loss_reference(&f64s(&x), &f64s(&y), Reduction::Mean, None);
    assert_eq!(
        want,
        Err(KernelError::InvalidParam {
            arg: "target",
            what: "value 0.5 at index 2 is not a valid label".into()
        })
    );
    let mut g = [0.0f32; 4];
    assert_eq!(
        hinge_loss(Backend::Reference, &x, &y, Reduction::Mean, Some(&mut g)),
        want.clone().map(|v| v as f32)
    );
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let got = with_isa(isa, || {
            hinge_loss(Backend::Native, &x, &y, Reduction::Sum, Some(&mut g))
        });
        assert_eq!(got, want.clone().map(|v| v as f32), "{}", isa.name());
    }
}
