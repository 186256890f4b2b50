//! The optimizer equations as plain loops, generic over `Float` (the ground truth of the tests,
//! run in f64). Same arguments as the fused kernels, with the hyperparameters in `T`.
//! No validation: slices must have equal lengths (used states) and `step >= 1`.

use num_traits::Float;

fn c<T: Float>(x: f64) -> T {
    T::from(x).expect("Float holds f64 constants")
}

/// SGD, see [`super::sgd_step`].
#[allow(clippy::too_many_arguments)]
pub fn sgd<T: Float>(
    lr: T,
    momentum: T,
    dampening: T,
    weight_decay: T,
    nesterov: bool,
    first: bool,
    p: &mut [T],
    g: &[T],
    buf: &mut [T],
) {
    for i in 0..p.len() {
        let mut d = g[i] + weight_decay * p[i];
        if momentum > T::zero() {
            buf[i] = if first {
                d
            } else {
                momentum * buf[i] + (T::one() - dampening) * d
            };
            d = if nesterov {
                d + momentum * buf[i]
            } else {
                buf[i]
            };
        }
        p[i] = p[i] - lr * d;
    }
}

/// AdaGrad, see [`super::adagrad_step`].
#[allow(clippy::too_many_arguments)]
pub fn adagrad<T: Float>(
    lr: T,
    lr_decay: T,
    weight_decay: T,
    eps: T,
    step: u64,
    p: &mut [T],
    g: &[T],
    sum: &mut [T],
) {
    let clr = lr / (T::one() + c::<T>((step - 1) as f64) * lr_decay);
    for i in 0..p.len() {
        let d = g[i] + weight_decay * p[i];
        sum[i] = sum[i] + d * d;
        p[i] = p[i] - clr * d / (sum[i].sqrt() + eps);
    }
}

/// RMSprop, see [`super::rmsprop_step`].
#[allow(clippy::too_many_arguments)]
pub fn rmsprop<T: Float>(
    lr: T,
    alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    centered: bool,
    p: &mut [T],
    g: &[T],
    square_avg: &mut [T],
    buf: &mut [T],
    grad_avg: &mut [T],
) {
    for i in 0..p.len() {
        let d = g[i] + weight_decay * p[i];
        square_avg[i] = alpha * square_avg[i] + (T::one() - alpha) * d * d;
        let avg = if centered {
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
}

/// Adam (`decoupled = false`) or AdamW, see [`super::adam_step`].
#[allow(clippy::too_many_arguments)]
pub fn adam<T: Float>(
    lr: T,
    beta1: T,
    beta2: T,
    eps: T,
    weight_decay: T,
    decoupled: bool,
    step: u64,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let t = step as i32;
    let bc1 = T::one() - beta1.powi(t);
    let bc2 = T::one() - beta2.powi(t);
    for i in 0..p.len() {
        let mut d = g[i];
        if decoupled {
            p[i] = p[i] * (T::one() - lr * weight_decay);
        } else {
            d = d + weight_decay * p[i];
        }
        m[i] = beta1 * m[i] + (T::one() - beta1) * d;
        v[i] = beta2 * v[i] + (T::one() - beta2) * d * d;
        let denom = v[i].sqrt() / bc2.sqrt() + eps;
        p[i] = p[i] - (lr / bc1) * m[i] / denom;
    }
}
