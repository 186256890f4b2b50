//! Element-wise activation layers ([`Activation`]: ReLU, LeakyReLU, Sigmoid, Tanh, GELU) and
//! the row-wise [`Softmax`] over the last dimension.

use super::eltwise;
use crate::error::Result;
use crate::layer::{expect_same, Layer};
use crate::tensor::Tensor;

/// Which element-wise function an [`Activation`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActKind {
    /// `max(x, 0)` (NaN propagates).
    Relu,
    /// `x` for `x > 0`, `slope·x` otherwise.
    LeakyRelu(f32),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x·Φ(x)` with the exact normal CDF (PyTorch's default `GELU`).
    Gelu,
}

/// An element-wise activation layer; any input shape.
#[derive(Clone, Debug)]
pub struct Activation {
    kind: ActKind,
    y: Tensor,
    dx: Tensor,
}

impl Activation {
    /// An activation layer of `kind`.
    pub fn new(kind: ActKind) -> Activation {
        Activation {
            kind,
            y: Tensor::default(),
            dx: Tensor::default(),
        }
    }
    /// ReLU.
    pub fn relu() -> Activation {
        Activation::new(ActKind::Relu)
    }
    /// LeakyReLU with negative slope `slope` (PyTorch's default is 0.01).
    pub fn leaky_relu(slope: f32) -> Activation {
        Activation::new(ActKind::LeakyRelu(slope))
    }
    /// Sigmoid.
    pub fn sigmoid() -> Activation {
        Activation::new(ActKind::Sigmoid)
    }
    /// Tanh.
    pub fn tanh() -> Activation {
        Activation::new(ActKind::Tanh)
    }
    /// GELU (exact, erf-based).
    pub fn gelu() -> Activation {
        Activation::new(ActKind::Gelu)
    }
    /// The function applied.
    pub fn act_kind(&self) -> ActKind {
        self.kind
    }
}

impl Layer for Activation {
    fn kind(&self) -> &'static str {
        match self.kind {
            ActKind::Relu => "ReLU",
            ActKind::LeakyRelu(_) => "LeakyReLU",
            ActKind::Sigmoid => "Sigmoid",
            ActKind::Tanh => "Tanh",
            ActKind::Gelu => "GELU",
        }
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.y.resize(x.shape());
        eltwise::forward(self.kind, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        expect_same("activation output gradient", dy.shape(), x.shape())?;
        expect_same(
            "activation output (forward first)",
            self.y.shape(),
            x.shape(),
        )?;
        self.dx.resize(x.shape());
        eltwise::backward(
            self.kind,
            x.data(),
            self.y.data(),
            dy.data(),
            self.dx.data_mut(),
        )?;
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

/// Softmax over the last dimension (each row sums to 1). For training a classifier use the
/// fused [`crate::loss::SoftmaxCrossEntropy`] on logits instead: it is faster and stabler.
#[derive(Clone, Debug, Default)]
pub struct Softmax {
    y: Tensor,
    dx: Tensor,
}

impl Softmax {
    /// A softmax layer.
    pub fn new() -> Softmax {
        Softmax::default()
    }
}

fn row_len(shape: &[usize]) -> Result<usize> {
    shape
        .last()
        .copied()
        .filter(|&c| c > 0)
        .ok_or_else(|| crate::error::shape_err("Softmax input", "expected [.., C > 0]", shape))
}

impl Layer for Softmax {
    fn kind(&self) -> &'static str {
        "Softmax"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        row_len(input)?;
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let c = row_len(x.shape())?;
        self.y.resize(x.shape());
        eltwise::softmax_forward(c, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let c = row_len(x.shape())?;
        expect_same("Softmax output gradient", dy.shape(), x.shape())?;
        expect_same("Softmax output (forward first)", self.y.shape(), x.shape())?;
        self.dx.resize(x.shape());
        eltwise::softmax_backward(c, self.y.data(), dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}
