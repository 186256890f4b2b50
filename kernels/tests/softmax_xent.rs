//! Fused softmax-cross-entropy: proptest against the f64 reference (every option), finite
//! differences of the gradient, stability at +-1e4 and -inf, PyTorch semantics of
//! `ignore_index` / `label_smoothing`, thread-count determinism, and every bad input.

mod act_common;

use act_common::adversarial_rows;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{
    softmax_cross_entropy, softmax_cross_entropy_reference, Backend, KernelError, Reduction,
    SoftmaxXent,
};
use proptest::prelude::*;

const EPS: f64 = f32::EPSILON as f64;

fn native(p: &SoftmaxXent, x: &[f32], labels: &[i64], grad: bool) -> (f32, Vec<f32>) {
    let mut g = vec![f32::NAN; if grad { x.len() } else { 0 }];
    let loss =
        softmax_cross_entropy(Backend::Native, p, x, labels, grad.then_some(&mut g[..])).unwrap();
    (loss, g)
}

fn reference(p: &SoftmaxXent, x: &[f32], labels: &[i64]) -> (f64, Vec<f64>) {
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut g = vec![0.0; x.len()];
    let loss = softmax_cross_entropy_reference(p, &x64, labels, Some(&mut g)).unwrap();
    (loss, g)
}

