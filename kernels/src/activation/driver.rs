//! Slice drivers for elementwise maps: one pass, SIMD through [`dispatch`], and rayon over
//! large chunks only when the slice is long enough to pay for it.
//!
//! Results do not depend on the thread count: each element is computed alone.

use super::ops::{Binary, Unary};
use crate::simd::{dispatch, load_partial, store_partial, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Below this many elements a map stays on the calling thread (a 64K map takes ~10 us, the
/// cost of waking workers would dominate).
pub(crate) const PAR_MIN_LEN: usize = 1 << 18;
/// Elements per rayon task above [`PAR_MIN_LEN`] (256 KiB of f32: long enough to stream).
pub(crate) const PAR_CHUNK: usize = 1 << 16;
/// From this many elements (16 MiB of output, half this machine class's L3) outputs are
/// written with non-temporal stores: they cannot stay cached anyway, and skipping the
/// read-for-ownership of each output line cuts the memory traffic from 12 to 8 bytes per
/// element forward (16 to 12 backward).
pub(crate) const STREAM_MIN_LEN: usize = 1 << 22;

/// Splits `0..n` into a head `0..i0`, whole vectors `i0..i1` and a tail `i1..n`, such that
/// when streaming `dst + i0` is aligned to the vector size (non-temporal stores need it);
/// head and tail are done with partial vectors.
#[inline(always)]
fn aligned_split<V: Vector<Elem = f32>>(dst: *mut f32, n: usize, stream: bool) -> (usize, usize) {
    let lanes = V::LANES;
    let i0 = if stream && lanes > 1 {
        let align = std::mem::size_of::<V>();
        let mis = (dst as usize) % align;
        (((align - mis) % align) / std::mem::size_of::<f32>()).min(n)
    } else {
        0
    };
    let i1 = i0 + (n - i0) / lanes * lanes;
    (i0, i1)
}

/// One unary map over raw pointers; `src` may equal `dst` (in place).
struct UnaryRun<F> {
    f: F,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    stream: bool,
}

impl<F: Unary> SimdFn<f32> for UnaryRun<F> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (f, src, dst, n) = (self.f, self.src, self.dst, self.n);
        let lanes = V::LANES;
        let (i0, i1) = aligned_split::<V>(dst, n, self.stream);
        // SAFETY (whole body): `src` is valid for `n` reads and `dst` for `n` writes (see
        // `map_unary`); they are equal or disjoint, and every vector is loaded before the
        // store to the same positions. `dst + i0` is `V`-aligned when streaming
        // (`aligned_split`), and `i0..i1` is a whole number of vectors.
        unsafe {
            if i0 > 0 {
                unary_part::<V, F>(f, src, dst, i0);
            }
            let mut i = i0;
            if self.stream {
                while i < i1 {
                    f.apply(V::load(src.add(i))).store_stream(dst.add(i));
                    i += lanes;
                }
                V::stream_fence();
            } else {
                while i + 4 * lanes <= i1 {
                    let a = V::load(src.add(i));
                    let b = V::load(src.add(i + lanes));
                    let c = V::load(src.add(i + 2 * lanes));
                    let d = V::load(src.add(i + 3 * lanes));
                    f.apply(a).store(dst.add(i));
                    f.apply(b).store(dst.add(i + lanes));
                    f.apply(c).store(dst.add(i + 2 * lanes));
                    f.apply(d).store(dst.add(i + 3 * lanes));
                    i += 4 * lanes;
                }
                while i < i1 {
                    f.apply(V::load(src.add(i))).store(dst.add(i));
                    i += lanes;
                }
            }
            if i1 < n {
                unary_part::<V, F>(f, src.add(i1), dst.add(i1), n - i1);
            }
        }
    }
}

/// `m < LANES` elements of a unary map through partial vectors.
///
/// # Safety
/// `src` valid for `m` reads, `dst` for `m` writes.
#[inline(always)]
unsafe fn unary_part<V: Vector<Elem = f32>, F: Unary>(
    f: F,
    src: *const f32,
    dst: *mut f32,
    m: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let v: V = load_partial(src, m);
        store_partial(f.apply(v), dst, m);
    }
}

/// `m < LANES` elements of a binary map through partial vectors.
///
/// # Safety
/// `a` and `dy` valid for `m` reads, `dst` for `m` writes.
#[inline(always)]
unsafe fn binary_part<V: Vector<Elem = f32>, F: Binary>(
    f: F,
    a: *const f32,
    dy: *const f32,
    dst: *mut f32,
    m: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let va: V = load_partial(a, m);
        let vd: V = load_partial(dy, m);
        store_partial(f.apply(va, vd), dst, m);
    }
}

/// One binary map over raw pointers; `dst` may equal `dy` (in place).
struct BinaryRun<F> {
    f: F,
    a: *const f32,
    dy: *const f32,
    dst: *mut f32,
    n: usize,
    stream: bool,
}

