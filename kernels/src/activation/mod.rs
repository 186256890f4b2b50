//! Elementwise activations (forward and backward) and softmax / log-softmax along the last
//! axis, f32, memory-bound: one pass, SIMD (AVX2+FMA at run time, `wide`, scalar), rayon over
//! 64K-element chunks only for slices of at least 256K elements (smaller work stays on the
//! calling thread), and non-temporal stores on AVX2 for the memory-bound maps (ReLU, leaky
//! ReLU, the output-based backwards, and the staged sigmoid and GELU) with outputs
//! of 4M elements or more (too large to stay cached; the stores skip reading each output line
//! first). Sigmoid and GELU run in two passes over small blocks (their long dependency chains
//! overlap better split). Every element is computed alone, so results are bitwise identical
//! for any thread count.
//!
//! ```
//! use nnkern_kernels::{activation_backward, activation_forward, Activation, Backend};
//! let x = [-1.0f32, 0.5, 2.0];
//! let mut y = [0.0f32; 3];
//! activation_forward(Backend::Native, Activation::Relu, &x, &mut y).unwrap();
//! assert_eq!(y, [0.0, 0.5, 2.0]);
//! let mut dx = [0.0f32; 3];
//! // ReLU's backward reads the output `y`; the input may be passed as an empty slice.
//! activation_backward(Backend::Native, Activation::Relu, &[], &y, &[1.0; 3], &mut dx).unwrap();
//! assert_eq!(dx, [0.0, 1.0, 1.0]);
//! ```
//!
//! Accuracy: the transcendental activations use the vectorized functions of
//! [`crate::simd::math`] (errors of 1 to 3.5 `f32::EPSILON` relative, erf 3.5e-7 absolute,
//! GELU's derivative 4e-7 absolute);
//! GELU's `1 + erf` loses relative accuracy for very negative inputs (absolute error stays
//! below 2e-7 |x|), like every erf-based GELU. The bounds are enforced in the tests.
//!
//! Special values: NaN in gives NaN out for every forward (ReLU included); `+-inf` give the
//! limits (`sigmoid(-inf) = 0`, `gelu(-inf) = silu(-inf) = -0`, `softplus(inf) = inf`, ...).
//! Backward passes at `+-inf` give the limits of the derivative.
//!
//! The [`Backend::OpenBlas`] backend runs the native code (BLAS has no activations);
//! [`Backend::Reference`] runs the plain loops of [`activation_forward_reference`].

pub(crate) mod driver;
pub(crate) mod ops;
mod reference;
pub(crate) mod softmax;

/// The threading of the elementwise maps (for benchmarks that copy it, e.g. a copy baseline).
pub use driver::{PAR_CHUNK, PAR_MIN_LEN};
pub use reference::{
    activation_backward_scalar, activation_forward_scalar, erf_reference,
    log_softmax_backward_reference, log_softmax_forward_reference, softmax_backward_reference,
    softmax_forward_reference,
};
pub use softmax::{log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward};

use crate::error::{check_len, KernelError};
use crate::Backend;
use driver::{map_binary, map_binary_inplace, map_unary, map_unary_inplace};
use num_traits::Float;
use ops::*;

/// Binds `$f` to the forward op struct of `act` and evaluates `$body` (one monomorphized
/// body per activation; a closure could not be generic over the op).
macro_rules! with_forward {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Activation::Relu => {
                let $f = ReluFwd;
                $body
            }
            Activation::LeakyRelu(a) => {
                let $f = LeakyFwd(a);
                $body
            }
            Activation::Elu(a) => {
                let $f = EluFwd(a);
                $body
            }
            Activation::Sigmoid => {
                let $f = SigmoidFwd;
                $body
            }
            Activation::Tanh => {
                let $f = TanhFwd;
                $body
            }
            Activation::Gelu => {
                let $f = GeluFwd;
                $body
            }
            Activation::GeluTanh => {
                let $f = GeluTanhFwd;
                $body
            }
            Activation::Silu => {
                let $f = SiluFwd;
                $body
            }
            Activation::Softplus => {
                let $f = SoftplusFwd;
                $body
            }
        }
    };
}

