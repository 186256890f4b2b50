//! Fused optimizer updates: one SIMD pass over each parameter tensor, reading the parameter,
//! its gradient and the optimizer state once and writing them once.
//!
//! The rules are exactly those of `torch.optim` (single-tensor, `maximize = False`,
//! `amsgrad = False`). With `g` the gradient, `p` the parameter, `t` the 1-based step count:
//!
//! * **SGD** ([`sgd_step`]): `g ← g + wd·p`; if `momentum ≠ 0`: `b ← g` on the first step,
//!   else `b ← μ·b + (1 − dampening)·g`; then `g ← g + μ·b` (Nesterov) or `g ← b`;
//!   finally `p ← p − lr·g`.
//! * **AdaGrad** ([`adagrad_step`]): `clr = lr / (1 + (t − 1)·lr_decay)`; `g ← g + wd·p`;
//!   `s ← s + g²`; `p ← p − clr·g / (√s + ε)`.
//! * **RMSprop** ([`rmsprop_step`]): `g ← g + wd·p`; `v ← α·v + (1 − α)·g²`; centered:
//!   `ḡ ← α·ḡ + (1 − α)·g`, `d = √(v − ḡ²) + ε`, else `d = √v + ε`; with momentum
//!   `b ← μ·b + g/d`, `p ← p − lr·b`, else `p ← p − lr·g/d`.
//! * **Adam / AdamW** ([`adam_step`]): Adam `g ← g + wd·p`; AdamW `p ← p·(1 − lr·wd)`;
//!   `m ← β₁·m + (1 − β₁)·g`; `v ← β₂·v + (1 − β₂)·g²`; `p ← p − (lr / (1 − β₁ᵗ))·m /
//!   (√v / √(1 − β₂ᵗ) + ε)`.
//!
//! Scalars derived from the step count (bias corrections, AdaGrad's decayed rate) are computed
//! once per call in f64 and rounded to f32, as PyTorch does with its Python-float scalars.
//! NaN or infinite gradients propagate into the parameter and state (no clipping or skipping).
//!
//! Threads: parameters longer than [`PAR_CHUNK`] are split into fixed chunks run on the
//! caller's rayon pool; every element is updated by the same arithmetic whatever the split,
//! so results are bitwise identical for any thread count. Nothing allocates.
//!
//! [`reference`](mod@reference) holds the same equations as plain loops generic over
//! `Float` (run in f64 as the ground truth of the tests).

mod driver;
pub mod reference;

use crate::error::{check_len, KernelError};
use crate::simd::Vector;
use driver::{run, sqrt, Rule};

/// Parameters longer than this are split across rayon workers (in chunks of this size).
pub const PAR_CHUNK: usize = 1 << 15;

/// SGD hyperparameters (`torch.optim.SGD`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor μ (0 disables the momentum buffer).
    pub momentum: f32,
    /// Dampening of the momentum update.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`, as in PyTorch).
    pub nesterov: bool,
}

/// AdaGrad hyperparameters (`torch.optim.Adagrad`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGradConfig {
    /// Learning rate.
    pub lr: f32,
    /// Learning-rate decay per step.
    pub lr_decay: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Added to the denominator.
    pub eps: f32,
}

/// RMSprop hyperparameters (`torch.optim.RMSprop`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate.
    pub lr: f32,
    /// Smoothing constant α.
    pub alpha: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Momentum factor (0 disables the momentum buffer).
    pub momentum: f32,
    /// Normalise by the estimated variance (needs the `grad_avg` state).
    pub centered: bool,
}

/// Adam / AdamW hyperparameters (`torch.optim.Adam`, `torch.optim.AdamW`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment β₁.
    pub beta1: f32,
    /// Decay of the second moment β₂.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Weight decay: L2 on the gradient (Adam) or decoupled (AdamW).
    pub weight_decay: f32,
    /// `true` for AdamW's decoupled weight decay.
    pub decoupled: bool,
}