fn params() -> impl Strategy<Value = (usize, usize, bool, bool, f32)> {
    (
        1usize..9,
        1usize..80,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0.0f32), 0.0f32..1.0],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matches_f64_reference((n, c, sum, ignore, eps) in params(), big in any::<bool>(), seed in 0u64..100_000) {
        let mag = if big { 1e4 } else { 12.0 };
        let mut x: Vec<f32> = (0..n * c)
            .map(|i| (((i as u64 + 1) * 2_654_435_761 + seed) % 20_001) as f32 / 10_000.0 - 1.0)
            .map(|v| v * mag)
            .collect();
        let labels: Vec<i64> = (0..n)
            .map(|i| if ignore && i % 3 == 1 { -100 } else { ((i as u64 * 7 + seed) % c as u64) as i64 })
            .collect();
        // A -inf logit away from the label, when the row has room (with smoothing, a -inf
        // logit makes the loss infinite; that case is tested separately).
        if c > 2 && eps == 0.0 {
            let l = labels[0].max(0) as usize;
            x[(l + 1) % c] = f32::NEG_INFINITY;
        }
        let p = SoftmaxXent::new(n, c)
            .reduction(if sum { Reduction::Sum } else { Reduction::Mean })
            .ignore_index(Some(-100))
            .label_smoothing(eps);
        let (want, wg) = reference(&p, &x, &labels);
        let count = labels.iter().filter(|&&l| l != -100).count();
        let scale = if sum { 1.0 } else { 1.0 / count.max(1) as f64 };
        for isa in Isa::ALL {
            let (loss, g) = with_isa(isa, || native(&p, &x, &labels, true));
            let (loss_only, _) = with_isa(isa, || native(&p, &x, &labels, false));
            if count == 0 && !sum {
                prop_assert!(loss.is_nan() && loss_only.is_nan());
                prop_assert!(g.iter().all(|&v| v == 0.0));
                continue;
            }
            // Each row: ln(s) with s off by ~c roundings, x - m rounded once, both scaled.
            let per_row = EPS * (16.0 + c as f64) * (1.0 + want.abs() / scale / n as f64);
            let bound = per_row * n as f64 * scale + EPS * want.abs();
            prop_assert!((loss as f64 - want).abs() <= bound, "{isa:?}: loss {loss} vs {want}");
            // The loss-only call sums its own way (one pass, a cheaper exponential).
            prop_assert!((loss_only as f64 - want).abs() <= bound, "{isa:?}: loss only {loss_only} vs {want}");
            for (i, (&got, &w)) in g.iter().zip(&wg).enumerate() {
                // p_j - target_j: p_j's few-ulp error is absolute where the target cancels it.
                let (row, j) = (i / c, i % c);
                let hit = if labels[row] == j as i64 { 1.0 - eps as f64 } else { 0.0 };
                let target = if labels[row] == -100 { 0.0 } else { hit + eps as f64 / c as f64 };
                let b = scale * EPS * (16.0 + c as f64) * (w.abs() / scale + 2.0 * target) + 1e-44;
                prop_assert!((got as f64 - w).abs() <= b, "{isa:?}: grad[{i}] {got} vs {w}");
            }
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (n, c) = (3, 5);
    let x: Vec<f64> = (0..n * c)
        .map(|i| ((i * 37) % 11) as f64 * 0.3 - 1.4)
        .collect();
    let labels = [2i64, -100, 4];
    for (red, eps) in [
        (Reduction::Mean, 0.0),
        (Reduction::Sum, 0.2),
        (Reduction::Mean, 0.7),
    ] {
        let p = SoftmaxXent::new(n, c)
            .reduction(red)
            .ignore_index(Some(-100))
            .label_smoothing(eps);
        let loss = |x: &[f64]| softmax_cross_entropy_reference(&p, x, &labels, None).unwrap();
        let mut g = vec![0.0; n * c];
        softmax_cross_entropy_reference(&p, &x, &labels, Some(&mut g)).unwrap();
        for j in 0..n * c {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[j] += 1e-6;
            b[j] -= 1e-6;
            let fd = (loss(&a) - loss(&b)) / 2e-6;
            assert!(
                (g[j] - fd).abs() < 1e-8,
                "{red:?} eps {eps} [{j}]: {} vs {fd}",
                g[j]
            );
        }
    }
}

#[test]
fn matches_pytorch_semantics_on_a_known_case() {
    // PyTorch's definition, written out: mean over rows of -log p[label], and with smoothing
    // (1 - eps) of that plus eps times the mean over classes of -log p[j].
    let x = [1.0f32, 2.0, 3.0, 1.0, 0.0, -1.0];
    let labels = [2i64, 0];
    let plain = native(&SoftmaxXent::new(2, 3), &x, &labels, false).0 as f64;
    let ls = |v: [f64; 3]| v.iter().map(|a| a.exp()).sum::<f64>().ln();
    let want = 0.5 * ((ls([1.0, 2.0, 3.0]) - 3.0) + (ls([1.0, 0.0, -1.0]) - 1.0));
    assert!((plain - want).abs() < 1e-6);
    let smooth = native(
        &SoftmaxXent::new(2, 3).label_smoothing(0.1),
        &x,
        &labels,
        false,
    )
    .0;
    let mean_gap = 0.5 * ((ls([1.0, 2.0, 3.0]) - 2.0) + ls([1.0, 0.0, -1.0]));
    assert!((smooth as f64 - (0.9 * want + 0.1 * mean_gap)).abs() < 1e-6);
}

#[test]
fn stable_for_huge_and_infinite_logits() {
    let x = [1e4f32, -1e4, 0.0, f32::NEG_INFINITY, 1e4 - 1.0, 1e4];
    let p = SoftmaxXent::new(2, 3);
    let (loss, g) = native(&p, &x, &[0, 2], true);
    // Row 0: -log softmax = ln(1 + e^-2e4 + e^-1e4) ~ 0; row 1: ln(e^-1 + 1) (the -inf adds 0).
    let want = 0.5 * (0.0 + (1.0 + (-1.0f64).exp()).ln());
    assert!((loss as f64 - want).abs() < 1e-6, "{loss}");
    assert!(g.iter().all(|v| v.is_finite()));
    assert_eq!(g[3], 0.0, "a -inf logit has probability 0");
    // The label on a -inf logit: infinite loss, finite gradient.
    let (loss, g) = native(&p, &x, &[0, 0], true);
    assert_eq!(loss, f32::INFINITY);
    assert!(g.iter().all(|v| v.is_finite()));
    // A row that is all -inf, or holds NaN, gives NaN.
    let (loss, _) = native(&SoftmaxXent::new(1, 2), &[f32::NEG_INFINITY; 2], &[0], true);
    assert!(loss.is_nan());
    let (loss, _) = native(&SoftmaxXent::new(1, 2), &[f32::NAN, 0.0], &[1], false);
    assert!(loss.is_nan());
}

/// The loss-only call's one-pass sum on rows built against it, on every ISA, against the
/// reference (the proptest's per-row bound), with the label in the middle and on the maximum.
#[test]
fn loss_only_pass_on_adversarial_rows() {
    for x in adversarial_rows() {
        let c = x.len();
        let finite: Vec<usize> = (0..c).filter(|&j| x[j].is_finite()).collect();
        for label in [finite[finite.len() / 2], finite[finite.len() - 1]] {
            let (p, labels) = (SoftmaxXent::new(1, c), [label as i64]);
            let (want, _) = reference(&p, &x, &labels);
            for isa in Isa::ALL {
                let (got, _) = with_isa(isa, || native(&p, &x, &labels, false));
                let bound = EPS * (16.0 + c as f64) * (1.0 + want.abs());
                assert!(
                    (got as f64 - want).abs() <= bound,
                    "{isa:?} c {c} label {label}: {got} vs {want}"
                );
            }
        }
    }
    // Rows of only -inf, or holding +inf or NaN, give NaN without the gradient too.
    let mut inf = vec![0.0f32; 9];
    inf[2] = f32::INFINITY;
    // 300 -inf: more terms than round to a zero sum if each is clamped instead of zero.
    for x in [
        vec![f32::NEG_INFINITY; 9],
        vec![f32::NEG_INFINITY; 300],
        inf,
    ] {
        let (loss, _) = native(&SoftmaxXent::new(1, x.len()), &x, &[0], false);
        assert!(loss.is_nan(), "{x:?}: {loss}");
    }
}

#[test]
fn identical_bits_across_thread_counts() {
    for (n, c) in [(300usize, 1000usize), (7, 40_000)] {
        let x: Vec<f32> = (0..n * c)
            .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 - 5.0)
            .collect();
        let labels: Vec<i64> = (0..n).map(|i| (i * 13 % c) as i64).collect();
        let p = SoftmaxXent::new(n, c).label_smoothing(0.1);
        let runs: Vec<(u32, Vec<u32>)> = [1, 2, 3]
            .iter()
            .map(|&t| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap();
                let (l, g) = pool.install(|| native(&p, &x, &labels, true));
                (l.to_bits(), g.iter().map(|v| v.to_bits()).collect())
            })
            .collect();
        assert!(runs[0] == runs[1] && runs[0] == runs[2], "{n}x{c}");
    }
}

