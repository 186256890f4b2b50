//! Plain-loop references for the activations and softmax, generic over [`Float`]: the ground truth the
//! tests run in f64, and the [`Backend::Reference`](crate::Backend::Reference) path in f32.
//! They use the same saved tensor (input or output) as the native backward, so both compute
//! the same function.

use super::softmax::check;
use super::Activation;
use crate::error::KernelError;
use num_traits::Float;

fn c<T: Float>(v: f64) -> T {
    T::from(v).expect("constant representable in T")
}

/// The error function to working precision of `T`, for references: the everywhere-positive
/// series `erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1))` (no
/// cancellation), and `+-1` for `|x| >= 6` where `1 - erf(x) < 2e-17`. NaN propagates.
pub fn erf_reference<T: Float>(x: T) -> T {
    if x.is_nan() {
        return x;
    }
    if x.abs() >= c(6.0) {
        return x.signum();
    }
    let x2 = x * x;
    let (mut term, mut sum, mut k) = (x, x, T::one());
    while term.abs() > T::epsilon() * sum.abs() * c(0.01) {
        term = term * (x2 + x2) / (k + k + T::one());
        sum = sum + term;
        k = k + T::one();
    }
    sum * (-x2).exp() * c(std::f64::consts::FRAC_2_SQRT_PI)
}

fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// The standard normal CDF `(1 + erf(x / sqrt 2)) / 2`.
fn phi<T: Float>(x: T) -> T {
    (T::one() + erf_reference(x * c(std::f64::consts::FRAC_1_SQRT_2))) * c(0.5)
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;

/// `y = act(x)` for one element.
pub fn activation_forward_scalar<T: Float>(act: Activation, x: T) -> T {
    // x * (something -> 0) at x = -inf is taken as its limit, -0.
    let times_vanishing = |x: T, f: T| {
        if x == T::neg_infinity() {
            -T::zero()
        } else {
            x * f
        }
    };
    match act {
        Activation::Relu => {
            if x.is_nan() || x > T::zero() {
                x
            } else {
                T::zero()
            }
        }
        Activation::LeakyRelu(a) => {
            if x > T::zero() {
                x
            } else {
                x * c(a as f64)
            }
        }
        Activation::Elu(a) => {
            if x > T::zero() {
                x
            } else {
                x.exp_m1() * c(a as f64)
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => times_vanishing(x, phi(x)),
        Activation::GeluTanh => {
            // (1 + tanh u) / 2 = sigmoid(2u): no cancellation for negative u.
            let u = (x + c::<T>(GELU_C) * x * x * x) * c(SQRT_2_OVER_PI);
            times_vanishing(x, sigmoid(u + u))
        }
        Activation::Silu => times_vanishing(x, sigmoid(x)),
        Activation::Softplus => x.max(T::zero()) + (-x.abs()).exp().ln_1p(),
    }
}

/// `dx` for one element, from the input `x` or the output `y` as
/// [`Activation::backward_uses_output`] says (the other is not read).
pub fn activation_backward_scalar<T: Float>(act: Activation, x: T, y: T, dy: T) -> T {
    let one = T::one();
    match act {
        Activation::Relu => {
            if y > T::zero() {
                dy
            } else {
                T::zero()
            }
        }
        Activation::LeakyRelu(a) => {
            if x > T::zero() {
                dy
            } else {
                dy * c(a as f64)
            }
        }
        Activation::Elu(a) => {
            if y > T::zero() {
                dy
            } else {
                dy * (y + c(a as f64))
            }
        }
        Activation::Sigmoid => dy * y * (one - y),
        Activation::Tanh => dy * (one - y * y),
        Activation::Gelu => {
            let density = if x.is_infinite() {
                T::zero()
            } else {
                x * (-(x * x) * c(0.5)).exp() * c(0.398_942_280_401_432_7)
            };
            dy * (phi(x) + density)
        }
        Activation::GeluTanh => {
            if x.is_infinite() {
                return dy * if x > T::zero() { one } else { T::zero() };
            }
            // d/dx [x sigmoid(2u)] = s + 2 x s (1 - s) u'.
            let k: T = c(SQRT_2_OVER_PI);
            let u = (x + c::<T>(GELU_C) * x * x * x) * k;
            let s = sigmoid(u + u);
            let du = k * (one + c::<T>(3.0 * GELU_C) * x * x);
            // Where s (1 - s) is 0 the second term's limit is 0; computing it would give
            // 0 * inf = NaN once x^2 overflows (|x| > ~1e19 in f32).
            let t = s * (one - s);
            let second = if t == T::zero() {
                T::zero()
            } else {
                (x + x) * t * du
            };
            dy * (s + second)
        }
        Activation::Silu => {
            if x.is_infinite() {
                return dy * if x > T::zero() { one } else { T::zero() };
            }
            let s = sigmoid(x);
            dy * s * (one + x * (one - s))
        }
        Activation::Softplus => dy * sigmoid(x),
    }
}

/// Validates a forward and sets each `y` to `f(x - m, s)` where, over its row, `m` is the
/// maximum (propagating NaN) and `s` the sum of `e^(x - m)`.
fn forward_rows<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    y: &mut [T],
    f: impl Fn(T, T) -> T,
) -> Result<(), KernelError> {
    check(rows, cols, &[("x", x.len()), ("y", y.len())])?;
    let c = cols.max(1);
    for (x, y) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let m = x.iter().fold(
            T::neg_infinity(),
            |a, &b| if b.is_nan() || b > a { b } else { a },
        );
        let s = x.iter().fold(T::zero(), |a, &b| a + (b - m).exp());
        for (o, &i) in y.iter_mut().zip(x) {
            *o = f(i - m, s);
        }
    }
    Ok(())
}

/// Reference softmax forward, any [`Float`].
pub fn softmax_forward_reference<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError> {
    forward_rows(rows, cols, x, y, |d, s| d.exp() / s)
}

/// Reference log-softmax forward, any [`Float`].
pub fn log_softmax_forward_reference<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError> {
    forward_rows(rows, cols, x, y, |d, s| d - s.ln())
}

/// Validates a backward and sets each `dx` to `f(y, dy, r)` where `r = row(y, dy)` over
/// its row.
fn backward_rows<T: Float>(
    rows: usize,
    cols: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
    row: impl Fn(&[T], &[T]) -> T,
    f: impl Fn(T, T, T) -> T,
) -> Result<(), KernelError> {
    check(
        rows,
        cols,
        &[("y", y.len()), ("dy", dy.len()), ("dx", dx.len())],
    )?;
    let c = cols.max(1);
    for ((y, dy), dx) in y
        .chunks_exact(c)
        .zip(dy.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
    {
        let r = row(y, dy);
        for j in 0..y.len() {
            dx[j] = f(y[j], dy[j], r);
        }
    }
    Ok(())
}

/// Reference softmax backward, any [`Float`].
pub fn softmax_backward_reference<T: Float>(
    rows: usize,
    cols: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    let dot = |y: &[T], dy: &[T]| y.iter().zip(dy).fold(T::zero(), |a, (&p, &g)| a + p * g);
    backward_rows(rows, cols, y, dy, dx, dot, |y, g, d| y * (g - d))
}

/// Reference log-softmax backward, any [`Float`].
pub fn log_softmax_backward_reference<T: Float>(
    rows: usize,
    cols: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    let sum = |_: &[T], dy: &[T]| dy.iter().fold(T::zero(), |a, &b| a + b);
    backward_rows(rows, cols, y, dy, dx, sum, |y, g, s| g - y.exp() * s)
}