fn check_range(arg: &'static str, v: f32, lo: f32, hi: f32) -> Result<(), KernelError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(KernelError::InvalidParam {
            arg,
            what: format!("must be in [{lo}, {hi}], got {v}"),
        })
    }
}

fn check_finite_nonneg(arg: &'static str, v: f32) -> Result<(), KernelError> {
    check_range(arg, v, 0.0, f32::MAX)
}

fn check_step(step: u64) -> Result<(), KernelError> {
    if step == 0 {
        return Err(KernelError::InvalidParam {
            arg: "step",
            what: "the step count is 1-based and must be at least 1".into(),
        });
    }
    Ok(())
}

/// One SGD step. `momentum_buf` must have the parameter's length when `momentum > 0` (it is
/// not touched otherwise; pass `&mut []`); `first` says it is uninitialised (PyTorch's first
/// step copies the gradient into it).
pub fn sgd_step(
    c: &SgdConfig,
    param: &mut [f32],
    grad: &[f32],
    momentum_buf: &mut [f32],
    first: bool,
) -> Result<(), KernelError> {
    check_sgd(c, param.len(), grad.len(), momentum_buf.len())?;
    let has_buf = c.momentum > 0.0;
    let rule = SgdRule {
        lr: c.lr,
        wd: c.weight_decay,
        mu: c.momentum,
        keep: 1.0 - c.dampening,
        has_buf,
        first,
        nesterov: c.nesterov,
    };
    run(rule, param, grad, [momentum_buf, &mut [], &mut []]);
    Ok(())
}