#[test]
fn other_label_types_and_edge_shapes() {
    let x = [0.5f32, -0.5, 2.0, 1.0];
    let p = SoftmaxXent::new(2, 2);
    let a = softmax_cross_entropy(Backend::Native, &p, &x, &[1usize, 0], None).unwrap();
    let b = softmax_cross_entropy(Backend::Native, &p, &x, &[1u8, 0], None).unwrap();
    let c = softmax_cross_entropy(Backend::Native, &p, &x, &[1i32, 0], None).unwrap();
    let r = softmax_cross_entropy(Backend::Reference, &p, &x, &[1i64, 0], None).unwrap();
    assert!(a == b && b == c && (a - r).abs() < 1e-6);
    // n == 0: mean is NaN (0/0, as in PyTorch), sum is 0; classes may then be 0.
    let e: [i64; 0] = [];
    assert!(
        softmax_cross_entropy(Backend::Native, &SoftmaxXent::new(0, 0), &[], &e, None)
            .unwrap()
            .is_nan()
    );
    let s = SoftmaxXent::new(0, 3).reduction(Reduction::Sum);
    assert_eq!(
        softmax_cross_entropy(Backend::Native, &s, &[], &e, None).unwrap(),
        0.0
    );
    // One class: probability 1, loss 0, gradient 0.
    let (loss, g) = native(&SoftmaxXent::new(2, 1), &[3.0, -7.0], &[0, 0], true);
    assert_eq!((loss, g), (0.0, vec![0.0, 0.0]));
}

#[test]
fn bad_input_gives_errors_and_writes_nothing() {
    let x = [0.0f32; 6];
    let p = SoftmaxXent::new(2, 3);
    let mut g = [7.0f32; 6];
    let call = |p: &SoftmaxXent, x: &[f32], l: &[i64], g: Option<&mut [f32]>| {
        softmax_cross_entropy(Backend::Native, p, x, l, g).unwrap_err()
    };
    assert_eq!(
        call(&p, &x, &[0, 3], Some(&mut g)),
        KernelError::IndexOutOfRange {
            arg: "labels",
            index: 3,
            bound: 3
        }
    );
    assert_eq!(
        call(&p, &x, &[-1, 0], None),
        KernelError::IndexOutOfRange {
            arg: "labels",
            index: -1,
            bound: 3
        }
    );
    assert_eq!(g, [7.0; 6], "nothing written on error");
    // -100 is only skipped when it is the ignore label.
    assert!(matches!(
        call(&p, &x, &[-100, 0], None),
        KernelError::IndexOutOfRange { .. }
    ));
    let big = softmax_cross_entropy(Backend::Native, &p, &x, &[usize::MAX, 0], None);
    assert!(matches!(
        big.unwrap_err(),
        KernelError::IndexOutOfRange {
            index: i64::MAX,
            ..
        }
    ));
    assert_eq!(
        call(&p, &x[..5], &[0, 0], None),
        KernelError::BufferLength {
            arg: "logits",
            expected: 6,
            got: 5
        }
    );
    assert_eq!(
        call(&p, &x, &[0], None),
        KernelError::BufferLength {
            arg: "labels",
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        call(&p, &x, &[0, 0], Some(&mut [0.0; 5])),
        KernelError::BufferLength {
            arg: "dlogits",
            expected: 6,
            got: 5
        }
    );
    for eps in [-0.1f32, 1.5, f32::NAN] {
        let e = call(&p.label_smoothing(eps), &x, &[0, 0], None);
        assert!(matches!(
            e,
            KernelError::InvalidParam {
                arg: "label_smoothing",
                ..
            }
        ));
    }
    let e = call(&SoftmaxXent::new(2, 0), &[], &[0, 0], None);
    assert!(matches!(
        e,
        KernelError::InvalidParam { arg: "classes", .. }
    ));
    let e = call(&SoftmaxXent::new(usize::MAX, 2), &[], &[], None);
    assert_eq!(e, KernelError::Overflow { arg: "n * classes" });
    for b in [Backend::Reference, Backend::OpenBlas] {
        assert!(softmax_cross_entropy(b, &p, &x, &[0i64, 9], None).is_err());
    }
}
