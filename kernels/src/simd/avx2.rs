//! The AVX2+FMA instantiation through `core::arch`.
//!
//! Invariant: values of these types are only created inside functions compiled with
//! `#[target_feature(enable = "avx2,fma")]`, which the dispatch calls only after
//! `Isa::Avx2.supported()` returned true. The intrinsics below are therefore sound to call;
//! each `unsafe` block relies on that invariant. All methods are `#[inline(always)]` so they
//! are compiled into those target-feature functions.
#![cfg(target_arch = "x86_64")]

use super::Vector;
use std::arch::x86_64::*;

/// 8 x f32 in a ymm register.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x8Avx2(pub(crate) __m256);

/// 4 x f64 in a ymm register.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F64x4Avx2(pub(crate) __m256d);

macro_rules! avx2_vector {
    ($name:ident, $t:ty, $lanes:expr, $reg:ty,
     set1 = $set1:ident, zero = $zero:ident, loadu = $loadu:ident, storeu = $storeu:ident,
     add = $add:ident, sub = $sub:ident, mul = $mul:ident, div = $div:ident, fmadd = $fmadd:ident,
     max = $max:ident, min = $min:ident, cmp = $cmp:ident, blend = $blend:ident,
     and = $and:ident, or = $or:ident, andnot = $andnot:ident, movemask = $movemask:ident,
     cast_i = $cast_i:ident, cast_f = $cast_f:ident, slli = $slli:ident, stream = $stream:ident,
     deinterleave = $deint:ident, interleave = $int:ident,
     magic = $magic:expr, shift = $shift:expr) => {
        impl Vector for $name {
            type Elem = $t;
            const LANES: usize = $lanes;
            const FUSED: bool = true;
            const AVX2: bool = true;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $set1(x) })
            }
            #[inline(always)]
            fn zero() -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $zero() })
            }
            #[inline(always)]
            unsafe fn load(ptr: *const $t) -> Self {
                // SAFETY: the caller guarantees LANES readable elements; unaligned load.
                $name(unsafe { $loadu(ptr) })
            }
            #[inline(always)]
            unsafe fn store(self, ptr: *mut $t) {
                // SAFETY: the caller guarantees LANES writable elements; unaligned store.
                unsafe { $storeu(ptr, self.0) }
            }
            #[inline(always)]
            unsafe fn store_stream(self, ptr: *mut $t) {
                // SAFETY: the caller guarantees LANES writable elements at a 32-byte aligned
                // address (vmovntps requires the alignment).
                unsafe { $stream(ptr, self.0) }
            }
            #[inline(always)]
            fn stream_fence() {
                // SAFETY: SSE is part of x86-64.
                unsafe { _mm_sfence() }
            }
            #[inline(always)]
            fn add(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $add(self.0, b.0) })
            }
            #[inline(always)]
            fn sub(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $sub(self.0, b.0) })
            }
            #[inline(always)]
            fn mul(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $mul(self.0, b.0) })
            }
            #[inline(always)]
            fn div(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $div(self.0, b.0) })
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                // SAFETY: FMA available (module invariant).
                $name(unsafe { $fmadd(self.0, b.0, c.0) })
            }
            #[inline(always)]
            fn max(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant). maxps returns its second operand
                // when either is NaN, so NaN lanes of either input are blended back in.
                unsafe {
                    let m = $max(self.0, b.0);
                    let nan = $cmp::<_CMP_UNORD_Q>(self.0, b.0);
                    $name($blend(m, $add(self.0, b.0), nan))
                }
            }
            #[inline(always)]
            fn min(self, b: Self) -> Self {
                // SAFETY: as in `max`.
                unsafe {
                    let m = $min(self.0, b.0);
                    let nan = $cmp::<_CMP_UNORD_Q>(self.0, b.0);
                    $name($blend(m, $add(self.0, b.0), nan))
                }
            }
            #[inline(always)]
            fn reduce_sum(self) -> $t {
                let mut lanes = [0.0 as $t; $lanes];
                // SAFETY: `lanes` holds LANES elements.
                unsafe { self.store(lanes.as_mut_ptr()) };
                lanes.iter().fold(0.0, |acc, &x| acc + x)
            }
            #[inline(always)]
            fn reduce_max(self) -> $t {
                let mut lanes = [0.0 as $t; $lanes];
                // SAFETY: `lanes` holds LANES elements.
                unsafe { self.store(lanes.as_mut_ptr()) };
                lanes.iter().fold(lanes[0], |acc, &x| Vector::max(acc, x))
            }
            #[inline(always)]
            fn at_least(self, lo: Self) -> Self {
                // SAFETY: AVX2 available (module invariant). maxps returns its second
                // operand when either is NaN, so a NaN in `self` survives.
                $name(unsafe { $max(lo.0, self.0) })
            }
            #[inline(always)]
            fn at_most(self, hi: Self) -> Self {
                // SAFETY: as in `at_least`.
                $name(unsafe { $min(hi.0, self.0) })
            }
            #[inline(always)]
            fn abs(self) -> Self {
                // SAFETY: AVX2 available (module invariant). Clears the sign bits.
                $name(unsafe { $andnot($set1(-0.0), self.0) })
            }
            const POW2_MAGIC: $t = $magic;
            #[inline(always)]
            fn pow2_biased(self) -> Self {
                // SAFETY: AVX2 available (module invariant). The shift moves the low mantissa
                // bits (`n + bias`) into the exponent field.
                $name(unsafe { $cast_f($slli::<$shift>($cast_i(self.0))) })
            }
            #[inline(always)]
            fn lt(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $cmp::<_CMP_LT_OQ>(self.0, b.0) })
            }
            #[inline(always)]
            fn eq(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $cmp::<_CMP_EQ_OQ>(self.0, b.0) })
            }
            #[inline(always)]
            fn any(self) -> bool {
                // SAFETY: AVX2 available (module invariant).
                unsafe { $movemask(self.0) != 0 }
            }
            #[inline(always)]
            fn select(mask: Self, a: Self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant). blendv picks `a` where the mask's
                // sign bit is set, which all-ones masks have.
                $name(unsafe { $blend(b.0, a.0, mask.0) })
            }
            #[inline(always)]
            fn and(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $and(self.0, b.0) })
            }
            #[inline(always)]
            fn or(self, b: Self) -> Self {
                // SAFETY: AVX2 available (module invariant).
                $name(unsafe { $or(self.0, b.0) })
            }
            #[inline(always)]
            fn deinterleave(self, next: Self) -> (Self, Self) {
                // SAFETY: AVX2 available (module invariant).
                let (e, o) = unsafe { $deint(self.0, next.0) };
                ($name(e), $name(o))
            }
            #[inline(always)]
            fn interleave(self, odd: Self) -> (Self, Self) {
                // SAFETY: AVX2 available (module invariant).
                let (a, b) = unsafe { $int(self.0, odd.0) };
                ($name(a), $name(b))
            }
        }
    };
}

