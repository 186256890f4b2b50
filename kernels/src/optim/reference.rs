//! The optimizer equations as plain loops, generic over `Float` (the ground truth of the tests,
//! run in f64). Same arguments and the same validation (the very same check functions) as the
//! fused kernels: the f32 hyperparameters are widened to `T`, the slices are in `T`.

use super::{
    adam_exponent, check_adagrad, check_adam, check_rmsprop, check_sgd, AdaGradConfig, AdamConfig,
    RmsPropConfig, SgdConfig,
};
use crate::error::KernelError;
use num_traits::Float;

/// `x` in `T` (every `Float` holds an f32 or a step count, rounded if need be).
fn c<T: Float>(x: impl num_traits::ToPrimitive) -> T {
    T::from(x).unwrap_or_else(T::nan)
}

/// SGD, see [`super::sgd_step`] (same errors).
pub fn sgd<T: Float>(
    cfg: &SgdConfig,
    p: &mut [T],
    g: &[T],
    buf: &mut [T],
    first: bool,
) -> Result<(), KernelError> {
    check_sgd(cfg, p.len(), g.len(), buf.len())?;
    let (lr, momentum, wd) = (
        c::<T>(cfg.lr),
        c::<T>(cfg.momentum),
        c::<T>(cfg.weight_decay),
    );
    let keep = T::one() - c(cfg.dampening);
    for i in 0..p.len() {
        let mut d = g[i] + wd * p[i];
        if momentum > T::zero() {
            buf[i] = if first {
                d
            } else {
                momentum * buf[i] + keep * d
            };
            d = if cfg.nesterov {
                d + momentum * buf[i]
            } else {
                buf[i]
            };
        }
        p[i] = p[i] - lr * d;
    }
    Ok(())
}

/// AdaGrad, see [`super::adagrad_step`] (same errors).
pub fn adagrad<T: Float>(
    cfg: &AdaGradConfig,
    step: u64,
    p: &mut [T],
    g: &[T],
    sum: &mut [T],
) -> Result<(), KernelError> {
    check_adagrad(cfg, step, p.len(), g.len(), sum.len())?;
    let (wd, eps) = (c::<T>(cfg.weight_decay), c::<T>(cfg.eps));
    let clr = c::<T>(cfg.lr) / (T::one() + c::<T>(step - 1) * c(cfg.lr_decay));
    for i in 0..p.len() {
        let d = g[i] + wd * p[i];
        sum[i] = sum[i] + d * d;
        p[i] = p[i] - clr * d / (sum[i].sqrt() + eps);
    }
    Ok(())
}

/// RMSprop, see [`super::rmsprop_step`] (same errors).
pub fn rmsprop<T: Float>(
    cfg: &RmsPropConfig,
    p: &mut [T],
    g: &[T],
    square_avg: &mut [T],
    buf: &mut [T],
    grad_avg: &mut [T],
) -> Result<(), KernelError> {
    let lens = [square_avg.len(), buf.len(), grad_avg.len()];
    check_rmsprop(cfg, p.len(), g.len(), lens)?;
    let (lr, alpha, eps) = (c::<T>(cfg.lr), c::<T>(cfg.alpha), c::<T>(cfg.eps));
    let (wd, momentum) = (c::<T>(cfg.weight_decay), c::<T>(cfg.momentum));
    for i in 0..p.len() {
        let d = g[i] + wd * p[i];
        square_avg[i] = alpha * square_avg[i] + (T::one() - alpha) * d * d;
        let avg = if cfg.centered {
            grad_avg[i] = alpha * grad_avg[i] + (T::one() - alpha) * d;
            (square_avg[i] - grad_avg[i] * grad_avg[i]).sqrt() + eps
        } else {
            square_avg[i].sqrt() + eps
        };
        if momentum > T::zero() {
            buf[i] = momentum * buf[i] + d / avg;
            p[i] = p[i] - lr * buf[i];
        } else {
            p[i] = p[i] - lr * d / avg;
        }
    }
    Ok(())
}

/// Adam (`decoupled = false`) or AdamW, see [`super::adam_step`] (same errors).
pub fn adam<T: Float>(
    cfg: &AdamConfig,
    step: u64,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) -> Result<(), KernelError> {
    check_adam(cfg, step, p.len(), [g.len(), m.len(), v.len()])?;
    let (lr, beta1, beta2) = (c::<T>(cfg.lr), c::<T>(cfg.beta1), c::<T>(cfg.beta2));
    let (eps, wd) = (c::<T>(cfg.eps), c::<T>(cfg.weight_decay));
    let t = adam_exponent(step);
    let bc1 = T::one() - beta1.powi(t);
    let bc2 = T::one() - beta2.powi(t);
    for i in 0..p.len() {
        let mut d = g[i];
        if cfg.decoupled {
            p[i] = p[i] * (T::one() - lr * wd);
        } else {
            d = d + wd * p[i];
        }
        m[i] = beta1 * m[i] + (T::one() - beta1) * d;
        v[i] = beta2 * v[i] + (T::one() - beta2) * d * d;
        let denom = v[i].sqrt() / bc2.sqrt() + eps;
        p[i] = p[i] - (lr / bc1) * m[i] / denom;
    }
    Ok(())
}
