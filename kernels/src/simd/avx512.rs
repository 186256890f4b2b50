//! The AVX-512 instantiation (f32 only) through `core::arch`.
//!
//! Why a 16-lane type when AMD Zen 4 executes a zmm FMA as two ymm halves (the same peak
//! FLOP/s as AVX2): a zmm FMA with an embedded broadcast of A is one instruction where AVX2
//! needs a broadcast load and two FMAs, so the GEMM register tile reaches the FMA pipes' peak
//! with a third of the front-end work, and 32 registers let one tile be 8 rows tall, which ML
//! shapes (m = 32, 64, 128) fill exactly where 6-row AVX2 panels end in a slow short piece.
//! Elsewhere half the instructions per element help the compute-bound kernels (softmax rows
//! of 1000 and more classes: 0.6 to 0.8 of the AVX2 time); rows shorter than 64 stay on AVX2
//! (`Isa::for_row`).
//!
//! Invariant: values of this type are only created inside functions compiled with
//! `#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]`, which are only called after
//! `Isa::Avx512.supported()` returned true. The intrinsics below are therefore sound to call;
//! each `unsafe` block relies on that invariant. All methods are `#[inline(always)]` so they
//! are compiled into those target-feature functions.
#![cfg(target_arch = "x86_64")]

use super::Vector;
use std::arch::x86_64::*;

/// 16 x f32 in a zmm register.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x16Avx512(pub(crate) __m512);

impl F32x16Avx512 {
    /// The lanes whose sign bit is set, as a mask register (a comparison's all-ones lanes).
    #[inline(always)]
    fn sign_mask(self) -> __mmask16 {
        // SAFETY: AVX-512 F and DQ available (module invariant).
        unsafe { _mm512_movepi32_mask(_mm512_castps_si512(self.0)) }
    }

    /// `m` (the max or min of `self` and `b`) with NaN put back where either input is NaN:
    /// vmaxps/vminps return their second operand then, which drops a NaN in `self`.
    #[inline(always)]
    fn nan_back(self, b: Self, m: __m512) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        unsafe {
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, b.0);
            F32x16Avx512(_mm512_mask_blend_ps(nan, m, _mm512_add_ps(self.0, b.0)))
        }
    }

    /// Lane `i` is element `idx[i]` of the 32-element run `self, b` (`vpermt2ps`).
    ///
    /// # Safety
    /// AVX-512 F is available (module invariant).
    #[inline(always)]
    unsafe fn permute2(self, b: Self, idx: &[i32; 16]) -> Self {
        // SAFETY: the caller's contract; `idx` is 16 readable i32s.
        unsafe {
            let idx = _mm512_loadu_si512(idx.as_ptr().cast());
            F32x16Avx512(_mm512_permutex2var_ps(self.0, idx, b.0))
        }
    }

    /// A mask register as a vector: all bits set in its lanes, zero elsewhere.
    #[inline(always)]
    fn from_mask(k: __mmask16) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_castsi512_ps(_mm512_maskz_set1_epi32(k, -1)) })
    }
}