/// Even and odd elements of the run `a, b` (see `Vector::deinterleave`).
///
/// # Safety
/// AVX2 is available.
#[inline(always)]
unsafe fn deinterleave_ps(a: __m256, b: __m256) -> (__m256, __m256) {
    // SAFETY: the caller's contract.
    unsafe {
        // [a0 a2 b0 b2 | a4 a6 b4 b6]: then the 64-bit pairs in the order 0, 2, 1, 3.
        let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let order = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        };
        (order(e), order(o))
    }
}

/// The run `e0 o0 e1 o1 ...` as two vectors (see `Vector::interleave`).
///
/// # Safety
/// AVX2 is available.
#[inline(always)]
unsafe fn interleave_ps(e: __m256, o: __m256) -> (__m256, __m256) {
    // SAFETY: the caller's contract.
    unsafe {
        // [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7]: then the halves.
        let (lo, hi) = (_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o));
        (
            _mm256_permute2f128_ps::<0x20>(lo, hi),
            _mm256_permute2f128_ps::<0x31>(lo, hi),
        )
    }
}

/// As [`deinterleave_ps`], 4 x f64.
///
/// # Safety
/// AVX2 is available.
#[inline(always)]
unsafe fn deinterleave_pd(a: __m256d, b: __m256d) -> (__m256d, __m256d) {
    // SAFETY: the caller's contract.
    unsafe {
        // [a0 b0 | a2 b2] in the order 0, 2, 1, 3.
        let (e, o) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
        (
            _mm256_permute4x64_pd::<0b11_01_10_00>(e),
            _mm256_permute4x64_pd::<0b11_01_10_00>(o),
        )
    }
}

/// As [`interleave_ps`], 4 x f64.
///
/// # Safety
/// AVX2 is available.
#[inline(always)]
unsafe fn interleave_pd(e: __m256d, o: __m256d) -> (__m256d, __m256d) {
    // SAFETY: the caller's contract.
    unsafe {
        let (lo, hi) = (_mm256_unpacklo_pd(e, o), _mm256_unpackhi_pd(e, o));
        (
            _mm256_permute2f128_pd::<0x20>(lo, hi),
            _mm256_permute2f128_pd::<0x31>(lo, hi),
        )
    }
}

