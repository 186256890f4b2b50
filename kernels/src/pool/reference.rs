//! Reference pooling: plain loops over every window cell, generic over [`Float`], the ground
//! truth the tests run in f64. Same validation and semantics as the native functions of
//! [`crate::pool`].

use super::{check_io, global, Pool2dParams};
use crate::error::{check_min_len, KernelError};
use num_traits::Float;

/// Reference of [`super::max_pool2d_forward`].
pub fn max_pool2d_forward_reference<T: Float>(
    p: &Pool2dParams,
    x: &[T],
    y: &mut [T],
    argmax: &mut [u32],
) -> Result<(), KernelError> {
    check_io(p, "x", x.len(), "y", y.len())?;
    check_min_len("argmax", p.output_len(), argmax.len())?;
    for plane in 0..p.planes() {
        let xp = &x[plane * p.in_plane()..][..p.in_plane()];
        for oh in 0..p.oh {
            let (h0, h1) = p.rows(oh);
            for ow in 0..p.ow {
                let (w0, w1) = p.cols(ow);
                let mut best = T::neg_infinity();
                let mut at = h0 * p.w + w0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let v = xp[ih * p.w + iw];
                        if v > best || v.is_nan() {
                            best = v;
                            at = ih * p.w + iw;
                        }
                    }
                }
                let o = plane * p.out_plane() + oh * p.ow + ow;
                y[o] = best;
                argmax[o] = at as u32;
            }
        }
    }
    Ok(())
}

/// Reference of [`super::max_pool2d_backward`].
pub fn max_pool2d_backward_reference<T: Float>(
    p: &Pool2dParams,
    dy: &[T],
    argmax: &[u32],
    dx: &mut [T],
) -> Result<(), KernelError> {
    check_io(p, "dx", dx.len(), "dy", dy.len())?;
    check_min_len("argmax", p.output_len(), argmax.len())?;
    dx[..p.input_len()].fill(T::zero());
    for plane in 0..p.planes() {
        for oh in 0..p.oh {
            let (h0, h1) = p.rows(oh);
            for ow in 0..p.ow {
                let (w0, w1) = p.cols(ow);
                let o = plane * p.out_plane() + oh * p.ow + ow;
                let at = argmax[o] as usize;
                let (ih, iw) = (at / p.w, at % p.w);
                if !(h0..h1).contains(&ih) || !(w0..w1).contains(&iw) {
                    return Err(out_of_window(argmax[o], p));
                }
                let i = plane * p.in_plane() + at;
                dx[i] = dx[i] + dy[o];
            }
        }
    }
    Ok(())
}

/// The error for an argmax entry outside its window.
pub(crate) fn out_of_window(at: u32, p: &Pool2dParams) -> KernelError {
    KernelError::IndexOutOfRange {
        arg: "argmax",
        index: at as i64,
        bound: p.in_plane(),
    }
}

/// The divisor of output `(oh, ow)`'s window.
fn divisor<T: Float>(p: &Pool2dParams, count_include_pad: bool, oh: usize, ow: usize) -> T {
    let cells = if count_include_pad {
        p.kh * p.kw
    } else {
        let ((h0, h1), (w0, w1)) = (p.rows(oh), p.cols(ow));
        (h1 - h0) * (w1 - w0)
    };
    T::from(cells).expect("a cell count is representable")
}

/// Calls `f(plane, output index within the plane, window rows, window cols, divisor)` for
/// every output of an average pooling, in order.
fn avg_windows<T: Float>(
    p: &Pool2dParams,
    count_include_pad: bool,
    mut f: impl FnMut(usize, usize, (usize, usize), (usize, usize), T),
) {
    for plane in 0..p.planes() {
        for oh in 0..p.oh {
            for ow in 0..p.ow {
                let div = divisor::<T>(p, count_include_pad, oh, ow);
                f(plane, oh * p.ow + ow, p.rows(oh), p.cols(ow), div);
            }
        }
    }
}

/// Reference of [`super::avg_pool2d_forward`].
pub fn avg_pool2d_forward_reference<T: Float>(
    p: &Pool2dParams,
    count_include_pad: bool,
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError> {
    check_io(p, "x", x.len(), "y", y.len())?;
    avg_windows(
        p,
        count_include_pad,
        |plane, o, (h0, h1), (w0, w1), div: T| {
            let xp = &x[plane * p.in_plane()..][..p.in_plane()];
            let mut sum = T::zero();
            for ih in h0..h1 {
                for iw in w0..w1 {
                    sum = sum + xp[ih * p.w + iw];
                }
            }
            y[plane * p.out_plane() + o] = sum / div;
        },
    );
    Ok(())
}

/// Reference of [`super::avg_pool2d_backward`].
pub fn avg_pool2d_backward_reference<T: Float>(
    p: &Pool2dParams,
    count_include_pad: bool,
    dy: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    check_io(p, "dx", dx.len(), "dy", dy.len())?;
    dx[..p.input_len()].fill(T::zero());
    avg_windows(
        p,
        count_include_pad,
        |plane, o, (h0, h1), (w0, w1), div: T| {
            let dxp = &mut dx[plane * p.in_plane()..][..p.in_plane()];
            let g = dy[plane * p.out_plane() + o] / div;
            for ih in h0..h1 {
                for iw in w0..w1 {
                    dxp[ih * p.w + iw] = dxp[ih * p.w + iw] + g;
                }
            }
        },
    );
    Ok(())
}

/// Reference of [`super::global_avg_pool2d_forward`].
pub fn global_avg_pool2d_forward_reference<T: Float>(
    shape: [usize; 4],
    x: &[T],
    y: &mut [T],
) -> Result<(), KernelError> {
    let (planes, plane) = global::check(shape, "x", x.len(), "y", y.len())?;
    let div = T::from(plane).expect("a plane size is representable");
    for (yo, xp) in y[..planes].iter_mut().zip(x.chunks_exact(plane)) {
        *yo = xp.iter().fold(T::zero(), |acc, &v| acc + v) / div;
    }
    Ok(())
}

/// Reference of [`super::global_avg_pool2d_backward`].
pub fn global_avg_pool2d_backward_reference<T: Float>(
    shape: [usize; 4],
    dy: &[T],
    dx: &mut [T],
) -> Result<(), KernelError> {
    let (planes, plane) = global::check(shape, "dx", dx.len(), "dy", dy.len())?;
    let div = T::from(plane).expect("a plane size is representable");
    for (g, dxp) in dy[..planes].iter().zip(dx.chunks_exact_mut(plane)) {
        dxp.fill(*g / div);
    }
    Ok(())
}
