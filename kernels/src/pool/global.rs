//! Global average pooling: `[n, c, h, w] -> [n, c]` (PyTorch's `adaptive_avg_pool2d(x, 1)`).

use super::{for_planes, planes_per_task};
use crate::error::{check_min_len, checked_mul, checked_product, KernelError};
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use crate::Backend;
use rayon::prelude::*;

/// Validates a global pooling of `shape = [n, c, h, w]` with its big buffer (`n*c*h*w`) and its
/// small one (`n*c`); returns `(n * c, h * w)`.
pub(crate) fn check(
    shape: [usize; 4],
    big_name: &'static str,
    big_len: usize,
    small_name: &'static str,
    small_len: usize,
) -> Result<(usize, usize), KernelError> {
    let [n, c, h, w] = shape;
    let plane = checked_mul("shape", h, w)?;
    if plane == 0 {
        return Err(KernelError::InvalidParam {
            arg: "shape",
            what: "global pooling needs h and w positive".into(),
        });
    }
    let planes = checked_mul("shape", n, c)?;
    check_min_len(big_name, checked_product("shape", &[n, c, h, w])?, big_len)?;
    check_min_len(small_name, planes, small_len)?;
    Ok((planes, plane))
}

/// Global average pooling forward: `y[i] = sum(x[i * h * w..][..h * w]) / (h * w)` for each of
/// the `n * c` planes of `shape = [n, c, h, w]`. NaN and infinities propagate as in IEEE sums.
/// The native sum runs in SIMD lanes (a fixed order per ISA, so results may differ from the
/// reference by rounding, within `h * w * eps * sum|x|`).
pub fn global_avg_pool2d_forward(
    backend: Backend,
    shape: [usize; 4],
    x: &[f32],
    y: &mut [f32],
) -> Result<(), KernelError> {
    if backend == Backend::Reference {
        return super::global_avg_pool2d_forward_reference(shape, x, y);
    }
    let (planes, plane) = check(shape, "x", x.len(), "y", y.len())?;
    let isa = Isa::active();
    let x = &x[..planes * plane];
    let y = &mut y[..planes];
    match planes_per_task(planes, plane) {
        None => dispatch(isa, Means { x, y, plane }),
        Some(k) => y
            .par_chunks_mut(k)
            .zip(x.par_chunks(k * plane))
            .for_each(|(y, x)| dispatch(isa, Means { x, y, plane })),
    }
    Ok(())
}

/// Global average pooling backward: every cell of plane `i` of `dx` (overwritten) gets
/// `dy[i] / (h * w)`.
pub fn global_avg_pool2d_backward(
    backend: Backend,
    shape: [usize; 4],
    dy: &[f32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    if backend == Backend::Reference {
        return super::global_avg_pool2d_backward_reference(shape, dy, dx);
    }
    let (planes, plane) = check(shape, "dx", dx.len(), "dy", dy.len())?;
    let div = plane as f32;
    for_planes(planes, plane, dx, plane, |first, dx| {
        for (g, dxp) in dy[first..].iter().zip(dx.chunks_exact_mut(plane)) {
            dxp.fill(*g / div);
        }
        Ok(())
    })
}

/// The mean of each `plane`-long chunk of `x` into `y`.
struct Means<'a> {
    x: &'a [f32],
    y: &'a mut [f32],
    plane: usize,
}

impl SimdFn<f32> for Means<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let div = self.plane as f32;
        for (yo, xp) in self.y.iter_mut().zip(self.x.chunks_exact(self.plane)) {
            *yo = sum::<V>(xp) / div;
        }
    }
}

/// The sum of `xs`: four vector accumulators, then the lanes, then the tail, in that order.
#[inline(always)]
fn sum<V: Vector<Elem = f32>>(xs: &[f32]) -> f32 {
    let step = 4 * V::LANES;
    let mut acc = [V::zero(); 4];
    let mut chunks = xs.chunks_exact(step);
    for c in &mut chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: `c` holds `4 * LANES` elements, so `j * LANES..` has LANES readable.
            *a = a.add(unsafe { V::load(c.as_ptr().add(j * V::LANES)) });
        }
    }
    let total = acc[0].add(acc[1]).add(acc[2].add(acc[3])).reduce_sum();
    chunks.remainder().iter().fold(total, |s, &v| s + v)
}
