//! The error bound of the native Winograd F(2x2, 3x3) passes (`conv/winograd.rs`), shared by
//! `kernels/tests/conv.rs` and the `conv` fuzz target (which includes this file by path).
//!
//! Their transforms mix a tile's whole 4x4 input patch before the products cancel back to
//! the 3x3 window, so the rounding error scales with the patch's magnitude, not only the
//! window's: at most about `9 (depth + 12) eps sum_c |patch_c|_1 |w_kc|_1` (`|U| <= |w|_1`,
//! `|V| <= |patch|_1`, the products' sum over `depth` channels, then the output transform's
//! 9 terms). An output's patch lies in the 5x5 window one row and column around its own, so
//! a 5x5 convolution of absolute values with the constant kernel `|w_kc|_1` bounds it.

use nnkern_kernels::conv::{
    conv2d_backward_data_reference, conv2d_forward_reference, Conv2dParams,
};

/// For a 3x3, stride-1, undilated `p` (the shapes the Winograd path may take), the extra
/// error bound of each forward (`y`) and backward-data (`dx`) output, from the absolute
/// values of the input, weights and output gradient; `None` for other shapes.
pub fn winograd_extra(
    p: &Conv2dParams,
    xa: &[f64],
    wa: &[f64],
    dya: &[f64],
) -> Option<(Vec<f64>, Vec<f64>)> {
    if (p.r(), p.s(), p.stride(), p.dilation()) != (3, 3, (1, 1), (1, 1)) {
        return None;
    }
    let (pt, pb, pl, pr) = p.padding();
    let p5 = Conv2dParams::builder(p.n(), p.c(), p.h(), p.w(), p.k(), 5, 5)
        .padding(pt + 1, pb + 1, pl + 1, pr + 1)
        .groups(p.groups())
        .build()
        .ok()?;
    assert_eq!(p5.output_shape(), p.output_shape());
    let w5: Vec<f64> = wa
        .chunks_exact(9)
        .flat_map(|f| [f.iter().sum::<f64>(); 25])
        .collect();
    let mut y = vec![0.0; p.output_len()];
    conv2d_forward_reference(&p5, xa, &w5, None, &mut y).ok()?;
    let mut dx = vec![0.0; p.input_len()];
    conv2d_backward_data_reference(&p5, dya, &w5, &mut dx).ok()?;
    let eps = f32::EPSILON as f64;
    let (cg, kg) = (p.c() / p.groups(), p.k() / p.groups());
    let (gy, gdx) = (
        9.0 * (cg as f64 + 12.0) * eps,
        9.0 * (kg as f64 + 12.0) * eps,
    );
    y.iter_mut().for_each(|v| *v *= gy);
    dx.iter_mut().for_each(|v| *v *= gdx);
    Some((y, dx))
}
