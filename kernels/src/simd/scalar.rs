//! The scalar instantiation: a "vector" of one lane.

use super::Vector;

/// A comparison result as a lane mask: all bits set when true.
#[inline(always)]
fn mask_of<T: MaskBits>(b: bool) -> T {
    if b {
        T::ones()
    } else {
        T::zeros()
    }
}

trait MaskBits {
    fn ones() -> Self;
    fn zeros() -> Self;
}

impl MaskBits for f32 {
    #[inline(always)]
    fn ones() -> f32 {
        f32::from_bits(u32::MAX)
    }
    #[inline(always)]
    fn zeros() -> f32 {
        0.0
    }
}

impl MaskBits for f64 {
    #[inline(always)]
    fn ones() -> f64 {
        f64::from_bits(u64::MAX)
    }
    #[inline(always)]
    fn zeros() -> f64 {
        0.0
    }
}

macro_rules! scalar_vector {
    ($t:ty, magic = $magic:expr) => {
        impl Vector for $t {
            type Elem = $t;
            const LANES: usize = 1;
            const FUSED: bool = false;
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
            #[inline(always)]
            fn reduce_max(self) -> $t {
                self
            }
            #[inline(always)]
            fn at_least(self, lo: Self) -> Self {
                if self < lo {
                    lo
                } else {
                    self
                }
            }
            #[inline(always)]
            fn at_most(self, hi: Self) -> Self {
                if self > hi {
                    hi
                } else {
                    self
                }
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            const POW2_MAGIC: $t = $magic;
            #[inline(always)]
            fn pow2_biased(self) -> Self {
                // The low mantissa bits hold `n + bias`; shifting them into the exponent field
                // gives 2^n (the same trick as the vector paths).
                <$t>::from_bits(self.to_bits() << (<$t>::MANTISSA_DIGITS - 1))
            }
            #[inline(always)]
            fn lt(self, b: Self) -> Self {
                mask_of(self < b)
            }
            #[inline(always)]
            fn eq(self, b: Self) -> Self {
                mask_of(self == b)
            }
            #[inline(always)]
            fn any(self) -> bool {
                self.to_bits() != 0
            }
            #[inline(always)]
            fn select(mask: Self, a: Self, b: Self) -> Self {
                if mask.to_bits() != 0 {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn and(self, b: Self) -> Self {
                <$t>::from_bits(self.to_bits() & b.to_bits())
            }
            #[inline(always)]
            fn or(self, b: Self) -> Self {
                <$t>::from_bits(self.to_bits() | b.to_bits())
            }
        }
    };
}

scalar_vector!(f32, magic = 12_582_912.0 + 127.0);
scalar_vector!(f64, magic = 6_755_399_441_055_744.0 + 1023.0);
