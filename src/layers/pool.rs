//! Pooling layers: [`MaxPool2d`], [`AvgPool2d`] (PyTorch's `nn.MaxPool2d`/`nn.AvgPool2d`,
//! NCHW) and [`GlobalAvgPool`].

use crate::error::{shape_err, Result};
use crate::layer::{expect_same, Layer};
use crate::tensor::Tensor;
use nnkern_kernels::pool::{
    avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward, global_avg_pool2d_forward,
    max_pool2d_backward, max_pool2d_forward, Pool2dParams,
};
use nnkern_kernels::Backend;

/// Window settings shared by the pooling layers; `[height, width]` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Window {
    fn params(&self, what: &str, input: &[usize]) -> Result<Pool2dParams> {
        let &[n, c, h, w] = input else {
            return Err(shape_err(what, "expected [N, C, H, W]", input));
        };
        Ok(Pool2dParams::new(
            [n, c, h, w],
            self.kernel,
            self.stride,
            self.padding,
        )?)
    }
}

/// Max pooling; backward routes each output gradient to the window's maximum (the argmax
/// kept by forward; the first maximum on ties, NaN wins).
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    win: Window,
    argmax: Vec<u32>,
    y: Tensor,
    dx: Tensor,
}

impl MaxPool2d {
    /// A `k`×`k` window with stride `k` and no padding (PyTorch's default stride).
    pub fn new(k: usize) -> MaxPool2d {
        MaxPool2d::with_options([k, k], [k, k], [0, 0])
    }

    /// Any window, stride and padding (padding must be smaller than the window).
    pub fn with_options(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> MaxPool2d {
        MaxPool2d {
            win: Window {
                kernel,
                stride,
                padding,
            },
            argmax: Vec::new(),
            y: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "MaxPool2d"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self
            .win
            .params("MaxPool2d input", input)?
            .output_shape()
            .to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let p = self.win.params("MaxPool2d input", x.shape())?;
        self.y.resize(&p.output_shape())?;
        self.argmax.resize(p.output_len(), 0);
        max_pool2d_forward(
            Backend::Native,
            &p,
            x.data(),
            self.y.data_mut(),
            &mut self.argmax,
        )?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let p = self.win.params("MaxPool2d input", x.shape())?;
        expect_same("MaxPool2d output gradient", dy.shape(), &p.output_shape())?;
        self.dx.resize(x.shape())?;
        max_pool2d_backward(
            Backend::Native,
            &p,
            dy.data(),
            &self.argmax,
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

/// Average pooling; `count_include_pad` (PyTorch's default, true) divides by the window size
/// even where it overlaps the padding.
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    win: Window,
    count_include_pad: bool,
    y: Tensor,
    dx: Tensor,
}

impl AvgPool2d {
    /// A `k`×`k` window with stride `k` and no padding.
    pub fn new(k: usize) -> AvgPool2d {
        AvgPool2d::with_options([k, k], [k, k], [0, 0], true)
    }

    /// Any window, stride, padding and divisor rule.
    pub fn with_options(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> AvgPool2d {
        AvgPool2d {
            win: Window {
                kernel,
                stride,
                padding,
            },
            count_include_pad,
            y: Tensor::default(),
            dx: Tensor::default(),
        }
    }
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "AvgPool2d"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self
            .win
            .params("AvgPool2d input", input)?
            .output_shape()
            .to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let p = self.win.params("AvgPool2d input", x.shape())?;
        self.y.resize(&p.output_shape())?;
        let cip = self.count_include_pad;
        avg_pool2d_forward(Backend::Native, &p, cip, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let p = self.win.params("AvgPool2d input", x.shape())?;
        expect_same("AvgPool2d output gradient", dy.shape(), &p.output_shape())?;
        self.dx.resize(x.shape())?;
        let cip = self.count_include_pad;
        avg_pool2d_backward(Backend::Native, &p, cip, dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

/// Global average pooling: `[N, C, H, W]` → `[N, C]` (Keras' `GlobalAveragePooling2D`; PyTorch's
/// `AdaptiveAvgPool2d(1)` followed by a flatten).
#[derive(Clone, Debug, Default)]
pub struct GlobalAvgPool {
    y: Tensor,
    dx: Tensor,
}

impl GlobalAvgPool {
    /// A global average pooling layer.
    pub fn new() -> GlobalAvgPool {
        GlobalAvgPool::default()
    }
}

fn nchw(input: &[usize]) -> Result<[usize; 4]> {
    match input {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(shape_err(
            "GlobalAvgPool input",
            "expected [N, C, H, W]",
            input,
        )),
    }
}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "GlobalAvgPool"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [n, c, _, _] = nchw(input)?;
        Ok(vec![n, c])
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        let s = nchw(x.shape())?;
        self.y.resize(&[s[0], s[1]])?;
        global_avg_pool2d_forward(Backend::Native, s, x.data(), self.y.data_mut())?;
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        let s = nchw(x.shape())?;
        expect_same("GlobalAvgPool output gradient", dy.shape(), &[s[0], s[1]])?;
        self.dx.resize(x.shape())?;
        global_avg_pool2d_backward(Backend::Native, s, dy.data(), self.dx.data_mut())?;
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}