/// As `with_forward!` for the backward op struct.
macro_rules! with_backward {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Activation::Relu => {
                let $f = ReluBwd;
                $body
            }
            Activation::LeakyRelu(a) => {
                let $f = LeakyBwd(a);
                $body
            }
            Activation::Elu(a) => {
                let $f = EluBwd(a);
                $body
            }
            Activation::Sigmoid => {
                let $f = SigmoidBwd;
                $body
            }
            Activation::Tanh => {
                let $f = TanhBwd;
                $body
            }
            Activation::Gelu => {
                let $f = GeluBwd;
                $body
            }
            Activation::GeluTanh => {
                let $f = GeluTanhBwd;
                $body
            }
            Activation::Silu => {
                let $f = SiluBwd;
                $body
            }
            Activation::Softplus => {
                let $f = SoftplusBwd;
                $body
            }
        }
    };
}

/// An elementwise activation function.
///
/// | activation | forward | backward reads |
/// |---|---|---|
/// | `Relu` | `max(x, 0)` | output `y` |
/// | `LeakyRelu(slope)` | `x > 0 ? x : slope x` | input `x` |
/// | `Elu(alpha)` | `x > 0 ? x : alpha (e^x - 1)` | output `y` (needs `alpha >= 0`) |
/// | `Sigmoid` | `1 / (1 + e^-x)` | output `y` |
/// | `Tanh` | `tanh x` | output `y` |
/// | `Gelu` | `x Phi(x) = x (1 + erf(x / sqrt 2)) / 2` | input `x` |
/// | `GeluTanh` | `x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2` | input `x` |
/// | `Silu` | `x sigmoid(x)` | input `x` |
/// | `Softplus` | `ln(1 + e^x)` | input `x` |
///
/// Those whose backward reads the output can run fully in place during training (the input
/// need not be kept).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Rectified linear unit.
    Relu,
    /// Leaky ReLU with the given negative slope (finite).
    LeakyRelu(f32),
    /// Exponential linear unit with the given `alpha` (finite, `>= 0`).
    Elu(f32),
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// GELU, exact (erf) form (PyTorch `approximate='none'`).
    Gelu,
    /// GELU, tanh approximation (PyTorch `approximate='tanh'`).
    GeluTanh,
    /// SiLU / swish.
    Silu,
    /// Softplus (`beta = 1`, no threshold: exact for all inputs).
    Softplus,
}

impl Activation {
    /// Whether the backward pass reads the forward output `y` (else it reads the input `x`).
    pub fn backward_uses_output(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::Elu(_) | Activation::Sigmoid | Activation::Tanh
        )
    }

    /// The lower-case name (`relu`, `leaky_relu`, `elu`, `sigmoid`, `tanh`, `gelu`,
    /// `gelu_tanh`, `silu`, `softplus`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Silu => "silu",
            Activation::Softplus => "softplus",
        }
    }

    /// Parses a [`name`](Activation::name); `leaky_relu` gets slope 0.01 and `elu` alpha 1
    /// (the PyTorch defaults).
    pub fn parse(s: &str) -> Option<Activation> {
        Some(match s {
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(0.01),
            "elu" => Activation::Elu(1.0),
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "gelu" => Activation::Gelu,
            "gelu_tanh" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            "softplus" => Activation::Softplus,
            _ => return None,
        })
    }

    /// Checks the parameter: a finite slope, a finite `alpha >= 0`.
    pub fn validate(self) -> Result<(), KernelError> {
        match self {
            Activation::LeakyRelu(a) if !a.is_finite() => Err(KernelError::InvalidParam {
                arg: "slope",
                what: format!("must be finite, got {a}"),
            }),
            Activation::Elu(a) if !(a.is_finite() && a >= 0.0) => Err(KernelError::InvalidParam {
                arg: "alpha",
                what: format!("must be finite and >= 0, got {a}"),
            }),
            _ => Ok(()),
        }
    }
}

