//! The softmax_xent family of the suite: fused softmax-cross-entropy over logits `[n,
//! classes]` with random labels, mean reduction. Passes `forward` (loss only, 4 N C bytes)
//! and `forward_backward` (loss and dlogits, 8 N C bytes).

use super::{field, random_vec, spot_check, time_median, CaseResult, Config, Work};
use crate::rng::Rng;
use nnkern_kernels::{softmax_cross_entropy, softmax_cross_entropy_reference, SoftmaxXent};
use serde_json::Value;

/// Runs one softmax_xent case.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    let (n, c) = (field(case, "n")?, field(case, "classes")?);
    let name = super::case_name(case);
    let nc = n.checked_mul(c).ok_or("n * classes overflows")?;
    let logits: Vec<f32> = random_vec(nc, 1).iter().map(|v| 8.0 * v).collect();
    let mut rng = Rng::new(2);
    let labels: Vec<i64> = (0..n).map(|_| rng.below(c.max(1)) as i64).collect();
    let mut grad = vec![0.0f32; nc];
    let p = SoftmaxXent::new(n, c);
    let run = |g: Option<&mut [f32]>| {
        softmax_cross_entropy(cfg.backend, &p, &logits, &labels, g).map_err(|e| e.to_string())
    };
    let loss = run(Some(&mut grad))? as f64;

    // Spot check the loss and sampled gradient entries against the f64 reference.
    let l64: Vec<f64> = logits.iter().map(|&v| v as f64).collect();
    let mut g64 = vec![0.0f64; nc];
    let want = softmax_cross_entropy_reference(&p, &l64, &labels, Some(&mut g64))
        .map_err(|e| e.to_string())?;
    let eps = f32::EPSILON as f64;
    let mut samples = vec![(loss, want, 16.0 * eps * (want.abs() + 8.0))];
    for _ in 0..64.min(nc) {
        let i = rng.below(nc);
        samples.push((grad[i] as f64, g64[i], 16.0 * eps / n.max(1) as f64));
    }
    spot_check("softmax_xent", &samples)?;

    let tf = time_median(cfg.target_s, || {
        run(None).expect("validated above");
    });
    let tb = time_median(cfg.target_s, || {
        run(Some(&mut grad)).expect("validated above");
    });
    let bytes = |k: f64| Work {
        flops: None,
        bytes: Some(k * nc as f64),
    };
    Ok(vec![
        cfg.record("softmax_xent", &name, "forward", tf, bytes(4.0)),
        cfg.record("softmax_xent", &name, "forward_backward", tb, bytes(8.0)),
    ])
}
