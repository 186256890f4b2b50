//! The portable instantiation through `wide` (NEON on aarch64, SSE2 on baseline x86-64; the
//! instructions are chosen at compile time).

use super::Vector;
use wide::{f32x8, f64x4, i32x8, CmpEq, CmpLt, CmpNe};

macro_rules! wide_vector {
    ($name:ident, $w:ty, $t:ty, $lanes:expr, pow2 = $pow2:path) => {
        /// `wide`'s vector, wrapped so the crate owns the trait impl.
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(pub(crate) $w);

        impl Vector for $name {
            type Elem = $t;
            const LANES: usize = $lanes;
            // Fused only where `wide` was compiled for FMA (a baseline x86-64 build is not);
            // `false` picks the paths that need no fusion.
            const FUSED: bool = false;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                $name(<$w>::splat(x))
            }
            #[inline(always)]
            fn zero() -> Self {
                $name(<$w>::ZERO)
            }
            #[inline(always)]
            unsafe fn load(ptr: *const $t) -> Self {
                // SAFETY: the caller guarantees LANES readable elements; read_unaligned has no
                // alignment requirement.
                $name(unsafe { (ptr as *const $w).read_unaligned() })
            }
            #[inline(always)]
            unsafe fn store(self, ptr: *mut $t) {
                // SAFETY: the caller guarantees LANES writable elements.
                unsafe { (ptr as *mut $w).write_unaligned(self.0) }
            }
            #[inline(always)]
            fn add(self, b: Self) -> Self {
                $name(self.0 + b.0)
            }
            #[inline(always)]
            fn sub(self, b: Self) -> Self {
                $name(self.0 - b.0)
            }
            #[inline(always)]
            fn mul(self, b: Self) -> Self {
                $name(self.0 * b.0)
            }
            #[inline(always)]
            fn div(self, b: Self) -> Self {
                $name(self.0 / b.0)
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                $name(self.0.mul_add(b.0, c.0))
            }
            #[inline(always)]
            fn max(self, b: Self) -> Self {
                // Propagate NaN from either side (wide's fast_max does not).
                let nan = self.0.cmp_ne(self.0) | b.0.cmp_ne(b.0);
                $name(nan.blend(<$w>::splat(<$t>::NAN), self.0.fast_max(b.0)))
            }
            #[inline(always)]
            fn min(self, b: Self) -> Self {
                let nan = self.0.cmp_ne(self.0) | b.0.cmp_ne(b.0);
                $name(nan.blend(<$w>::splat(<$t>::NAN), self.0.fast_min(b.0)))
            }
            #[inline(always)]
            fn reduce_sum(self) -> $t {
                self.0.to_array().iter().fold(0.0, |acc, &x| acc + x)
            }
            #[inline(always)]
            fn reduce_max(self) -> $t {
                let a = self.0.to_array();
                a.iter().fold(a[0], |acc, &x| Vector::max(acc, x))
            }
            #[inline(always)]
            fn at_least(self, lo: Self) -> Self {
                // SSE maxps and NEON fmax return the NaN second operand; elsewhere the
                // NaN-propagating form.
                #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
                {
                    $name(lo.0.fast_max(self.0))
                }
                #[cfg(not(any(
                    target_arch = "x86_64",
                    target_arch = "x86",
                    target_arch = "aarch64"
                )))]
                {
                    Vector::max(self, lo)
                }
            }
            #[inline(always)]
            fn at_most(self, hi: Self) -> Self {
                #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
                {
                    $name(hi.0.fast_min(self.0))
                }
                #[cfg(not(any(
                    target_arch = "x86_64",
                    target_arch = "x86",
                    target_arch = "aarch64"
                )))]
                {
                    Vector::min(self, hi)
                }
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $name(self.0.abs())
            }
            const POW2_MAGIC: $t = <$t as Vector>::POW2_MAGIC;
            #[inline(always)]
            fn pow2_biased(self) -> Self {
                $name($pow2(self.0))
            }
            #[inline(always)]
            fn lt(self, b: Self) -> Self {
                $name(self.0.cmp_lt(b.0))
            }
            #[inline(always)]
            fn eq(self, b: Self) -> Self {
                $name(self.0.cmp_eq(b.0))
            }
            #[inline(always)]
            fn any(self) -> bool {
                self.0.move_mask() != 0
            }
            #[inline(always)]
            fn select(mask: Self, a: Self, b: Self) -> Self {
                $name(mask.0.blend(a.0, b.0))
            }
            #[inline(always)]
            fn and(self, b: Self) -> Self {
                $name(self.0 & b.0)
            }
            #[inline(always)]
            fn or(self, b: Self) -> Self {
                $name(self.0 | b.0)
            }
        }
    };
}

wide_vector!(F32x8Wide, f32x8, f32, 8, pow2 = pow2_biased_f32x8);
wide_vector!(F64x4Wide, f64x4, f64, 4, pow2 = pow2_biased_f64x4);

/// `2^n` from lanes holding `n + 127 + 1.5 * 2^23`: the low mantissa bits `n + 127` shifted
/// into the exponent field.
#[inline(always)]
fn pow2_biased_f32x8(biased: f32x8) -> f32x8 {
    // SAFETY: f32x8 and i32x8 are both 32-byte plain-old-data vectors of 8 lanes; any bit
    // pattern is valid for either.
    let bits: i32x8 = unsafe { std::mem::transmute::<f32x8, i32x8>(biased) };
    // SAFETY: as above.
    unsafe { std::mem::transmute::<i32x8, f32x8>(bits << 23) }
}

/// The f64 form of `pow2_biased_f32x8`, lane by lane (f64 is not on a hot path here).
#[inline(always)]
fn pow2_biased_f64x4(biased: f64x4) -> f64x4 {
    f64x4::from(biased.to_array().map(<f64 as Vector>::pow2_biased))
}
