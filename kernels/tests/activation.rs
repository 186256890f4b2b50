//! Activations: proptest against the f64 references on every ISA, finite differences of
//! every backward, limits at +-inf, in-place forms, the streaming-store path, thread-count
//! determinism and bad input. (The math under them: `simd_math.rs`; softmax: `softmax.rs`.)

mod act_common;

use act_common::{bits, bwd_bound, close, fwd_bound, same_bits_across_pools};
use nnkern_kernels::activation::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;

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

/// GELU's derivative (the backward with `dy = 1`) is within its documented 4e-7 absolute
/// error over a sweep of the whole f32 range on every ISA, and exactly 0 and 1 past 6.2.
#[test]
fn gelu_backward_error_over_whole_range() {
    let mut x: Vec<f32> = (0..1u64 << 32)
        .step_by(4093)
        .map(|b| f32::from_bits(b as u32))
        .filter(|v| !v.is_nan())
        .collect();
    x.extend((0..400_000).map(|i| (i as f32 - 200_000.0) * 5e-5));
    let n = x.len();
    for isa in Isa::ALL {
        let mut dx = vec![0.0f32; n];
        with_isa(isa, || {
            activation_backward(
                Backend::Native,
                Activation::Gelu,
                &x,
                &[],
                &vec![1.0; n],
                &mut dx,
            )
        })
        .unwrap();
        for (&xi, &got) in x.iter().zip(&dx) {
            let want = activation_backward_scalar(Activation::Gelu, xi as f64, f64::NAN, 1.0);
            let ok = if xi.abs() > 6.2 {
                got == if xi > 0.0 { 1.0 } else { 0.0 }
            } else {
                (got as f64 - want).abs() <= 4e-7
            };
            assert!(ok, "{isa:?}: gelu'({xi:e}) = {got:e}, want {want:e}");
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
}

/// Outputs of at least 4M elements take the non-temporal-store path (ReLU, sigmoid, GELU)
/// and long slices the two-pass staged path (sigmoid, GELU): all must
/// give the same bits as the plain path
/// (computed here in pieces of 100 elements, too short for either), for misaligned outputs
/// and the in-place backward too.
#[test]
fn streaming_path_matches_small_pieces() {
    let n = (1 << 22) + 37;
    let x: Vec<f32> = (0..n + 1)
        .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 - 5.0)
        .collect();
    let x = &x[1..]; // misaligned input
    for isa in Isa::ALL {
        for act in [
            Activation::Tanh,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Gelu,
        ] {
            let mut big = vec![0.0f32; n + 3];
            let mut dbig = vec![0.0f32; n + 1];
            // Two threads, so the chunks of both run streaming (one of them misaligned).
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.install(|| {
                with_isa(isa, || {
                    activation_forward(Backend::Native, act, x, &mut big[3..]).unwrap();
                    dbig[1..].copy_from_slice(x);
                    activation_backward_inplace(Backend::Native, act, x, &big[3..], &mut dbig[1..])
                        .unwrap();
                })
            });
            let (mut small, mut dsmall) = (vec![0.0f32; n], vec![0.0f32; n]);
            with_isa(isa, || {
                for (i, c) in x.chunks(100).enumerate() {
                    let r = i * 100..i * 100 + c.len();
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
}
