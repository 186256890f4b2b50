//! The ISA layer: one vector trait, instantiated for AVX2+FMA and AVX-512 (`core::arch`,
//! chosen at run time; AVX-512 for f32 only), the portable `wide` types (NEON on aarch64, SSE2
//! on baseline x86-64) and plain scalars. Kernels are written once, generic over `Vector`,
//! and instantiated per ISA inside a function compiled with that ISA's target features (see
//! [`Isa`] and the `dispatch!` use in each kernel family).

mod avx2;
mod avx512;
pub mod math;
mod portable;
mod scalar;

use std::cell::Cell;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{load8x8, transpose8, F32x8Avx2, F64x4Avx2};
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::F32x16Avx512;
pub(crate) use portable::{F32x8Wide, F64x4Wide};

/// An instruction-set path for the native kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain scalar code, one lane: the slowest, runs everywhere.
    Scalar,
    /// The `wide` crate's 8 x f32 / 4 x f64 types: NEON on aarch64, SSE2 on baseline x86-64
    /// (instructions chosen at compile time).
    Portable,
    /// AVX2 + FMA on x86-64, chosen at run time when the CPU has them.
    Avx2,
    /// AVX-512 (F and DQ) on x86-64 besides AVX2 + FMA: f32 kernels on 16-lane zmm vectors
    /// (f64 keeps AVX2's), except along rows too short for them (see [`Isa::for_row`]); the
    /// GEMM micro-kernel is 8 x 32 on zmm.
    Avx512,
}

impl Isa {
    /// Every ISA, slowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar | Isa::Portable => true,
            Isa::Avx2 => avx2_fma_detected(),
            Isa::Avx512 => avx512_detected(),
        }
    }

    /// The fastest path this CPU supports.
    pub fn best() -> Isa {
        if Isa::Avx512.supported() {
            Isa::Avx512
        } else if Isa::Avx2.supported() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }

    /// The path for a kernel that vectorizes along rows of `len` elements: AVX-512's 16 lanes
    /// only for rows of at least 64, AVX2 below. Measured against AVX2 at 1 thread: a
    /// 10-class softmax row took 1.4 to 1.9 times as long in 16 lanes (mostly padding),
    /// 28-wide average pooling 1.14, 56-wide depthwise convolution 1.08 to 1.14.
    pub fn for_row(self, len: usize) -> Isa {
        if self == Isa::Avx512 && len < 64 {
            Isa::Avx2
        } else {
            self
        }
    }

    /// Parses `scalar`, `portable`, `avx2` or `avx512`.
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "portable" | "wide" => Some(Isa::Portable),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The path native kernels take on this thread: the one set by [`with_isa`] if any, else
    /// `NNKERN_ISA` from the environment (read once; an unsupported or unknown value falls back
    /// to the best path), else [`Isa::best`].
    ///
    /// Kernels read this once per call, on the calling thread, and hand it to their workers.
    pub fn active() -> Isa {
        if let Some(isa) = OVERRIDE.with(Cell::get) {
            return isa;
        }
        static FROM_ENV: OnceLock<Isa> = OnceLock::new();
        *FROM_ENV.get_or_init(|| {
            std::env::var("NNKERN_ISA")
                .ok()
                .and_then(|s| Isa::parse(&s))
                .filter(|isa| isa.supported())
                .unwrap_or_else(Isa::best)
        })
    }
}

