//! The documented special-value semantics (see `nnkern_kernels::semantics`), checked on every
//! path: the reference backend and the native backend under each ISA. Each test is one row of
//! the semantics table: NaN and infinities through every op family, `beta = 0`, `alpha = 0`,
//! empty inputs, in-place activations.

use nnkern_kernels::activation::*;
use nnkern_kernels::conv::{conv2d_forward, Conv2dParams};
use nnkern_kernels::loss::*;
use nnkern_kernels::optim::{adam_step, sgd_step, AdamConfig, SgdConfig};
use nnkern_kernels::pool::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{gemm, softmax_cross_entropy, Backend, Gemm, Reduction, SoftmaxXent};

const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;

/// Runs `f` on the reference backend and on the native backend under every supported ISA.
fn every_path(mut f: impl FnMut(Backend, &str)) {
    f(Backend::Reference, "reference");
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        with_isa(isa, || f(Backend::Native, isa.name()));
    }
}

/// Bitwise equality where every NaN equals every NaN.
fn same(got: &[f32], want: &[f32]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
}

#[test]
fn activations_of_nan_and_infinities() {
    let x = [NAN, INF, -INF, -0.0, 0.0];
    let table: [(Activation, [f32; 5]); 9] = [
        (Activation::Relu, [NAN, INF, 0.0, 0.0, 0.0]),
        (Activation::LeakyRelu(0.1), [NAN, INF, -INF, -0.0, 0.0]),
        (Activation::Elu(1.0), [NAN, INF, -1.0, -0.0, 0.0]),
        (Activation::Sigmoid, [NAN, 1.0, 0.0, 0.5, 0.5]),
        (Activation::Tanh, [NAN, 1.0, -1.0, -0.0, 0.0]),
        (Activation::Gelu, [NAN, INF, -0.0, -0.0, 0.0]),
        (Activation::GeluTanh, [NAN, INF, -0.0, -0.0, 0.0]),
        (Activation::Silu, [NAN, INF, -0.0, -0.0, 0.0]),
        (
            Activation::Softplus,
            [
                NAN,
                INF,
                0.0,
                std::f32::consts::LN_2,
                std::f32::consts::LN_2,
            ],
        ),
    ];
    every_path(|backend, isa| {
        for (act, want) in table {
            let mut y = [7.0f32; 5];
            activation_forward(backend, act, &x, &mut y).unwrap();
            // Signs of zero are compared only where the table's sign is part of the rule
            // (ReLU's is not: max(-0, 0) may be either zero).
            for i in 0..5 {
                let ok = if want[i] == 0.0 && act == Activation::Relu {
                    y[i] == 0.0
                } else if want[i].is_finite() && want[i] != 0.0 {
                    (y[i] - want[i]).abs() <= 2.0 * f32::EPSILON * want[i].abs()
                } else {
                    same(&y[i..=i], &want[i..=i]) || (want[i] == 0.0 && y[i] == 0.0)
                };
                assert!(ok, "{isa} {act:?}({}) = {}, want {}", x[i], y[i], want[i]);
            }
            // The in-place form gives the same bits.
            let mut xy = x;
            activation_forward_inplace(backend, act, &mut xy).unwrap();
            assert!(same(&xy, &y), "{isa} {act:?} in place");
            // Backward: NaN in dy gives NaN; so does NaN in the saved tensor, except for
            // ReLU and leaky ReLU whose test `> 0` is false for NaN: the gradient is then
            // `0` and `slope * dy` (as PyTorch's `threshold_backward` and
            // `leaky_relu_backward`).
            let mut dx = [0.0f32; 2];
            activation_backward(backend, act, &[NAN, 1.0], &[NAN, 0.5], &[1.0, NAN], &mut dx)
                .unwrap();
            let nan_saved = match act {
                Activation::Relu => dx[0] == 0.0,
                Activation::LeakyRelu(a) => dx[0] == a,
                _ => dx[0].is_nan(),
            };
            assert!(nan_saved && dx[1].is_nan(), "{isa} {act:?} backward {dx:?}");
        }
    });
}

