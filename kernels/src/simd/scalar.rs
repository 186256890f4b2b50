//! The scalar instantiation: a "vector" of one lane.

use super::Vector;

macro_rules! scalar_vector {
    ($t:ty) => {
        impl Vector for $t {
            type Elem = $t;
            const LANES: usize = 1;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                x
            }
            #[inline(always)]
            fn zero() -> Self {
                0.0
            }
            #[inline(always)]
            unsafe fn load(ptr: *const $t) -> Self {
                // SAFETY: the caller guarantees one readable element.
                unsafe { ptr.read_unaligned() }
            }
            #[inline(always)]
            unsafe fn store(self, ptr: *mut $t) {
                // SAFETY: the caller guarantees one writable element.
                unsafe { ptr.write_unaligned(self) }
            }
            #[inline(always)]
            fn add(self, b: Self) -> Self {
                self + b
            }
            #[inline(always)]
            fn sub(self, b: Self) -> Self {
                self - b
            }
            #[inline(always)]
            fn mul(self, b: Self) -> Self {
                self * b
            }
            #[inline(always)]
            fn div(self, b: Self) -> Self {
                self / b
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                // Unfused on purpose: `f32::mul_add` is a slow libm call without hardware FMA.
                self * b + c
            }
            #[inline(always)]
            fn max(self, b: Self) -> Self {
                if self.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if self >= b {
                    self
                } else {
                    b
                }
            }
            #[inline(always)]
            fn min(self, b: Self) -> Self {
                if self.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if self <= b {
                    self
                } else {
                    b
                }
            }
            #[inline(always)]
            fn reduce_sum(self) -> $t {
                self
            }
        }
    };
}

scalar_vector!(f32);
scalar_vector!(f64);
