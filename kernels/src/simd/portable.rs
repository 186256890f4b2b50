//! The portable instantiation through `wide` (NEON on aarch64, SSE2 on baseline x86-64; the
//! instructions are chosen at compile time).

use super::Vector;
use wide::{f32x8, f64x4, CmpNe};

macro_rules! wide_vector {
    ($name:ident, $w:ty, $t:ty, $lanes:expr) => {
        /// `wide`'s vector, wrapped so the crate owns the trait impl.
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(pub(crate) $w);

        impl Vector for $name {
            type Elem = $t;
            const LANES: usize = $lanes;
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
        }
    };
}

wide_vector!(F32x8Wide, f32x8, f32, 8);
wide_vector!(F64x4Wide, f64x4, f64, 4);
