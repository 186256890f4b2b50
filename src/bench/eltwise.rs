//! The eltwise family of the suite: one activation (`op`: relu, sigmoid, tanh, gelu, or any
//! [`Activation::parse`] name) over `len` f32. Passes `forward` (`y = f(x)`, 8 B/element) and
//! `backward` (`dx = dy f'(saved)`, 12 B/element). `op: "copy"` measures a copy with the
//! forward counting, the bandwidth the bar compares against: threaded like the activations
//! (rayon tasks of `PAR_CHUNK` elements from `PAR_MIN_LEN` on, in the bench's pool), and a
//! single `copy_from_slice` in a one-thread pool.

use super::{field, random_vec, spot_check, text, time_median, CaseResult, Config, Work};
use crate::rng::Rng;
use nnkern_kernels::activation::{
    activation_backward_scalar, activation_forward_scalar, PAR_CHUNK, PAR_MIN_LEN,
};
use nnkern_kernels::{activation_backward, activation_forward, Activation};
use rayon::prelude::*;
use serde_json::Value;

/// Runs one eltwise case.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    let len = field(case, "len")?;
    let op = text(case, "op")?;
    let name = super::case_name(case);
    // Inputs in [-4, 4): every branch of every activation is taken.
    let x: Vec<f32> = random_vec(len, 1).iter().map(|v| 4.0 * v).collect();
    let dy = random_vec(len, 2);
    let mut y = vec![0.0f32; len];
    let mut dx = vec![0.0f32; len];
    let fwd_bytes = Work {
        flops: None,
        bytes: Some(8.0 * len as f64),
    };
    if op == "copy" {
        let t = time_median(cfg.target_s, || copy(&x, &mut y));
        return Ok(vec![cfg.record("eltwise", &name, "forward", t, fwd_bytes)]);
    }
    let act = Activation::parse(op).ok_or_else(|| format!("unknown activation `{op}`"))?;
    let fwd =
        |y: &mut [f32]| activation_forward(cfg.backend, act, &x, y).map_err(|e| e.to_string());
    fwd(&mut y)?;
    let bwd = |y: &[f32], dx: &mut [f32]| {
        activation_backward(cfg.backend, act, &x, y, &dy, dx).map_err(|e| e.to_string())
    };
    bwd(&y, &mut dx)?;

    // Spot check against the f64 reference (the backward from the f32 output it was given).
    let mut rng = Rng::new(3);
    let tol = |v: f64, x: f64| 8.0 * f32::EPSILON as f64 * v.abs() + 4e-7 * x.abs().max(1.0);
    let mut samples = Vec::new();
    for _ in 0..64.min(len) {
        let i = rng.below(len);
        let (xi, yi, gi) = (x[i] as f64, y[i] as f64, dy[i] as f64);
        let want_y = activation_forward_scalar(act, xi);
        let want_dx = activation_backward_scalar(act, xi, yi, gi);
        samples.push((yi, want_y, tol(want_y, xi)));
        samples.push((dx[i] as f64, want_dx, tol(want_dx, xi) * 4.0));
    }
    spot_check(&format!("eltwise {op}"), &samples)?;

    let tf = time_median(cfg.target_s, || fwd(&mut y).expect("validated above"));
    let tb = time_median(cfg.target_s, || bwd(&y, &mut dx).expect("validated above"));
    let bwd_bytes = Work {
        flops: None,
        bytes: Some(12.0 * len as f64),
    };
    Ok(vec![
        cfg.record("eltwise", &name, "forward", tf, fwd_bytes),
        cfg.record("eltwise", &name, "backward", tb, bwd_bytes),
    ])
}

/// `y = x` as the activation maps would move it: over the current rayon pool in the same
/// chunks, or with one `copy_from_slice` where they would stay on one thread (short slices,
/// or a one-thread pool, where the chunking would only cut the copy up).
fn copy(x: &[f32], y: &mut [f32]) {
    if x.len() >= PAR_MIN_LEN && rayon::current_num_threads() > 1 {
        x.par_chunks(PAR_CHUNK)
            .zip(y.par_chunks_mut(PAR_CHUNK))
            .for_each(|(x, y)| y.copy_from_slice(x));
    } else {
        y.copy_from_slice(x);
    }
}
