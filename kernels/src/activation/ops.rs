//! The per-vector formulas of every activation, forward and backward, generic over
//! [`Vector`] so that one body serves all ISAs. Each is a small `Copy` struct implementing
//! [`Unary`] (forward: `x -> y`) or [`Binary`] (backward: `(x or y, dy) -> dx`).

use crate::simd::math::{
    exp_nonpos, expm1, gelu_grad_finish, gelu_grad_ratio, log1p_unit, normal_cdf_finish,
    normal_cdf_ratio, sigmoid, sigmoid_finish, sigmoid_start, tanh,
};
use crate::simd::Vector;

/// An elementwise map `x -> y`.
pub(crate) trait Unary: Copy + Send + Sync {
    /// A few instructions per element, so memory-bound on large slices: those get
    /// non-temporal stores (see `driver`). Other unstaged maps keep ordinary stores, which
    /// measured faster for them (staged ones stream too).
    const CHEAP: bool = false;
    /// Split in two halves, `apply(x) == finish(x, start(x))`, which the driver runs as two
    /// passes over small cache-resident blocks (see `driver`): for long dependency chains,
    /// which a single pass cannot overlap enough.
    const STAGED: bool = false;
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V;
    /// The first half of a [`Unary::STAGED`] map (unused otherwise).
    #[inline(always)]
    fn start<V: Vector<Elem = f32>>(self, x: V) -> V {
        x
    }
    /// The second half of a [`Unary::STAGED`] map, given `start(x)`.
    #[inline(always)]
    fn finish<V: Vector<Elem = f32>>(self, x: V, _started: V) -> V {
        self.apply(x)
    }
}

/// An elementwise map `(a, dy) -> dx` where `a` is the saved input or output.
pub(crate) trait Binary: Copy + Send + Sync {
    /// As [`Unary::CHEAP`].
    const CHEAP: bool = false;
    /// As [`Unary::STAGED`]: `apply(a, dy) == finish(a, dy, start(a))`.
    const STAGED: bool = false;
    fn apply<V: Vector<Elem = f32>>(self, a: V, dy: V) -> V;
    /// As [`Unary::start`].
    #[inline(always)]
    fn start<V: Vector<Elem = f32>>(self, a: V) -> V {
        a
    }
    /// As [`Unary::finish`].
    #[inline(always)]
    fn finish<V: Vector<Elem = f32>>(self, a: V, dy: V, _started: V) -> V {
        self.apply(a, dy)
    }
}

#[inline(always)]
fn s<V: Vector<Elem = f32>>(c: f32) -> V {
    V::splat(c)
}

/// `x` with `-inf` replaced by `-f32::MAX`, so that `x * 0` is `-0` rather than NaN where an
/// activation tends to 0 as `x -> -inf` (SiLU, GELU). NaN stays NaN.
#[inline(always)]
fn finite_below<V: Vector<Elem = f32>>(x: V) -> V {
    x.at_least(s(-f32::MAX))
}

/// `sqrt(2/pi)` and the cubic coefficient of the tanh GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

/// ReLU: `max(x, 0)`; NaN propagates.
#[derive(Clone, Copy)]
pub(crate) struct ReluFwd;
impl Unary for ReluFwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        x.at_least(V::zero())
    }
}

/// ReLU backward from the output: `dy` where `y > 0`, else 0.
#[derive(Clone, Copy)]
pub(crate) struct ReluBwd;
impl Binary for ReluBwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, y: V, dy: V) -> V {
        dy.and(V::zero().lt(y))
    }
}

/// Leaky ReLU: `x > 0 ? x : slope * x`.
#[derive(Clone, Copy)]
pub(crate) struct LeakyFwd(pub(crate) f32);
impl Unary for LeakyFwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        V::select(V::zero().lt(x), x, x.mul(s(self.0)))
    }
}

/// Leaky ReLU backward from the input.
#[derive(Clone, Copy)]
pub(crate) struct LeakyBwd(pub(crate) f32);
impl Binary for LeakyBwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V, dy: V) -> V {
        V::select(V::zero().lt(x), dy, dy.mul(s(self.0)))
    }
}

/// ELU: `x > 0 ? x : alpha * expm1(x)`.
#[derive(Clone, Copy)]
pub(crate) struct EluFwd(pub(crate) f32);
impl Unary for EluFwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        let neg = expm1(x.at_most(V::zero())).mul(s(self.0));
        V::select(V::zero().lt(x), x, neg)
    }
}

/// ELU backward from the output (`alpha >= 0`): `y > 0 ? dy : dy * (y + alpha)`.
#[derive(Clone, Copy)]
pub(crate) struct EluBwd(pub(crate) f32);
impl Binary for EluBwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, y: V, dy: V) -> V {
        V::select(V::zero().lt(y), dy, dy.mul(y.add(s(self.0))))
    }
}

/// Sigmoid, staged at its exponential.
#[derive(Clone, Copy)]
pub(crate) struct SigmoidFwd;
impl Unary for SigmoidFwd {
    const STAGED: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        sigmoid(x)
    }
    #[inline(always)]
    fn start<V: Vector<Elem = f32>>(self, x: V) -> V {
        sigmoid_start(x)
    }
    #[inline(always)]
    fn finish<V: Vector<Elem = f32>>(self, x: V, e: V) -> V {
        sigmoid_finish(x, e)
    }
}

