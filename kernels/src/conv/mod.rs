//! 2D convolution, NCHW, f32: forward (with optional bias), backward-data, backward-weight,
//! and the transposed convolution built from the same pieces.
//!
//! ```
//! use nnkern_kernels::conv::{conv2d_forward, Conv2dParams};
//! use nnkern_kernels::Backend;
//! // One 3x3 image, one channel, a 2x2 kernel of ones, stride 1, no padding.
//! let p = Conv2dParams::new(1, 1, 3, 3, 1, 2, 2).unwrap();
//! assert_eq!(p.output_shape(), [1, 1, 2, 2]);
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let w = [1.0f32; 4];
//! let mut y = [0.0f32; 4];
//! let mut ws = vec![0.0f32; p.workspace_len()];
//! conv2d_forward(Backend::Native, &p, &x, &w, Some(&[0.5]), &mut y, &mut ws).unwrap();
//! assert_eq!(y, [12.5, 16.5, 24.5, 28.5]);
//! ```
//!
//! Shapes: input `x` is `[n, c, h, w]`, weight `[k, c/groups, r, s]`, output `[n, k, oh, ow]`
//! with `oh = (h + pad_top + pad_bottom - dilation_h*(r-1) - 1) / stride_h + 1` (likewise
//! `ow`); see [`Conv2dParams`]. This is PyTorch's `conv2d` (cross-correlation).
//!
//! Backends:
//! * `Native`: 3x3, stride-1, undilated convolutions with 16 or more input and output
//!   channels per group (filling vectors of 16) run forward and backward-data as Winograd
//!   F(2x2, 3x3) (`winograd.rs`: 2.25 times fewer multiplies, channels in the vector lanes;
//!   results differ from the plain sums by rounding within a small multiple of their bound,
//!   and an infinity may turn into NaN). Otherwise, batches of 16 or more images run forward
//!   and backward-data as a direct
//!   convolution with 16 images in the vector lanes (`blocked.rs`: no im2col, no packing, no
//!   col2im) when the output channels fill its register tiles. Where the output channels
//!   fill blocks of 32 per group (column stride 1 or 2), forward runs a direct convolution
//!   with output channels in the vector lanes and inputs broadcast from the image
//!   (`kvec.rs`: no junk columns, no packing, no phase split), and so do the stride-1
//!   "same" backward-data (as the adjoint's forward) and the weight gradient (column
//!   dilation 1; `kvec_grad.rs`). Otherwise the native GEMM,
//!   images of a chunk in parallel (rayon, caller's pool). Forward
//!   and backward-weight use implicit im2col (`wide.rs`): the GEMM packs its operand straight
//!   from the (padded, phase-split) image through a row table, so no column matrix is built;
//!   1x1 stride-1 unpadded convolutions are one GEMM per image; backward-data is the forward
//!   pass of the adjoint convolution for stride-1 "same" shapes, else GEMM then col2im by
//!   blocks of input channels over several images (`col_blocks.rs`; column stride 2: summed
//!   in phase rows, `phases.rs`), except that shapes whose input channels fill blocks of
//!   32 per group (strided ones above all) run a direct convolution with input channels in
//!   the vector lanes, column phase by column phase (`kvec_strided.rs`); the weight gradient of short rows reads a channels-last
//!   copy of the images, and computes the bias gradient while gathering `dy`. Where the
//!   GEMM's B is contiguous within each image (the implicit forward's wide columns, `dy`,
//!   the channels-last positions), its panels are read in place through the row table
//!   instead of packed (`gemm::frame`);
//!   shallow products (`c/groups * r * s < 32`, a grayscale first layer) keep explicit
//!   im2col, except that unpadded stride-1 ones run direct kernels (`shallow.rs`) forward and
//!   for the weight gradient; depthwise convolutions (`groups == c == k`) run direct SIMD stencil kernels.
//! * `OpenBlas`: the same im2col code with the OpenBLAS GEMM (images one after another,
//!   OpenBLAS threads itself); the shapes with direct kernels run those (OpenBLAS has no
//!   depthwise routine).
//! * `Reference`: the direct nested loops of [`reference`](mod@reference), generic over `Float`.
//!
//! Every pass validates its buffers (exact lengths from the descriptor; `ws` at least
//! [`Conv2dParams::workspace_len`] for every backend) and overwrites its outputs. Results are
//! bitwise identical for any number of threads. NaN and infinities propagate as in the plain
//! sums (a NaN input makes the outputs it reaches NaN; padding contributes exact zeros),
//! except that on the Winograd path an infinite input or weight may give NaN instead of an
//! infinity in the outputs it reaches, and a NaN or infinite weight also reaches outputs
//! whose tap lies in the padding (as on the im2col GEMM path).

