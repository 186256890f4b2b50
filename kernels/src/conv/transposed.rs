//! Transposed convolution (PyTorch's `conv_transpose2d`), built from the convolution passes:
//! its forward is the backward-data of a convolution, its backward-data is that convolution's
//! forward, and its weight gradient is that convolution's weight gradient with the roles of
//! input and output gradient swapped.

use super::params::Conv2dParams;
use super::reference::bias_grad_reference;
use super::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward, direct};
use crate::error::{check_len, KernelError};
use crate::Backend;
use rayon::prelude::*;

/// A validated transposed convolution: input `[n, c_in, h, w]`, weight
/// `[c_in, c_out/groups, r, s]` (PyTorch's `ConvTranspose2d` layout), output
/// `[n, c_out, oh, ow]` with `oh = (h-1)*stride_h - pad_top - pad_bottom + dilation_h*(r-1)
/// + 1 + output_padding_h` (likewise `ow`).
///
/// It is the adjoint of the convolution [`conv`](Self::conv) that maps `[n, c_out, oh, ow]` to
/// `[n, c_in, h, w]` with the same kernel, stride, padding, dilation and groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dParams {
    conv: Conv2dParams,
}

impl ConvTranspose2dParams {
    /// The transposed convolution of `conv`: input `[n, conv.k, conv.oh, conv.ow]`, output
    /// `[n, conv.c, conv.h, conv.w]`, the same weight buffer.
    pub fn from_conv(conv: Conv2dParams) -> Self {
        ConvTranspose2dParams { conv }
    }

    /// Builds from PyTorch's arguments: `n, c_in, h, w` of the input, `c_out`, an `r x s`
    /// kernel, `stride` and `dilation` per axis, `padding` as (top, bottom, left, right),
    /// `output_padding` per axis (each smaller than that axis's stride), `groups`.
    ///
    /// Errors: zero sizes, `c_in`/`c_out` not divisible by `groups`, an output padding not
    /// smaller than the stride, padding that leaves no output, overflow.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: [usize; 4],
        c_out: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize, usize, usize),
        dilation: (usize, usize),
        output_padding: (usize, usize),
        groups: usize,
    ) -> Result<Self, KernelError> {
        let [n, c_in, h, w] = input;
        let invalid = |arg, what: String| KernelError::InvalidParam { arg, what };
        for (arg, v) in [
            ("c_in", c_in),
            ("c_out", c_out),
            ("h", h),
            ("w", w),
            ("groups", groups),
        ] {
            if v == 0 {
                return Err(invalid(arg, "must be at least 1".into()));
            }
        }
        for (arg, v) in [("c_in", c_in), ("c_out", c_out)] {
            if v % groups != 0 {
                return Err(invalid(
                    arg,
                    format!("{v} is not divisible by groups = {groups}"),
                ));
            }
        }
        for (arg, op, st) in [
            ("output_padding_h", output_padding.0, stride.0),
            ("output_padding_w", output_padding.1, stride.1),
        ] {
            if op >= st.max(1) {
                return Err(invalid(
                    arg,
                    format!("{op} must be smaller than the stride {st}"),
                ));
            }
        }
        // Sums of caller-given sizes are checked: huge paddings are an error, not a panic.
        let add = |arg, a: usize, b: usize| a.checked_add(b).ok_or(KernelError::Overflow { arg });
        let oh = out_len(
            "h",
            h,
            stride.0,
            add("padding", padding.0, padding.1)?,
            kernel.0,
            dilation.0,
        )?;
        let ow = out_len(
            "w",
            w,
            stride.1,
            add("padding", padding.2, padding.3)?,
            kernel.1,
            dilation.1,
        )?;
        let conv = Conv2dParams::builder(
            n,
            c_out,
            add("output_padding_h", oh, output_padding.0)?,
            add("output_padding_w", ow, output_padding.1)?,
            c_in,
            kernel.0,
            kernel.1,
        )
        .stride(stride.0, stride.1)
        .padding(padding.0, padding.1, padding.2, padding.3)
        .dilation(dilation.0, dilation.1)
        .groups(groups)
        .build()?;
        debug_assert_eq!((conv.oh, conv.ow), (h, w));
        Ok(ConvTranspose2dParams { conv })
    }

    /// The convolution whose adjoint this is.
    pub fn conv(&self) -> &Conv2dParams {
        &self.conv
    }
    /// `[n, c_in, h, w]`.
    pub fn input_shape(&self) -> [usize; 4] {
        self.conv.output_shape()
    }
    /// `[n, c_out, oh, ow]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.conv.input_shape()
    }
    /// `[c_in, c_out/groups, r, s]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        self.conv.weight_shape()
    }
    /// Scratch elements every pass needs (that of [`conv`](Self::conv)).
    pub fn workspace_len(&self) -> usize {
        self.conv.workspace_len()
    }
}