avx2_vector!(
    F32x8Avx2,
    f32,
    8,
    __m256,
    set1 = _mm256_set1_ps,
    zero = _mm256_setzero_ps,
    loadu = _mm256_loadu_ps,
    storeu = _mm256_storeu_ps,
    add = _mm256_add_ps,
    sub = _mm256_sub_ps,
    mul = _mm256_mul_ps,
    div = _mm256_div_ps,
    fmadd = _mm256_fmadd_ps,
    max = _mm256_max_ps,
    min = _mm256_min_ps,
    cmp = _mm256_cmp_ps,
    blend = _mm256_blendv_ps,
    and = _mm256_and_ps,
    or = _mm256_or_ps,
    andnot = _mm256_andnot_ps,
    movemask = _mm256_movemask_ps,
    cast_i = _mm256_castps_si256,
    cast_f = _mm256_castsi256_ps,
    slli = _mm256_slli_epi32,
    stream = _mm256_stream_ps,
    deinterleave = deinterleave_ps,
    interleave = interleave_ps,
    magic = 127.0 + 12_582_912.0,
    shift = 23
);
avx2_vector!(
    F64x4Avx2,
    f64,
    4,
    __m256d,
    set1 = _mm256_set1_pd,
    zero = _mm256_setzero_pd,
    loadu = _mm256_loadu_pd,
    storeu = _mm256_storeu_pd,
    add = _mm256_add_pd,
    sub = _mm256_sub_pd,
    mul = _mm256_mul_pd,
    div = _mm256_div_pd,
    fmadd = _mm256_fmadd_pd,
    max = _mm256_max_pd,
    min = _mm256_min_pd,
    cmp = _mm256_cmp_pd,
    blend = _mm256_blendv_pd,
    and = _mm256_and_pd,
    or = _mm256_or_pd,
    andnot = _mm256_andnot_pd,
    movemask = _mm256_movemask_pd,
    cast_i = _mm256_castpd_si256,
    cast_f = _mm256_castsi256_pd,
    slli = _mm256_slli_epi64,
    stream = _mm256_stream_pd,
    deinterleave = deinterleave_pd,
    interleave = interleave_pd,
    magic = 1023.0 + 6_755_399_441_055_744.0,
    shift = 52
);

/// Loads 8 rows of 8 floats (explicit loads: a `map` closure would not inherit the caller's
/// AVX2 and would stay a call per row).
///
/// # Safety
/// AVX2 is available; each pointer is valid for 8 reads.
#[inline(always)]
pub(crate) unsafe fn load8x8(p: [*const f32; 8]) -> [__m256; 8] {
    // SAFETY: the caller's contract.
    unsafe {
        [
            _mm256_loadu_ps(p[0]),
            _mm256_loadu_ps(p[1]),
            _mm256_loadu_ps(p[2]),
            _mm256_loadu_ps(p[3]),
            _mm256_loadu_ps(p[4]),
            _mm256_loadu_ps(p[5]),
            _mm256_loadu_ps(p[6]),
            _mm256_loadu_ps(p[7]),
        ]
    }
}

/// Transposes 8 rows of 8 floats in registers: lane `i` of output `q` is lane `q` of input
/// `i` (pairs of rows interleaved, then quadruples, then the 128-bit halves swapped).
///
/// # Safety
/// AVX2 is available (inlined into an AVX2 function).
#[inline(always)]
pub(crate) unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: the caller's contract.
    unsafe {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }
}

/// `out[j][i] = rows[i][j]` for an 8 x 8 block. Inlined into the caller's AVX2 function (see
/// [`super::transpose8x8`]).
///
/// # Safety
/// Called only where an AVX2 vector exists (`Vector::AVX2`), i.e. the CPU has AVX2.
#[inline(always)]
pub(crate) unsafe fn transpose8x8(rows: [&[f32]; 8]) -> [[f32; 8]; 8] {
    let p = |i: usize| rows[i][..8].as_ptr();
    // SAFETY: AVX2 available (the caller's contract); every row holds 8 elements (bounds
    // checked by the slicing), every `out` row too.
    unsafe {
        let cols = transpose8(load8x8([p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7)]));
        let mut out = [[0.0f32; 8]; 8];
        for (o, c) in out.iter_mut().zip(cols) {
            _mm256_storeu_ps(o.as_mut_ptr(), c);
        }
        out
    }
}
