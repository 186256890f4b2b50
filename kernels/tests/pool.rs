//! Pooling: native vs the f64 reference on random shapes for every ISA, finite differences of
//! every backward, special values, thread-count determinism, and every bad input.

use nnkern_kernels::pool::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;

const EPS: f64 = f32::EPSILON as f64;

/// Deterministic data; `ties` draws from a few integers so windows hold equal values.
fn data(len: usize, seed: u64, ties: bool) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            if ties {
                (u * 4.0).floor() as f32 - 2.0
            } else {
                (u * 8.0 - 4.0) as f32
            }
        })
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

/// `|got - want| <= c * eps * mag + tiny` elementwise.
fn assert_close(what: &str, got: &[f32], want: &[f64], mag: &[f64], c: f64) {
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let bound = c * EPS * m + 1e-30;
        assert!(
            (g as f64 - w).abs() <= bound,
            "{what}[{i}]: got {g}, want {w}, bound {bound}"
        );
    }
}

fn params() -> impl Strategy<Value = Pool2dParams> {
    (
        (1usize..=2, 1usize..=3, 1usize..=11, 1usize..=11),
        (1usize..=4, 1usize..=4, 1usize..=3, 1usize..=3),
        (0usize..=2, 0usize..=2),
    )
        .prop_filter_map(
            "valid pooling",
            |((n, c, h, w), (kh, kw, sh, sw), (ph, pw))| {
                Pool2dParams::new([n, c, h, w], [kh, kw], [sh, sw], [ph, pw]).ok()
            },
        )
}

/// Wide rows (at least 8 outputs for strides 1 and 2): the blocked paths.
fn params_wide() -> impl Strategy<Value = Pool2dParams> {
    (
        (1usize..=2, 1usize..=2, 1usize..=6, 15usize..=40),
        (1usize..=4, 1usize..=5, 1usize..=3, 1usize..=2),
        (0usize..=2, 0usize..=2),
    )
        .prop_filter_map(
            "valid pooling",
            |((n, c, h, w), (kh, kw, sh, sw), (ph, pw))| {
                Pool2dParams::new([n, c, h, w], [kh, kw], [sh, sw], [ph, pw]).ok()
            },
        )
}

/// The 2x2 stride-2 fast path, odd sizes included.
fn params_2x2() -> impl Strategy<Value = Pool2dParams> {
    (1usize..=2, 1usize..=3, 2usize..=13, 2usize..=13)
        .prop_map(|(n, c, h, w)| Pool2dParams::new([n, c, h, w], [2, 2], [2, 2], [0, 0]).unwrap())
}

