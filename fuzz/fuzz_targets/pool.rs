//! Pooling: random descriptors; max forward (exact: same values and argmax as the f64
//! reference, NaN rule included), max backward (with valid and corrupted argmax: out-of-window
//! entries must fail on every path alike), average forward/backward with and without padded
//! cells (a sum of at most `kh * kw` terms and a division), global average; short buffers fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::pool::*;
use nnkern_kernels::KernelError;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let shape = [inp.dim(3), inp.dim(3), inp.dim1(9), inp.dim1(9)];
    let kernel = [inp.dim1(4), inp.dim1(4)];
    let stride = [inp.dim1(3), inp.dim1(3)];
    let padding = [inp.dim(2), inp.dim(2)];
    global(&mut inp, shape);
    let Ok(p) = Pool2dParams::new(shape, kernel, stride, padding) else {
        return;
    };
    let (il, ol) = (p.input_len(), p.output_len());
    let mut lens = [il, ol, ol, il, ol]; // x, y, argmax, dx, dy
    let mut short = lens.iter().any(|&l| l > CAP);
    if short {
        lens = [3; 5];
    } else if let Some(i) = inp.perturb(5) {
        if lens[i] > 0 {
            lens[i] -= 1;
            short = true;
        }
    }
    let x = inp.values(lens[0]);
    let dy = inp.values(lens[4]);
    let cip = inp.bool();
    if short {
        for_each_path(|backend, name| {
            let (mut y, mut am, mut dx) =
                (vec![0.0; lens[1]], vec![0u32; lens[2]], vec![0.0; lens[3]]);
            let bad_fwd = lens[0] < il || lens[1] < ol || lens[2] < ol;
            let r = max_pool2d_forward(backend, &p, &x, &mut y, &mut am);
            assert_eq!(r.is_err(), bad_fwd, "{name} max forward {p:?}");
            let r = avg_pool2d_forward(backend, &p, cip, &x, &mut y);
            assert_eq!(
                r.is_err(),
                lens[0] < il || lens[1] < ol,
                "{name} avg forward"
            );
            let r = avg_pool2d_backward(backend, &p, cip, &dy, &mut dx);
            assert_eq!(
                r.is_err(),
                lens[3] < il || lens[4] < ol,
                "{name} avg backward"
            );
            let r = max_pool2d_backward(backend, &p, &dy, &am, &mut dx);
            if lens[3] < il || lens[4] < ol || lens[2] < ol {
                assert!(
                    matches!(r, Err(KernelError::BufferTooShort { .. })),
                    "{name}"
                );
            }
        });
        return;
    }
    let [kh, kw] = p.kernel();
    // Max forward: exact.
    let (mut want_y, mut want_am) = (vec![0.0f64; ol], vec![0u32; ol]);
    max_pool2d_forward_reference(&p, &f64s(&x), &mut want_y, &mut want_am).unwrap();
    let want_y32: Vec<f32> = want_y.iter().map(|&v| v as f32).collect();
    let mut want_dx = vec![0.0; il];
    let mut mag_dx = want_dx.clone();
    max_pool2d_backward_reference(&p, &f64s(&dy), &want_am, &mut want_dx).unwrap();
    max_pool2d_backward_reference(&p, &abs64(&dy), &want_am, &mut mag_dx).unwrap();
    // A corrupted argmax: the reference decides whether it is in its window.
    let mut bad_am = want_am.clone();
    if ol > 0 {
        let i = inp.below(ol);
        bad_am[i] = match inp.byte() % 3 {
            0 => u32::MAX,
            1 => bad_am[i].wrapping_add(1),
            _ => inp.byte() as u32,
        };
    }
    let mut scratch = vec![0.0f64; il];
    let bad_ref = max_pool2d_backward_reference(&p, &f64s(&dy), &bad_am, &mut scratch);
    if let Err(e) = &bad_ref {
        assert!(matches!(
            e,
            KernelError::IndexOutOfRange { arg: "argmax", .. }
        ));
    }
    // Average, both divisor rules.
    let (mut want_a, mut mag_a) = (vec![0.0; ol], vec![0.0; ol]);
    avg_pool2d_forward_reference(&p, cip, &f64s(&x), &mut want_a).unwrap();
    avg_pool2d_forward_reference(&p, cip, &abs64(&x), &mut mag_a).unwrap();
    let (mut want_ab, mut mag_ab) = (vec![0.0; il], vec![0.0; il]);
    avg_pool2d_backward_reference(&p, cip, &f64s(&dy), &mut want_ab).unwrap();
    avg_pool2d_backward_reference(&p, cip, &abs64(&dy), &mut mag_ab).unwrap();
    for_each_path(|backend, name| {
        let (mut y, mut am) = (vec![f32::NAN; ol], vec![7u32; ol]);
        max_pool2d_forward(backend, &p, &x, &mut y, &mut am).unwrap();
        assert!(
            same_value(&y, &want_y32),
            "{name} max y {p:?}: {y:?} vs {want_y32:?}"
        );
        assert_eq!(am, want_am, "{name} argmax {p:?}");
        let mut dx = vec![f32::NAN; il];
        max_pool2d_backward(backend, &p, &dy, &am, &mut dx).unwrap();
        assert_close(&format!("{name} max dx"), &dx, &want_dx, &mag_dx, kh * kw);
        let r = max_pool2d_backward(backend, &p, &dy, &bad_am, &mut dx);
        assert_eq!(
            r.is_err(),
            bad_ref.is_err(),
            "{name} corrupted argmax {p:?}"
        );
        let mut y = vec![f32::NAN; ol];
        avg_pool2d_forward(backend, &p, cip, &x, &mut y).unwrap();
        assert_close(
            &format!("{name} avg y {p:?}"),
            &y,
            &want_a,
            &mag_a,
            kh * kw + 1,
        );
        let mut dx = vec![f32::NAN; il];
        avg_pool2d_backward(backend, &p, cip, &dy, &mut dx).unwrap();
        assert_close(
            &format!("{name} avg dx {p:?}"),
            &dx,
            &want_ab,
            &mag_ab,
            kh * kw + 1,
        );
    });
});