thread_local! {
    static OVERRIDE: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// Runs `f` with native kernels called from this thread forced onto `isa` (if the CPU supports
/// it; otherwise the override is ignored). Tests use this to cover every path on one machine.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    let isa = if isa.supported() { isa } else { Isa::best() };
    let previous = OVERRIDE.with(|o| o.replace(Some(isa)));
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

fn avx512_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: OnceLock<bool> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            avx2_fma_detected()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn avx2_fma_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: OnceLock<bool> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A SIMD vector of `LANES` floats. Crate-private: values of the AVX2 (AVX-512) types may only
/// exist on a CPU with AVX2+FMA (and AVX-512 F and DQ), which the dispatch guarantees (see
/// `avx2.rs`, `avx512.rs`).
///
/// # Safety (for `load`/`store`)
/// `ptr` must be valid for `LANES` reads (writes); no alignment is required.
pub(crate) trait Vector: Copy + Send + Sync + 'static {
    type Elem: Copy + Default + Send + Sync + 'static;
    const LANES: usize;
    fn splat(x: Self::Elem) -> Self;
    fn zero() -> Self;
    /// # Safety
    /// `ptr` is valid for `LANES` reads.
    unsafe fn load(ptr: *const Self::Elem) -> Self;
    /// # Safety
    /// `ptr` is valid for `LANES` writes.
    unsafe fn store(self, ptr: *mut Self::Elem);
    /// Stores with a non-temporal hint where the ISA has one (AVX2 `vmovntps`): the line goes
    /// to memory without being read first or kept in cache, for outputs too large to stay
    /// cached. Elsewhere a plain store. Follow a run of these with [`Vector::stream_fence`].
    ///
    /// # Safety
    /// `ptr` is valid for `LANES` writes and aligned to `size_of::<Self>()`.
    #[inline(always)]
    unsafe fn store_stream(self, ptr: *mut Self::Elem) {
        // SAFETY: forwarded from the caller.
        unsafe { self.store(ptr) }
    }
    /// Orders earlier streaming stores before later stores (AVX2 `sfence`); a no-op elsewhere.
    #[inline(always)]
    fn stream_fence() {}
    fn add(self, b: Self) -> Self;
    fn sub(self, b: Self) -> Self;
    fn mul(self, b: Self) -> Self;
    fn div(self, b: Self) -> Self;
    /// `self * b + c`, fused where the ISA has FMA.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Whether [`Vector::mul_add`] rounds once (is fused) on this ISA.
    const FUSED: bool;
    /// Whether this is an AVX2 or AVX-512 type: code holding one runs where the CPU has AVX2,
    /// so it may use AVX2 intrinsics the trait does not cover (see [`transpose8x8`]).
    const AVX2: bool = false;
    /// Lane-wise maximum; where either lane is NaN the result is NaN.
    fn max(self, b: Self) -> Self;
    /// Lane-wise minimum; where either lane is NaN the result is NaN.
    #[allow(dead_code)] // part of the trait's contract even while no kernel needs it
    fn min(self, b: Self) -> Self;
    /// The sum of the lanes, in a fixed order.
    fn reduce_sum(self) -> Self::Elem;
    /// The largest lane; NaN if any lane is NaN.
    fn reduce_max(self) -> Self::Elem;
    /// `max(self, lo)`, one instruction: NaN lanes of `self` stay NaN (where `lo` is NaN and
    /// `self` is not, either lane may result).
    fn at_least(self, lo: Self) -> Self;
    /// `min(self, hi)` for a non-NaN `hi`, one instruction: NaN lanes of `self` stay NaN.
    fn at_most(self, hi: Self) -> Self;
    /// Lane-wise `|x|` (clears the sign bit; NaN stays NaN).
    fn abs(self) -> Self;
    /// `1.5 * 2^mant + bias` (`1.5 * 2^23 + 127` for f32, `1.5 * 2^52 + 1023` for f64): its
    /// ulp is 1, so adding it to a value rounds that value to an integer `n` and leaves
    /// `n + bias` in the low mantissa bits, for [`Vector::pow2_biased`].
    const POW2_MAGIC: Self::Elem;
    /// `2^n` for lanes holding exactly `n + POW2_MAGIC`, `n` an integer in the normal exponent
    /// range (`-126..=127` for f32, `-1022..=1023` for f64): one shift of the low mantissa bits
    /// into the exponent field (exact). Other lanes give unspecified finite or infinite
    /// values, never UB. Lets a rounding `x * c + POW2_MAGIC` serve both as the rounded
    /// integer and as the source of its power of two.
    fn pow2_biased(self) -> Self;
    /// `2^n` for lanes holding integer values `n` in the normal exponent range (exact); other
    /// lanes as in [`Vector::pow2_biased`].
    #[inline(always)]
    fn pow2i(self) -> Self {
        self.add(Self::splat(Self::POW2_MAGIC)).pow2_biased()
    }
    /// Mask of `self < b` (all bits set where true, zero elsewhere; false for NaN).
    fn lt(self, b: Self) -> Self;
    /// Mask of `self == b` (false for NaN).
    fn eq(self, b: Self) -> Self;
    /// Whether any lane of a mask from the comparisons above is set (one `movmskps` and a
    /// test on AVX2): lets a loop branch on a rare event without leaving the vector unit.
    fn any(self) -> bool;
    /// Lane-wise `mask ? a : b` for a mask from the comparisons above.
    fn select(mask: Self, a: Self, b: Self) -> Self;
    /// Bitwise and of the lanes' bit patterns (e.g. `x.and(mask)` zeroes lanes where false).
    fn and(self, b: Self) -> Self;
    /// Bitwise or of the lanes' bit patterns (e.g. to put a sign bit back).
    fn or(self, b: Self) -> Self;
    /// The even and the odd elements of the `2 * LANES` run `self, next`: `([x0, x2, ...],
    /// [x1, x3, ...])`. For stride-2 column phases; two or four shuffles on AVX2 and
    /// AVX-512, where the compiler left the same loop over pairs as scalar moves.
    #[inline(always)]
    fn deinterleave(self, next: Self) -> (Self, Self) {
        let mut run = [Self::Elem::default(); 32];
        let (mut even, mut odd) = ([Self::Elem::default(); 16], [Self::Elem::default(); 16]);
        // SAFETY: LANES <= 16, so `run` holds both vectors and each half-run one vector.
        unsafe {
            self.store(run.as_mut_ptr());
            next.store(run.as_mut_ptr().add(Self::LANES));
            for i in 0..Self::LANES {
                even[i] = run[2 * i];
                odd[i] = run[2 * i + 1];
            }
            (Self::load(even.as_ptr()), Self::load(odd.as_ptr()))
        }
    }
    /// The inverse of [`Vector::deinterleave`]: the run `[e0, o0, e1, o1, ...]` of `self`
    /// (even elements) and `odd`, as its first and second vector.
    #[inline(always)]
    fn interleave(self, odd: Self) -> (Self, Self) {
        let (mut e, mut o) = ([Self::Elem::default(); 16], [Self::Elem::default(); 16]);
        let mut run = [Self::Elem::default(); 32];
        // SAFETY: as in `deinterleave`.
        unsafe {
            self.store(e.as_mut_ptr());
            odd.store(o.as_mut_ptr());
            for i in 0..Self::LANES {
                run[2 * i] = e[i];
                run[2 * i + 1] = o[i];
            }
            (
                Self::load(run.as_ptr()),
                Self::load(run.as_ptr().add(Self::LANES)),
            )
        }
    }
}