/// Sigmoid backward from the output: `dy * y * (1 - y)`.
#[derive(Clone, Copy)]
pub(crate) struct SigmoidBwd;
impl Binary for SigmoidBwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, y: V, dy: V) -> V {
        dy.mul(y.mul(s::<V>(1.0).sub(y)))
    }
}

/// Tanh.
#[derive(Clone, Copy)]
pub(crate) struct TanhFwd;
impl Unary for TanhFwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        tanh(x)
    }
}

/// Tanh backward from the output: `dy * (1 - y^2)` (one rounding through the FMA).
#[derive(Clone, Copy)]
pub(crate) struct TanhBwd;
impl Binary for TanhBwd {
    const CHEAP: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, y: V, dy: V) -> V {
        dy.mul(V::zero().sub(y).mul_add(y, s(1.0)))
    }
}

/// GELU, erf form: `x Phi(x)`, staged at the ratio of [`normal_cdf`].
#[derive(Clone, Copy)]
pub(crate) struct GeluFwd;
impl Unary for GeluFwd {
    const STAGED: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        self.finish(x, self.start(x))
    }
    #[inline(always)]
    fn start<V: Vector<Elem = f32>>(self, x: V) -> V {
        normal_cdf_ratio(x)
    }
    #[inline(always)]
    fn finish<V: Vector<Elem = f32>>(self, x: V, r: V) -> V {
        finite_below(x).mul(normal_cdf_finish(x, r))
    }
}

/// GELU backward from the input: `dy (Phi(x) + x phi(x))` (see [`gelu_grad_ratio`]),
/// staged at the ratio.
#[derive(Clone, Copy)]
pub(crate) struct GeluBwd;
impl Binary for GeluBwd {
    const STAGED: bool = true;
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V, dy: V) -> V {
        self.finish(x, dy, self.start(x))
    }
    #[inline(always)]
    fn start<V: Vector<Elem = f32>>(self, x: V) -> V {
        gelu_grad_ratio(x)
    }
    #[inline(always)]
    fn finish<V: Vector<Elem = f32>>(self, x: V, dy: V, r: V) -> V {
        dy.mul(gelu_grad_finish(x, r))
    }
}

/// `2u = 2 sqrt(2/pi) (x + c x^3)`, the sigmoid argument of the tanh GELU.
#[inline(always)]
fn gelu_tanh_arg<V: Vector<Elem = f32>>(x: V) -> V {
    let x2 = x.mul(x);
    x.mul(x2.mul_add(s(GELU_C), s(1.0)))
        .mul(s(2.0 * SQRT_2_OVER_PI))
}

/// GELU, tanh approximation: `x (1 + tanh u) / 2 = x sigmoid(2u)` (no cancellation).
#[derive(Clone, Copy)]
pub(crate) struct GeluTanhFwd;
impl Unary for GeluTanhFwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        finite_below(x).mul(sigmoid(gelu_tanh_arg(x)))
    }
}

/// Tanh-GELU backward from the input: with `s = sigmoid(2u)`,
/// `d/dx = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 c x^2)`.
#[derive(Clone, Copy)]
pub(crate) struct GeluTanhBwd;
impl Binary for GeluTanhBwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V, dy: V) -> V {
        let xc = x.at_least(s(-20.0)).at_most(s(20.0));
        let sg = sigmoid(gelu_tanh_arg(xc));
        let du = xc
            .mul(xc)
            .mul_add(s(3.0 * GELU_C), s(1.0))
            .mul(s(2.0 * SQRT_2_OVER_PI));
        let ds = sg.mul(s::<V>(1.0).sub(sg));
        dy.mul(xc.mul(ds).mul_add(du, sg))
    }
}

/// SiLU (swish): `x sigmoid(x)`.
#[derive(Clone, Copy)]
pub(crate) struct SiluFwd;
impl Unary for SiluFwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        finite_below(x).mul(sigmoid(x))
    }
}

/// SiLU backward from the input: `dy s (1 + x (1 - s))`.
#[derive(Clone, Copy)]
pub(crate) struct SiluBwd;
impl Binary for SiluBwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V, dy: V) -> V {
        // Beyond |x| = 200 the correction term is 0 in f32; clamping avoids inf * 0.
        let xc = x.at_least(s(-200.0)).at_most(s(200.0));
        let sg = sigmoid(xc);
        let inner = xc.mul_add(s::<V>(1.0).sub(sg), s(1.0));
        dy.mul(sg.mul(inner))
    }
}

/// Softplus: `max(x, 0) + ln(1 + e^-|x|)` (no overflow, exact limits at +-inf).
#[derive(Clone, Copy)]
pub(crate) struct SoftplusFwd;
impl Unary for SoftplusFwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V) -> V {
        let e = exp_nonpos(V::zero().sub(x.abs()));
        x.at_least(V::zero()).add(log1p_unit(e))
    }
}

/// Softplus backward from the input: `dy sigmoid(x)`.
#[derive(Clone, Copy)]
pub(crate) struct SoftplusBwd;
impl Binary for SoftplusBwd {
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(self, x: V, dy: V) -> V {
        dy.mul(sigmoid(x))
    }
}
