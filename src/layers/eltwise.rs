//! The element-wise and softmax computations behind the activation layers.
//!
//! Interim scalar versions, in one place, until the SIMD activation kernels of
//! `nnkern_kernels::activation` land; then each function becomes one kernel call.

use super::activation::ActKind;
use crate::error::Result;

/// `y = f(x)`.
pub(crate) fn forward(kind: ActKind, x: &[f32], y: &mut [f32]) -> Result<()> {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = match kind {
            ActKind::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            ActKind::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s * x
                }
            }
            ActKind::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            ActKind::Tanh => x.tanh(),
            ActKind::Gelu => {
                (0.5 * x as f64 * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2))) as f32
            }
        };
    }
    Ok(())
}

/// `dx = f'(x)·dy` (using the saved output `y` where that is cheaper).
pub(crate) fn backward(
    kind: ActKind,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    for i in 0..dx.len() {
        let (x, y, g) = (x[i], y[i], dy[i]);
        dx[i] = match kind {
            ActKind::Relu => {
                if x > 0.0 {
                    g
                } else {
                    0.0
                }
            }
            ActKind::LeakyRelu(s) => {
                if x > 0.0 {
                    g
                } else {
                    s * g
                }
            }
            ActKind::Sigmoid => g * y * (1.0 - y),
            ActKind::Tanh => g * (1.0 - y * y),
            ActKind::Gelu => {
                let x = x as f64;
                let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (g as f64 * (cdf + x * pdf)) as f32
            }
        };
    }
    Ok(())
}

/// Row-wise softmax over rows of `c`.
pub(crate) fn softmax_forward(c: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let m = xr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0.0f32;
        for (y, &x) in yr.iter_mut().zip(xr) {
            *y = (x - m).exp();
            s += *y;
        }
        let inv = 1.0 / s;
        yr.iter_mut().for_each(|y| *y *= inv);
    }
    Ok(())
}

/// `dx = y ⊙ (dy − ⟨dy, y⟩)` per row.
pub(crate) fn softmax_backward(c: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    for ((yr, gr), dr) in y
        .chunks_exact(c)
        .zip(dy.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
    {
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for ((d, &y), &g) in dr.iter_mut().zip(yr).zip(gr) {
            *d = y * (g - dot);
        }
    }
    Ok(())
}

/// erf by its continued Taylor/asymptotic forms (|error| < 1e-15 is not needed here; this
/// uses the Numerical Recipes erfc Chebyshev fit, relative error < 1.2e-7).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}
