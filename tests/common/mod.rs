//! Shared test helpers: finite-difference gradient checks of layers and models.
#![allow(dead_code)]

use nnkern::rng::Rng;
use nnkern::{Layer, Tensor};

/// Random tensor with entries in `[-1, 1)`, bounded away from 0 by `gap` (so kinks of ReLU or
/// max-pool ties are not straddled by the finite-difference step).
pub fn rand_tensor(shape: &[usize], seed: u64, gap: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let mut t = Tensor::zeros(shape);
    for v in t.data_mut() {
        let m = gap + (1.0 - gap) * rng.next_f64() as f32;
        *v = if rng.next_u64() & 1 == 0 { m } else { -m };
    }
    t
}

/// `Σ w·y` in f64 and `Σ |w·y|` (the rounding scale of the sum).
fn weighted(y: &Tensor, w: &Tensor) -> (f64, f64) {
    y.data()
        .iter()
        .zip(w.data())
        .fold((0.0, 0.0), |(s, a), (&y, &w)| {
            (s + y as f64 * w as f64, a + (y as f64 * w as f64).abs())
        })
}

/// Compares an analytic derivative with a central difference of an f32 computation.
/// Bound: truncation `rel·|an|` (O(h²) terms of smooth functions) plus the rounding of the two
/// f32 loss evaluations divided by the step: `8·eps32·scale / h`.
pub fn assert_close(what: &str, an: f64, fd: f64, scale: f64, h: f64, rel: f64) {
    let bound = rel * an.abs().max(fd.abs()) + 8.0 * f32::EPSILON as f64 * scale / h + 1e-9;
    assert!(
        (an - fd).abs() <= bound,
        "{what}: analytic {an} vs finite difference {fd} (bound {bound})"
    );
}

/// Checks `layer`'s input and parameter gradients against central differences of
/// `L = Σ w·layer(x)` with fixed random `w`, at up to `samples` entries of each tensor.
pub fn check_layer(what: &str, layer: &mut dyn Layer, x: &Tensor, h: f32, samples: usize) {
    let y = layer.forward(x).unwrap().clone();
    let w = rand_tensor(y.shape(), 99, 0.0);
    layer.backward(x, &w).unwrap();
    let dx = layer.input_grad().clone();
    assert_eq!(dx.shape(), x.shape(), "{what}: input gradient shape");
    let mut grads = Vec::new();
    layer.visit_params(&mut |p| grads.push(p.grad.clone()));

    let mut rng = Rng::new(7);
    let loss_at = |layer: &mut dyn Layer, x: &Tensor| weighted(layer.forward(x).unwrap(), &w);
    // Input entries.
    let mut xp = x.clone();
    for _ in 0..samples.min(x.len()) {
        let i = rng.below(x.len());
        let orig = xp.data()[i];
        xp.data_mut()[i] = orig + h;
        let (lp, sp) = loss_at(layer, &xp);
        xp.data_mut()[i] = orig - h;
        let (lm, sm) = loss_at(layer, &xp);
        xp.data_mut()[i] = orig;
        let fd = (lp - lm) / (2.0 * h as f64);
        assert_close(
            &format!("{what} dx[{i}]"),
            dx.data()[i] as f64,
            fd,
            sp.max(sm),
            h as f64,
            2e-2,
        );
    }
    // Parameter entries.
    for (k, g) in grads.iter().enumerate() {
        for _ in 0..samples.min(g.len()) {
            let i = rng.below(g.len());
            let nudge = |layer: &mut dyn Layer, d: f32| {
                let mut idx = 0;
                layer.visit_params_mut(&mut |p| {
                    if idx == k {
                        p.value.data_mut()[i] += d;
                    }
                    idx += 1;
                });
            };
            nudge(layer, h);
            let (lp, sp) = loss_at(layer, x);
            nudge(layer, -2.0 * h);
            let (lm, sm) = loss_at(layer, x);
            nudge(layer, h);
            let fd = (lp - lm) / (2.0 * h as f64);
            assert_close(
                &format!("{what} param{k}[{i}]"),
                g.data()[i] as f64,
                fd,
                sp.max(sm),
                h as f64,
                2e-2,
            );
        }
    }
}
