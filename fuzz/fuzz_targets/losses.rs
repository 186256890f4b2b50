//! Element-wise losses (MSE, BCE with logits, hinge): random lengths (some beyond one parallel
//! block), reductions, targets (valid and invalid hinge labels), with and without gradient;
//! every path against the f64 reference with the per-element bounds of `tests/losses.rs`;
//! mismatched lengths and short gradients fail alike on every path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::loss::*;
use nnkern_kernels::{Backend, KernelError, Reduction};

type Native =
    fn(Backend, &[f32], &[f32], Reduction, Option<&mut [f32]>) -> Result<f32, KernelError>;
type Reference = fn(&[f64], &[f64], Reduction, Option<&mut [f64]>) -> Result<f64, KernelError>;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let kind = inp.byte() % 3;
    let (native, reference): (Native, Reference) = match kind {
        0 => (mse_loss, mse_loss_reference::<f64>),
        1 => (bce_with_logits_loss, bce_with_logits_loss_reference::<f64>),
        _ => (hinge_loss, hinge_loss_reference::<f64>),
    };
    let red = if inp.bool() {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    let n = match inp.byte() {
        255 => 70_000, // several blocks, the parallel path
        b => b as usize % 100,
    };
    let x = inp.values(n);
    let mut y = inp.values(n);
    if kind == 1 {
        y.iter_mut().for_each(|v| *v = (v.abs() * 16.0).fract());
    }
    if kind == 2 {
        let bad = inp.byte() == 7;
        y.iter_mut().enumerate().for_each(|(i, v)| {
            *v = if bad && i == n / 2 {
                0.5
            } else {
                [-1.0, 0.0, 1.0][v.to_bits() as usize % 3]
            }
        });
    }
    let (mut yl, mut gl) = (n, n + (inp.byte() % 3) as usize);
    match inp.perturb(2) {
        Some(0) => yl = off_by_one(n),
        Some(_) => gl = n.saturating_sub(1),
        None => {}
    }
    let y = if yl == n { y } else { inp.values(yl) };
    let with_grad = inp.bool();
    let mut g64 = vec![0.0f64; gl];
    let r = reference(&f64s(&x), &f64s(&y), red, with_grad.then_some(&mut g64[..]));
    let Ok(want) = r else {
        let e = r.unwrap_err();
        for_each_path(|backend, name| {
            let mut g = vec![0.0f32; gl];
            let got = native(backend, &x, &y, red, with_grad.then_some(&mut g[..]));
            assert_eq!(got, Err(e.clone()), "{name} kind {kind}");
        });
        return;
    };
    let scale = match red {
        Reduction::Mean => 1.0 / n as f64,
        Reduction::Sum => 1.0,
    };
    let mut loss_bound = 1e-30 + EPS * want.abs();
    let mut gb = vec![0.0; n];
    for i in 0..n {
        let (lb, b) = term_bounds(kind, x[i] as f64, y[i] as f64);
        loss_bound += lb * scale;
        let gr = g64.get(i).copied().unwrap_or(0.0); // no gradient asked for: not checked
        gb[i] = b * scale + EPS * gr.abs() + 1e-30;
    }
    for_each_path(|backend, name| {
        let mut g = vec![f32::NAN; gl];
        let l = native(backend, &x, &y, red, with_grad.then_some(&mut g[..])).unwrap();
        // The reference backend sums in f32 in order: its loss is looser.
        let lb = if backend == Backend::Reference {
            loss_bound + 2.0 * n as f64 * EPS * want.abs()
        } else {
            loss_bound
        };
        assert!(
            close(l, want, lb),
            "{name} kind {kind}: loss {l:e} vs {want:e}"
        );
        if with_grad {
            for i in 0..n {
                assert!(
                    close(g[i], g64[i], gb[i]),
                    "{name} kind {kind}: grad[{i}] {:e} vs {:e}",
                    g[i],
                    g64[i]
                );
            }
            // Past the first `n`, the gradient buffer is untouched.
            assert!(g[n..].iter().all(|v| v.is_nan()), "{name}: wrote past n");
        }
    });
});

/// Per-element bounds (loss term, gradient) of `tests/losses.rs`.
fn term_bounds(kind: u8, x: f64, y: f64) -> (f64, f64) {
    match kind {
        0 => {
            let d = x - y;
            (4.0 * EPS * d * d, 3.0 * EPS * (2.0 * d).abs())
        }
        1 => {
            // max(x, 0) - x y per sign, with 0 * inf = 0, as the kernel computes it: an
            // infinite logit with its matching label has a finite (zero) term, not NaN.
            let mul0 = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a * b };
            let linear = if x >= 0.0 {
                mul0(x, 1.0 - y)
            } else {
                mul0(-x, y)
            };
            let term = linear + (-x.abs()).exp().ln_1p();
            (8.0 * EPS * term.abs() + 1e-30, 4.0 * EPS * (1.0 + y.abs()))
        }
        _ => (2.0 * EPS * (1.0 + x.abs()), 0.0),
    }
}