#[test]
fn max_pooling_nan_ties_and_negative_infinity() {
    // Three 2x2 windows of a 2x6 plane: [1, NaN, 2, NaN] (NaN, argmax of the last NaN),
    // [-inf x 4] (-inf, first cell), [3, 3, 3, 3] (tie: first cell).
    let x = [
        1.0, NAN, -INF, -INF, 3.0, 3.0, //
        2.0, NAN, -INF, -INF, 3.0, 3.0,
    ];
    let p = Pool2dParams::new([1, 1, 2, 6], [2, 2], [2, 2], [0, 0]).unwrap();
    every_path(|backend, isa| {
        let (mut y, mut am) = ([0.0f32; 3], [9u32; 3]);
        max_pool2d_forward(backend, &p, &x, &mut y, &mut am).unwrap();
        assert!(same(&y, &[NAN, -INF, 3.0]), "{isa}: {y:?}");
        assert_eq!(am, [7, 2, 4], "{isa}");
        // Average pooling: NaN propagates; inf + -inf is NaN.
        avg_pool2d_forward(backend, &p, true, &x, &mut y).unwrap();
        assert!(y[0].is_nan() && y[1] == -INF && y[2] == 3.0, "{isa}: {y:?}");
        let q = Pool2dParams::new([1, 1, 1, 2], [1, 2], [1, 1], [0, 0]).unwrap();
        let mut z = [0.0f32];
        avg_pool2d_forward(backend, &q, false, &[INF, -INF], &mut z).unwrap();
        assert!(z[0].is_nan(), "{isa}");
        global_avg_pool2d_forward(backend, [1, 1, 1, 2], &[INF, 1.0], &mut z).unwrap();
        assert_eq!(z[0], INF, "{isa}");
    });
}

#[test]
fn softmax_rows_with_infinities() {
    // Rows: all -inf (NaN), one +inf (NaN), a NaN (NaN), -inf entries (probability 0).
    let x = [
        -INF, -INF, -INF, //
        0.0, INF, 1.0, //
        0.0, NAN, 1.0, //
        0.0, -INF, 0.0,
    ];
    every_path(|backend, isa| {
        let (mut y, mut l) = ([0.0f32; 12], [0.0f32; 12]);
        softmax_forward(backend, 4, 3, &x, &mut y).unwrap();
        log_softmax_forward(backend, 4, 3, &x, &mut l).unwrap();
        assert!(y[..9].iter().all(|v| v.is_nan()), "{isa}: {y:?}");
        assert!(l[..9].iter().all(|v| v.is_nan()), "{isa}: {l:?}");
        assert!(same(&y[9..], &[0.5, 0.0, 0.5]), "{isa}: {y:?}");
        assert_eq!(l[10], -INF, "{isa}");
        assert!((l[9] + std::f32::consts::LN_2).abs() < 1e-6, "{isa}");
    });
}

#[test]
fn cross_entropy_with_infinite_logits() {
    let labels = [0i64, 0, 1, 1];
    // Row 0: +inf logit (NaN loss); the other rows checked one by one below.
    let x = [INF, 0.0, 0.0, 0.0, -INF, 0.0, 0.0, -INF];
    let p = SoftmaxXent::new(4, 2).reduction(Reduction::Sum);
    every_path(|backend, isa| {
        let mut g = [0.0f32; 8];
        let loss = softmax_cross_entropy(backend, &p, &x, &labels, Some(&mut g)).unwrap();
        assert!(loss.is_nan(), "{isa}: +inf logit gives NaN, got {loss}");
        assert!(
            g[..2].iter().all(|v| v.is_nan()),
            "{isa}: NaN gradient row {g:?}"
        );
        // With label smoothing a -inf logit anywhere makes the loss infinite.
        let sm = SoftmaxXent::new(1, 2).label_smoothing(0.1);
        let l = softmax_cross_entropy(backend, &sm, &[0.0, -INF], &[0i64], None).unwrap();
        assert_eq!(l, INF, "{isa}");
        // -inf at the label: infinite loss; -inf elsewhere: probability 0, finite loss.
        let one = SoftmaxXent::new(1, 2);
        let l = softmax_cross_entropy(backend, &one, &[-INF, 0.0], &[0i64], None).unwrap();
        assert_eq!(l, INF, "{isa}");
        let mut g1 = [9.0f32; 2];
        let l = softmax_cross_entropy(backend, &one, &[0.0, -INF], &[0i64], Some(&mut g1)).unwrap();
        assert_eq!((l, g1), (0.0, [0.0, 0.0]), "{isa}");
        // Every row ignored with the mean: NaN (0/0) and a zero gradient.
        let ign = SoftmaxXent::new(2, 2).ignore_index(Some(-100));
        let mut g2 = [9.0f32; 4];
        let l = softmax_cross_entropy(backend, &ign, &[1.0; 4], &[-100i64, -100], Some(&mut g2))
            .unwrap();
        assert!(l.is_nan() && g2 == [0.0; 4], "{isa}: {l} {g2:?}");
        // No rows: mean NaN, sum 0.
        let empty = SoftmaxXent::new(0, 3);
        let l = softmax_cross_entropy(backend, &empty, &[], &[0i64; 0], None).unwrap();
        assert!(l.is_nan(), "{isa}");
        let l = softmax_cross_entropy(
            backend,
            &empty.reduction(Reduction::Sum),
            &[],
            &[0i64; 0],
            None,
        )
        .unwrap();
        assert_eq!(l, 0.0, "{isa}");
    });
}

