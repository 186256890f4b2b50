//! Placeholder: replaced by the packed frame.
use super::{Gemm, Layout};
pub(super) fn gemm_f32(g: &Gemm<f32>, l: Layout, a: &[f32], b: &[f32], c: &mut [f32]) {
    super::reference::gemm_resolved(g, l, a, b, c)
}
pub(super) fn gemm_f64(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
    super::reference::gemm_resolved(g, l, a, b, c)
}
