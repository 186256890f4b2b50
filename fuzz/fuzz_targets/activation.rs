//! Activations and softmax: every activation (valid and invalid parameters) forward, backward
//! and their in-place forms on every path against the f64 scalar reference with the bounds of
//! `kernels/tests/activation.rs`; in-place equals out-of-place bitwise; softmax / log-softmax
//! forward and backward against the f64 reference; wrong lengths and overflowing shapes fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;

/// The bounds of `kernels/tests/activation.rs`, the same file.
#[path = "../../kernels/tests/act_common/bounds.rs"]
mod bounds;
use bounds::{bwd_bound, fwd_bound};
use nnkern_kernels::activation::*;
use nnkern_kernels::{Backend, KernelError};

const PARAMS: [f32; 8] = [0.01, 0.2, 1.0, 1.5, 0.0, -0.5, f32::NAN, f32::INFINITY];

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    if inp.bool() {
        activations(&mut inp);
    } else {
        softmaxes(&mut inp);
    }
});

fn activations(inp: &mut Input) {
    let a = inp.pick(&PARAMS);
    let act = match inp.byte() % 9 {
        0 => Activation::Relu,
        1 => Activation::LeakyRelu(a),
        2 => Activation::Elu(a),
        3 => Activation::Sigmoid,
        4 => Activation::Tanh,
        5 => Activation::Gelu,
        6 => Activation::GeluTanh,
        7 => Activation::Silu,
        _ => Activation::Softplus,
    };
    let n = inp.dim(70).min(CAP);
    let x = inp.values(n);
    let dy = inp.values(n);
    let invalid = act.validate().is_err();
    let short = inp.perturb(2);
    for_each_path(|backend, name| {
        let (mut y, mut dx) = (vec![0.0f32; n], vec![0.0f32; n]);
        if invalid {
            let e = activation_forward(backend, act, &x, &mut y);
            assert!(
                matches!(e, Err(KernelError::InvalidParam { .. })),
                "{name} {act:?}"
            );
            let e = activation_backward_inplace(backend, act, &x, &y, &mut dx);
            assert!(
                matches!(e, Err(KernelError::InvalidParam { .. })),
                "{name} {act:?}"
            );
            return;
        }
        if let Some(which) = short {
            let mut bad = vec![0.0f32; off_by_one(n)];
            let r = if which == 0 {
                activation_forward(backend, act, &x, &mut bad)
            } else {
                let (xs, ys) = if act.backward_uses_output() {
                    (&x[..], &bad[..])
                } else {
                    (&bad[..], &x[..])
                };
                activation_backward(backend, act, xs, ys, &dy, &mut dx)
            };
            assert!(
                matches!(r, Err(KernelError::BufferLength { .. })),
                "{name} {act:?} {r:?}"
            );
            return;
        }
        activation_forward(backend, act, &x, &mut y).unwrap();
        activation_backward(backend, act, &x, &y, &dy, &mut dx).unwrap();
        let mut xy = x.clone();
        activation_forward_inplace(backend, act, &mut xy).unwrap();
        let mut g = dy.clone();
        activation_backward_inplace(backend, act, &x, &y, &mut g).unwrap();
        assert!(same(&xy, &y), "{name} {act:?}: in-place forward differs");
        assert!(same(&g, &dx), "{name} {act:?}: in-place backward differs");
        for i in 0..n {
            let xi = x[i] as f64;
            let want = activation_forward_scalar(act, xi);
            let slack = if backend == Backend::Reference {
                8.0 * EPS * (1.0 + xi.abs().min(1e3))
            } else {
                0.0
            };
            assert!(
                close(y[i], want, fwd_bound(act, xi, want) + slack),
                "{name} {act:?} forward x={xi:e}: got {:e} want {want:e}",
                y[i]
            );
            let gi = dy[i] as f64;
            if (!xi.is_finite() && act.backward_uses_output()) || !gi.is_finite() {
                // The derivative at a saturated output is its limit; an infinite dy times a
                // derivative that underflows to 0 in f32 is NaN: no bound to check.
                continue;
            }
            let want_dx = activation_backward_scalar(act, xi, want, gi);
            assert!(
                close(
                    dx[i],
                    want_dx,
                    bwd_bound(act, xi, want, gi, want_dx) + slack * gi.abs()
                ),
                "{name} {act:?} backward x={xi:e} dy={gi:e}: got {:e} want {want_dx:e}",
                dx[i]
            );
        }
    });
}