#[test]
fn gemm_beta_zero_overwrites_nan_and_alpha_zero_skips_the_product() {
    every_path(|backend, isa| {
        // beta = 0: a NaN C does not survive.
        let mut c = [NAN; 4];
        gemm(
            backend,
            &Gemm::new(2, 2, 1),
            &[1.0f32, 2.0],
            &[3.0, 4.0],
            &mut c,
        )
        .unwrap();
        assert_eq!(c, [3.0, 4.0, 6.0, 8.0], "{isa}");
        // alpha = 0: A and B are not read (NaN there does not reach C), C = beta C.
        let mut c = [1.0f32; 4];
        let g = Gemm::new(2, 2, 1).alpha(0.0).beta(2.0);
        gemm(backend, &g, &[NAN, NAN], &[INF, 1.0], &mut c).unwrap();
        assert_eq!(c, [2.0; 4], "{isa}");
        // k = 0 with beta = 0: C is zeroed.
        let mut c = [NAN; 4];
        gemm(backend, &Gemm::new(2, 2, 0), &[], &[], &mut c).unwrap();
        assert_eq!(c, [0.0; 4], "{isa}");
        // beta = NaN (not 0): NaN C times NaN beta is NaN.
        let mut c = [1.0f32; 1];
        let g = Gemm::new(1, 1, 1).beta(NAN);
        gemm(backend, &g, &[1.0], &[1.0], &mut c).unwrap();
        assert!(c[0].is_nan(), "{isa}");
        // A NaN in A reaches exactly its row of C.
        let mut c = [0.0f32; 4];
        gemm(
            backend,
            &Gemm::new(2, 2, 1),
            &[NAN, 1.0],
            &[1.0, 1.0],
            &mut c,
        )
        .unwrap();
        assert!(
            c[0].is_nan() && c[1].is_nan() && c[2..] == [1.0, 1.0],
            "{isa}: {c:?}"
        );
    });
}

#[test]
fn convolution_propagates_nan_only_where_it_reaches_and_padding_is_zero() {
    // 1x1x3x3 input with NaN at the corner (0, 0), a 2x2 kernel of ones, padding 1:
    // the 4x4 output sees the corner only in its top-left 2x2 block.
    let p = Conv2dParams::builder(1, 1, 3, 3, 1, 2, 2)
        .pad(1, 1)
        .build()
        .unwrap();
    let mut x = [1.0f32; 9];
    x[0] = NAN;
    every_path(|backend, isa| {
        let mut y = [0.0f32; 16];
        let mut ws = vec![0.0f32; p.workspace_len()];
        conv2d_forward(backend, &p, &x, &[1.0; 4], None, &mut y, &mut ws).unwrap();
        for (i, v) in y.iter().enumerate() {
            let (r, c) = (i / 4, i % 4);
            if r < 2 && c < 2 {
                assert!(v.is_nan(), "{isa}: y[{r},{c}] = {v}");
            } else {
                // Finite: padded cells count as exact zeros.
                let span = |o: usize| (o.min(2) + 1 - o.saturating_sub(1)) as f32;
                let (rows, cols) = (span(r), span(c));
                assert_eq!(*v, rows * cols, "{isa}: y[{r},{c}]");
            }
        }
    });
}

