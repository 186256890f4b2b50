//! Softmax and log-softmax along the last axis: proptest against the f64 references on every
//! ISA (logits up to 1e4 and -inf entries), finite differences of both backwards,
//! thread-count determinism and bad input.

mod act_common;

use act_common::{adversarial_rows, close, same_bits_across_pools, DENORM, EPS};
use nnkern_kernels::activation::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;

#[test]
fn results_identical_across_thread_counts() {
    let n = (1 << 18) + 12_345; // above the parallel threshold, with a ragged tail
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 - 5.0)
        .collect();
    let (rows, cols) = (n / 999, 999);
    let xs = &x[..rows * cols];
    same_bits_across_pools(|| {
        let (mut y, mut l, mut dx) = (
            vec![0.0; rows * cols],
            vec![0.0; rows * cols],
            vec![0.0; rows * cols],
        );
        softmax_forward(Backend::Native, rows, cols, xs, &mut y).unwrap();
        log_softmax_forward(Backend::Native, rows, cols, xs, &mut l).unwrap();
        softmax_backward(Backend::Native, rows, cols, &y, xs, &mut dx).unwrap();
        [y, l, dx].concat()
    });
}

#[test]
fn bad_input_gives_errors() {
    // Softmax: shape products, overflow.
    let e = softmax_forward(Backend::Native, 2, 3, &[0.0; 6], &mut [0.0; 5]).unwrap_err();
    assert_eq!(
        e,
        KernelError::BufferLength {
            arg: "y",
            expected: 6,
            got: 5
        }
    );
    let e = log_softmax_forward(Backend::Native, usize::MAX, 2, &[], &mut []).unwrap_err();
    assert_eq!(e, KernelError::Overflow { arg: "rows * cols" });
    let e = softmax_backward(Backend::Native, 2, 2, &[0.0; 4], &[0.0; 3], &mut [0.0; 4]);
    assert_eq!(
        e.unwrap_err(),
        KernelError::BufferLength {
            arg: "dy",
            expected: 4,
            got: 3
        }
    );
    let e = log_softmax_backward(Backend::Native, 1, 2, &[0.0; 2], &[0.0; 2], &mut [0.0; 1]);
    assert!(e.is_err());
    assert!(softmax_forward(Backend::Native, 0, 5, &[], &mut []).is_ok());
}

fn softmax_row_ref(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut y, mut l) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    softmax_forward_reference(1, x.len(), x, &mut y).unwrap();
    log_softmax_forward_reference(1, x.len(), x, &mut l).unwrap();
    (y, l)
}

/// Log-softmax's one-pass maximum and sum on rows built against it, on every ISA.
#[test]
fn log_softmax_on_adversarial_rows() {
    for x in adversarial_rows() {
        let c = x.len();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (_, want) = softmax_row_ref(&x64);
        let m = x64.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for isa in Isa::ALL {
            let mut l = vec![0.0f32; c];
            with_isa(isa, || {
                log_softmax_forward(Backend::Native, 1, c, &x, &mut l).unwrap()
            });
            for j in 0..c {
                if x[j] == f32::NEG_INFINITY {
                    assert_eq!(l[j], f32::NEG_INFINITY);
                    continue;
                }
                let lb = EPS * (2.0 * (x64[j] - m).abs() + 8.0 + c as f64);
                assert!(
                    close(l[j], want[j], lb),
                    "{isa:?} c {c} [{j}]: {} vs {}",
                    l[j],
                    want[j]
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn softmax_matches_f64_reference(
        rows in 1usize..5,
        cols in 1usize..70,
        big in prop::bool::ANY,
        seed in 0u64..10_000,
    ) {
        let n = rows * cols;
        let mag = if big { 1e4 } else { 10.0 };
        let mut x: Vec<f32> = (0..n).map(|i| (((i as u64 + 1) * 2_654_435_761 + seed) % 20_001) as f32 / 10_000.0 - 1.0).map(|v| v * mag).collect();
        if cols > 2 { x[1] = f32::NEG_INFINITY; }
        let dy: Vec<f32> = (0..n).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
        for isa in Isa::ALL {
            let (mut y, mut l, mut dxs, mut dxl) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            with_isa(isa, || {
                softmax_forward(Backend::Native, rows, cols, &x, &mut y).unwrap();
                log_softmax_forward(Backend::Native, rows, cols, &x, &mut l).unwrap();
                softmax_backward(Backend::Native, rows, cols, &y, &dy, &mut dxs).unwrap();
                log_softmax_backward(Backend::Native, rows, cols, &l, &dy, &mut dxl).unwrap();
            });
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                let x64: Vec<f64> = x[s.clone()].iter().map(|&v| v as f64).collect();
                let (y64, l64) = softmax_row_ref(&x64);
                let m = x64.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let c = cols as f64;
                // The row sum carries up to ~cols roundings; each term's exp a couple of ulp.
                for j in 0..cols {
                    let (i, want) = (r * cols + j, y64[j]);
                    prop_assert!(close(y[i], want, EPS * (8.0 + c) * want + 4.0 * DENORM), "softmax {isa:?} {:e} vs {want:e}", y[i]);
                    let lb = EPS * (2.0 * (x64[j] - m).abs() + 8.0 + c);
                    prop_assert!(close(l[i], l64[j], lb), "log_softmax {isa:?} {:e} vs {:e}", l[i], l64[j]);
                }
                // Backward of the f32 outputs against the f64 formula on the same outputs.
                let y32: Vec<f64> = y[s.clone()].iter().map(|&v| v as f64).collect();
                let l32: Vec<f64> = l[s.clone()].iter().map(|&v| v as f64).collect();
                let g: Vec<f64> = dy[s.clone()].iter().map(|&v| v as f64).collect();
                let (mut ws, mut wl) = (vec![0.0; cols], vec![0.0; cols]);
                softmax_backward_reference(1, cols, &y32, &g, &mut ws).unwrap();
                log_softmax_backward_reference(1, cols, &l32, &g, &mut wl).unwrap();
                let gsum: f64 = g.iter().map(|v| v.abs()).sum();
                for j in 0..cols {
                    let i = r * cols + j;
                    prop_assert!(close(dxs[i], ws[j], EPS * (8.0 + c) * (y32[j] * (1.0 + gsum) + ws[j].abs())));
                    prop_assert!(close(dxl[i], wl[j], EPS * (8.0 + c) * (gsum + wl[j].abs())));
                }
            }
        }
    }
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let x = [0.3, -1.2, 2.2, 0.7, -0.4];
    let w = [0.9, -0.3, 0.5, 1.7, -1.1]; // L = sum_j w_j y_j, so dL/dy = w
    let n = x.len();
    type Fwd = fn(usize, usize, &[f64], &mut [f64]) -> Result<(), KernelError>;
    type Bwd = fn(usize, usize, &[f64], &[f64], &mut [f64]) -> Result<(), KernelError>;
    let pairs: [(Fwd, Bwd); 2] = [
        (softmax_forward_reference, softmax_backward_reference),
        (
            log_softmax_forward_reference,
            log_softmax_backward_reference,
        ),
    ];
    for (fwd, bwd) in pairs {
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; n];
            fwd(1, n, x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; n];
        fwd(1, n, &x, &mut y).unwrap();
        let mut dx = vec![0.0; n];
        bwd(1, n, &y, &w, &mut dx).unwrap();
        for j in 0..n {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[j] += 1e-6;
            b[j] -= 1e-6;
            let fd = (loss(&a) - loss(&b)) / 2e-6;
            assert!((dx[j] - fd).abs() < 1e-7, "{j}: {} vs {fd}", dx[j]);
        }
    }
}