/// `y = act(x)` elementwise; `x` and `y` must have the same length.
pub fn activation_forward(
    backend: Backend,
    act: Activation,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    act.validate()?;
    check_len("y", x.len(), y.len())?;
    if backend == Backend::Reference {
        return activation_forward_reference(act, x, y);
    }
    with_forward!(act, f => map_unary(f, x, y));
    Ok(())
}

/// `xy = act(xy)` in place.
pub fn activation_forward_inplace(
    backend: Backend,
    act: Activation,
    xy: &mut [f32],
) -> Result<(), KernelError> {
    act.validate()?;
    if backend == Backend::Reference {
        for v in xy.iter_mut() {
            *v = activation_forward_scalar(act, *v);
        }
        return Ok(());
    }
    with_forward!(act, f => map_unary_inplace(f, xy));
    Ok(())
}

/// Checks the saved tensor the backward of `act` reads and returns it.
fn saved<'a>(
    act: Activation,
    x: &'a [f32],
    y: &'a [f32],
    n: usize,
) -> Result<&'a [f32], KernelError> {
    act.validate()?;
    if act.backward_uses_output() {
        check_len("y", n, y.len())?;
        Ok(y)
    } else {
        check_len("x", n, x.len())?;
        Ok(x)
    }
}

/// `dx = dy * act'(x)` elementwise. Reads the forward input `x` or output `y` as
/// [`Activation::backward_uses_output`] says; the one not read may have any length (e.g. be
/// empty). `dy`, `dx` and the one read must have the same length.
pub fn activation_backward(
    backend: Backend,
    act: Activation,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    check_len("dx", dy.len(), dx.len())?;
    let a = saved(act, x, y, dy.len())?;
    if backend == Backend::Reference {
        for ((d, &s), &g) in dx.iter_mut().zip(a).zip(dy) {
            *d = activation_backward_scalar(act, s, s, g);
        }
        return Ok(());
    }
    with_backward!(act, f => map_binary(f, a, dy, dx));
    Ok(())
}

/// As [`activation_backward`] with the gradient in place: `dxy` holds `dy` on entry and
/// `dx` on return.
pub fn activation_backward_inplace(
    backend: Backend,
    act: Activation,
    x: &[f32],
    y: &[f32],
    dxy: &mut [f32],
) -> Result<(), KernelError> {
    let a = saved(act, x, y, dxy.len())?;
    if backend == Backend::Reference {
        for (d, &s) in dxy.iter_mut().zip(a) {
            *d = activation_backward_scalar(act, s, s, *d);
        }
        return Ok(());
    }
    with_backward!(act, f => map_binary_inplace(f, a, dxy));
    Ok(())
}

/// Reference forward: `y = act(x)` with [`activation_forward_scalar`], any [`Float`].
pub fn activation_forward_reference<T: Float>(
    act: Activation,
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError> {
    act.validate()?;
    check_len("y", x.len(), y.len())?;
    for (o, &i) in y.iter_mut().zip(x) {
        *o = activation_forward_scalar(act, i);
    }
    Ok(())
}

/// Reference backward with the same argument rules as [`activation_backward`], any [`Float`].
pub fn activation_backward_reference<T: Float>(
    act: Activation,
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    act.validate()?;
    let n = dy.len();
    check_len("dx", n, dx.len())?;
    let uses_y = act.backward_uses_output();
    check_len(
        if uses_y { "y" } else { "x" },
        n,
        if uses_y { y.len() } else { x.len() },
    )?;
    for i in 0..n {
        let xi = if uses_y { T::nan() } else { x[i] };
        let yi = if uses_y { y[i] } else { T::nan() };
        dx[i] = activation_backward_scalar(act, xi, yi, dy[i]);
    }
    Ok(())
}