mod blocked;
mod col_blocks;
mod depthwise;
mod direct;
mod gemm_path;
mod im2col;
mod kvec;
mod kvec_grad;
mod kvec_strided;
mod params;
mod phases;
pub mod reference;
mod rows;
mod shallow;
mod stencil;
mod transposed;
mod wide;
mod winograd;

pub use params::{Conv2dBuilder, Conv2dParams};
pub use reference::{
    conv2d_backward_data_reference, conv2d_backward_weight_reference, conv2d_forward_reference,
};
pub use transposed::{
    conv_transpose2d_backward_data, conv_transpose2d_backward_weight, conv_transpose2d_forward,
    ConvTranspose2dParams,
};

use crate::error::{check_len, check_min_len, KernelError};
use crate::Backend;

/// Checks the three main buffers: input-shaped, weight-shaped, output-shaped (exact lengths).
pub(crate) fn check_main(
    p: &Conv2dParams,
    input: (&'static str, usize),
    weight: (&'static str, usize),
    output: (&'static str, usize),
) -> Result<(), KernelError> {
    check_len(input.0, p.input_len(), input.1)?;
    check_len(weight.0, p.weight_len(), weight.1)?;
    check_len(output.0, p.output_len(), output.1)
}

/// Checks an optional per-output-channel buffer of length `k`.
pub(crate) fn check_bias(
    p: &Conv2dParams,
    arg: &'static str,
    len: Option<usize>,
) -> Result<(), KernelError> {
    len.map_or(Ok(()), |l| check_len(arg, p.k, l))
}

fn check_backend(backend: Backend, p: &Conv2dParams, ws: &[f32]) -> Result<(), KernelError> {
    if !backend.available() {
        return Err(KernelError::BackendUnavailable {
            backend: backend.name(),
        });
    }
    check_min_len("ws", p.workspace_len(), ws.len())
}

/// Forward convolution: `y = conv(x, w) + bias`.
///
/// `x`: `[n, c, h, w]`; `w`: `[k, c/groups, r, s]`; `bias`: `[k]` or `None`; `y`:
/// `[n, k, oh, ow]`, overwritten; `ws`: at least `p.workspace_len()` scratch elements.
pub fn conv2d_forward(
    backend: Backend,
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check_main(p, ("x", x.len()), ("w", w.len()), ("y", y.len()))?;
    check_bias(p, "bias", bias.map(<[f32]>::len))?;
    check_backend(backend, p, ws)?;
    match backend {
        Backend::Reference => conv2d_forward_reference(p, x, w, bias, y),
        _ if depthwise::applies(p) => {
            depthwise::forward(p, x, w, bias, y);
            Ok(())
        }
        _ if p.is_depthwise() => {
            direct::depthwise_forward(p, x, w, bias, y);
            Ok(())
        }
        Backend::Native if shallow::applies(p) => {
            shallow::forward(p, x, w, bias, y);
            Ok(())
        }
        Backend::Native if p.plan.winograd.is_some_and(|b| b.forward) => {
            let wp = p.plan.winograd.expect("checked just above");
            winograd::forward(p, &wp, x, w, bias, y, ws);
            Ok(())
        }
        Backend::Native if p.plan.blocked.is_some_and(|b| b.forward) => {
            blocked::forward(p, x, w, bias, y, ws);
            Ok(())
        }
        Backend::Native => match (&p.plan.kvec, &p.plan.wide) {
            (Some(kp), _) => {
                kvec::forward(p, kp, x, w, bias, y, ws);
                Ok(())
            }
            (None, Some(wp)) => wide::forward(p, wp, x, w, bias, y, ws),
            (None, None) => gemm_path::forward(backend, p, x, w, bias, y, ws),
        },
        _ => gemm_path::forward(backend, p, x, w, bias, y, ws),
    }
}

/// Backward-data: the input gradient `dx` (`[n, c, h, w]`, overwritten) from the output
/// gradient `dy` (`[n, k, oh, ow]`) and the weight `w`.
pub fn conv2d_backward_data(
    backend: Backend,
    p: &Conv2dParams,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check_main(p, ("dx", dx.len()), ("w", w.len()), ("dy", dy.len()))?;
    check_backend(backend, p, ws)?;
    match backend {
        Backend::Reference => conv2d_backward_data_reference(p, dy, w, dx),
        _ if p.is_depthwise() => {
            let done = depthwise::applies(p)
                && (depthwise::backward_data(p, dy, w, dx)
                    || depthwise::backward_data_strided(p, dy, w, dx));
            if !done {
                direct::depthwise_backward_data(p, dy, w, dx);
            }
            Ok(())
        }
        Backend::Native if p.plan.winograd.is_some_and(|b| b.backward_data) => {
            let wp = p.plan.winograd.expect("checked just above");
            winograd::backward_data(p, &wp, dy, w, dx, ws);
            Ok(())
        }
        Backend::Native if p.plan.blocked.is_some_and(|b| b.backward_data) => {
            blocked::backward_data(p, dy, w, dx, ws);
            Ok(())
        }
        Backend::Native => match (p.adjoint(), &p.plan.kvec_strided, &p.plan.col_blocks) {
            (Some(a), _, _) => wide::backward_data(p, &a, dy, w, dx, ws),
            (None, Some(sp), _) => {
                kvec_strided::backward_data(p, sp, dy, w, dx, ws);
                Ok(())
            }
            (None, None, Some(cp)) => col_blocks::backward_data(p, cp, dy, w, dx, ws),
            (None, None, None) => gemm_path::backward_data(backend, p, dy, w, dx, ws),
        },
        _ => gemm_path::backward_data(backend, p, dy, w, dx, ws),
    }
}

/// Backward-weight: the weight gradient `dw` (`[k, c/groups, r, s]`, overwritten) from the
/// input `x` and the output gradient `dy`; with `dbias` (`[k]`, overwritten) also the bias
/// gradient, the sum of `dy` over the batch and all positions. Reductions over the batch run in
/// a fixed order, so the result does not depend on the thread count.
pub fn conv2d_backward_weight(
    backend: Backend,
    p: &Conv2dParams,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    ws: &mut [f32],
) -> Result<(), KernelError> {
    check_main(p, ("x", x.len()), ("dw", dw.len()), ("dy", dy.len()))?;
    check_bias(p, "dbias", dbias.as_ref().map(|d| d.len()))?;
    check_backend(backend, p, ws)?;
    if backend == Backend::Reference {
        return conv2d_backward_weight_reference(p, x, dy, dw, dbias);
    }
    // The native direct and implicit-im2col passes compute the bias gradient too, from dy
    // while it is in cache.
    if backend == Backend::Native && p.n > 0 && !p.is_depthwise() {
        if shallow::applies(p) {
            shallow::backward_weight(p, x, dy, dw, dbias);
            return Ok(());
        }
        if let Some(kp) = p.plan.kvec.as_ref().filter(|_| p.dilation.1 <= 2) {
            kvec_grad::backward_weight(p, kp, x, dy, dw, dbias, ws);
            return Ok(());
        }
        if let Some(wp) = &p.plan.wide {
            return wide::backward_weight(p, wp, x, dy, dw, dbias, ws);
        }
    }
    if let Some(db) = dbias {
        direct::bias_grad(p.n, p.k, p.oh * p.ow, dy, db);
    }
    if p.n == 0 {
        dw.fill(0.0);
        return Ok(());
    }
    if depthwise::applies(p) {
        depthwise::backward_weight(p, x, dy, dw);
        return Ok(());
    }
    if p.is_depthwise() {
        direct::depthwise_backward_weight(p, x, dy, dw);
        return Ok(());
    }
    gemm_path::backward_weight(backend, p, x, dy, dw, ws)
}
