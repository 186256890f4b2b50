//! General matrix multiply: `C = alpha * op(A) * op(B) + beta * C`, row-major, f32 and f64.
//!
//! ```
//! use nnkern_kernels::{gemm, Backend, Gemm};
//! // C[2,2] = A[2,3] * B[3,2]
//! let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let mut c = [0.0f32; 4];
//! gemm(Backend::Native, &Gemm::new(2, 2, 3), &a, &b, &mut c).unwrap();
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! ```
//!
//! Semantics are those of BLAS `?gemm` in row-major order:
//! * `op(A)` is `[m, k]`; stored as `[m, lda]` rows, or as `[k, lda]` rows when transposed
//!   (likewise `B`: `op(B)` is `[k, n]`). `C` is `[m, ldc]` rows.
//! * `beta == 0` overwrites `C` without reading it (NaN or garbage in `C` does not survive).
//! * Zero-sized `m` or `n` is a no-op; `k == 0` (or `alpha == 0`) only scales `C` by `beta`.
//! * Leading dimensions must be at least `max(1, row length)`; slices must hold every element
//!   the shape addresses (`(rows - 1) * ld + cols`). Otherwise a [`KernelError`] names the
//!   argument.
//!
//! The native backend is the Goto/BLIS structure (see `frame.rs`): packed A and B blocks, a
//! register-tiled micro-kernel per ISA (`kernels.rs`), cache blocking, and rayon threads over
//! M x N tiles only. K is never split across threads, so each element of C is reduced in the
//! same order whatever the thread count: results are bitwise identical for any pool size.

mod frame;
mod kernels;
#[cfg(feature = "openblas")]
mod openblas;
mod pack;
mod reference;
mod small;
mod thin;

pub(crate) use frame::SharedPtr;
pub(crate) use pack::Gather;
pub use reference::gemm_reference;

use crate::error::{check_min_len, checked_mul, KernelError};
use crate::Backend;
use num_traits::Float;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Transpose {
    /// `op(X) = X`.
    #[default]
    No,
    /// `op(X) = X^T`.
    Yes,
}

impl Transpose {
    /// `Yes` when `t` is true.
    pub fn from_bool(t: bool) -> Transpose {
        if t {
            Transpose::Yes
        } else {
            Transpose::No
        }
    }
}

/// A GEMM descriptor: shapes, transposes, scalars and leading dimensions.
///
/// `Gemm::new(m, n, k)` gives `alpha = 1`, `beta = 0`, no transposes and tight leading
/// dimensions; the builder methods change one field each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm<T> {
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Whether `A` is stored transposed (`[k, m]`).
    pub trans_a: Transpose,
    /// Whether `B` is stored transposed (`[n, k]`).
    pub trans_b: Transpose,
    /// Scale of the product.
    pub alpha: T,
    /// Scale of the old `C`; 0 overwrites.
    pub beta: T,
    /// Row stride of stored `A`; `None` means tight.
    pub lda: Option<usize>,
    /// Row stride of stored `B`; `None` means tight.
    pub ldb: Option<usize>,
    /// Row stride of `C`; `None` means tight (`n`).
    pub ldc: Option<usize>,
}

impl<T: Float> Gemm<T> {
    /// `C[m, n] = A[m, k] * B[k, n]`, tight, alpha 1, beta 0.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm {
            m,
            n,
            k,
            trans_a: Transpose::No,
            trans_b: Transpose::No,
            alpha: T::one(),
            beta: T::zero(),
            lda: None,
            ldb: None,
            ldc: None,
        }
    }
    /// Sets whether A is stored transposed.
    pub fn trans_a(mut self, t: bool) -> Self {
        self.trans_a = Transpose::from_bool(t);
        self
    }
    /// Sets whether B is stored transposed.
    pub fn trans_b(mut self, t: bool) -> Self {
        self.trans_b = Transpose::from_bool(t);
        self
    }
    /// Sets alpha.
    pub fn alpha(mut self, alpha: T) -> Self {
        self.alpha = alpha;
        self
    }
    /// Sets beta.
    pub fn beta(mut self, beta: T) -> Self {
        self.beta = beta;
        self
    }
    /// Sets the row stride of stored A.
    pub fn lda(mut self, lda: usize) -> Self {
        self.lda = Some(lda);
        self
    }
    /// Sets the row stride of stored B.
    pub fn ldb(mut self, ldb: usize) -> Self {
        self.ldb = Some(ldb);
        self
    }
    /// Sets the row stride of C.
    pub fn ldc(mut self, ldc: usize) -> Self {
        self.ldc = Some(ldc);
        self
    }

    /// `(rows, cols)` of A as stored.
    pub fn a_stored_shape(&self) -> (usize, usize) {
        match self.trans_a {
            Transpose::No => (self.m, self.k),
            Transpose::Yes => (self.k, self.m),
        }
    }
    /// `(rows, cols)` of B as stored.
    pub fn b_stored_shape(&self) -> (usize, usize) {
        match self.trans_b {
            Transpose::No => (self.k, self.n),
            Transpose::Yes => (self.n, self.k),
        }
    }

    /// Checks the descriptor against the slice lengths and resolves the leading dimensions.
    pub fn validate(
        &self,
        a_len: usize,
        b_len: usize,
        c_len: usize,
    ) -> Result<Layout, KernelError> {
        let (ar, ac) = self.a_stored_shape();
        let (br, bc) = self.b_stored_shape();
        let lda = operand("a", "lda", ar, ac, self.lda, a_len)?;
        let ldb = operand("b", "ldb", br, bc, self.ldb, b_len)?;
        let ldc = operand("c", "ldc", self.m, self.n, self.ldc, c_len)?;
        // The flop count must be representable too (m * n * k is used for threading decisions).
        checked_mul("m * n * k", checked_mul("m * n", self.m, self.n)?, self.k)?;
        Ok(Layout { lda, ldb, ldc })
    }
}

/// Resolved leading dimensions of a validated call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Row stride of stored A.
    pub lda: usize,
    /// Row stride of stored B.
    pub ldb: usize,
    /// Row stride of C.
    pub ldc: usize,
}

/// Validates one operand stored as `rows x cols` with row stride `ld` in a slice of `len`.
fn operand(
    arg: &'static str,
    ld_arg: &'static str,
    rows: usize,
    cols: usize,
    ld: Option<usize>,
    len: usize,
) -> Result<usize, KernelError> {
    let min_ld = cols.max(1);
    let ld = ld.unwrap_or(min_ld);
    if ld < min_ld {
        return Err(KernelError::LeadingDimension {
            arg: ld_arg,
            min: min_ld,
            got: ld,
        });
    }
    let needed = if rows == 0 || cols == 0 {
        0
    } else {
        checked_mul(arg, rows - 1, ld)?
            .checked_add(cols)
            .ok_or(KernelError::Overflow { arg })?
    };
    check_min_len(arg, needed, len)?;
    Ok(ld)
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types GEMM runs on: `f32` and `f64`.
pub trait GemmScalar:
    Float + Default + Send + Sync + std::fmt::Debug + 'static + sealed::Sealed
{
    #[doc(hidden)]
    fn native(g: &Gemm<Self>, l: Layout, a: &[Self], b: &[Self], c: &mut [Self]);
    #[doc(hidden)]
    #[cfg(feature = "openblas")]
    fn openblas(g: &Gemm<Self>, l: Layout, a: &[Self], b: &[Self], c: &mut [Self]);
}

impl GemmScalar for f32 {
    fn native(g: &Gemm<f32>, l: Layout, a: &[f32], b: &[f32], c: &mut [f32]) {
        frame::gemm_f32(g, l, a, b, None, c)
    }
    #[cfg(feature = "openblas")]
    fn openblas(g: &Gemm<f32>, l: Layout, a: &[f32], b: &[f32], c: &mut [f32]) {
        openblas::sgemm(g, l, a, b, c)
    }
}

impl GemmScalar for f64 {
    fn native(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
        frame::gemm_f64(g, l, a, b, c)
    }
    #[cfg(feature = "openblas")]
    fn openblas(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
        openblas::dgemm(g, l, a, b, c)
    }
}

/// Runs `C = alpha * op(A) * op(B) + beta * C` on `backend`.
///
/// Native runs in the caller's rayon pool; OpenBLAS uses its own threads (set with
/// `openblas_set_num_threads`, see [`set_openblas_threads`]).
pub fn gemm<T: GemmScalar>(
    backend: Backend,
    g: &Gemm<T>,
    a: &[T],
    b: &[T],
    c: &mut [T],
) -> Result<(), KernelError> {
    let layout = g.validate(a.len(), b.len(), c.len())?;
    match backend {
        Backend::Native => T::native(g, layout, a, b, c),
        Backend::Reference => reference::gemm_resolved(g, layout, a, b, c),
        #[cfg(feature = "openblas")]
        Backend::OpenBlas => {
            // cblas takes 32-bit sizes.
            for (arg, v) in [
                ("m", g.m),
                ("n", g.n),
                ("k", g.k),
                ("lda", layout.lda),
                ("ldb", layout.ldb),
                ("ldc", layout.ldc),
            ] {
                if i32::try_from(v).is_err() {
                    return Err(KernelError::InvalidParam {
                        arg,
                        what: format!("{v} exceeds the cblas limit of i32::MAX"),
                    });
                }
            }
            T::openblas(g, layout, a, b, c)
        }
        #[cfg(not(feature = "openblas"))]
        Backend::OpenBlas => {
            return Err(KernelError::BackendUnavailable {
                backend: "openblas",
            })
        }
    }
    Ok(())
}

/// Native f32 GEMM whose B (stored `k x n`, or `n x k` with `trans_b`) is read through a
/// [`Gather`] from `b` instead of a leading dimension: convolution's implicit im2col. Checks
/// that every element the gather addresses is inside `b`.
pub(crate) fn gemm_gather(
    g: &Gemm<f32>,
    a: &[f32],
    b: &[f32],
    gather: Gather<'_>,
    c: &mut [f32],
) -> Result<(), KernelError> {
    let (rows, cols) = g.b_stored_shape();
    // B's own leading dimension is unused: validate A and C with a nominal B.
    let layout = Gemm { ldb: None, ..*g }.validate(a.len(), rows * cols, c.len())?;
    check_min_len("gather rows", rows, gather.row.len())?;
    let line_ok = gather
        .line
        .is_none_or(|(len, used)| used > 0 && used <= len);
    if gather.seg_len == 0 || !line_ok || gather.seg_valid > gather.seg_len {
        return Err(KernelError::InvalidParam {
            arg: "gather",
            what: format!("inconsistent gather {gather:?}"),
        });
    }
    if rows > 0 && cols > 0 && gather.seg_valid > 0 {
        // The furthest read is in the last segment, or in the one before when the last is
        // short.
        let max_row = gather.row[..rows].iter().copied().max().unwrap_or(0);
        let last = (cols - 1) / gather.seg_len;
        let ends = [
            (last, gather.seg_valid.min(cols - last * gather.seg_len)),
            (last.saturating_sub(1), gather.seg_valid),
        ];
        if let Some(t) = gather.seg_off {
            check_min_len("gather segments", last + 1, t.len())?;
        }
        for (seg, valid) in ends {
            let start = match gather.seg_off {
                // Any segment may start furthest.
                Some(t) => t[..=seg].iter().copied().max().unwrap_or(0),
                None => checked_mul("gather", seg, gather.seg_stride)?,
            };
            let end = start
                .checked_add(max_row)
                .and_then(|v| v.checked_add(gather.span(valid)))
                .ok_or(KernelError::Overflow { arg: "gather" })?;
            check_min_len("b", end, b.len())?;
        }
    }
    frame::gemm_f32(g, layout, a, b, Some(gather), c);
    Ok(())
}

/// Sets the number of threads OpenBLAS uses (a no-op without the `openblas` feature).
pub fn set_openblas_threads(n: usize) {
    #[cfg(feature = "openblas")]
    openblas::set_threads(n);
    #[cfg(not(feature = "openblas"))]
    let _ = n;
}
