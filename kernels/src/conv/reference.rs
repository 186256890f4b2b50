//! The reference convolution: direct nested loops, generic over [`Float`], the ground truth the
//! tests run in f64. Each output (or gradient) element is one sum in a fixed loop order.

use super::params::Conv2dParams;
use super::{check_bias, check_main};
use crate::error::KernelError;
use num_traits::Float;

/// The input coordinate that output `o` with kernel tap `t` reads, if inside the input.
#[inline]
fn src(o: usize, t: usize, stride: usize, dil: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + t * dil).checked_sub(pad).filter(|&i| i < len)
}

/// Calls `f(b, ko, ci, oh, ow, ih, iw, tap)` for every (output, input, weight) triple of the
/// convolution, where `tap` indexes the weight; the order is fixed: batch, output channel,
/// output row, output column, input channel, kernel row, kernel column.
fn for_each_tap(p: &Conv2dParams, mut f: impl FnMut([usize; 8])) {
    let cg = p.c / p.groups;
    let kg = p.k / p.groups;
    for b in 0..p.n {
        for ko in 0..p.k {
            let g = ko / kg;
            for oh in 0..p.oh {
                for ow in 0..p.ow {
                    for cl in 0..cg {
                        let ci = g * cg + cl;
                        for r in 0..p.r {
                            let Some(ih) = src(oh, r, p.stride.0, p.dilation.0, p.pad.0, p.h)
                            else {
                                continue;
                            };
                            for s in 0..p.s {
                                let Some(iw) = src(ow, s, p.stride.1, p.dilation.1, p.pad.2, p.w)
                                else {
                                    continue;
                                };
                                let tap = ((ko * cg + cl) * p.r + r) * p.s + s;
                                f([b, ko, ci, oh, ow, ih, iw, tap]);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn x_index(p: &Conv2dParams, b: usize, ci: usize, ih: usize, iw: usize) -> usize {
    ((b * p.c + ci) * p.h + ih) * p.w + iw
}

fn y_index(p: &Conv2dParams, b: usize, ko: usize, oh: usize, ow: usize) -> usize {
    ((b * p.k + ko) * p.oh + oh) * p.ow + ow
}

/// `y = conv(x, w) + bias`: the direct definition. `x` is `[n, c, h, w]`, `w` is
/// `[k, c/groups, r, s]`, `bias` (if any) is `[k]`, `y` is `[n, k, oh, ow]` (overwritten).
/// NaN and infinities propagate as in the plain sums.
pub fn conv2d_forward_reference<T: Float>(
    p: &Conv2dParams,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) -> Result<(), KernelError> {
    check_main(p, ("x", x.len()), ("w", w.len()), ("y", y.len()))?;
    check_bias(p, "bias", bias.map(<[T]>::len))?;
    for (i, v) in y.iter_mut().enumerate() {
        let ko = (i / (p.oh * p.ow)) % p.k;
        *v = bias.map_or(T::zero(), |bb| bb[ko]);
    }
    for_each_tap(p, |[b, ko, ci, oh, ow, ih, iw, tap]| {
        let yi = y_index(p, b, ko, oh, ow);
        y[yi] = y[yi] + x[x_index(p, b, ci, ih, iw)] * w[tap];
    });
    Ok(())
}

/// `dx = d(sum(dy * y)) / dx`: the gradient of the input. `dy` is `[n, k, oh, ow]`, `dx` is
/// `[n, c, h, w]` (overwritten).
pub fn conv2d_backward_data_reference<T: Float>(
    p: &Conv2dParams,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    check_main(p, ("dx", dx.len()), ("w", w.len()), ("dy", dy.len()))?;
    dx.iter_mut().for_each(|v| *v = T::zero());
    for_each_tap(p, |[b, ko, ci, oh, ow, ih, iw, tap]| {
        let xi = x_index(p, b, ci, ih, iw);
        dx[xi] = dx[xi] + dy[y_index(p, b, ko, oh, ow)] * w[tap];
    });
    Ok(())
}

/// The weight gradient `dw` (`[k, c/groups, r, s]`, overwritten) and, if given, the bias
/// gradient `dbias` (`[k]`, overwritten: the sum of `dy` over batch and positions).
pub fn conv2d_backward_weight_reference<T: Float>(
    p: &Conv2dParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    dbias: Option<&mut [T]>,
) -> Result<(), KernelError> {
    check_main(p, ("x", x.len()), ("dw", dw.len()), ("dy", dy.len()))?;
    check_bias(p, "dbias", dbias.as_ref().map(|d| d.len()))?;
    dw.iter_mut().for_each(|v| *v = T::zero());
    for_each_tap(p, |[b, ko, ci, oh, ow, ih, iw, tap]| {
        dw[tap] = dw[tap] + x[x_index(p, b, ci, ih, iw)] * dy[y_index(p, b, ko, oh, ow)];
    });
    if let Some(db) = dbias {
        bias_grad_reference(p.n, p.k, p.oh * p.ow, dy, db);
    }
    Ok(())
}

/// `db[k] = sum over batch and the `hw` positions of `g[n, k, hw]`, in index order.
pub(crate) fn bias_grad_reference<T: Float>(n: usize, k: usize, hw: usize, g: &[T], db: &mut [T]) {
    for (ko, d) in db.iter_mut().enumerate().take(k) {
        let mut acc = T::zero();
        for b in 0..n {
            let base = (b * k + ko) * hw;
            for &v in &g[base..base + hw] {
                acc = acc + v;
            }
        }
        *d = acc;
    }
}