/// Loads `n < LANES` elements, zero-filling the rest (for tails).
///
/// # Safety
/// `ptr` is valid for `n` reads and `n <= V::LANES`.
#[inline(always)]
pub(crate) unsafe fn load_partial<V: Vector>(ptr: *const V::Elem, n: usize) -> V
where
    V::Elem: Default,
{
    let mut buf = [V::Elem::default(); 16];
    std::ptr::copy_nonoverlapping(ptr, buf.as_mut_ptr(), n);
    V::load(buf.as_ptr())
}

/// Stores the first `n < LANES` lanes.
///
/// # Safety
/// `ptr` is valid for `n` writes and `n <= V::LANES`.
#[inline(always)]
pub(crate) unsafe fn store_partial<V: Vector>(v: V, ptr: *mut V::Elem, n: usize)
where
    V::Elem: Default,
{
    let mut buf = [V::Elem::default(); 16];
    v.store(buf.as_mut_ptr());
    std::ptr::copy_nonoverlapping(buf.as_ptr(), ptr, n);
}

/// A float type with a vector type per ISA.
pub(crate) trait SimdElem: Copy + Default + Send + Sync + 'static {
    /// The AVX2+FMA vector (on other architectures the portable one; never dispatched to).
    type Avx2: Vector<Elem = Self>;
    /// The AVX-512 vector (f32: 16 lanes; f64 keeps the AVX2 one; off x86-64 the portable
    /// one, never dispatched to).
    type Avx512: Vector<Elem = Self>;
    /// The `wide` vector.
    type Wide: Vector<Elem = Self>;
    /// The scalar "vector".
    type Scalar: Vector<Elem = Self>;
}

