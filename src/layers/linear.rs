//! [`Linear`]: `y = x·Wᵀ + b`, the PyTorch layout (`W` is `[out, in]`).

use crate::error::Result;
use crate::init::Init;
use crate::layer::{expect_same, expect_shape, init_params, Layer, Param};
use crate::rng::Rng;
use crate::tensor::Tensor;
use nnkern_kernels::{gemm, Backend, Gemm};

/// A fully connected layer on `[N, in]` inputs.
#[derive(Clone, Debug)]
pub struct Linear {
    inputs: usize,
    outputs: usize,
    weight: Param,
    bias: Option<Param>,
    y: Tensor,
    dx: Tensor,
    input_grad: bool,
}

impl Linear {
    /// A layer with PyTorch's default initialisation from `rng` and a bias.
    ///
    /// # Panics
    /// If the weight's size overflows or cannot be allocated (use [`Linear::with_init`] for a
    /// `Result`).
    pub fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Linear {
        Linear::with_init(inputs, outputs, true, Init::TorchDefault, rng)
            .expect("the weight's size must fit in memory")
    }

    /// A layer with weight initialisation `init` and an optional bias (initialised like
    /// PyTorch's: `U(-1/sqrt(in), 1/sqrt(in))`).
    ///
    /// Errors: [`Error::Shape`](crate::Error::Shape) if the weight's size overflows or cannot
    /// be allocated.
    pub fn with_init(
        inputs: usize,
        outputs: usize,
        bias: bool,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Linear> {
        let (weight, bias) = init_params(&[outputs, inputs], bias, init, inputs, outputs, rng)?;
        Ok(Linear {
            inputs,
            outputs,
            weight,
            bias,
            y: Tensor::default(),
            dx: Tensor::default(),
            input_grad: true,
        })
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias `[out]`, if any.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }
}

impl Layer for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        expect_shape("Linear input", input, &[Some(self.inputs)])?;
        Ok(vec![input[0], self.outputs])
    }

    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        expect_shape("Linear input", x.shape(), &[Some(self.inputs)])?;
        let n = x.batch();
        self.y.resize(&[n, self.outputs])?;
        let y = self.y.data_mut();
        if let Some(b) = &self.bias {
            // `max(1)`: a layer with no outputs has an empty `y` (no rows to fill).
            for row in y.chunks_exact_mut(self.outputs.max(1)) {
                row.copy_from_slice(b.value.data());
            }
        }
        let beta = if self.bias.is_some() { 1.0 } else { 0.0 };
        let g = Gemm::new(n, self.outputs, self.inputs)
            .trans_b(true)
            .beta(beta);
        gemm(Backend::Native, &g, x.data(), self.weight.value.data(), y)?;
        Ok(&self.y)
    }

    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        expect_shape("Linear input", x.shape(), &[Some(self.inputs)])?;
        let n = x.batch();
        expect_same("Linear output gradient", dy.shape(), &[n, self.outputs])?;
        // dW[out, in] = dyᵀ[out, N] · x[N, in]
        let g = Gemm::new(self.outputs, self.inputs, n).trans_a(true);
        gemm(
            Backend::Native,
            &g,
            dy.data(),
            x.data(),
            self.weight.grad.data_mut(),
        )?;
        if let Some(b) = &mut self.bias {
            let db = b.grad.data_mut();
            db.fill(0.0);
            for row in dy.data().chunks_exact(self.outputs.max(1)) {
                for (d, &v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
        }
        if self.input_grad {
            // dx[N, in] = dy[N, out] · W[out, in]
            self.dx.resize(&[n, self.inputs])?;
            let g = Gemm::new(n, self.inputs, self.outputs);
            gemm(
                Backend::Native,
                &g,
                dy.data(),
                self.weight.value.data(),
                self.dx.data_mut(),
            )?;
        } else {
            self.dx.resize(&[0])?;
        }
        Ok(&self.dx)
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn set_input_grad(&mut self, on: bool) {
        self.input_grad = on;
    }

    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param)) {
        Param::visit_pair(&self.weight, &self.bias, f);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut Param)) {
        Param::visit_pair_mut(&mut self.weight, &mut self.bias, f);
    }
}
