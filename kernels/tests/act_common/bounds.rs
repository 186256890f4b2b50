//! The error bounds of the activations against their f64 references, shared by
//! `kernels/tests/activation.rs` (through `act_common`) and the `activation` fuzz target
//! (which includes this file by path). The including module's parent provides `EPS` and
//! `DENORM`.

use super::{DENORM, EPS};
use nnkern_kernels::activation::Activation;

/// Forward error bound for `act` at `x` with reference value `want` (see the module docs of
/// `activation`): a few ulp of the result, plus the erf absolute error scaled by `x/2` for
/// GELU and the sigmoid argument's rounding, amplified by its size, for tanh-GELU.
pub fn fwd_bound(act: Activation, x: f64, want: f64) -> f64 {
    let z = 1.6 * (x + 0.044715 * x * x * x);
    let (amp, abs) = match act {
        // The documented bound, 2e-7 |x|: the scalar erf's absolute error near -1 (3.6e-7,
        // at x = -4.87) times x / 2 is 1.8e-7 |x| (a proptest find; 3.5e-7 * 0.5 was tighter
        // than the documentation).
        Activation::Gelu => (1.0, 2.0e-7 * x.abs()),
        Activation::GeluTanh => (1.0 + z.abs().min(200.0), 0.0),
        _ => (1.0, 0.0),
    };
    8.0 * EPS * amp * want.abs() + abs + 4.0 * DENORM * x.abs().clamp(1.0, 1e3)
}

/// Backward error bound: the forward-style error of the derivative at `x`, plus what an
/// output-based backward inherits from its saved `y`'s own error.
pub fn bwd_bound(act: Activation, x: f64, y: f64, dy: f64, want: f64) -> f64 {
    let inherit = if act.backward_uses_output() {
        2.0 * dy.abs() * fwd_bound(act, x, y)
    } else {
        0.0
    };
    let x = x.clamp(-1e3, 1e3); // the bound's growth stops where the derivative saturates
    let z = 1.6 * (x + 0.044715 * x * x * x);
    let scale = match act {
        Activation::Gelu => 16.0 * EPS * dy.abs() * (1.0 + x.abs()) + 3.5e-7 * dy.abs(),
        Activation::GeluTanh => {
            16.0 * EPS * dy.abs() * (1.0 + z.abs().min(300.0)) * (1.0 + x.abs())
        }
        Activation::Silu | Activation::Softplus => 16.0 * EPS * dy.abs() * (1.0 + x.abs()),
        _ => 0.0,
    };
    16.0 * EPS * want.abs() + inherit + scale + 4.0 * DENORM * dy.abs().max(1.0)
}
