//! Native average pooling, separable: the window sum of an output row is a vertical sum of the
//! covered input rows (contiguous, vectorised) followed by a horizontal `kernel_w`-tap sum over
//! a zero-padded row buffer on the stack (contiguous too; for stride > 1 it computes a few sums
//! no output needs, which is cheaper than strided loads). The backward mirrors it: a
//! horizontal scatter of the scaled gradients of one output row into a row buffer, then one
//! vector add of that row into each covered `dx` row. Rows wider than the stack buffer take the
//! direct per-window loops.

use super::{for_planes, Pool2dParams};
use crate::simd::{dispatch, Isa, SimdFn, Vector};

/// Longest padded row (`w + 2 * pad_w`) the separable path handles.
const ROW_MAX: usize = 1024;

/// The divisor of output `(oh, ow)`.
#[inline(always)]
fn divisor(p: &Pool2dParams, include_pad: bool, rows: (usize, usize), ow: usize) -> f32 {
    if include_pad {
        (p.kh * p.kw) as f32
    } else {
        let (w0, w1) = p.cols(ow);
        ((rows.1 - rows.0) * (w1 - w0)) as f32
    }
}

/// Forward over all planes (arguments already validated).
pub(super) fn forward(p: &Pool2dParams, include_pad: bool, x: &[f32], y: &mut [f32]) {
    let isa = Isa::active();
    let (inp, outp) = (p.in_plane(), p.out_plane());
    let _ = for_planes(p.planes(), inp + outp, y, outp, |first, y| {
        let x = &x[first * inp..];
        dispatch(
            isa,
            Forward {
                p,
                include_pad,
                x,
                y,
            },
        );
        Ok(())
    });
}

/// Backward over all planes (arguments already validated).
pub(super) fn backward(p: &Pool2dParams, include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let isa = Isa::active();
    let (inp, outp) = (p.in_plane(), p.out_plane());
    let _ = for_planes(p.planes(), inp + outp, dx, inp, |first, dx| {
        let dy = &dy[first * outp..];
        dispatch(
            isa,
            Backward {
                p,
                include_pad,
                dy,
                dx,
            },
        );
        Ok(())
    });
}

struct Forward<'a> {
    p: &'a Pool2dParams,
    include_pad: bool,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl SimdFn<f32> for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (p, inp, outp) = (self.p, self.p.in_plane(), self.p.out_plane());
        let padded = p.w + 2 * p.pw;
        let mut row = [0.0f32; ROW_MAX];
        let mut taps = [0.0f32; ROW_MAX];
        for (i, y) in self.y.chunks_exact_mut(outp).enumerate() {
            let x = &self.x[i * inp..][..inp];
            if padded > ROW_MAX {
                forward_direct(p, self.include_pad, x, y);
                continue;
            }
            let (row, taps) = (&mut row[..padded], &mut taps[..padded + 1 - p.kw]);
            for (oh, y) in y.chunks_exact_mut(p.ow).enumerate() {
                let rows = p.rows(oh);
                // Vertical sum of the covered rows into the middle of the padded row.
                let mid = &mut row[p.pw..p.pw + p.w];
                mid.copy_from_slice(&x[rows.0 * p.w..][..p.w]);
                for ih in rows.0 + 1..rows.1 {
                    add_into::<V>(mid, &x[ih * p.w..][..p.w]);
                }
                // Horizontal kw-tap sums at every start position.
                taps.copy_from_slice(&row[..taps.len()]);
                for t in 1..p.kw {
                    add_into::<V>(taps, &row[t..t + taps.len()]);
                }
                for (ow, y) in y.iter_mut().enumerate() {
                    *y = taps[ow * p.sw] / divisor(p, self.include_pad, rows, ow);
                }
            }
        }
    }
}

/// `acc[i] += src[i]` in vectors (same length).
#[inline(always)]
fn add_into<V: Vector<Elem = f32>>(acc: &mut [f32], src: &[f32]) {
    let n = acc.len().min(src.len());
    let mut i = 0;
    while i + V::LANES <= n {
        // SAFETY: `i + LANES <= n` elements are readable in `src` and writable in `acc`.
        unsafe {
            let a = V::load(acc.as_ptr().add(i)).add(V::load(src.as_ptr().add(i)));
            a.store(acc.as_mut_ptr().add(i));
        }
        i += V::LANES;
    }
    for (a, s) in acc[i..n].iter_mut().zip(&src[i..n]) {
        *a += s;
    }
}

/// One plane, direct window sums (rows too wide for the stack buffers).
#[inline(always)]
fn forward_direct(p: &Pool2dParams, include_pad: bool, x: &[f32], y: &mut [f32]) {
    for oh in 0..p.oh {
        let rows = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let sum = (rows.0..rows.1)
                .flat_map(|ih| &x[ih * p.w..][w0..w1])
                .fold(0.0f32, |s, &v| s + v);
            y[oh * p.ow + ow] = sum / divisor(p, include_pad, rows, ow);
        }
    }
}

struct Backward<'a> {
    p: &'a Pool2dParams,
    include_pad: bool,
    dy: &'a [f32],
    dx: &'a mut [f32],
}

impl SimdFn<f32> for Backward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (p, inp, outp) = (self.p, self.p.in_plane(), self.p.out_plane());
        let padded = p.w + 2 * p.pw;
        let mut row = [0.0f32; ROW_MAX];
        for (i, dx) in self.dx.chunks_exact_mut(inp).enumerate() {
            let dy = &self.dy[i * outp..][..outp];
            dx.fill(0.0);
            if padded > ROW_MAX {
                backward_direct(p, self.include_pad, dy, dx);
                continue;
            }
            let row = &mut row[..padded];
            for (oh, dy) in dy.chunks_exact(p.ow).enumerate() {
                let rows = p.rows(oh);
                // Horizontal scatter of this output row's scaled gradients.
                row.fill(0.0);
                for (ow, &g) in dy.iter().enumerate() {
                    let g = g / divisor(p, self.include_pad, rows, ow);
                    for r in &mut row[ow * p.sw..][..p.kw] {
                        *r += g;
                    }
                }
                let mid = &row[p.pw..p.pw + p.w];
                for ih in rows.0..rows.1 {
                    add_into::<V>(&mut dx[ih * p.w..][..p.w], mid);
                }
            }
        }
    }
}

/// One plane, direct scatter (rows too wide for the stack buffer); `dx` is zeroed.
#[inline(always)]
fn backward_direct(p: &Pool2dParams, include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    for oh in 0..p.oh {
        let rows = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let g = dy[oh * p.ow + ow] / divisor(p, include_pad, rows, ow);
            for ih in rows.0..rows.1 {
                for d in &mut dx[ih * p.w..][w0..w1] {
                    *d += g;
                }
            }
        }
    }
}
