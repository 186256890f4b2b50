//! The OpenBLAS backend through cblas.

use super::{Gemm, Layout, Transpose};
// Link the system OpenBLAS.
use openblas_src as _;

fn t(x: Transpose) -> cblas::Transpose {
    match x {
        Transpose::No => cblas::Transpose::None,
        Transpose::Yes => cblas::Transpose::Ordinary,
    }
}

/// `usize -> i32` for cblas; `gemm` has checked that every size fits.
fn i(x: usize) -> i32 {
    x as i32
}

macro_rules! cblas_gemm {
    ($name:ident, $t:ty, $cblas:path) => {
        pub(super) fn $name(g: &Gemm<$t>, l: Layout, a: &[$t], b: &[$t], c: &mut [$t]) {
            if g.m == 0 || g.n == 0 {
                return;
            }
            // SAFETY: `Gemm::validate` checked every slice against its shape and leading
            // dimension, and `gemm` checked that every size fits in i32.
            unsafe {
                $cblas(
                    cblas::Layout::RowMajor,
                    t(g.trans_a),
                    t(g.trans_b),
                    i(g.m),
                    i(g.n),
                    i(g.k),
                    g.alpha,
                    a,
                    i(l.lda),
                    b,
                    i(l.ldb),
                    g.beta,
                    c,
                    i(l.ldc),
                )
            }
        }
    };
}

cblas_gemm!(sgemm, f32, cblas::sgemm);
cblas_gemm!(dgemm, f64, cblas::dgemm);

extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

pub(super) fn set_threads(n: usize) {
    // SAFETY: a plain setter exported by libopenblas.
    unsafe { openblas_set_num_threads(n.clamp(1, 1024) as std::os::raw::c_int) }
}
