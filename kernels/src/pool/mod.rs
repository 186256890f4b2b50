//! 2D pooling over NCHW tensors: max (with argmax), average (padded cells counted or not) and
//! global average, forward and backward.
//!
//! ```
//! use nnkern_kernels::pool::{max_pool2d_forward, max_pool2d_backward, Pool2dParams};
//! use nnkern_kernels::Backend;
//! // One 1x1x2x4 image, 2x2 windows with stride 2: output 1x1x1x2.
//! let p = Pool2dParams::new([1, 1, 2, 4], [2, 2], [2, 2], [0, 0]).unwrap();
//! let x = [1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 7.0, 6.0];
//! let (mut y, mut arg) = ([0.0f32; 2], [0u32; 2]);
//! max_pool2d_forward(Backend::Native, &p, &x, &mut y, &mut arg).unwrap();
//! assert_eq!((y, arg), ([5.0, 7.0], [1, 6]));
//! let mut dx = [0.0f32; 8];
//! max_pool2d_backward(Backend::Native, &p, &[1.0, 2.0], &arg, &mut dx).unwrap();
//! assert_eq!(dx, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
//! ```
//!
//! Semantics are PyTorch's (`max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d(x, 1)`) with
//! `ceil_mode = false` and `dilation = 1`:
//! * output size per axis `(in + 2 * pad - kernel) / stride + 1`; padding must be smaller than
//!   the kernel (PyTorch asks for `pad <= kernel / 2`; every such call is accepted here, and the
//!   few more we accept still give every window at least one real cell).
//! * Max pooling ignores padded cells. Its argmax is the offset `ih * w + iw` of the chosen cell
//!   within its `h x w` input plane, as a `u32`. Windows are scanned row by row; a cell replaces
//!   the current maximum when it is greater or NaN. So ties go to the **first** cell, a window
//!   holding NaN outputs NaN with the argmax of its **last** NaN (exactly PyTorch's CPU rule), and
//!   a window of `-inf` outputs `-inf` with the argmax of its first cell.
//! * Average pooling divides by `kernel_h * kernel_w` when `count_include_pad` is true, and by
//!   the number of real cells in the window otherwise. NaN and infinities propagate as in IEEE
//!   sums (`inf + -inf` is NaN).
//! * The backward passes overwrite `dx` (they do not accumulate into it).
//!
//! Buffers may be longer than the shape needs; only the leading elements are touched. Errors
//! name the argument: short buffers, bad shapes (zero or overflowing sizes, zero stride or
//! kernel, a window larger than the padded input, padding not smaller than the kernel), and in
//! the max backward an argmax outside its window (then `dx` is left partially written).
//!
//! Threads: work is split over whole `(n, c)` planes, so every output is computed by one thread
//! in a fixed order: results are bitwise identical for any pool size. Small inputs stay on the
//! calling thread. `Backend::OpenBlas` (OpenBLAS has no pooling) runs the native path;
//! `Backend::Reference` the plain loops of [`mod@reference`].

mod avg;
mod global;
mod max;
mod max_blocked;
pub mod reference;
mod rowops;

pub use global::{global_avg_pool2d_backward, global_avg_pool2d_forward};
pub use reference::{
    avg_pool2d_backward_reference, avg_pool2d_forward_reference,
    global_avg_pool2d_backward_reference, global_avg_pool2d_forward_reference,
    max_pool2d_backward_reference, max_pool2d_forward_reference,
};

use crate::error::{check_min_len, checked_mul, checked_product, KernelError};
use crate::Backend;
use rayon::prelude::*;

/// A validated 2D pooling descriptor: input shape `[n, c, h, w]`, window `kernel_h x kernel_w`,
/// stride and zero padding per axis. Build it with [`Pool2dParams::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

fn invalid(arg: &'static str, what: impl Into<String>) -> KernelError {
    KernelError::InvalidParam {
        arg,
        what: what.into(),
    }
}

