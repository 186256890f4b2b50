//! Losses: each computes the mean loss over the batch and, in the same pass, its gradient with
//! respect to the prediction (read it with `grad()` and feed it to the model's `backward`).
//! The gradient buffer is reused across calls.

use crate::error::{shape_err, Result};
use crate::tensor::Tensor;
use nnkern_kernels::loss::{bce_with_logits_loss, hinge_loss, mse_loss};
use nnkern_kernels::{softmax_cross_entropy, Backend, Reduction, SoftmaxXent};

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
        self.grad.resize(logits.shape())?;
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

/// The signature shared by the element-wise loss kernels.
type PointwiseKernel = fn(
    Backend,
    &[f32],
    &[f32],
    Reduction,
    Option<&mut [f32]>,
) -> std::result::Result<f32, nnkern_kernels::KernelError>;

/// Checks shapes, sizes the gradient and runs an element-wise loss kernel (mean reduction).
fn pointwise(
    what: &str,
    kernel: PointwiseKernel,
    pred: &Tensor,
    target: &Tensor,
    grad: &mut Tensor,
) -> Result<f32> {
    if pred.shape() != target.shape() {
        return Err(shape_err(
            what,
            format!("expected the prediction's shape {:?}", pred.shape()),
            target.shape(),
        ));
    }
    grad.resize(pred.shape())?;
    let g = Some(grad.data_mut());
    Ok(kernel(
        Backend::Native,
        pred.data(),
        target.data(),
        Reduction::Mean,
        g,
    )?)
}

macro_rules! pointwise_loss {
    ($(#[$doc:meta])* $name:ident, $kernel:path, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $name {
            grad: Tensor,
        }

        impl $name {
            /// A loss with an empty gradient buffer.
            pub fn new() -> Self {
                Self::default()
            }

            /// The mean loss of `pred` against `target` (same shape); writes the gradient.
            pub fn forward(&mut self, pred: &Tensor, target: &Tensor) -> Result<f32> {
                pointwise($what, $kernel, pred, target, &mut self.grad)
            }

            /// The gradient of the latest forward, shaped like the prediction.
            pub fn grad(&self) -> &Tensor {
                &self.grad
            }
        }
    };
}

pointwise_loss!(
    /// Mean squared error over all elements: `mean((p − t)²)`, gradient `2(p − t)/len`.
    /// NaN in either input propagates.
    MseLoss,
    mse_loss,
    "MseLoss target"
);

pointwise_loss!(
    /// Binary cross-entropy on logits (PyTorch's `BCEWithLogitsLoss`, mean over all elements):
    /// `max(x, 0) − x·t + ln(1 + e^−|x|)`, gradient `(σ(x) − t)/len`; stable for any logit.
    BceWithLogitsLoss,
    bce_with_logits_loss,
    "BceWithLogitsLoss target"
);

pointwise_loss!(
    /// Binary hinge loss: `mean(max(0, 1 − y·x))` with labels `y = ±1` (or `0` for −1, so
    /// `{0, 1}` targets work too: the policy of the kernel [`hinge_loss`]), gradient
    /// `−y/len` inside the margin, 0 outside and at the kink. Any other target value (0.5,
    /// NaN, ...) is `Error::Kernel(KernelError::InvalidParam { arg: "target", .. })`.
    HingeLoss,
    hinge_loss,
    "HingeLoss target"
);
