//! Shared test helpers: finite-difference gradient checks of layers and models.
#![allow(dead_code)]

use nnkern::rng::Rng;
use nnkern::{Layer, Tensor};

/// Random tensor with entries in `[-1, 1)`, bounded away from 0 by `gap` (so kinks of ReLU or
/// max-pool ties are not straddled by the finite-difference step).
pub fn rand_tensor(shape: &[usize], seed: u64, gap: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let mut t = Tensor::zeros(shape).unwrap();
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

/// Sets entry `i` of the input (`which == None`) or of parameter `which` to `v`, returning
/// the old value.
fn set_entry(layer: &mut dyn Layer, x: &mut Tensor, which: Option<usize>, i: usize, v: f32) -> f32 {
    let Some(k) = which else {
        return std::mem::replace(&mut x.data_mut()[i], v);
    };
    let (mut idx, mut old) = (0, 0.0);
    layer.visit_params_mut(&mut |p| {
        if idx == k {
            old = std::mem::replace(&mut p.value.data_mut()[i], v);
        }
        idx += 1;
    });
    old
}

/// Central difference of `Σ w·layer(x)` in entry `i` with step `h`, and the rounding scale.
fn central(
    layer: &mut dyn Layer,
    x: &mut Tensor,
    w: &Tensor,
    which: Option<usize>,
    i: usize,
    h: f32,
) -> (f64, f64) {
    let orig = set_entry(layer, x, which, i, 0.0);
    let eval = |layer: &mut dyn Layer, x: &mut Tensor, v: f32| {
        set_entry(layer, x, which, i, v);
        weighted(layer.forward(x).unwrap(), w)
    };
    let (lp, sp) = eval(layer, x, orig + h);
    let (lm, sm) = eval(layer, x, orig - h);
    set_entry(layer, x, which, i, orig);
    // The step actually taken, after f32 rounding of `orig ± h`.
    let step = (orig + h) as f64 - (orig - h) as f64;
    ((lp - lm) / step, sp.max(sm))
}

/// Checks `layer`'s input and parameter gradients against central differences of
/// `L = Σ w·layer(x)` with fixed random `w`, at `samples` random entries of each tensor.
///
/// Non-smooth points (ReLU kinks, max-pool ties) make a difference quotient meaningless when
/// the step straddles them. Each entry is therefore also differenced with `h/2`; if the two
/// quotients disagree beyond the rounding bound the entry sits near a kink and is replaced by
/// another one. At most a third of the entries may be skipped, so a wrong gradient (where
/// both quotients agree with each other but not with it) cannot hide.
pub fn check_layer(what: &str, layer: &mut dyn Layer, x: &Tensor, h: f32, samples: usize) {
    let y = layer.forward(x).unwrap().clone();
    let w = rand_tensor(y.shape(), 99, 0.0);
    layer.backward(x, &w).unwrap();
    let dx = layer.input_grad().clone();
    assert_eq!(dx.shape(), x.shape(), "{what}: input gradient shape");
    let mut grads = vec![dx];
    layer.visit_params(&mut |p| grads.push(p.grad.clone()));

    let mut rng = Rng::new(7);
    let mut xp = x.clone();
    for (k, g) in grads.iter().enumerate() {
        let which = k.checked_sub(1);
        let name = which.map_or("dx".to_string(), |p| format!("param{p}"));
        let (mut checked, mut skipped) = (0, 0);
        while checked < samples.min(g.len()) {
            let i = rng.below(g.len());
            let (fd, scale) = central(layer, &mut xp, &w, which, i, h);
            let (fd2, scale2) = central(layer, &mut xp, &w, which, i, h / 2.0);
            let an = g.data()[i] as f64;
            let round = 8.0 * f32::EPSILON as f64 * scale.max(scale2) / (h as f64 / 2.0);
            if (fd - fd2).abs() > 0.02 * fd.abs().max(fd2.abs()) + round {
                skipped += 1;
                assert!(
                    skipped <= samples.div_ceil(3),
                    "{what} {name}: too many non-smooth points ({skipped})"
                );
                continue;
            }
            assert_close(
                &format!("{what} {name}[{i}]"),
                an,
                fd,
                scale,
                h as f64,
                2e-2,
            );
            checked += 1;
        }
    }
}