impl Pool2dParams {
    /// Validates a pooling of an NCHW `input` shape with `kernel`, `stride` and `padding`, each
    /// given as `[height, width]`.
    ///
    /// Errors: `h` or `w` zero, a zero kernel or stride, `padding >= kernel`, a kernel larger
    /// than the padded input, an element count that overflows `usize`, or a plane of more than
    /// `u32::MAX` elements (argmax offsets are `u32`). `n` or `c` may be zero (empty tensors).
    pub fn new(
        input: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Pool2dParams, KernelError> {
        let [n, c, h, w] = input;
        let names = [
            ("h", "kernel_h", "stride_h", "pad_h"),
            ("w", "kernel_w", "stride_w", "pad_w"),
        ];
        let mut out = [0usize; 2];
        for axis in 0..2 {
            let (len_name, k_name, s_name, p_name) = names[axis];
            let len = input[2 + axis];
            let (k, s, p) = (kernel[axis], stride[axis], padding[axis]);
            if len == 0 {
                return Err(invalid(len_name, "input height and width must be positive"));
            }
            if k == 0 {
                return Err(invalid(k_name, "kernel size must be positive"));
            }
            if s == 0 {
                return Err(invalid(s_name, "stride must be positive"));
            }
            if p >= k {
                return Err(invalid(
                    p_name,
                    format!("padding {p} must be smaller than the kernel {k}"),
                ));
            }
            let padded = p
                .checked_mul(2)
                .and_then(|p2| p2.checked_add(len))
                .ok_or(KernelError::Overflow { arg: p_name })?;
            if k > padded {
                return Err(invalid(
                    k_name,
                    format!("kernel {k} is larger than the padded input {padded}"),
                ));
            }
            out[axis] = (padded - k) / s + 1;
        }
        let plane = checked_mul("input", h, w)?;
        if plane > u32::MAX as usize {
            return Err(invalid(
                "input",
                format!("an h*w plane of {plane} elements does not fit u32 argmax offsets"),
            ));
        }
        checked_product("input", &[n, c, h, w])?;
        checked_product("output", &[n, c, out[0], out[1]])?;
        Ok(Pool2dParams {
            n,
            c,
            h,
            w,
            kh: kernel[0],
            kw: kernel[1],
            sh: stride[0],
            sw: stride[1],
            ph: padding[0],
            pw: padding[1],
            oh: out[0],
            ow: out[1],
        })
    }

    /// `[n, c, h, w]` of the input.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    /// `[n, c, out_h, out_w]` of the output (and of the argmax).
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// `[kernel_h, kernel_w]`.
    pub fn kernel(&self) -> [usize; 2] {
        [self.kh, self.kw]
    }

    /// `[stride_h, stride_w]`.
    pub fn stride(&self) -> [usize; 2] {
        [self.sh, self.sw]
    }

    /// `[pad_h, pad_w]`.
    pub fn padding(&self) -> [usize; 2] {
        [self.ph, self.pw]
    }

    /// Elements of the input (`n * c * h * w`).
    pub fn input_len(&self) -> usize {
        self.planes() * self.in_plane()
    }

    /// Elements of the output (`n * c * out_h * out_w`).
    pub fn output_len(&self) -> usize {
        self.planes() * self.out_plane()
    }

    pub(crate) fn planes(&self) -> usize {
        self.n * self.c
    }

    pub(crate) fn in_plane(&self) -> usize {
        self.h * self.w
    }

    pub(crate) fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// The rows `[start, end)` of the input that output row `o` covers (clipped to the input).
    #[inline(always)]
    pub(crate) fn rows(&self, o: usize) -> (usize, usize) {
        window(o, self.sh, self.ph, self.kh, self.h)
    }

    /// The columns `[start, end)` of the input that output column `o` covers.
    #[inline(always)]
    pub(crate) fn cols(&self, o: usize) -> (usize, usize) {
        window(o, self.sw, self.pw, self.kw, self.w)
    }
}

/// The clipped input range of output index `o` along one axis. Never empty (see `new`).
#[inline(always)]
fn window(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
    let start = o * stride;
    (start.saturating_sub(pad), (start + k - pad).min(len))
}

/// Checks the input and output buffers of a pooling call.
fn check_io(
    p: &Pool2dParams,
    in_name: &'static str,
    in_len: usize,
    out_name: &'static str,
    out_len: usize,
) -> Result<(), KernelError> {
    check_min_len(in_name, p.input_len(), in_len)?;
    check_min_len(out_name, p.output_len(), out_len)
}

/// Below this many elements moved per call, a pooling runs on the calling thread.
const PARALLEL_MIN_ELEMS: usize = 1 << 16;
/// Aim for tasks of about this many elements, so rayon's per-task cost stays small.
const TASK_ELEMS: usize = 1 << 15;

/// How many whole planes one task takes, or `None` to stay on the calling thread.
fn planes_per_task(planes: usize, elems_per_plane: usize) -> Option<usize> {
    let total = planes.saturating_mul(elems_per_plane);
    if total < PARALLEL_MIN_ELEMS || planes < 2 || rayon::current_num_threads() < 2 {
        return None;
    }
    Some((TASK_ELEMS / elems_per_plane.max(1)).clamp(1, planes.div_ceil(2)))
}

/// Runs `f(first_plane, a_chunk, b_chunk)` over chunks of whole planes of two outputs `a`
/// (`a_plane > 0` elements per plane) and `b` (`b_plane > 0`), in parallel for big work.
fn for_planes2<A: Send, B: Send>(
    planes: usize,
    work_per_plane: usize,
    (a, a_plane): (&mut [A], usize),
    (b, b_plane): (&mut [B], usize),
    f: impl Fn(usize, &mut [A], &mut [B]) -> Result<(), KernelError> + Sync,
) -> Result<(), KernelError> {
    let (a, b) = (&mut a[..planes * a_plane], &mut b[..planes * b_plane]);
    match planes_per_task(planes, work_per_plane) {
        None => f(0, a, b),
        Some(k) => a
            .par_chunks_mut(k * a_plane)
            .zip(b.par_chunks_mut(k * b_plane))
            .enumerate()
            .try_for_each(|(i, (a, b))| f(i * k, a, b)),
    }
}

/// Runs `f(first_plane, chunk)` over chunks of whole planes of `out` (`out_plane > 0`
/// elements per plane), in parallel for big work.
fn for_planes<A: Send>(
    planes: usize,
    work_per_plane: usize,
    out: &mut [A],
    out_plane: usize,
    f: impl Fn(usize, &mut [A]) -> Result<(), KernelError> + Sync,
) -> Result<(), KernelError> {
    let out = &mut out[..planes * out_plane];
    match planes_per_task(planes, work_per_plane) {
        None => f(0, out),
        Some(k) => out
            .par_chunks_mut(k * out_plane)
            .enumerate()
            .try_for_each(|(i, chunk)| f(i * k, chunk)),
    }
}

/// Max pooling forward: `y` gets the maximum of each window and `argmax` the offset of the
/// chosen cell within its input plane (see the module docs for ties and NaN).
///
/// `x` holds `p.input_len()` elements, `y` and `argmax` `p.output_len()`.
pub fn max_pool2d_forward(
    backend: Backend,
    p: &Pool2dParams,
    x: &[f32],
    y: &mut [f32],
    argmax: &mut [u32],
) -> Result<(), KernelError> {
    check_io(p, "x", x.len(), "y", y.len())?;
    check_min_len("argmax", p.output_len(), argmax.len())?;
    match backend {
        Backend::Reference => max_pool2d_forward_reference(p, x, y, argmax),
        Backend::Native | Backend::OpenBlas => {
            max::forward(p, x, y, argmax);
            Ok(())
        }
    }
}

/// Max pooling backward: `dx` (overwritten) gets, at each input cell, the sum of `dy` over the
/// outputs whose argmax is that cell, added in output order.
///
/// Every argmax entry must lie inside its output's window (as the forward produces them);
/// otherwise an [`KernelError::IndexOutOfRange`] names `argmax`.
pub fn max_pool2d_backward(
    backend: Backend,
    p: &Pool2dParams,
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    check_io(p, "dx", dx.len(), "dy", dy.len())?;
    check_min_len("argmax", p.output_len(), argmax.len())?;
    match backend {
        Backend::Reference => max_pool2d_backward_reference(p, dy, argmax, dx),
        Backend::Native | Backend::OpenBlas => max::backward(p, dy, argmax, dx),
    }
}

/// Average pooling forward: each output is the mean of its window, dividing by
/// `kernel_h * kernel_w` when `count_include_pad` (padded cells count as zeros), else by the
/// number of real cells.
pub fn avg_pool2d_forward(
    backend: Backend,
    p: &Pool2dParams,
    count_include_pad: bool,
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    check_io(p, "x", x.len(), "y", y.len())?;
    match backend {
        Backend::Reference => avg_pool2d_forward_reference(p, count_include_pad, x, y),
        Backend::Native | Backend::OpenBlas => {
            avg::forward(p, count_include_pad, x, y);
            Ok(())
        }
    }
}

/// Average pooling backward: `dx` (overwritten) gets, at each input cell, the sum over the
/// windows containing it of `dy / divisor` (the divisor of the forward).
pub fn avg_pool2d_backward(
    backend: Backend,
    p: &Pool2dParams,
    count_include_pad: bool,
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    check_io(p, "dx", dx.len(), "dy", dy.len())?;
    match backend {
        Backend::Reference => avg_pool2d_backward_reference(p, count_include_pad, dy, dx),
        Backend::Native | Backend::OpenBlas => {
            avg::backward(p, count_include_pad, dy, dx);
            Ok(())
        }
    }
}