#[test]
fn losses_of_nan_and_infinities() {
    every_path(|backend, isa| {
        // MSE: NaN in, NaN loss and gradient at that element; inf - inf is NaN.
        let mut g = [0.0f32; 2];
        let l = mse_loss(
            backend,
            &[NAN, 1.0],
            &[0.0, 1.0],
            Reduction::Sum,
            Some(&mut g),
        )
        .unwrap();
        assert!(l.is_nan() && g[0].is_nan() && g[1] == 0.0, "{isa}");
        let l = mse_loss(backend, &[INF], &[INF], Reduction::Sum, None).unwrap();
        assert!(l.is_nan(), "{isa}");
        // BCE with logits: infinite logits give the limits.
        let mut g = [0.0f32; 4];
        let l = bce_with_logits_loss(
            backend,
            &[INF, -INF, INF, -INF],
            &[1.0, 0.0, 0.0, 1.0],
            Reduction::Sum,
            Some(&mut g),
        )
        .unwrap();
        assert_eq!(l, INF, "{isa}");
        assert_eq!(g, [0.0, 0.0, 1.0, -1.0], "{isa}");
        let l = bce_with_logits_loss(backend, &[INF, -INF], &[1.0, 0.0], Reduction::Sum, None);
        assert_eq!(l.unwrap(), 0.0, "{isa}");
        // Hinge: a NaN score gives NaN; a NaN label is an error.
        let l = hinge_loss(backend, &[NAN], &[1.0], Reduction::Mean, None).unwrap();
        assert!(l.is_nan(), "{isa}");
        assert!(hinge_loss(backend, &[1.0], &[NAN], Reduction::Mean, None).is_err());
        // Empty input: the mean is NaN, the sum 0.
        for f in [mse_loss, bce_with_logits_loss, hinge_loss] {
            assert!(f(backend, &[], &[], Reduction::Mean, None)
                .unwrap()
                .is_nan());
            assert_eq!(f(backend, &[], &[], Reduction::Sum, None).unwrap(), 0.0);
        }
    });
}

#[test]
fn optimizers_propagate_nan_and_infinite_gradients() {
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        with_isa(isa, || {
            let sgd = SgdConfig {
                lr: 0.1,
                momentum: 0.0,
                dampening: 0.0,
                weight_decay: 0.0,
                nesterov: false,
            };
            let mut p = [1.0f32, 1.0, 1.0];
            sgd_step(&sgd, &mut p, &[NAN, INF, 0.0], &mut [], true).unwrap();
            assert!(
                p[0].is_nan() && p[1] == -INF && p[2] == 1.0,
                "{isa:?}: {p:?}"
            );
            let adam = AdamConfig {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            };
            let (mut p, mut m, mut v) = ([1.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
            adam_step(&adam, 1, &mut p, &[NAN, 1.0], &mut m, &mut v).unwrap();
            assert!(p[0].is_nan() && m[0].is_nan() && v[0].is_nan(), "{isa:?}");
            assert!(p[1].is_finite() && p[1] < 1.0, "{isa:?}");
        });
    }
}

#[test]
fn in_place_activation_backward_matches_out_of_place() {
    let x = [-2.0f32, -0.5, 0.0, 0.5, 3.0, NAN, INF, -INF];
    let dy = [1.0f32, -1.0, 0.5, 2.0, -3.0, 1.0, 1.0, 1.0];
    every_path(|backend, isa| {
        for act in [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::Silu,
        ] {
            let mut y = [0.0f32; 8];
            activation_forward(backend, act, &x, &mut y).unwrap();
            let mut dx = [0.0f32; 8];
            activation_backward(backend, act, &x, &y, &dy, &mut dx).unwrap();
            let mut g = dy;
            activation_backward_inplace(backend, act, &x, &y, &mut g).unwrap();
            assert!(same(&g, &dx), "{isa} {act:?}");
        }
    });
}