fn softmaxes(inp: &mut Input) {
    let (rows, cols) = (inp.dim(5), inp.dim(40));
    let Some(n) = rows.checked_mul(cols) else {
        for_each_path(|backend, name| {
            let r = softmax_forward(backend, rows, cols, &[], &mut []);
            assert!(matches!(r, Err(KernelError::Overflow { .. })), "{name}");
            let r = log_softmax_backward(backend, rows, cols, &[], &[], &mut []);
            assert!(matches!(r, Err(KernelError::Overflow { .. })), "{name}");
        });
        return;
    };
    let short = inp.perturb(3).is_some() || n > CAP;
    let n_alloc = if n > CAP { 5 } else { n };
    let x = inp.values(if short { off_by_one(n_alloc) } else { n_alloc });
    let dy = inp.values(n_alloc);
    if short {
        for_each_path(|backend, name| {
            let mut y = vec![0.0; n_alloc];
            let r = softmax_forward(backend, rows, cols, &x, &mut y);
            assert!(
                matches!(r, Err(KernelError::BufferLength { .. })),
                "{name} {r:?}"
            );
            let r = softmax_backward(backend, rows, cols, &x, &dy, &mut y);
            assert!(
                matches!(r, Err(KernelError::BufferLength { .. })),
                "{name} {r:?}"
            );
        });
        return;
    }
    let x64 = f64s(&x);
    let (mut y64, mut l64) = (vec![0.0; n], vec![0.0; n]);
    softmax_forward_reference(rows, cols, &x64, &mut y64).unwrap();
    log_softmax_forward_reference(rows, cols, &x64, &mut l64).unwrap();
    let c = cols as f64;
    for_each_path(|backend, name| {
        let (mut y, mut l) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        softmax_forward(backend, rows, cols, &x, &mut y).unwrap();
        log_softmax_forward(backend, rows, cols, &x, &mut l).unwrap();
        let (mut dxs, mut dxl) = (vec![f32::NAN; n], vec![f32::NAN; n]);
        softmax_backward(backend, rows, cols, &y, &dy, &mut dxs).unwrap();
        log_softmax_backward(backend, rows, cols, &l, &dy, &mut dxl).unwrap();
        // (n == 0: nothing to compare, however many empty rows.)
        for r in 0..if n == 0 { 0 } else { rows } {
            let s = r * cols..(r + 1) * cols;
            let m = x64[s.clone()]
                .iter()
                .cloned()
                .fold(f64::NEG_INFINITY, f64::max);
            for i in s.clone() {
                let want = y64[i];
                assert!(
                    close(y[i], want, EPS * (8.0 + c) * want + 4.0 * DENORM),
                    "{name} softmax row {r}: {:e} vs {want:e}",
                    y[i]
                );
                let lb = EPS * (2.0 * (x64[i] - m).abs() + 8.0 + c);
                assert!(
                    close(l[i], l64[i], lb),
                    "{name} log_softmax {:e} vs {:e}",
                    l[i],
                    l64[i]
                );
            }
            // Backward of the f32 outputs against the f64 formula on the same outputs.
            let (y32, l32, g) = (
                f64s(&y[s.clone()]),
                f64s(&l[s.clone()]),
                f64s(&dy[s.clone()]),
            );
            if y32.iter().chain(&l32).any(|v| !v.is_finite()) {
                continue;
            }
            let (mut ws, mut wl) = (vec![0.0; cols], vec![0.0; cols]);
            softmax_backward_reference(1, cols, &y32, &g, &mut ws).unwrap();
            log_softmax_backward_reference(1, cols, &l32, &g, &mut wl).unwrap();
            let gsum: f64 = g.iter().map(|v| v.abs()).sum();
            if !gsum.is_finite() {
                continue; // an infinite dy: inf - inf in either order, no bound to check
            }
            for j in 0..cols {
                let i = r * cols + j;
                let bs = EPS * (8.0 + c) * (y32[j] * (1.0 + gsum) + ws[j].abs()) + 4.0 * DENORM;
                assert!(
                    close(dxs[i], ws[j], bs),
                    "{name} softmax bwd {:e} vs {:e}",
                    dxs[i],
                    ws[j]
                );
                let bl = EPS * (8.0 + c) * (gsum + wl[j].abs()) + 4.0 * DENORM;
                assert!(
                    close(dxl[i], wl[j], bl),
                    "{name} log_softmax bwd {:e} vs {:e}",
                    dxl[i],
                    wl[j]
                );
            }
        }
    });
}
