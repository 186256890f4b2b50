//! Element-wise activation layers ([`Activation`]: ReLU, LeakyReLU, Sigmoid, Tanh, GELU) and
//! the row-wise [`Softmax`] over the last dimension.

use crate::error::Result;
use crate::layer::{expect_same, Layer};
use crate::tensor::Tensor;
use nnkern_kernels::activation::{softmax_backward, softmax_forward};
use nnkern_kernels::{activation_backward, activation_forward, Backend};

/// Which element-wise function an [`Activation`] applies: the kernel crate's
/// [`nnkern_kernels::Activation`] (ReLU, LeakyReLU, ELU, sigmoid, tanh, GELU exact and tanh
/// form, SiLU, softplus; NaN propagates through each).
pub use nnkern_kernels::Activation as ActKind;

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
            ActKind::Elu(_) => "ELU",
            ActKind::GeluTanh => "GELU(tanh)",
            ActKind::Silu => "SiLU",
            ActKind::Softplus => "Softplus",
        }
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.y.resize(x.shape())?;
        activation_forward(Backend::Native, self.kind, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        expect_same("activation output gradient", dy.shape(), x.shape())?;
        expect_same(
            "activation output (forward first)",
            self.y.shape(),
            x.shape(),
        )?;
        self.dx.resize(x.shape())?;
        let dx = self.dx.data_mut();
        activation_backward(
            Backend::Native,
            self.kind,
            x.data(),
            self.y.data(),
            dy.data(),
            dx,
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
        self.y.resize(x.shape())?;
        softmax_forward(Backend::Native, x.len() / c, c, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let c = row_len(x.shape())?;
        expect_same("Softmax output gradient", dy.shape(), x.shape())?;
        expect_same("Softmax output (forward first)", self.y.shape(), x.shape())?;
        self.dx.resize(x.shape())?;
        let rows = x.len() / c;
        softmax_backward(
            Backend::Native,
            rows,
            c,
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