impl SimdElem for f32 {
    #[cfg(target_arch = "x86_64")]
    type Avx2 = F32x8Avx2;
    #[cfg(not(target_arch = "x86_64"))]
    type Avx2 = F32x8Wide;
    #[cfg(target_arch = "x86_64")]
    type Avx512 = F32x16Avx512;
    #[cfg(not(target_arch = "x86_64"))]
    type Avx512 = F32x8Wide;
    type Wide = F32x8Wide;
    type Scalar = f32;
}

impl SimdElem for f64 {
    #[cfg(target_arch = "x86_64")]
    type Avx2 = F64x4Avx2;
    #[cfg(not(target_arch = "x86_64"))]
    type Avx2 = F64x4Wide;
    type Avx512 = Self::Avx2;
    type Wide = F64x4Wide;
    type Scalar = f64;
}

/// A kernel body written once, generic over the vector type. Implement `call` with
/// `#[inline(always)]` (and keep everything it calls `#[inline(always)]`), so that the AVX2
/// instantiation is compiled inside the target-feature function of [`dispatch`].
pub(crate) trait SimdFn<T: SimdElem> {
    type Output;
    fn call<V: Vector<Elem = T>>(self) -> Self::Output;
}

/// Runs `f` (inlined) in the target-feature context of the active ISA when `simd`, else
/// as is. For plain copies and shuffles: a baseline x86-64 build moves 16 bytes at a time
/// and leaves strided copies scalar, where the AVX-512 context uses zmm moves and
/// permutes (gather packing of the implicit im2col: 12% -> 7% of a 5x5 convolution).
#[inline(always)]
pub(crate) fn in_vector_context<R>(simd: bool, f: impl FnOnce() -> R) -> R {
    let isa = if simd { Isa::active() } else { Isa::Portable };
    dispatch::<f32, _>(isa, InContext(f))
}

struct InContext<F>(F);

impl<R, F: FnOnce() -> R> SimdFn<f32> for InContext<F> {
    type Output = R;
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> R {
        (self.0)()
    }
}

