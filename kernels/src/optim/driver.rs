//! The one loop all optimizer rules share: load a vector of the parameter, its gradient and up
//! to three state slices, apply the rule, store back. Split across rayon workers in fixed
//! chunks for long parameters.

use super::PAR_CHUNK;
use crate::simd::{dispatch, load_partial, store_partial, Isa, SimdFn, Vector};

/// An element-wise update rule: new parameter from (parameter, gradient, state), updating the
/// state in place. Implementations are `#[inline(always)]` so they compile into the
/// per-ISA instantiation.
pub(super) trait Rule: Copy + Send + Sync {
    /// Which of the three state slots the rule reads and writes.
    fn uses(&self) -> [bool; 3];
    /// The update of one vector of elements; unused state lanes hold zero.
    fn apply<V: Vector<Elem = f32>>(&self, p: V, g: V, s: &mut [V; 3]) -> V;
}

/// Lane-wise square root. The vector trait has no square root, so the lanes go through a
/// stack buffer; under AVX2 LLVM turns the fixed-length loop into one `vsqrtps`. Correctly
/// rounded, like PyTorch's `sqrt`.
#[inline(always)]
pub(super) fn sqrt<V: Vector<Elem = f32>>(v: V) -> V {
    let mut buf = [0.0f32; 16];
    // SAFETY: `buf` holds 16 >= V::LANES elements.
    unsafe { v.store(buf.as_mut_ptr()) };
    for x in buf.iter_mut().take(V::LANES) {
        *x = x.sqrt();
    }
    // SAFETY: as above.
    unsafe { V::load(buf.as_ptr()) }
}

/// Runs `rule` over every element; the caller has checked that each used state slice has the
/// parameter's length and that `grad` does too.
pub(super) fn run<R: Rule>(rule: R, param: &mut [f32], grad: &[f32], state: [&mut [f32]; 3]) {
    let isa = Isa::active();
    split(isa, rule, param, grad, state);
}

fn split<R: Rule>(isa: Isa, rule: R, p: &mut [f32], g: &[f32], s: [&mut [f32]; 3]) {
    let n = p.len();
    if n <= PAR_CHUNK {
        dispatch(isa, Leaf { rule, p, g, s });
        return;
    }
    // Split at a multiple of PAR_CHUNK so the chunking never depends on the thread count
    // (the arithmetic per element is the same anyway).
    let mid = n.div_ceil(PAR_CHUNK) / 2 * PAR_CHUNK;
    let used = rule.uses();
    let (p0, p1) = p.split_at_mut(mid);
    let (g0, g1) = g.split_at(mid);
    let [s0, s1, s2] = s;
    let (a0, b0) = cut(s0, used[0], mid);
    let (a1, b1) = cut(s1, used[1], mid);
    let (a2, b2) = cut(s2, used[2], mid);
    rayon::join(
        || split(isa, rule, p0, g0, [a0, a1, a2]),
        || split(isa, rule, p1, g1, [b0, b1, b2]),
    );
}

/// Splits a used state slice at `mid`; an unused one becomes two empty slices.
fn cut(s: &mut [f32], used: bool, mid: usize) -> (&mut [f32], &mut [f32]) {
    if used {
        s.split_at_mut(mid)
    } else {
        (&mut [], &mut [])
    }
}

struct Leaf<'a, R> {
    rule: R,
    p: &'a mut [f32],
    g: &'a [f32],
    s: [&'a mut [f32]; 3],
}

#[inline(always)]
unsafe fn load<V: Vector<Elem = f32>>(ptr: *const f32, w: usize) -> V {
    if w == V::LANES {
        // SAFETY: the caller guarantees `w` readable elements.
        unsafe { V::load(ptr) }
    } else {
        // SAFETY: as above, `w < LANES`.
        unsafe { load_partial(ptr, w) }
    }
}

#[inline(always)]
unsafe fn store<V: Vector<Elem = f32>>(v: V, ptr: *mut f32, w: usize) {
    if w == V::LANES {
        // SAFETY: the caller guarantees `w` writable elements.
        unsafe { v.store(ptr) }
    } else {
        // SAFETY: as above, `w < LANES`.
        unsafe { store_partial(v, ptr, w) }
    }
}

impl<R: Rule> SimdFn<f32> for Leaf<'_, R> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        // One monomorphised loop per set of used state slots, so the loop body has no
        // per-element branches and unused slots cost nothing.
        match self.rule.uses() {
            [true, true, true] => body::<V, R, true, true, true>(self),
            [true, true, false] => body::<V, R, true, true, false>(self),
            [true, false, true] => body::<V, R, true, false, true>(self),
            [true, false, false] => body::<V, R, true, false, false>(self),
            _ => body::<V, R, false, false, false>(self),
        }
    }
}

/// The update loop with slots `U0..U2` used: full vectors, then one partial tail.
#[inline(always)]
fn body<V: Vector<Elem = f32>, R: Rule, const U0: bool, const U1: bool, const U2: bool>(
    leaf: Leaf<'_, R>,
) {
    let n = leaf.p.len();
    let [s0, s1, s2] = leaf.s;
    let ptrs = Ptrs {
        p: leaf.p.as_mut_ptr(),
        g: leaf.g.as_ptr(),
        s: [s0.as_mut_ptr(), s1.as_mut_ptr(), s2.as_mut_ptr()],
    };
    let full = n - n % V::LANES;
    let mut i = 0;
    while i < full {
        // SAFETY: `i + LANES <= n`, and every slice used has length `n` (checked by the
        // public entry points); unused state slices are never dereferenced.
        unsafe { update_at::<V, R, U0, U1, U2>(&leaf.rule, &ptrs, i, V::LANES) };
        i += V::LANES;
    }
    if full < n {
        // SAFETY: as above, for the `n - full < LANES` tail elements.
        unsafe { update_at::<V, R, U0, U1, U2>(&leaf.rule, &ptrs, full, n - full) };
    }
}

struct Ptrs {
    p: *mut f32,
    g: *const f32,
    s: [*mut f32; 3],
}

/// Updates elements `i..i + w` (`w <= LANES`).
///
/// # Safety
/// Every pointer used is valid for reads and writes of elements `i..i + w`.
#[inline(always)]
unsafe fn update_at<
    V: Vector<Elem = f32>,
    R: Rule,
    const U0: bool,
    const U1: bool,
    const U2: bool,
>(
    rule: &R,
    ptrs: &Ptrs,
    i: usize,
    w: usize,
) {
    let used = [U0, U1, U2];
    // SAFETY: the caller guarantees elements `i..i + w` of every used pointer.
    unsafe {
        let p = load::<V>(ptrs.p.add(i), w);
        let g = load::<V>(ptrs.g.add(i), w);
        let mut s = [V::zero(); 3];
        for k in 0..3 {
            if used[k] {
                s[k] = load::<V>(ptrs.s[k].add(i), w);
            }
        }
        let p = rule.apply(p, g, &mut s);
        store(p, ptrs.p.add(i), w);
        for k in 0..3 {
            if used[k] {
                store(s[k], ptrs.s[k].add(i), w);
            }
        }
    }
}
