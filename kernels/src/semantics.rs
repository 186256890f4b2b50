//! # Semantics: special values, aliasing and errors
//!
//! What every kernel does with NaN, infinities, empty inputs and bad arguments, in one place.
//! Each statement here is checked on every path (the reference backend and the native backend
//! under each ISA) by `kernels/tests/special_values.rs` and `kernels/tests/bad_input.rs`, and
//! the fuzz targets in `fuzz/` hold the kernels to their references on random shapes and
//! values, special values included.
//!
//! ## General rules
//! * **IEEE propagation.** Kernels do not test for special values: NaN and infinities flow
//!   through sums, products and comparisons as IEEE 754 says (`inf - inf = NaN`,
//!   `0 * inf = NaN`, NaN compares false). Nothing is clipped, skipped or replaced, and no
//!   input value is an error except where stated (hinge labels).
//! * **Subnormals** are computed, not flushed to zero.
//! * **Outputs are overwritten**, never accumulated into (GEMM with `beta != 0` is the one
//!   read-modify-write). Arguments are validated before any output is written, so an error
//!   leaves the outputs untouched, except for the data-dependent checks documented as
//!   "partially written" (max-pooling backward with a bad argmax, hinge with a bad label).
//! * **Empty tensors** (a zero batch or zero rows) are valid and make a call a no-op; a
//!   reduction over nothing is NaN for a mean (0/0, as PyTorch) and 0 for a sum.
//! * **Rounding** differs between paths only within the documented error bounds of each op;
//!   the result of one path is bitwise identical for any number of threads.
//!
//! ## By op family
//! * **GEMM** ([`crate::gemm()`]): BLAS semantics. `beta == 0` overwrites C without reading it,
//!   so NaN or garbage in C does not survive. `alpha == 0` (or `k == 0`) does not read A or B,
//!   so NaN there does not reach C: C becomes `beta * C`. A NaN or infinity in A or B reaches
//!   exactly the elements of C whose dot product reads it (NaN, or `inf`, or NaN from
//!   `inf - inf` / `0 * inf`). `beta = NaN` makes C NaN. Columns of C beyond `n` (the padding
//!   of `ldc`) are never written.
//! * **Convolution** ([`crate::conv`]): NaN and infinities propagate to exactly the outputs
//!   whose window (or, for the backward passes, whose adjoint window) reaches them; zero
//!   padding contributes exact zeros, never NaN. The bias is added after the sum.
//! * **Max pooling** ([`crate::pool`]): padding is ignored; a cell replaces the current maximum
//!   when it is greater or NaN, so ties go to the first cell in row-major window order, a
//!   window holding NaN gives NaN with the argmax of its **last** NaN (PyTorch's CPU rule), and
//!   a window of `-inf` gives `-inf` with the argmax of its first cell. In a window whose
//!   maximum is a tie of `0.0` and `-0.0` the argmax follows the rule but the native value's
//!   zero sign may differ from that cell's (SIMD max). The backward adds `dy` at the argmax
//!   (any value, NaN included).
//! * **Average and global pooling**: IEEE sums divided by the count (`inf + -inf = NaN`; a
//!   window with `inf` is `inf`).
//! * **Activations** ([`crate::activation`]): NaN in gives NaN out for every forward, ReLU
//!   included; infinities give the limits: `relu(-inf) = 0`, `sigmoid(+-inf) = 1 / 0`,
//!   `tanh(+-inf) = +-1`, `elu(-inf) = -alpha`, `gelu(-inf) = silu(-inf) = -0`,
//!   `softplus(+inf) = +inf`, `softplus(-inf) = 0`. The sign of ReLU's zero for a `-0` input is
//!   unspecified (the native path keeps `-0`). Backward: NaN in `dy` gives NaN; NaN in the
//!   saved tensor gives NaN except for ReLU (the mask `y > 0` is false: gradient 0) and leaky
//!   ReLU (`x > 0` is false: `slope * dy`), as PyTorch's `threshold_backward` and
//!   `leaky_relu_backward`. At `+-inf` the backward gives the derivative's limit.
//! * **Softmax / log-softmax**: each row subtracts its maximum first, so any finite logits are
//!   stable. `-inf` entries get probability 0 (log-probability `-inf`). A row that is all
//!   `-inf`, or holds `+inf` or NaN, is NaN throughout (as PyTorch).
//! * **Softmax-cross-entropy** ([`crate::loss`]): a `-inf` logit away from the label has
//!   probability 0 and a finite loss; a `-inf` logit **at** the label gives loss `+inf`; a
//!   `+inf` or NaN logit, or a row of only `-inf`, gives a NaN loss and NaN gradients for
//!   that row. With label smoothing any `-inf` logit makes the loss `+inf`. Ignored rows add
//!   nothing and get zero gradients; with [`Reduction::Mean`](crate::Reduction::Mean) and every
//!   row ignored (or `n == 0`) the loss is NaN and the gradient zero.
//! * **Element-wise losses**: MSE propagates NaN (`inf - inf = NaN`); BCE with logits gives the
//!   limits at infinite logits (`+inf` with label 1 costs 0, with label 0 costs `+inf`;
//!   gradients `1 - y` and `-y`); hinge propagates a NaN score, and rejects any label other
//!   than `-1`, `0` (meaning `-1`, so `{0, 1}` labels work) and `+1`, NaN included, with
//!   [`KernelError::InvalidParam`] naming `target`, the index and the value: the same error on
//!   every backend and ISA path (and in the f64 reference).
//! * **Optimizers** ([`crate::optim`]): NaN or infinite gradients propagate into the parameter
//!   and the state (no skipping, no clipping), as `torch.optim` does. Hyperparameters are
//!   checked: NaN, infinite or out-of-range values are errors.
//!
//! ## Aliasing
//! Rust's borrow rules forbid an output that aliases an input, so every out-of-place kernel
//! sees disjoint buffers. The in-place forms are separate functions:
//! [`activation_forward_inplace`](crate::activation_forward_inplace) (`xy = act(xy)`) and
//! [`activation_backward_inplace`](crate::activation_backward_inplace) (`dxy` holds `dy` on
//! entry and `dx` on return; it reads the saved `x` or `y`, which must then be a different
//! buffer). Both give the same bits as the out-of-place calls. For the activations whose
//! backward reads the output (ReLU, ELU, sigmoid, tanh, see
//! [`Activation::backward_uses_output`](crate::Activation::backward_uses_output)) a layer can run
//! fully in place: forward in place over the input, then backward in place reading that
//! output. Inputs may be shared freely (e.g. the same slice as `x` and `y` of a backward that
//! reads only one of them).
//!
//! ## Errors
//! Every public kernel validates all its arguments before touching an output and returns a
//! [`KernelError`] naming the argument at fault; it never panics on bad input. The variants:
//! * [`KernelError::BufferTooShort`]: a slice holds fewer elements than its shape addresses
//!   (GEMM operands with leading dimensions, pooling buffers, workspaces, gradients of the
//!   element-wise losses: these may be longer).
//! * [`KernelError::BufferLength`]: a slice must have exactly the shape's length (convolution
//!   tensors, activations, softmax, cross-entropy, optimizer state) and does not.
//! * [`KernelError::LeadingDimension`]: a GEMM leading dimension is smaller than the row it
//!   must hold (`max(1, cols)`).
//! * [`KernelError::Overflow`]: a size product (`m * n * k`, `n * c * h * w`, `rows * cols`,
//!   ...) does not fit in `usize`; such a call can never be valid.
//! * [`KernelError::InvalidParam`]: a descriptor or scalar outside its domain: a zero
//!   dimension where one is required, zero stride or dilation, channels not divisible by
//!   groups, a window larger than the padded input, padding not smaller than the kernel,
//!   label smoothing outside `[0, 1]`, a non-finite activation parameter, an optimizer
//!   hyperparameter out of range, a step count of 0, an invalid hinge label, OpenBLAS's 32-bit
//!   size limit. `what` states the rule.
//! * [`KernelError::IndexOutOfRange`]: a class label outside `0..classes` (and not the ignore
//!   index), or a max-pooling argmax outside its window.
//! * [`KernelError::BackendUnavailable`]: [`Backend::OpenBlas`](crate::Backend::OpenBlas) for
//!   GEMM or convolution in a build without the `openblas` feature (ops OpenBLAS has nothing
//!   for run the native code on that backend instead).
//!
//! [`KernelError`]: crate::KernelError
//! [`KernelError::BufferTooShort`]: crate::KernelError::BufferTooShort
//! [`KernelError::BufferLength`]: crate::KernelError::BufferLength
//! [`KernelError::LeadingDimension`]: crate::KernelError::LeadingDimension
//! [`KernelError::Overflow`]: crate::KernelError::Overflow
//! [`KernelError::InvalidParam`]: crate::KernelError::InvalidParam
//! [`KernelError::IndexOutOfRange`]: crate::KernelError::IndexOutOfRange
//! [`KernelError::BackendUnavailable`]: crate::KernelError::BackendUnavailable