/// `(len-1)*stride - pad + dilation*(kernel-1) + 1`, checked.
fn out_len(
    arg: &'static str,
    len: usize,
    stride: usize,
    pad: usize,
    kernel: usize,
    dilation: usize,
) -> Result<usize, KernelError> {
    let span = (len - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(dilation.checked_mul(kernel.saturating_sub(1))?))
        .and_then(|v| v.checked_add(1))
        .ok_or(KernelError::Overflow { arg })?;
    if stride == 0 || dilation == 0 || kernel == 0 {
        // Let the convolution builder name the zero parameter.
        return Ok(span.max(1));
    }
    span.checked_sub(pad)
        .filter(|&v| v > 0)
        .ok_or_else(|| KernelError::InvalidParam {
            arg: "padding",
            what: format!("padding {pad} leaves no output along `{arg}` (extent {span})"),
        })
}

fn check(
    p: &ConvTranspose2dParams,
    x: (&'static str, usize),
    w: usize,
    y: (&'static str, usize),
) -> Result<(), KernelError> {
    check_len(x.0, p.conv.output_len(), x.1)?;
    check_len("w", p.conv.weight_len(), w)?;
    check_len(y.0, p.conv.input_len(), y.1)
}

/// Transposed-convolution forward: `y` (`[n, c_out, oh, ow]`, overwritten) from `x`
/// (`[n, c_in, h, w]`), the weight and an optional bias (`[c_out]`).
pub fn conv_transpose2d_forward(
    backend: Backend,
    p: &ConvTranspose2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check(p, ("x", x.len()), w.len(), ("y", y.len()))?;
    if let Some(b) = bias {
        check_len("bias", p.conv.c, b.len())?;
    }
    conv2d_backward_data(backend, &p.conv, x, w, y, ws)?;
    if let Some(b) = bias {
        let hw = p.conv.h * p.conv.w;
        y.par_chunks_mut(hw)
            .enumerate()
            .with_min_len(16)
            .for_each(|(plane, yp)| {
                let bv = b[plane % p.conv.c];
                yp.iter_mut().for_each(|v| *v += bv);
            });
    }
    Ok(())
}

/// Transposed-convolution backward-data: `dx` (`[n, c_in, h, w]`, overwritten) from `dy`
/// (`[n, c_out, oh, ow]`).
pub fn conv_transpose2d_backward_data(
    backend: Backend,
    p: &ConvTranspose2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check(p, ("dx", dx.len()), w.len(), ("dy", dy.len()))?;
    conv2d_forward(backend, &p.conv, dy, w, None, dx, ws)
}

/// Transposed-convolution backward-weight: `dw` (`[c_in, c_out/groups, r, s]`, overwritten)
/// and optionally `dbias` (`[c_out]`, overwritten: `dy` summed over batch and positions).
pub fn conv_transpose2d_backward_weight(
    backend: Backend,
    p: &ConvTranspose2dParams,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check(p, ("x", x.len()), dw.len(), ("dy", dy.len()))?;
    if let Some(db) = &dbias {
        check_len("dbias", p.conv.c, db.len())?;
    }
    conv2d_backward_weight(backend, &p.conv, dy, x, dw, None, ws)?;
    if let Some(db) = dbias {
        let (n, c, hw) = (p.conv.n, p.conv.c, p.conv.h * p.conv.w);
        match backend {
            Backend::Reference => bias_grad_reference(n, c, hw, dy, db),
            _ => direct::bias_grad(n, c, hw, dy, db),
        }
    }
    Ok(())
}