impl<F: Binary> SimdFn<f32> for BinaryRun<F> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (f, a, dy, dst, n) = (self.f, self.a, self.dy, self.dst, self.n);
        let lanes = V::LANES;
        let (i0, i1) = aligned_split::<V>(dst, n, self.stream);
        // SAFETY (whole body): `a` and `dy` are valid for `n` reads, `dst` for `n` writes
        // (see `map_binary`); `dst` equals `dy` or is disjoint from both inputs, and every
        // vector is loaded before the store to the same positions. `dst + i0` is
        // `V`-aligned when streaming, and `i0..i1` is a whole number of vectors.
        unsafe {
            if i0 > 0 {
                binary_part::<V, F>(f, a, dy, dst, i0);
            }
            let mut i = i0;
            if self.stream {
                while i < i1 {
                    f.apply(V::load(a.add(i)), V::load(dy.add(i)))
                        .store_stream(dst.add(i));
                    i += lanes;
                }
                V::stream_fence();
            } else {
                while i + 2 * lanes <= i1 {
                    let x0 = f.apply(V::load(a.add(i)), V::load(dy.add(i)));
                    let x1 = f.apply(V::load(a.add(i + lanes)), V::load(dy.add(i + lanes)));
                    x0.store(dst.add(i));
                    x1.store(dst.add(i + lanes));
                    i += 2 * lanes;
                }
                while i < i1 {
                    f.apply(V::load(a.add(i)), V::load(dy.add(i)))
                        .store(dst.add(i));
                    i += lanes;
                }
            }
            if i1 < n {
                binary_part::<V, F>(f, a.add(i1), dy.add(i1), dst.add(i1), n - i1);
            }
        }
    }
}

/// `y[i] = f(x[i])`; `x.len() == y.len()` (checked by the caller).
pub(crate) fn map_unary<F: Unary>(f: F, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    let (isa, stream) = (Isa::active(), y.len() >= STREAM_MIN_LEN);
    let run = |x: &[f32], y: &mut [f32]| {
        let n = x.len().min(y.len());
        dispatch(
            isa,
            UnaryRun {
                f,
                src: x.as_ptr(),
                dst: y.as_mut_ptr(),
                n,
                stream,
            },
        );
    };
    if x.len() >= PAR_MIN_LEN {
        x.par_chunks(PAR_CHUNK)
            .zip(y.par_chunks_mut(PAR_CHUNK))
            .for_each(|(x, y)| run(x, y));
    } else {
        run(x, y);
    }
}

/// `xy[i] = f(xy[i])`.
pub(crate) fn map_unary_inplace<F: Unary>(f: F, xy: &mut [f32]) {
    let (isa, stream) = (Isa::active(), xy.len() >= STREAM_MIN_LEN);
    let run = |c: &mut [f32]| {
        let p = c.as_mut_ptr();
        dispatch(
            isa,
            UnaryRun {
                f,
                src: p,
                dst: p,
                n: c.len(),
                stream,
            },
        );
    };
    if xy.len() >= PAR_MIN_LEN {
        xy.par_chunks_mut(PAR_CHUNK).for_each(run);
    } else {
        run(xy);
    }
}

/// `dx[i] = f(a[i], dy[i])`; all three of one length (checked by the caller).
pub(crate) fn map_binary<F: Binary>(f: F, a: &[f32], dy: &[f32], dx: &mut [f32]) {
    debug_assert!(a.len() == dx.len() && dy.len() == dx.len());
    let (isa, stream) = (Isa::active(), dx.len() >= STREAM_MIN_LEN);
    let run = |a: &[f32], dy: &[f32], dx: &mut [f32]| {
        let n = a.len().min(dy.len()).min(dx.len());
        let (a, dy, dst) = (a.as_ptr(), dy.as_ptr(), dx.as_mut_ptr());
        dispatch(
            isa,
            BinaryRun {
                f,
                a,
                dy,
                dst,
                n,
                stream,
            },
        );
    };
    if dx.len() >= PAR_MIN_LEN {
        a.par_chunks(PAR_CHUNK)
            .zip(dy.par_chunks(PAR_CHUNK))
            .zip(dx.par_chunks_mut(PAR_CHUNK))
            .for_each(|((a, dy), dx)| run(a, dy, dx));
    } else {
        run(a, dy, dx);
    }
}

/// `dxy[i] = f(a[i], dxy[i])`: the gradient overwrites the incoming one.
pub(crate) fn map_binary_inplace<F: Binary>(f: F, a: &[f32], dxy: &mut [f32]) {
    debug_assert_eq!(a.len(), dxy.len());
    let (isa, stream) = (Isa::active(), dxy.len() >= STREAM_MIN_LEN);
    let run = |a: &[f32], c: &mut [f32]| {
        let n = a.len().min(c.len());
        let p = c.as_mut_ptr();
        dispatch(
            isa,
            BinaryRun {
                f,
                a: a.as_ptr(),
                dy: p,
                dst: p,
                n,
                stream,
            },
        );
    };
    if dxy.len() >= PAR_MIN_LEN {
        a.par_chunks(PAR_CHUNK)
            .zip(dxy.par_chunks_mut(PAR_CHUNK))
            .for_each(|(a, c)| run(a, c));
    } else {
        run(a, dxy);
    }
}
