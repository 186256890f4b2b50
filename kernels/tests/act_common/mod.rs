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

/// Rows built to stress a one-pass softmax sum (a running bound raised chunk by chunk, whole
/// SIMD lanes of `-inf`, a padded last vector), at lengths around the vector and chunk sizes:
/// rising (the bound moves in every chunk), falling, every 8th entry `-inf`, the maximum last
/// after a row of huge negatives, and jumps larger than the bound's slack.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn adversarial_rows() -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for c in (1..=70).chain([127, 128, 129, 1000, 4099]) {
        rows.push((0..c).map(|j| j as f32 * 0.75).collect());
        rows.push((0..c).map(|j| j as f32 * -0.75).collect());
        rows.push(
            (0..c)
                .map(|j| {
                    if j % 8 == 3 {
                        f32::NEG_INFINITY
                    } else {
                        (j % 13) as f32
                    }
                })
                .collect(),
        );
        rows.push(
            (0..c)
                .map(|j| if j + 1 == c { 1e4 } else { -1e4 + j as f32 })
                .collect(),
        );
        rows.push(
            (0..c)
                .map(|j| ((j * 7919) % 101) as f32 * 3.0 - 150.0)
                .collect(),
        );
    }
    rows
}