impl Vector for F32x16Avx512 {
    type Elem = f32;
    const LANES: usize = 16;
    const FUSED: bool = true;
    const AVX2: bool = true;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees LANES readable elements; unaligned load.
        F32x16Avx512(unsafe { _mm512_loadu_ps(ptr) })
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        // SAFETY: the caller guarantees LANES writable elements; unaligned store.
        unsafe { _mm512_storeu_ps(ptr, self.0) }
    }
    #[inline(always)]
    unsafe fn store_stream(self, ptr: *mut f32) {
        // SAFETY: the caller guarantees LANES writable elements at an address aligned to the
        // vector's size, 64 bytes (vmovntps on zmm requires it).
        unsafe { _mm512_stream_ps(ptr, self.0) }
    }
    #[inline(always)]
    fn stream_fence() {
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_sub_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_mul_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_div_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        F32x16Avx512(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        self.nan_back(b, unsafe { _mm512_max_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        self.nan_back(b, unsafe { _mm512_min_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` holds LANES elements.
        unsafe { self.store(lanes.as_mut_ptr()) };
        lanes.iter().fold(0.0, |acc, &x| acc + x)
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` holds LANES elements.
        unsafe { self.store(lanes.as_mut_ptr()) };
        lanes.iter().fold(lanes[0], |acc, &x| Vector::max(acc, x))
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant). vmaxps returns its second operand
        // when either is NaN, so a NaN in `self` survives.
        F32x16Avx512(unsafe { _mm512_max_ps(lo.0, self.0) })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // SAFETY: as in `at_least`.
        F32x16Avx512(unsafe { _mm512_min_ps(hi.0, self.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: AVX-512 F available (module invariant). Clears the sign bits.
        F32x16Avx512(unsafe { _mm512_abs_ps(self.0) })
    }
    const POW2_MAGIC: f32 = 127.0 + 12_582_912.0;
    #[inline(always)]
    fn pow2_biased(self) -> Self {
        // SAFETY: AVX-512 F available (module invariant). The shift moves the low mantissa
        // bits (`n + bias`) into the exponent field.
        F32x16Avx512(unsafe {
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(self.0)))
        })
    }
    #[inline(always)]
    fn lt(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        Self::from_mask(unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, b.0) })
    }
    #[inline(always)]
    fn eq(self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant).
        Self::from_mask(unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, b.0) })
    }
    #[inline(always)]
    fn any(self) -> bool {
        self.sign_mask() != 0
    }
    #[inline(always)]
    fn select(mask: Self, a: Self, b: Self) -> Self {
        // SAFETY: AVX-512 F available (module invariant). Picks `a` where the mask's sign bit
        // is set, as AVX2's blendv does.
        F32x16Avx512(unsafe { _mm512_mask_blend_ps(mask.sign_mask(), b.0, a.0) })
    }
    #[inline(always)]
    fn and(self, b: Self) -> Self {
        // SAFETY: AVX-512 DQ available (module invariant).
        F32x16Avx512(unsafe { _mm512_and_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn or(self, b: Self) -> Self {
        // SAFETY: AVX-512 DQ available (module invariant).
        F32x16Avx512(unsafe { _mm512_or_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn deinterleave(self, next: Self) -> (Self, Self) {
        const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
        const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
        // SAFETY: AVX-512 F available (module invariant); the index arrays are 64 bytes.
        unsafe { (self.permute2(next, &EVEN), self.permute2(next, &ODD)) }
    }
    #[inline(always)]
    fn interleave(self, odd: Self) -> (Self, Self) {
        const LO: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
        const HI: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];
        // SAFETY: as above.
        unsafe { (self.permute2(odd, &LO), self.permute2(odd, &HI)) }
    }
}

#[cfg(test)]
mod tests {
    //! Every operation against the AVX2 vector on each half, bit for bit: the AVX2 type is
    //! the reference for semantics (NaN handling, mask layout), and the kernels' tests cover
    //! it against the scalar path.
    use super::*;
    use crate::simd::{F32x8Avx2, Isa};

    /// Special and ordinary values; the inputs are rotations of this list.
    const VALUES: [f32; 19] = [
        0.0,
        -0.0,
        1.0,
        -1.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        -3.0e38,
        3.4e38,
        2.5,
        -7.0,
        0.1,
        12_582_912.0 + 127.0 + 5.0,
        12_582_912.0 + 127.0 - 3.0,
        -1e-45,
        65504.0,
        -0.25,
        1.0,
    ];

    /// Operation `op` of the list tested below.
    #[inline(always)]
    fn apply<V: Vector<Elem = f32>>(op: usize, a: V, b: V, c: V) -> V {
        match op {
            0 => a.add(b),
            1 => a.sub(b),
            2 => a.mul(b),
            3 => a.div(b),
            4 => a.mul_add(b, c),
            5 => a.max(b),
            6 => a.min(b),
            7 => a.at_least(b),
            8 => a.at_most(b),
            9 => a.abs(),
            10 => a.pow2_biased(),
            11 => a.lt(b),
            12 => a.eq(b),
            13 => V::select(a.lt(b), a, c),
            14 => a.and(b),
            15 => a.or(c),
            16 => V::select(c, a, b),
            17 => V::splat(a.reduce_sum()),
            _ => V::splat(b.reduce_max()),
        }
    }

    const OPS: usize = 19;

    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    unsafe fn check(a: &[f32; 16], b: &[f32; 16], c: &[f32; 16]) {
        // SAFETY: AVX-512 F/DQ, AVX2 and FMA are available (the caller checked); the arrays
        // hold 16 elements, 8 from each half's start.
        unsafe {
            let load16 = |x: &[f32; 16]| F32x16Avx512::load(x.as_ptr());
            let (wa, wb, wc) = (load16(a), load16(b), load16(c));
            let half = |x: &[f32; 16], h: usize| F32x8Avx2::load(x.as_ptr().add(8 * h));
            for op in 0..OPS {
                let mut wide = [0.0f32; 16];
                apply(op, wa, wb, wc).store(wide.as_mut_ptr());
                let mut want = [0.0f32; 16];
                if op == 17 {
                    // The reductions run over all 16 lanes: the sum in lane order, the max
                    // with the trait's NaN rule (a NaN's sign and payload are not specified).
                    want = [a.iter().fold(0.0f32, |s, &x| s + x); 16];
                } else if op == 18 {
                    want = [b.iter().fold(b[0], |m, &x| Vector::max(m, x)); 16];
                } else {
                    for h in 0..2 {
                        let r = apply(op, half(a, h), half(b, h), half(c, h));
                        r.store(want.as_mut_ptr().add(8 * h));
                    }
                }
                let exact_nan = op < 17;
                let bits = |x: [f32; 16]| {
                    x.map(|v| {
                        if v.is_nan() && !exact_nan {
                            0
                        } else {
                            v.to_bits()
                        }
                    })
                };
                assert_eq!(bits(wide), bits(want), "op {op}: {a:?} {b:?} {c:?}");
            }
            let lt = wa.lt(wb).any();
            let lt8 = half(a, 0).lt(half(b, 0)).any() || half(a, 1).lt(half(b, 1)).any();
            assert_eq!(lt, lt8, "any: {a:?} {b:?}");
        }
    }

    #[test]
    fn every_operation_matches_avx2_lane_for_lane() {
        if !Isa::Avx512.supported() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let n = VALUES.len();
        let pick = |shift: usize| std::array::from_fn(|i| VALUES[(i * 7 + shift) % n]);
        // Second inputs 1, 3 and 8 places on: every pair of values meets (0 and -0 too).
        for (s, d) in (0..n).flat_map(|s| [1, 3, 8].map(|d| (s, d))) {
            // A comparison mask as the third input, so `select` sees masks too.
            let mut c: [f32; 16] = pick(s + 5);
            c[s % 16] = f32::from_bits(u32::MAX);
            // SAFETY: AVX-512 was detected above.
            unsafe { check(&pick(s), &pick(s + d), &c) };
        }
    }
}
