//! The gemm family of the suite: `C[m, n] = op(A) op(B)` with `ta`/`tb` transposes.

use super::{field, flag, random_vec, spot_check, time_median, CaseResult, Config, Work};
use crate::rng::Rng;
use nnkern_kernels::{gemm, Gemm};
use serde_json::Value;

/// Runs one gemm case: pass `forward`, gflops = 2 m n k.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    let (m, n, k) = (field(case, "m")?, field(case, "n")?, field(case, "k")?);
    let (ta, tb) = (flag(case, "ta"), flag(case, "tb"));
    let g = Gemm::<f32>::new(m, n, k).trans_a(ta).trans_b(tb);
    let a = random_vec(m * k, 1);
    let b = random_vec(k * n, 2);
    let mut c = vec![0.0f32; m * n];
    gemm(cfg.backend, &g, &a, &b, &mut c).map_err(|e| e.to_string())?;

    // Spot check sampled entries against an f64 dot product.
    let mut rng = Rng::new(3);
    let samples: Vec<(f64, f64, f64)> = (0..64.min(m * n))
        .map(|_| {
            let (i, j) = (rng.below(m), rng.below(n));
            let (mut want, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] } as f64;
                let bv = if tb { b[j * k + p] } else { b[p * n + j] } as f64;
                want += av * bv;
                mag += (av * bv).abs();
            }
            let bound = 2.0 * k as f64 * f32::EPSILON as f64 * mag + 1e-30;
            (c[i * n + j] as f64, want, bound)
        })
        .collect();
    spot_check("gemm", &samples)?;

    let t = time_median(cfg.target_s, || {
        gemm(cfg.backend, &g, &a, &b, &mut c).expect("validated above");
    });
    let work = Work {
        flops: Some(2.0 * m as f64 * n as f64 * k as f64),
        bytes: None,
    };
    Ok(vec![cfg.record(
        "gemm",
        &super::case_name(case),
        "forward",
        t,
        work,
    )])
}
