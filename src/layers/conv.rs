//! [`Conv2d`]: 2D convolution, NCHW, with stride, padding, dilation and groups (PyTorch's
//! `nn.Conv2d`; weight `[out, in/groups, kh, kw]`).

use crate::error::{shape_err, Error, Result};
use crate::init::Init;
use crate::layer::{expect_same, init_params, Layer, Param};
use crate::rng::Rng;
use crate::tensor::Tensor;
use nnkern_kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, Conv2dParams,
};
use nnkern_kernels::Backend;

/// Settings of a [`Conv2d`] beyond channels and kernel size; `[height, width]` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Stride (default 1).
    pub stride: [usize; 2],
    /// Zero padding on each side (default 0).
    pub padding: [usize; 2],
    /// Dilation (default 1).
    pub dilation: [usize; 2],
    /// Groups; `in` and `out` channels must be multiples (default 1).
    pub groups: usize,
    /// Whether the layer has a bias (default true).
    pub bias: bool,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }
}

/// A 2D convolution layer. The kernel descriptor and workspace are built for the first input
/// shape and rebuilt only when the shape changes.
#[derive(Clone, Debug)]
pub struct Conv2d {
    in_ch: usize,
    out_ch: usize,
    kernel: [usize; 2],
    opts: Conv2dOptions,
    weight: Param,
    bias: Option<Param>,
    desc: Option<([usize; 4], Conv2dParams)>,
    ws: Vec<f32>,
    y: Tensor,
    dx: Tensor,
    input_grad: bool,
}

impl Conv2d {
    /// A square `kernel`×`kernel` convolution, stride 1, no padding, with bias, PyTorch's
    /// default initialisation from `rng`.
    ///
    /// # Panics
    /// If a size is zero (use [`Conv2d::with_options`] for a `Result`).
    pub fn new(in_ch: usize, out_ch: usize, kernel: usize, rng: &mut Rng) -> Conv2d {
        Conv2d::with_options(
            in_ch,
            out_ch,
            [kernel, kernel],
            Conv2dOptions::default(),
            Init::TorchDefault,
            rng,
        )
        .expect("channels and kernel size must be positive")
    }

    /// A convolution with every setting; the weight is initialised with `init`
    /// (fan_in = `in/groups·kh·kw`), the bias like PyTorch's.
    pub fn with_options(
        in_ch: usize,
        out_ch: usize,
        kernel: [usize; 2],
        opts: Conv2dOptions,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        let g = opts.groups;
        let sizes = [in_ch, out_ch, kernel[0], kernel[1], g];
        let positive = sizes.iter().all(|&v| v > 0)
            && opts.stride.iter().chain(&opts.dilation).all(|&v| v > 0);
        if !positive || !in_ch.is_multiple_of(g) || !out_ch.is_multiple_of(g) {
            return Err(Error::Invalid(format!(
                "Conv2d: sizes must be positive and channels ({in_ch} in, {out_ch} out) \
                 multiples of groups ({g})"
            )));
        }
        // Saturating: a weight that large fails in `init_params` (its size overflows).
        let rs = kernel[0].saturating_mul(kernel[1]);
        let (fan_in, fan_out) = (
            (in_ch / g).saturating_mul(rs),
            (out_ch / g).saturating_mul(rs),
        );
        let shape = [out_ch, in_ch / g, kernel[0], kernel[1]];
        let (weight, bias) = init_params(&shape, opts.bias, init, fan_in, fan_out, rng)?;
        Ok(Conv2d {
            in_ch,
            out_ch,
            kernel,
            opts,
            weight,
            bias,
            desc: None,
            ws: Vec::new(),
            y: Tensor::default(),
            dx: Tensor::default(),
            input_grad: true,
        })
    }

    /// The weight `[out, in/groups, kh, kw]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias `[out]`, if any.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    fn build(&self, input: &[usize]) -> Result<Conv2dParams> {
        let &[n, c, h, w] = input else {
            return Err(shape_err("Conv2d input", "expected [N, C, H, W]", input));
        };
        if c != self.in_ch {
            let want = format!("expected [N, {}, H, W]", self.in_ch);
            return Err(shape_err("Conv2d input", want, input));
        }
        let o = &self.opts;
        let (r, s) = (self.kernel[0], self.kernel[1]);
        Ok(Conv2dParams::builder(n, c, h, w, self.out_ch, r, s)
            .stride(o.stride[0], o.stride[1])
            .pad(o.padding[0], o.padding[1])
            .dilation(o.dilation[0], o.dilation[1])
            .groups(o.groups)
            .build()?)
    }

    /// The descriptor for `input`, rebuilt (and the workspace grown) on a new shape.
    fn desc(&mut self, input: &[usize]) -> Result<Conv2dParams> {
        if let Some((shape, p)) = &self.desc {
            if shape[..] == *input {
                return Ok(*p);
            }
        }
        let p = self.build(input)?;
        if self.ws.len() < p.workspace_len() {
            self.ws.resize(p.workspace_len(), 0.0);
        }
        let shape = [input[0], input[1], input[2], input[3]];
        self.desc = Some((shape, p));
        Ok(p)
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self.build(input)?.output_shape().to_vec())
    }

    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let p = self.desc(x.shape())?;
        self.y.resize(&p.output_shape())?;
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let w = self.weight.value.data();
        conv2d_forward(
            Backend::Native,
            &p,
            x.data(),
            w,
            bias,
            self.y.data_mut(),
            &mut self.ws,
        )?;
        Ok(&self.y)
    }

    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let p = self.desc(x.shape())?;
        expect_same("Conv2d output gradient", dy.shape(), &p.output_shape())?;
        let dbias = self.bias.as_mut().map(|b| b.grad.data_mut());
        let dw = self.weight.grad.data_mut();
        conv2d_backward_weight(
            Backend::Native,
            &p,
            x.data(),
            dy.data(),
            dw,
            dbias,
            &mut self.ws,
        )?;
        if self.input_grad {
            self.dx.resize(x.shape())?;
            let w = self.weight.value.data();
            conv2d_backward_data(
                Backend::Native,
                &p,
                dy.data(),
                w,
                self.dx.data_mut(),
                &mut self.ws,
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