/// The checks of [`sgd_step`] (shared with [`reference::sgd`]), given the slice lengths.
fn check_sgd(c: &SgdConfig, n: usize, grad: usize, buf: usize) -> Result<(), KernelError> {
    check_finite_nonneg("lr", c.lr)?;
    check_finite_nonneg("momentum", c.momentum)?;
    check_range("dampening", c.dampening, 0.0, 1.0)?;
    check_finite_nonneg("weight_decay", c.weight_decay)?;
    if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
        return Err(KernelError::InvalidParam {
            arg: "nesterov",
            what: "Nesterov momentum needs momentum > 0 and dampening = 0".into(),
        });
    }
    check_len("grad", n, grad)?;
    if c.momentum > 0.0 {
        check_len("momentum_buf", n, buf)?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct SgdRule {
    lr: f32,
    wd: f32,
    mu: f32,
    keep: f32,
    has_buf: bool,
    first: bool,
    nesterov: bool,
}

impl Rule for SgdRule {
    #[inline(always)]
    fn uses(&self) -> [bool; 3] {
        [self.has_buf, false, false]
    }
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(&self, p: V, g: V, s: &mut [V; 3]) -> V {
        let mut g = V::splat(self.wd).mul_add(p, g);
        if self.has_buf {
            s[0] = if self.first {
                g
            } else {
                V::splat(self.keep).mul_add(g, V::splat(self.mu).mul(s[0]))
            };
            g = if self.nesterov {
                V::splat(self.mu).mul_add(s[0], g)
            } else {
                s[0]
            };
        }
        V::splat(-self.lr).mul_add(g, p)
    }
}

/// One AdaGrad step; `step` is the 1-based count including this step, `sum` the accumulated
/// squared gradients (initialise it to `initial_accumulator_value`).
pub fn adagrad_step(
    c: &AdaGradConfig,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    sum: &mut [f32],
) -> Result<(), KernelError> {
    check_adagrad(c, step, param.len(), grad.len(), sum.len())?;
    let clr = c.lr as f64 / (1.0 + (step - 1) as f64 * c.lr_decay as f64);
    let rule = AdaGradRule {
        clr: clr as f32,
        wd: c.weight_decay,
        eps: c.eps,
    };
    run(rule, param, grad, [sum, &mut [], &mut []]);
    Ok(())
}

/// The checks of [`adagrad_step`] (shared with [`reference::adagrad`]).
fn check_adagrad(
    c: &AdaGradConfig,
    step: u64,
    n: usize,
    grad: usize,
    sum: usize,
) -> Result<(), KernelError> {
    check_finite_nonneg("lr", c.lr)?;
    check_finite_nonneg("lr_decay", c.lr_decay)?;
    check_finite_nonneg("weight_decay", c.weight_decay)?;
    check_finite_nonneg("eps", c.eps)?;
    check_step(step)?;
    check_len("grad", n, grad)?;
    check_len("sum", n, sum)
}

#[derive(Clone, Copy)]
struct AdaGradRule {
    clr: f32,
    wd: f32,
    eps: f32,
}

impl Rule for AdaGradRule {
    #[inline(always)]
    fn uses(&self) -> [bool; 3] {
        [true, false, false]
    }
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(&self, p: V, g: V, s: &mut [V; 3]) -> V {
        let g = V::splat(self.wd).mul_add(p, g);
        s[0] = g.mul_add(g, s[0]);
        let std = sqrt(s[0]).add(V::splat(self.eps));
        p.sub(V::splat(self.clr).mul(g.div(std)))
    }
}

/// One RMSprop step. `square_avg` always; `momentum_buf` when `momentum > 0` and `grad_avg`
/// when `centered` must have the parameter's length (pass `&mut []` otherwise). All state
/// starts at zero.
pub fn rmsprop_step(
    c: &RmsPropConfig,
    param: &mut [f32],
    grad: &[f32],
    square_avg: &mut [f32],
    momentum_buf: &mut [f32],
    grad_avg: &mut [f32],
) -> Result<(), KernelError> {
    let lens = [square_avg.len(), momentum_buf.len(), grad_avg.len()];
    check_rmsprop(c, param.len(), grad.len(), lens)?;
    let has_buf = c.momentum > 0.0;
    let rule = RmsPropRule {
        lr: c.lr,
        alpha: c.alpha,
        one_minus_alpha: 1.0 - c.alpha,
        eps: c.eps,
        wd: c.weight_decay,
        mu: c.momentum,
        has_buf,
        centered: c.centered,
    };
    run(rule, param, grad, [square_avg, momentum_buf, grad_avg]);
    Ok(())
}

/// The checks of [`rmsprop_step`] (shared with [`reference::rmsprop`]); `state` holds the
/// lengths of `square_avg`, `momentum_buf` and `grad_avg`.
fn check_rmsprop(
    c: &RmsPropConfig,
    n: usize,
    grad: usize,
    state: [usize; 3],
) -> Result<(), KernelError> {
    check_finite_nonneg("lr", c.lr)?;
    check_range("alpha", c.alpha, 0.0, 1.0)?;
    check_finite_nonneg("eps", c.eps)?;
    check_finite_nonneg("weight_decay", c.weight_decay)?;
    check_finite_nonneg("momentum", c.momentum)?;
    check_len("grad", n, grad)?;
    check_len("square_avg", n, state[0])?;
    if c.momentum > 0.0 {
        check_len("momentum_buf", n, state[1])?;
    }
    if c.centered {
        check_len("grad_avg", n, state[2])?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct RmsPropRule {
    lr: f32,
    alpha: f32,
    one_minus_alpha: f32,
    eps: f32,
    wd: f32,
    mu: f32,
    has_buf: bool,
    centered: bool,
}

impl Rule for RmsPropRule {
    #[inline(always)]
    fn uses(&self) -> [bool; 3] {
        [true, self.has_buf, self.centered]
    }
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(&self, p: V, g: V, s: &mut [V; 3]) -> V {
        let oma = V::splat(self.one_minus_alpha);
        let g = V::splat(self.wd).mul_add(p, g);
        s[0] = oma.mul(g).mul_add(g, V::splat(self.alpha).mul(s[0]));
        let var = if self.centered {
            s[2] = oma.mul_add(g.sub(s[2]), s[2]);
            s[2].mul(s[2]).mul(V::splat(-1.0)).add(s[0])
        } else {
            s[0]
        };
        let avg = sqrt(var).add(V::splat(self.eps));
        if self.has_buf {
            s[1] = V::splat(self.mu).mul_add(s[1], g.div(avg));
            V::splat(-self.lr).mul_add(s[1], p)
        } else {
            V::splat(-self.lr).mul_add(g.div(avg), p)
        }
    }
}

/// One Adam (or AdamW, `c.decoupled`) step; `step` is the 1-based count including this step,
/// `exp_avg` and `exp_avg_sq` the moment estimates (start at zero).
pub fn adam_step(
    c: &AdamConfig,
    step: u64,
    param: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
) -> Result<(), KernelError> {
    let lens = [grad.len(), exp_avg.len(), exp_avg_sq.len()];
    check_adam(c, step, param.len(), lens)?;
    let t = adam_exponent(step);
    let bc1 = 1.0 - (c.beta1 as f64).powi(t);
    let bc2 = 1.0 - (c.beta2 as f64).powi(t);
    let (wd, decay) = if c.decoupled {
        (0.0, (1.0 - c.lr as f64 * c.weight_decay as f64) as f32)
    } else {
        (c.weight_decay, 1.0)
    };
    let rule = AdamRule {
        wd,
        decay,
        beta1: c.beta1,
        one_minus_beta1: 1.0 - c.beta1,
        beta2: c.beta2,
        one_minus_beta2: 1.0 - c.beta2,
        step_size: (c.lr as f64 / bc1) as f32,
        bc2_sqrt: bc2.sqrt() as f32,
        eps: c.eps,
    };
    run(rule, param, grad, [exp_avg, exp_avg_sq, &mut []]);
    Ok(())
}

/// The checks of [`adam_step`] (shared with [`reference::adam`]); `lens` holds the lengths
/// of `grad`, `exp_avg` and `exp_avg_sq`.
fn check_adam(c: &AdamConfig, step: u64, n: usize, lens: [usize; 3]) -> Result<(), KernelError> {
    check_finite_nonneg("lr", c.lr)?;
    check_range("beta1", c.beta1, 0.0, 1.0 - f32::EPSILON / 2.0)?;
    check_range("beta2", c.beta2, 0.0, 1.0 - f32::EPSILON / 2.0)?;
    check_finite_nonneg("eps", c.eps)?;
    check_finite_nonneg("weight_decay", c.weight_decay)?;
    check_step(step)?;
    check_len("grad", n, lens[0])?;
    check_len("exp_avg", n, lens[1])?;
    check_len("exp_avg_sq", n, lens[2])
}

/// The step as the exponent of the bias corrections, clamped to `powi`'s `i32` (the kernel and
/// the reference clamp alike, so a huge step count cannot wrap negative).
fn adam_exponent(step: u64) -> i32 {
    step.min(i32::MAX as u64) as i32
}

#[derive(Clone, Copy)]
struct AdamRule {
    wd: f32,
    decay: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl Rule for AdamRule {
    #[inline(always)]
    fn uses(&self) -> [bool; 3] {
        [true, true, false]
    }
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(&self, p: V, g: V, s: &mut [V; 3]) -> V {
        let p = p.mul(V::splat(self.decay));
        let g = V::splat(self.wd).mul_add(p, g);
        s[0] = V::splat(self.one_minus_beta1).mul_add(g, V::splat(self.beta1).mul(s[0]));
        s[1] = V::splat(self.one_minus_beta2)
            .mul(g)
            .mul_add(g, V::splat(self.beta2).mul(s[1]));
        let denom = sqrt(s[1])
            .div(V::splat(self.bc2_sqrt))
            .add(V::splat(self.eps));
        V::splat(-self.step_size).mul_add(s[0].div(denom), p)
    }
}