/// Runs `f` with the vector type of `isa` (which must be supported: [`Isa::active`] and
/// [`with_isa`] only ever return supported paths).
#[inline]
pub(crate) fn dispatch<T: SimdElem, F: SimdFn<T>>(isa: Isa, f: F) -> F::Output {
    match isa {
        Isa::Avx512 if Isa::Avx512.supported() => {
            // SAFETY: the CPU has AVX-512 F and DQ, AVX2 and FMA (checked just above).
            unsafe { call_avx512::<T, F>(f) }
        }
        Isa::Avx2 if Isa::Avx2.supported() => {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            unsafe { call_avx2::<T, F>(f) }
        }
        Isa::Scalar => f.call::<T::Scalar>(),
        _ => f.call::<T::Wide>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn call_avx2<T: SimdElem, F: SimdFn<T>>(f: F) -> F::Output {
    f.call::<T::Avx2>()
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn call_avx2<T: SimdElem, F: SimdFn<T>>(f: F) -> F::Output {
    f.call::<T::Avx2>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn call_avx512<T: SimdElem, F: SimdFn<T>>(f: F) -> F::Output {
    f.call::<T::Avx512>()
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn call_avx512<T: SimdElem, F: SimdFn<T>>(f: F) -> F::Output {
    f.call::<T::Avx512>()
}

/// Hints the cache to fetch the line holding `p` (no-op off x86-64). Any address will do:
/// the hint never faults, so callers may point past their slices.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `out[j][i] = rows[i][j]` for an 8 x 8 block (each row at least 8 long): AVX2 shuffles in
/// code generic over an AVX2 or AVX-512 vector `V` (inlined into its target-feature
/// function), else scalar moves. For layout changes (batch-blocked convolution).
#[inline(always)]
pub(crate) fn transpose8x8<V: Vector>(rows: [&[f32]; 8]) -> [[f32; 8]; 8] {
    #[cfg(target_arch = "x86_64")]
    if V::AVX2 {
        // SAFETY: an AVX2 vector type exists only where the CPU has AVX2 (`Vector::AVX2`).
        return unsafe { avx2::transpose8x8(rows) };
    }
    std::array::from_fn(|j| std::array::from_fn(|i| rows[i][j]))
}

#[cfg(test)]
mod tests {
    use super::{dispatch, transpose8x8, Isa, SimdElem, SimdFn, Vector};

    #[test]
    fn transpose8x8_moves_every_element() {
        let data: Vec<f32> = (0..80).map(|v| v as f32).collect();
        // Rows 10 apart, so a row's tail past 8 must not leak in.
        let rows: [&[f32]; 8] = std::array::from_fn(|i| &data[i * 10..i * 10 + 9]);
        struct T<'a>([&'a [f32]; 8]);
        impl SimdFn<f32> for T<'_> {
            type Output = [[f32; 8]; 8];
            #[inline(always)]
            fn call<V: Vector<Elem = f32>>(self) -> Self::Output {
                transpose8x8::<V>(self.0)
            }
        }
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let t = dispatch(isa, T(rows));
            for (j, col) in t.iter().enumerate() {
                for (i, &v) in col.iter().enumerate() {
                    assert_eq!(v, (i * 10 + j) as f32, "{isa:?} out[{j}][{i}]");
                }
            }
        }
    }

    /// `deinterleave` splits a run into its even and odd elements and `interleave` puts them
    /// back, on every ISA, for f32 and f64.
    #[test]
    fn deinterleave_and_interleave_invert() {
        struct T;
        impl<E: SimdElem + From<u8> + PartialEq + std::fmt::Debug> SimdFn<E> for T {
            type Output = ();
            #[inline(always)]
            fn call<V: Vector<Elem = E>>(self) {
                let run: Vec<E> = (0..2 * V::LANES as u8).map(E::from).collect();
                let (mut even, mut odd) =
                    (vec![E::default(); V::LANES], vec![E::default(); V::LANES]);
                let mut back = vec![E::default(); 2 * V::LANES];
                // SAFETY: every buffer holds the vectors read or written.
                unsafe {
                    let (a, b) = (V::load(run.as_ptr()), V::load(run[V::LANES..].as_ptr()));
                    let (e, o) = a.deinterleave(b);
                    e.store(even.as_mut_ptr());
                    o.store(odd.as_mut_ptr());
                    let (x, y) = e.interleave(o);
                    x.store(back.as_mut_ptr());
                    y.store(back[V::LANES..].as_mut_ptr());
                }
                for i in 0..V::LANES {
                    assert_eq!(
                        (even[i], odd[i]),
                        (run[2 * i], run[2 * i + 1]),
                        "lanes {}",
                        V::LANES
                    );
                }
                assert_eq!(back, run, "lanes {}", V::LANES);
            }
        }
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            dispatch::<f32, _>(isa, T);
            dispatch::<f64, _>(isa, T);
        }
    }

    #[test]
    fn short_rows_leave_avx512_for_avx2_only() {
        assert_eq!(Isa::Avx512.for_row(10), Isa::Avx2);
        assert_eq!(Isa::Avx512.for_row(63), Isa::Avx2);
        assert_eq!(Isa::Avx512.for_row(64), Isa::Avx512);
        for isa in [Isa::Scalar, Isa::Portable, Isa::Avx2] {
            assert_eq!(isa.for_row(1), isa);
        }
    }
}
