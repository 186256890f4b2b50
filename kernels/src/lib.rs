//! # nnkern-kernels
//!
//! Fast, verified numerical kernels for training neural networks on the CPU, on plain slices
//! with explicit shapes. Every kernel family has three backends a user can compare:
//!
//! * [`Backend::Native`]: packed SIMD code, AVX2+FMA or AVX-512 chosen at run time on x86-64,
//!   a portable `wide` path (NEON on aarch64, SSE2 on baseline x86-64) and a scalar path
//!   (see [`simd::Isa`];
//!   `NNKERN_ISA=scalar|portable|avx2|avx512` forces one);
//! * [`Backend::OpenBlas`]: the same call through `cblas` (cargo feature `openblas`);
//! * [`Backend::Reference`]: plain loops generic over [`num_traits::Float`], the ground truth
//!   the tests compare against, public so users can verify too.
//!
//! ## Conventions
//! * Row-major / NCHW, the PyTorch convention.
//! * Callers pass inputs, outputs and workspace; hot kernels do not allocate (GEMM keeps
//!   per-thread packing buffers that grow once and are reused).
//! * Bad input returns a [`KernelError`] naming the argument; the public API never panics.
//! * Threads: rayon, in the caller's current pool (`ThreadPool::install` sets the count).
//!   Work is split so that every output's reduction order is independent of the thread count:
//!   results are bitwise identical for 1, 2 or any number of threads.
//! * BLAS semantics for `beta`: `beta == 0` overwrites the output, NaN included.

pub mod activation;
pub mod conv;
pub mod error;
pub mod gemm;
pub mod loss;
pub mod optim;
pub mod pool;
pub mod semantics;
pub mod simd;

pub use activation::{
    activation_backward, activation_backward_inplace, activation_backward_reference,
    activation_forward, activation_forward_inplace, activation_forward_reference, Activation,
};
pub use conv::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward, Conv2dParams};
pub use error::KernelError;
pub use gemm::{gemm, gemm_reference, Gemm, GemmScalar, Transpose};
pub use loss::{softmax_cross_entropy, softmax_cross_entropy_reference, Reduction, SoftmaxXent};

/// Which implementation runs a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// nnkern's own SIMD kernels (ISA chosen at run time, see [`simd::Isa::active`]).
    Native,
    /// OpenBLAS through cblas; needs the `openblas` cargo feature.
    OpenBlas,
    /// The plain reference loops (slow, for verification).
    Reference,
}

impl Backend {
    /// Parses `native`, `openblas` or `reference`.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "native" => Some(Backend::Native),
            "openblas" => Some(Backend::OpenBlas),
            "reference" => Some(Backend::Reference),
            _ => None,
        }
    }

    /// The lower-case name used on the command line and in benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::OpenBlas => "openblas",
            Backend::Reference => "reference",
        }
    }

    /// Whether this build can run the backend (`OpenBlas` needs the `openblas` feature).
    pub fn available(self) -> bool {
        self != Backend::OpenBlas || cfg!(feature = "openblas")
    }
}
