//! Helpers shared by the activation, softmax and math tests.
#![allow(dead_code)] // each test file uses a subset

mod bounds;
#[allow(unused_imports)] // used by activation.rs only
pub use bounds::{bwd_bound, fwd_bound};

/// `f32::EPSILON` in f64.
pub const EPS: f64 = f32::EPSILON as f64;
/// The smallest positive subnormal f32.
pub const DENORM: f64 = 1.401_298_464_324_817e-45;

/// `got` matches `want` within `bound` (NaN matches NaN; infinities must match exactly).
pub fn close(got: f32, want: f64, bound: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if (want as f32).is_infinite() {
        return got == want as f32;
    }
    (got as f64 - want).abs() <= bound
}

/// The bit patterns of `v`.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` in rayon pools of 1, 2 and 3 threads and checks the outputs are bitwise equal.
pub fn same_bits_across_pools(f: impl Fn() -> Vec<f32> + Sync) {
    let runs: Vec<Vec<u32>> = [1, 2, 3]
        .iter()
        .map(|&t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| bits(&f()))
        })
        .collect();
    assert!(runs[0] == runs[1] && runs[0] == runs[2]);
}
