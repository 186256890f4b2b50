//! Losses: each computes the mean loss over the batch and, in the same pass, its gradient with
//! respect to the prediction (read it with `grad()` and feed it to the model's `backward`).
//! The gradient buffer is reused across calls.

use crate::error::{shape_err, Result};
use crate::tensor::Tensor;
use nnkern_kernels::{softmax_cross_entropy, Backend, SoftmaxXent};

/// Fused softmax + cross-entropy on logits `[N, C]` with integer labels in `0..C`:
/// `loss = mean_i (logsumexp(x_i) − x_i[label_i])`, `grad = (softmax(x) − onehot) / N`
/// (PyTorch's `CrossEntropyLoss`, mean reduction). Stable for large logits; `-inf` logits
/// are allowed (probability 0) as long as the label's logit is finite.
#[derive(Clone, Debug, Default)]
pub struct SoftmaxCrossEntropy {
    grad: Tensor,
}

impl SoftmaxCrossEntropy {
    /// A loss with an empty gradient buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss of `logits` against `labels` (one per row); writes the gradient.
    /// Labels outside `0..C` or a label count other than `N` are errors.
    pub fn forward(&mut self, logits: &Tensor, labels: &[u32]) -> Result<f32> {
        let [n, c] = rows_cols("SoftmaxCrossEntropy logits", logits.shape())?;
        self.grad.resize(logits.shape());
        let p = SoftmaxXent::new(n, c);
        let dlogits = Some(self.grad.data_mut());
        Ok(softmax_cross_entropy(
            Backend::Native,
            &p,
            logits.data(),
            labels,
            dlogits,
        )?)
    }

    /// The gradient of the latest forward, shaped like the logits.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }
}

fn rows_cols(what: &str, shape: &[usize]) -> Result<[usize; 2]> {
    match shape {
        [n, c] if *c > 0 => Ok([*n, *c]),
        _ => Err(shape_err(what, "expected [N, C] with C > 0", shape)),
    }
}

fn same_shape(what: &str, pred: &Tensor, target: &Tensor) -> Result<()> {
    if pred.shape() != target.shape() {
        return Err(shape_err(
            what,
            format!("expected the prediction's shape {:?}", pred.shape()),
            target.shape(),
        ));
    }
    Ok(())
}

/// Mean squared error over all elements: `mean((p − t)²)`, gradient `2(p − t)/len`.
#[derive(Clone, Debug, Default)]
pub struct MseLoss {
    grad: Tensor,
}

impl MseLoss {
    /// A loss with an empty gradient buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss; writes the gradient.
    pub fn forward(&mut self, pred: &Tensor, target: &Tensor) -> Result<f32> {
        same_shape("MseLoss target", pred, target)?;
        self.grad.resize(pred.shape());
        let scale = 1.0 / pred.len().max(1) as f32;
        let mut total = 0.0f64;
        for ((g, &p), &t) in self
            .grad
            .data_mut()
            .iter_mut()
            .zip(pred.data())
            .zip(target.data())
        {
            let d = p - t;
            total += (d * d) as f64;
            *g = 2.0 * d * scale;
        }
        Ok((total * scale as f64) as f32)
    }

    /// The gradient of the latest forward.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }
}

/// Binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`, mean over all elements):
/// `max(x, 0) − x·t + ln(1 + e^−|x|)`, gradient `(σ(x) − t)/len`. Targets in `[0, 1]`.
#[derive(Clone, Debug, Default)]
pub struct BceWithLogitsLoss {
    grad: Tensor,
}

impl BceWithLogitsLoss {
    /// A loss with an empty gradient buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss; writes the gradient.
    pub fn forward(&mut self, logits: &Tensor, target: &Tensor) -> Result<f32> {
        same_shape("BceWithLogitsLoss target", logits, target)?;
        self.grad.resize(logits.shape());
        let scale = 1.0 / logits.len().max(1) as f32;
        let mut total = 0.0f64;
        for ((g, &x), &t) in self
            .grad
            .data_mut()
            .iter_mut()
            .zip(logits.data())
            .zip(target.data())
        {
            total += (x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()) as f64;
            *g = (1.0 / (1.0 + (-x).exp()) - t) * scale;
        }
        Ok((total * scale as f64) as f32)
    }

    /// The gradient of the latest forward.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }
}

/// Binary hinge loss with targets ±1: `mean(max(0, 1 − t·x))`, gradient `−t/len` where the
/// margin is violated (`t·x < 1`), else 0.
#[derive(Clone, Debug, Default)]
pub struct HingeLoss {
    grad: Tensor,
}

impl HingeLoss {
    /// A loss with an empty gradient buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss; writes the gradient.
    pub fn forward(&mut self, pred: &Tensor, target: &Tensor) -> Result<f32> {
        same_shape("HingeLoss target", pred, target)?;
        self.grad.resize(pred.shape());
        let scale = 1.0 / pred.len().max(1) as f32;
        let mut total = 0.0f64;
        for ((g, &x), &t) in self
            .grad
            .data_mut()
            .iter_mut()
            .zip(pred.data())
            .zip(target.data())
        {
            let margin = 1.0 - t * x;
            total += margin.max(0.0) as f64;
            *g = if margin > 0.0 { -t * scale } else { 0.0 };
        }
        Ok((total * scale as f64) as f32)
    }

    /// The gradient of the latest forward.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }
}
