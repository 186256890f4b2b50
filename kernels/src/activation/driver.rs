//! Slice drivers for elementwise maps: one pass, SIMD through [`dispatch`], and rayon over
//! large chunks only when the slice is long enough to pay for it.
//!
//! Results do not depend on the thread count: each element is computed alone.

use super::ops::{Binary, Unary};
use crate::simd::{dispatch, load_partial, store_partial, Isa, SimdFn, Vector};
use rayon::prelude::*;

/// Below this many elements a map stays on the calling thread (a 64K map takes ~10 us, the
/// cost of waking workers would dominate).
pub const PAR_MIN_LEN: usize = 1 << 18;
/// Elements per rayon task above [`PAR_MIN_LEN`] (256 KiB of f32: long enough to stream).
pub const PAR_CHUNK: usize = 1 << 16;
/// From this many elements (16 MiB of output, half this machine class's L3) the outputs of
/// cheap (memory-bound) maps are written with non-temporal stores: they cannot stay cached
/// anyway, and skipping the read-for-ownership of each output line cuts the memory traffic
/// from 12 to 8 bytes per element forward (16 to 12 backward).
pub(crate) const STREAM_MIN_LEN: usize = 1 << 22;

/// Stores `v` at `ptr`, with a streaming store if `stream`.
///
/// # Safety
/// As [`Vector::store`], and for `stream` as [`Vector::store_stream`].
#[inline(always)]
unsafe fn put<V: Vector<Elem = f32>>(v: V, ptr: *mut f32, stream: bool) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if stream {
            v.store_stream(ptr)
        } else {
            v.store(ptr)
        }
    }
}

/// Whether a map over `len` elements writes with non-temporal stores: from
/// [`STREAM_MIN_LEN`] on, the cheap (memory-bound) maps and the staged ones (measured 10-25%
/// faster with them on one thread and on two: their second pass writes whole lines). The
/// stores give the same bits either way.
fn streams(cheap: bool, staged: bool, len: usize) -> bool {
    len >= STREAM_MIN_LEN && (cheap || staged)
}

/// Vectors per block of a staged map ([`Unary::STAGED`]): the first halves of the block
/// are computed into this small buffer (cache-resident, likely in registers only in part),
/// then the second halves. A long chain of dependent operations per vector limits how many
/// vectors the out-of-order window overlaps; two shorter chains in separate passes overlap
/// more (measured 10-15% faster for sigmoid and GELU at 16 vectors; 4 to 8 gain less).
const STAGE_VECS: usize = 16;

/// Runs a staged map over the whole blocks of `i..n`, returning where they end: for each
/// block, `start(j)` for the vector at every `j` of it into a small buffer, then
/// `finish(j, started)` (which loads again and stores).
#[inline(always)]
fn staged_blocks<V: Vector<Elem = f32>>(
    mut i: usize,
    n: usize,
    start: impl Fn(usize) -> V,
    finish: impl Fn(usize, V),
) -> usize {
    let block = STAGE_VECS * V::LANES;
    let mut started = [V::zero(); STAGE_VECS];
    while i + block <= n {
        for (k, s) in started.iter_mut().enumerate() {
            *s = start(i + k * V::LANES);
        }
        for (k, s) in started.iter().enumerate() {
            finish(i + k * V::LANES, *s);
        }
        i += block;
    }
    i
}

/// Vectors computed before each burst of streaming stores: four 32-byte vectors fill two
/// whole cache lines back to back, so the write-combining buffers flush full lines (stores
/// to a line spread over a slow computation get flushed half-written, which is far slower).
const BURST: usize = 4;