/// Global average pooling of `shape`: short buffers fail, else within `h * w + 1` terms.
fn global(inp: &mut Input, shape: [usize; 4]) {
    let [n, c, h, w] = shape;
    let big = [n, c, h, w]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    // The kernels check h * w first: an overflowing plane is an error even when n == 0.
    let small = n.checked_mul(c).filter(|_| h.checked_mul(w).is_some());
    let (Some(big), Some(small)) = (big, small) else {
        for_each_path(|backend, name| {
            let r = global_avg_pool2d_forward(backend, shape, &[], &mut []);
            assert!(
                matches!(
                    r,
                    Err(KernelError::Overflow { .. } | KernelError::InvalidParam { .. })
                ),
                "{name} {r:?}"
            );
        });
        return;
    };
    if big > CAP || h == 0 || w == 0 {
        for_each_path(|backend, name| {
            let r = global_avg_pool2d_backward(backend, shape, &[0.0; 3], &mut [0.0; 3]);
            assert!(r.is_err(), "{name}");
        });
        return;
    }
    let x = inp.values(big);
    let mut want = vec![0.0; small];
    let mut mag = want.clone();
    global_avg_pool2d_forward_reference(shape, &f64s(&x), &mut want).unwrap();
    global_avg_pool2d_forward_reference(shape, &abs64(&x), &mut mag).unwrap();
    let dy = inp.values(small);
    let mut want_dx = vec![0.0; big];
    global_avg_pool2d_backward_reference(shape, &f64s(&dy), &mut want_dx).unwrap();
    let mag_dx: Vec<f64> = want_dx.iter().map(|v| v.abs()).collect();
    for_each_path(|backend, name| {
        let mut y = vec![f32::NAN; small];
        global_avg_pool2d_forward(backend, shape, &x, &mut y).unwrap();
        assert_close(
            &format!("{name} global y"),
            &y,
            &want,
            &mag,
            h.saturating_mul(w).saturating_add(1),
        );
        let mut dx = vec![f32::NAN; big];
        global_avg_pool2d_backward(backend, shape, &dy, &mut dx).unwrap();
        assert_close(&format!("{name} global dx"), &dx, &want_dx, &mag_dx, 1);
        if small > 0 {
            let r = global_avg_pool2d_forward(backend, shape, &x, &mut y[..small - 1]);
            assert!(matches!(
                r,
                Err(KernelError::BufferTooShort { arg: "y", .. })
            ));
        }
    });
}

/// Equal values (NaN equals NaN; `0.0` equals `-0.0`: a tie of signed zeros may keep either).
fn same_value(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}
