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

pub(super) fn sgemm(g: &Gemm<f32>, l: Layout, a: &[f32], b: &[f32], c: &mut [f32]) {
    if g.m == 0 || g.n == 0 {
        return;
    }
    // SAFETY: `Gemm::validate` checked every slice against its shape and leading dimension.
    unsafe {
        cblas::sgemm(
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

pub(super) fn dgemm(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
    if g.m == 0 || g.n == 0 {
        return;
    }
    // SAFETY: as in `sgemm`.
    unsafe {
        cblas::dgemm(
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

extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

pub(super) fn set_threads(n: usize) {
    // SAFETY: a plain setter exported by libopenblas.
    unsafe { openblas_set_num_threads(n.clamp(1, 1024) as std::os::raw::c_int) }
}