/// For streaming, splits `0..n` into a head `0..i0`, a middle `i0..i1` of whole bursts of
/// `BURST` vectors starting at a 64-byte aligned `dst + i0`, and the rest `i1..n` (ordinary
/// stores). Without streaming, `(0, 0)`: everything is "the rest".
#[inline(always)]
fn split<V: Vector<Elem = f32>>(dst: *mut f32, n: usize, stream: bool) -> (usize, usize) {
    if !stream {
        return (0, 0);
    }
    let lanes = V::LANES;
    let i0 = if lanes > 1 {
        let mis = (dst as usize) % 64;
        (((64 - mis) % 64) / std::mem::size_of::<f32>()).min(n)
    } else {
        0
    };
    let burst = BURST * lanes;
    (i0, i0 + (n - i0) / burst * burst)
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
        let (i0, i1) = split::<V>(dst, n, self.stream);
        // SAFETY (whole body): `src` is valid for `n` reads and `dst` for `n` writes (see
        // `map_unary`); they are equal or disjoint, and every vector is loaded before the
        // store to the same positions. When streaming, `dst + i0` is line-aligned (`split`)
        // and `i0..i1` is whole bursts; the rest is done with ordinary stores.
        unsafe {
            // The head (up to a cache line) in pieces of at most one vector.
            let mut i = 0;
            while i < i0 {
                let m = (i0 - i).min(lanes);
                unary_part::<V, F>(f, src.add(i), dst.add(i), m);
                i += m;
            }
            if F::STAGED {
                // When streaming, whole blocks from the line-aligned `i0`: a block's second
                // pass stores its lines whole and close together, as the bursts below do.
                i = staged_blocks(
                    i,
                    n,
                    |j| f.start(V::load(src.add(j))),
                    |j, s: V| put(f.finish(V::load(src.add(j)), s), dst.add(j), self.stream),
                );
            }
            if self.stream {
                while i < i1 {
                    let mut out = [V::zero(); BURST];
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = f.apply(V::load(src.add(i + k * lanes)));
                    }
                    for (k, o) in out.iter().enumerate() {
                        o.store_stream(dst.add(i + k * lanes));
                    }
                    i += BURST * lanes;
                }
                V::stream_fence();
            }
            {
                while i + 4 * lanes <= n {
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
                while i + lanes <= n {
                    f.apply(V::load(src.add(i))).store(dst.add(i));
                    i += lanes;
                }
            }
            if i < n {
                unary_part::<V, F>(f, src.add(i), dst.add(i), n - i);
            }
        }
    }
}

/// `m <= LANES` elements of a unary map through a partial vector.
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

/// `m <= LANES` elements of a binary map through partial vectors.
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
        let (i0, i1) = split::<V>(dst, n, self.stream);
        // SAFETY (whole body): `a` and `dy` are valid for `n` reads, `dst` for `n` writes
        // (see `map_binary`); `dst` equals `dy` or is disjoint from both inputs, and every
        // vector is loaded before the store to the same positions. When streaming, `dst +
        // i0` is line-aligned and `i0..i1` is whole bursts; the rest uses ordinary stores.
        unsafe {
            let mut i = 0;
            while i < i0 {
                let m = (i0 - i).min(lanes);
                binary_part::<V, F>(f, a.add(i), dy.add(i), dst.add(i), m);
                i += m;
            }
            if F::STAGED {
                // As in `UnaryRun`; `dst` may be `dy`: each vector of it is read before it is
                // written.
                i = staged_blocks(
                    i,
                    n,
                    |j| f.start(V::load(a.add(j))),
                    |j, s: V| {
                        let g = f.finish(V::load(a.add(j)), V::load(dy.add(j)), s);
                        put(g, dst.add(j), self.stream)
                    },
                );
            }
            if self.stream {
                while i < i1 {
                    let mut out = [V::zero(); BURST];
                    for (k, o) in out.iter_mut().enumerate() {
                        let j = i + k * lanes;
                        *o = f.apply(V::load(a.add(j)), V::load(dy.add(j)));
                    }
                    for (k, o) in out.iter().enumerate() {
                        o.store_stream(dst.add(i + k * lanes));
                    }
                    i += BURST * lanes;
                }
                V::stream_fence();
            }
            {
                while i + 2 * lanes <= n {
                    let x0 = f.apply(V::load(a.add(i)), V::load(dy.add(i)));
                    let x1 = f.apply(V::load(a.add(i + lanes)), V::load(dy.add(i + lanes)));
                    x0.store(dst.add(i));
                    x1.store(dst.add(i + lanes));
                    i += 2 * lanes;
                }
                while i + lanes <= n {
                    f.apply(V::load(a.add(i)), V::load(dy.add(i)))
                        .store(dst.add(i));
                    i += lanes;
                }
            }
            if i < n {
                binary_part::<V, F>(f, a.add(i), dy.add(i), dst.add(i), n - i);
            }
        }
    }
}

/// `y[i] = f(x[i])`; `x.len() == y.len()` (checked by the caller).
pub(crate) fn map_unary<F: Unary>(f: F, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    let (isa, stream) = (Isa::active(), streams(F::CHEAP, F::STAGED, y.len()));
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
    let (isa, stream) = (Isa::active(), streams(F::CHEAP, F::STAGED, xy.len()));
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
    let (isa, stream) = (Isa::active(), streams(F::CHEAP, F::STAGED, dx.len()));
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
    let (isa, stream) = (Isa::active(), streams(F::CHEAP, F::STAGED, dxy.len()));
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