/// Checks every native pass against the reference for one shape, on every ISA.
fn check_all(p: &Pool2dParams, seed: u64, ties: bool) {
    let (il, ol) = (p.input_len(), p.output_len());
    let x = data(il, seed, ties);
    let dy = data(ol, seed + 1, false);
    let (x64, dy64) = (f64s(&x), f64s(&dy));
    let [kh, kw] = p.kernel();
    let c = (kh * kw + 2) as f64;

    let (mut y_ref, mut arg_ref) = (vec![0.0f64; ol], vec![0u32; ol]);
    max_pool2d_forward_reference(p, &x64, &mut y_ref, &mut arg_ref).unwrap();
    let mut dx_ref = vec![0.0f64; il];
    max_pool2d_backward_reference(p, &dy64, &arg_ref, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0f64; il];
    max_pool2d_backward_reference(p, &abs(&dy64), &arg_ref, &mut dx_mag).unwrap();

    let mut avg_ref = [vec![0.0f64; ol], vec![0.0f64; ol]];
    let mut avg_mag = avg_ref.clone();
    let mut avg_dx_ref = [vec![0.0f64; il], vec![0.0f64; il]];
    let mut avg_dx_mag = avg_dx_ref.clone();
    for (k, inc) in [false, true].into_iter().enumerate() {
        avg_pool2d_forward_reference(p, inc, &x64, &mut avg_ref[k]).unwrap();
        avg_pool2d_forward_reference(p, inc, &abs(&x64), &mut avg_mag[k]).unwrap();
        avg_pool2d_backward_reference(p, inc, &dy64, &mut avg_dx_ref[k]).unwrap();
        avg_pool2d_backward_reference(p, inc, &abs(&dy64), &mut avg_dx_mag[k]).unwrap();
    }

    for isa in Isa::ALL {
        with_isa(isa, || {
            for backend in [Backend::Native, Backend::Reference] {
                let (mut y, mut arg) = (vec![f32::NAN; ol], vec![u32::MAX; ol]);
                max_pool2d_forward(backend, p, &x, &mut y, &mut arg).unwrap();
                // The maximum is exact and the argmax is the reference's.
                assert_eq!(arg, arg_ref, "{isa:?} {backend:?} argmax {p:?}");
                assert_eq!(f64s(&y), y_ref, "{isa:?} {backend:?} max {p:?}");
                let mut dx = vec![f32::NAN; il];
                max_pool2d_backward(backend, p, &dy, &arg, &mut dx).unwrap();
                assert_close("max dx", &dx, &dx_ref, &dx_mag, c);

                for (k, inc) in [false, true].into_iter().enumerate() {
                    let mut y = vec![f32::NAN; ol];
                    avg_pool2d_forward(backend, p, inc, &x, &mut y).unwrap();
                    assert_close("avg y", &y, &avg_ref[k], &avg_mag[k], c);
                    let mut dx = vec![f32::NAN; il];
                    avg_pool2d_backward(backend, p, inc, &dy, &mut dx).unwrap();
                    assert_close("avg dx", &dx, &avg_dx_ref[k], &avg_dx_mag[k], c);
                }
            }
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn native_matches_reference(p in params(), seed in any::<u64>(), ties in any::<bool>()) {
        check_all(&p, seed, ties);
    }

    #[test]
    fn wide_rows_match_reference(p in params_wide(), seed in any::<u64>(), ties in any::<bool>()) {
        check_all(&p, seed, ties);
    }

    #[test]
    fn fast_2x2_matches_reference(p in params_2x2(), seed in any::<u64>(), ties in any::<bool>()) {
        check_all(&p, seed, ties);
    }

    #[test]
    fn global_matches_reference(n in 0usize..=3, c in 1usize..=3, h in 1usize..=9,
                                w in 1usize..=9, seed in any::<u64>()) {
        let shape = [n, c, h, w];
        let x = data(n * c * h * w, seed, false);
        let dy = data(n * c, seed + 1, false);
        let mut want = vec![0.0f64; n * c];
        global_avg_pool2d_forward_reference(shape, &f64s(&x), &mut want).unwrap();
        let mut mag = vec![0.0f64; n * c];
        global_avg_pool2d_forward_reference(shape, &abs(&f64s(&x)), &mut mag).unwrap();
        let mut dx_want = vec![0.0f64; n * c * h * w];
        global_avg_pool2d_backward_reference(shape, &f64s(&dy), &mut dx_want).unwrap();
        let dx_mag = abs(&dx_want);
        for isa in Isa::ALL {
            with_isa(isa, || {
                let mut y = vec![f32::NAN; n * c];
                global_avg_pool2d_forward(Backend::Native, shape, &x, &mut y).unwrap();
                assert_close("global y", &y, &want, &mag, (h * w + 2) as f64);
                let mut dx = vec![f32::NAN; n * c * h * w];
                global_avg_pool2d_backward(Backend::Native, shape, &dy, &mut dx).unwrap();
                assert_close("global dx", &dx, &dx_want, &dx_mag, 2.0);
            });
        }
    }
}

/// Central differences of `L(x) = sum(dy * f(x))` against `backward(dy)`, in f64.
fn finite_diff(len: usize, x: &[f64], dy: &[f64], f: impl Fn(&[f64]) -> Vec<f64>, grad: &[f64]) {
    let loss = |x: &[f64]| f(x).iter().zip(dy).map(|(a, b)| a * b).sum::<f64>();
    let h = 1e-6;
    for i in 0..len {
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += h;
        xm[i] -= h;
        let fd = (loss(&xp) - loss(&xm)) / (2.0 * h);
        assert!(
            (fd - grad[i]).abs() <= 1e-6 * (1.0 + fd.abs()),
            "x[{i}]: fd {fd}, grad {}",
            grad[i]
        );
    }
}

#[test]
fn backward_passes_match_finite_differences() {
    let shapes = [
        ([1, 2, 5, 7], [3, 2], [2, 1], [1, 1]),
        ([2, 1, 6, 6], [2, 2], [2, 2], [0, 0]),
        ([1, 1, 4, 5], [3, 3], [1, 2], [1, 0]),
    ];
    for (shape, k, s, pad) in shapes {
        let p = Pool2dParams::new(shape, k, s, pad).unwrap();
        let (il, ol) = (p.input_len(), p.output_len());
        // Distinct values, so max pooling is differentiable at x.
        let x: Vec<f64> = (0..il)
            .map(|i| ((i * 37 % il) as f64) * 0.1 - 1.0)
            .collect();
        let dy = f64s(&data(ol, 5, false));

        let max_fwd = |x: &[f64]| {
            let (mut y, mut a) = (vec![0.0; ol], vec![0; ol]);
            max_pool2d_forward_reference(&p, x, &mut y, &mut a).unwrap();
            (y, a)
        };
        let mut dx = vec![0.0; il];
        max_pool2d_backward_reference(&p, &dy, &max_fwd(&x).1, &mut dx).unwrap();
        finite_diff(il, &x, &dy, |x| max_fwd(x).0, &dx);

        for inc in [false, true] {
            let mut dx = vec![0.0; il];
            avg_pool2d_backward_reference(&p, inc, &dy, &mut dx).unwrap();
            let fwd = |x: &[f64]| {
                let mut y = vec![0.0; ol];
                avg_pool2d_forward_reference(&p, inc, x, &mut y).unwrap();
                y
            };
            finite_diff(il, &x, &dy, fwd, &dx);
        }

        let shape_g = p.input_shape();
        let dyg = f64s(&data(shape[0] * shape[1], 6, false));
        let mut dx = vec![0.0; il];
        global_avg_pool2d_backward_reference(shape_g, &dyg, &mut dx).unwrap();
        let fwd = |x: &[f64]| {
            let mut y = vec![0.0; dyg.len()];
            global_avg_pool2d_forward_reference(shape_g, x, &mut y).unwrap();
            y
        };
        finite_diff(il, &x, &dyg, fwd, &dx);
    }
}

#[test]
fn max_pool_special_values() {
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    // One 2x8 plane, 2x2 windows (fast path) and the same with 3x2 windows (general path).
    #[rustfmt::skip]
    let x = [
        1.0, nan,  3.0, 3.0,  -inf, -inf,  nan, 0.0,
        nan, 2.0,  3.0, 3.0,  -inf, -inf,  inf, nan,
    ];
    let p = Pool2dParams::new([1, 1, 2, 8], [2, 2], [2, 2], [0, 0]).unwrap();
    let general = Pool2dParams::new([1, 1, 2, 8], [2, 2], [1, 2], [1, 0]).unwrap();
    for isa in Isa::ALL {
        with_isa(isa, || {
            let (mut y, mut arg) = ([0.0f32; 4], [0u32; 4]);
            max_pool2d_forward(Backend::Native, &p, &x, &mut y, &mut arg).unwrap();
            // NaN wins and the last NaN is the argmax; ties go to the first cell; an all -inf
            // window gives -inf at its first cell.
            assert!(y[0].is_nan() && y[3].is_nan(), "{y:?}");
            assert_eq!((y[1], y[2]), (3.0, -inf));
            assert_eq!(arg, [8, 2, 4, 15]);

            let (mut y, mut arg) = ([0.0f32; 12], [0u32; 12]);
            max_pool2d_forward(Backend::Native, &general, &x, &mut y, &mut arg).unwrap();
            let (mut yr, mut ar) = ([0.0f32; 12], [0u32; 12]);
            max_pool2d_forward_reference(&general, &x, &mut yr, &mut ar).unwrap();
            assert_eq!(arg, ar);
            assert_eq!(y.map(f32::to_bits), yr.map(f32::to_bits));
            assert!(y[0].is_nan() && y[4].is_nan() && y[7].is_nan());
        });
    }
}

#[test]
fn rows_wider_than_the_stack_buffers() {
    // Padded rows over 1024 (average: direct loops) and padded planes over 8192 floats (max:
    // general loop).
    for (k, s, pad) in [
        ([2, 3], [1, 2], [1, 1]),
        ([3, 3], [2, 1], [1, 1]),
        ([2, 2], [2, 2], [0, 0]),
    ] {
        let p = Pool2dParams::new([1, 2, 8, 1100], k, s, pad).unwrap();
        check_all(&p, 9, true);
    }
}

#[test]
fn special_values_match_reference_on_every_path() {
    let shapes = [
        ([2, 3, 6, 20], [2, 2], [2, 2], [0, 0]), // 2x2 fast path
        ([2, 3, 7, 21], [3, 3], [2, 2], [1, 1]), // blocked, stride 2, padded
        ([1, 2, 5, 12], [3, 2], [1, 1], [1, 1]), // blocked, stride 1
        ([1, 2, 5, 12], [2, 3], [2, 3], [1, 1]), // general
    ];
    for (shape, k, s, pad) in shapes {
        let p = Pool2dParams::new(shape, k, s, pad).unwrap();
        let mut x = data(p.input_len(), 3, true);
        for (i, v) in x.iter_mut().enumerate() {
            match (i % 7, i % 5, i % 11) {
                (0, _, _) => *v = f32::NAN,
                (_, 0, _) => *v = f32::NEG_INFINITY,
                (_, _, 0) => *v = f32::INFINITY,
                _ => {}
            }
        }
        let ol = p.output_len();
        let (mut yr, mut ar) = (vec![0.0f32; ol], vec![0u32; ol]);
        max_pool2d_forward_reference(&p, &x, &mut yr, &mut ar).unwrap();
        let mut avg_r = vec![0.0f32; ol];
        avg_pool2d_forward_reference(&p, true, &x, &mut avg_r).unwrap();
        for isa in Isa::ALL {
            with_isa(isa, || {
                let (mut y, mut a) = (vec![0.0f32; ol], vec![0u32; ol]);
                max_pool2d_forward(Backend::Native, &p, &x, &mut y, &mut a).unwrap();
                assert_eq!(a, ar, "{isa:?} {p:?}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&yr), "{isa:?} {p:?}");
                let mut avg = vec![0.0f32; ol];
                avg_pool2d_forward(Backend::Native, &p, true, &x, &mut avg).unwrap();
                for (g, w) in avg.iter().zip(&avg_r) {
                    assert!(g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-5);
                }
            });
        }
    }
}

#[test]
fn avg_pool_propagates_nan_and_inf() {
    let x = [
        1.0,
        f32::NAN,
        2.0,
        3.0,
        f32::INFINITY,
        1.0,
        f32::INFINITY,
        -f32::INFINITY,
    ];
    let p = Pool2dParams::new([1, 1, 2, 4], [2, 2], [2, 2], [0, 0]).unwrap();
    let mut y = [0.0f32; 2];
    avg_pool2d_forward(Backend::Native, &p, true, &x, &mut y).unwrap();
    assert!(y[0].is_nan() && y[1].is_nan(), "{y:?}");
    let x = [1.0, 2.0, f32::INFINITY, 3.0];
    let p = Pool2dParams::new([1, 1, 1, 4], [1, 2], [1, 2], [0, 0]).unwrap();
    avg_pool2d_forward(Backend::Native, &p, false, &x, &mut y).unwrap();
    assert_eq!(y, [1.5, f32::INFINITY]);
}

#[test]
fn identical_bits_for_any_thread_count() {
    // Big enough (over 2^16 elements moved) for the parallel paths; a general, a blocked
    // and the 2x2 max path.
    let p = Pool2dParams::new([4, 16, 41, 29], [3, 2], [3, 2], [1, 1]).unwrap();
    let p1 = Pool2dParams::new([4, 16, 41, 39], [3, 3], [2, 2], [1, 1]).unwrap();
    let p2 = Pool2dParams::new([4, 16, 40, 40], [2, 2], [2, 2], [0, 0]).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut bits = Vec::new();
            for p in [&p, &p1, &p2] {
                let x = data(p.input_len(), 7, true);
                let dy = data(p.output_len(), 8, false);
                let (mut y, mut arg) = (vec![0.0; p.output_len()], vec![0; p.output_len()]);
                max_pool2d_forward(Backend::Native, p, &x, &mut y, &mut arg).unwrap();
                let mut dx = vec![0.0; p.input_len()];
                max_pool2d_backward(Backend::Native, p, &dy, &arg, &mut dx).unwrap();
                bits.extend(y.iter().chain(&dx).map(|v| v.to_bits()));
                bits.extend(&arg);
                for inc in [false, true] {
                    avg_pool2d_forward(Backend::Native, p, inc, &x, &mut y).unwrap();
                    avg_pool2d_backward(Backend::Native, p, inc, &dy, &mut dx).unwrap();
                    bits.extend(y.iter().chain(&dx).map(|v| v.to_bits()));
                }
                let shape = p.input_shape();
                let mut g = vec![0.0; shape[0] * shape[1]];
                global_avg_pool2d_forward(Backend::Native, shape, &x, &mut g).unwrap();
                global_avg_pool2d_backward(Backend::Native, shape, &g, &mut dx).unwrap();
                bits.extend(g.iter().chain(&dx).map(|v| v.to_bits()));
            }
            bits
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

fn arg_of(e: KernelError) -> &'static str {
    match e {
        KernelError::BufferTooShort { arg, .. }
        | KernelError::BufferLength { arg, .. }
        | KernelError::LeadingDimension { arg, .. }
        | KernelError::Overflow { arg }
        | KernelError::InvalidParam { arg, .. }
        | KernelError::IndexOutOfRange { arg, .. } => arg,
        KernelError::BackendUnavailable { backend } => backend,
    }
}

#[test]
fn bad_params_are_errors() {
    let new = |i, k, s, p| Pool2dParams::new(i, k, s, p).map_err(arg_of);
    assert_eq!(new([1, 1, 0, 4], [1, 1], [1, 1], [0, 0]), Err("h"));
    assert_eq!(new([1, 1, 4, 0], [1, 1], [1, 1], [0, 0]), Err("w"));
    assert_eq!(new([1, 1, 4, 4], [0, 1], [1, 1], [0, 0]), Err("kernel_h"));
    assert_eq!(new([1, 1, 4, 4], [1, 0], [1, 1], [0, 0]), Err("kernel_w"));
    assert_eq!(new([1, 1, 4, 4], [2, 2], [0, 1], [0, 0]), Err("stride_h"));
    assert_eq!(new([1, 1, 4, 4], [2, 2], [1, 0], [0, 0]), Err("stride_w"));
    assert_eq!(new([1, 1, 4, 4], [2, 2], [1, 1], [2, 0]), Err("pad_h"));
    assert_eq!(new([1, 1, 4, 4], [2, 2], [1, 1], [0, 3]), Err("pad_w"));
    assert_eq!(new([1, 1, 4, 4], [7, 2], [1, 1], [1, 0]), Err("kernel_h"));
    assert_eq!(new([1, 1, 4, 4], [2, 5], [1, 1], [0, 0]), Err("kernel_w"));
    assert_eq!(
        new([1, 1, 4, 4], [2, 2], [1, 1], [usize::MAX, 0]),
        Err("pad_h")
    );
    assert_eq!(
        new([usize::MAX, 2, 4, 4], [2, 2], [1, 1], [0, 0]),
        Err("input")
    );
    assert_eq!(
        new([1, 1, 1 << 17, 1 << 16], [1, 1], [1, 1], [0, 0]),
        Err("input")
    );
    // The largest valid window: the whole padded input.
    let p = Pool2dParams::new([2, 3, 4, 5], [6, 5], [1, 3], [1, 0]).unwrap();
    assert_eq!(p.output_shape(), [2, 3, 1, 1]);
    let p = Pool2dParams::new([1, 1, 26, 26], [2, 2], [2, 2], [0, 0]).unwrap();
    assert_eq!(p.output_shape(), [1, 1, 13, 13]);
    // Empty batches are fine.
    let p = Pool2dParams::new([0, 3, 4, 4], [2, 2], [2, 2], [0, 0]).unwrap();
    max_pool2d_forward(Backend::Native, &p, &[], &mut [], &mut []).unwrap();
}

#[test]
fn short_buffers_and_bad_argmax_are_errors() {
    let p = Pool2dParams::new([1, 2, 4, 4], [2, 2], [2, 2], [0, 0]).unwrap();
    let q = Pool2dParams::new([1, 2, 4, 4], [3, 3], [1, 1], [1, 1]).unwrap();
    let (x, dy) = (vec![1.0f32; 32], vec![1.0f32; 32]);
    for b in [Backend::Native, Backend::Reference] {
        let (mut y, mut a, mut dx) = (vec![0.0f32; 32], vec![0u32; 32], vec![0.0f32; 32]);
        let e = |r: Result<(), KernelError>| r.map_err(arg_of);
        assert_eq!(
            e(max_pool2d_forward(b, &p, &x[..31], &mut y, &mut a)),
            Err("x")
        );
        assert_eq!(
            e(max_pool2d_forward(b, &p, &x, &mut y[..7], &mut a)),
            Err("y")
        );
        assert_eq!(
            e(max_pool2d_forward(b, &p, &x, &mut y, &mut a[..7])),
            Err("argmax")
        );
        assert_eq!(
            e(max_pool2d_backward(b, &p, &dy[..7], &a, &mut dx)),
            Err("dy")
        );
        assert_eq!(
            e(max_pool2d_backward(b, &p, &dy, &a[..7], &mut dx)),
            Err("argmax")
        );
        assert_eq!(
            e(max_pool2d_backward(b, &p, &dy, &a, &mut dx[..31])),
            Err("dx")
        );
        assert_eq!(
            e(avg_pool2d_forward(b, &p, true, &x[..31], &mut y)),
            Err("x")
        );
        assert_eq!(
            e(avg_pool2d_forward(b, &p, true, &x, &mut y[..7])),
            Err("y")
        );
        assert_eq!(
            e(avg_pool2d_backward(b, &p, true, &dy[..7], &mut dx)),
            Err("dy")
        );
        assert_eq!(
            e(avg_pool2d_backward(b, &p, true, &dy, &mut dx[..31])),
            Err("dx")
        );
        let s = [1, 2, 4, 4];
        assert_eq!(
            e(global_avg_pool2d_forward(b, s, &x[..31], &mut y)),
            Err("x")
        );
        assert_eq!(
            e(global_avg_pool2d_forward(b, s, &x, &mut y[..1])),
            Err("y")
        );
        assert_eq!(
            e(global_avg_pool2d_backward(b, s, &dy[..1], &mut dx)),
            Err("dy")
        );
        assert_eq!(
            e(global_avg_pool2d_backward(b, s, &dy, &mut dx[..31])),
            Err("dx")
        );
        assert_eq!(
            e(global_avg_pool2d_forward(b, [1, 2, 0, 4], &x, &mut y)),
            Err("shape")
        );
        assert_eq!(
            e(global_avg_pool2d_forward(
                b,
                [usize::MAX, 2, 2, 2],
                &x,
                &mut y
            )),
            Err("shape")
        );

        // Argmax entries outside their window (fast and general paths), even in range.
        for (p, bad) in [(&p, 2u32), (&p, 1000), (&q, 15), (&q, u32::MAX)] {
            let n = p.output_len();
            let (mut y, mut a) = (vec![0.0f32; n], vec![0u32; n]);
            max_pool2d_forward(b, p, &x, &mut y, &mut a).unwrap();
            a[0] = bad;
            let r = max_pool2d_backward(b, p, &dy, &a, &mut dx);
            assert!(
                matches!(r, Err(KernelError::IndexOutOfRange { arg: "argmax", index, .. }) if index == bad as i64),
                "{b:?} {p:?} {bad}: {r:?}"
            );
        }
    }
}
