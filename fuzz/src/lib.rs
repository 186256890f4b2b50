//! Shared helpers of the fuzz targets: a byte reader that derives bounded shapes, parameters and
//! values from the fuzzer's input, the list of execution paths (every ISA of the native backend
//! and the reference backend), and the error-bound checks against the f64 references.
//!
//! Conventions of every target:
//! * sizes are small (each buffer at most [`CAP`] elements) so an execution takes microseconds;
//! * one byte in 16 of a dimension picks an extreme value (0, 2^32, `usize::MAX`, ...), so
//!   overflow and empty-tensor handling are exercised; a descriptor that cannot be allocated
//!   is still called with short buffers and must return an error;
//! * buffer lengths are sometimes perturbed by one element: the call must then fail;
//! * values are multiples of 1/16 (optionally scaled), with NaN, infinities, signed zeros,
//!   1e30 and subnormals mixed in when the input asks for special values; the bound checks
//!   apply where the reference and its magnitude are finite and representable in f32.

use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::Backend;

/// Largest buffer (elements) a target allocates.
pub const CAP: usize = 1 << 12;
/// f32 machine epsilon as f64.
pub const EPS: f64 = f32::EPSILON as f64;
/// The smallest positive subnormal f32.
pub const DENORM: f64 = 1.401_298_464_324_817e-45;

/// Special values mixed into inputs.
pub const SPECIALS: [f32; 8] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1e30,
    -1e30,
    1e-40,
];

/// Extreme dimensions.
const EXTREME: [usize; 8] = [
    0,
    1 << 20,
    1 << 31,
    1 << 32,
    (1 << 32) + 1,
    usize::MAX / 2 + 1,
    usize::MAX - 1,
    usize::MAX,
];

/// Reads the fuzzer's bytes in order; past the end it reads zeros.
pub struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
    specials: bool,
    scale: f32,
}

impl<'a> Input<'a> {
    /// Starts reading `bytes`; the first byte chooses the value distribution.
    pub fn new(bytes: &'a [u8]) -> Self {
        let mut i = Input {
            bytes,
            pos: 0,
            specials: false,
            scale: 1.0 / 16.0,
        };
        let b = i.byte();
        i.specials = b & 1 == 1;
        i.scale = [1.0 / 16.0, 1.0 / 16.0, 1.0, 64.0][(b as usize >> 1) & 3];
        i
    }
    /// Whether the values may hold NaN, infinities and other special values.
    pub fn specials(&self) -> bool {
        self.specials
    }
    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A coin flip.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }
    /// A number in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.byte() as usize % n
        }
    }
    /// One of `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    /// A dimension: in `0..=max` fifteen times in sixteen, else an extreme value.
    pub fn dim(&mut self, max: usize) -> usize {
        let b = self.byte();
        if b >= 240 {
            EXTREME[(b - 240) as usize % EXTREME.len()]
        } else {
            b as usize % (max + 1)
        }
    }
    /// A dimension in `1..=max` (or an extreme one, as [`dim`](Self::dim)).
    pub fn dim1(&mut self, max: usize) -> usize {
        let b = self.byte();
        if b >= 240 {
            EXTREME[(b - 240) as usize % EXTREME.len()]
        } else {
            1 + b as usize % max
        }
    }
    /// `n` values from the remaining bytes (cycled; a fixed pattern if none are left).
    pub fn values(&mut self, n: usize) -> Vec<f32> {
        let rest = &self.bytes[self.pos.min(self.bytes.len())..];
        let salt = self.pos;
        self.pos += 7;
        (0..n)
            .map(|i| {
                let b = if rest.is_empty() {
                    ((i + salt) * 37 % 251) as u8
                } else {
                    rest[(i + salt) % rest.len()].wrapping_add(((i / rest.len()) as u8).wrapping_mul(29))
                };
                self.value_of(b)
            })
            .collect()
    }
    fn value_of(&self, b: u8) -> f32 {
        if b >= 248 && self.specials {
            SPECIALS[(b - 248) as usize]
        } else {
            (b as f32 - 124.0) * self.scale
        }
    }
    /// Whether a buffer length should be perturbed (and which: `Some(0..arity)`); one in four.
    pub fn perturb(&mut self, arity: usize) -> Option<usize> {
        let b = self.byte() as usize;
        (b % 4 == 3).then_some((b / 4) % arity)
    }
}

/// Length `len` changed by one element (shorter if possible, else longer).
pub fn off_by_one(len: usize) -> usize {
    if len > 0 {
        len - 1
    } else {
        1
    }
}

/// Runs `f` on every path: the reference backend, then the native backend under each ISA this
/// CPU supports. `f` gets the backend and a name for messages.
pub fn for_each_path(mut f: impl FnMut(Backend, &'static str)) {
    f(Backend::Reference, "reference");
    for isa in Isa::ALL {
        if isa.supported() {
            with_isa(isa, || f(Backend::Native, isa.name()));
        }
    }
}

/// The values as f64.
pub fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// The absolute values as f64.
pub fn abs64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| (v as f64).abs()).collect()
}

/// Whether a reference value and its magnitude allow a bound check in f32: both finite and
/// small enough that no f32 intermediate can overflow.
pub fn comparable(want: f64, mag: f64) -> bool {
    want.is_finite() && mag.is_finite() && mag < 1e36
}

/// Checks a sum-of-products result: `|got - want| <= 2 (terms + 2) eps mag + slack` where
/// `mag` is the same computation on absolute values (the standard bound of a length-`terms`
/// dot product), wherever [`comparable`]. Panics with `what` on failure.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], mag: &[f64], terms: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let t = terms as f64 + 2.0;
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        if !comparable(w, m) {
            continue;
        }
        let bound = 2.0 * t * EPS * m + 4.0 * t * DENORM;
        let diff = (g as f64 - w).abs();
        assert!(
            diff <= bound,
            "{what}[{i}]: got {g:e}, reference {w:e}, bound {bound:e} (terms {terms})"
        );
    }
}

/// `got` matches `want` within `bound`; NaN matches NaN, infinities must match exactly.
pub fn close(got: f32, want: f64, bound: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if (want as f32).is_infinite() {
        return got == want as f32;
    }
    (got as f64 - want).abs() <= bound
}

/// Bitwise equality, with every NaN equal to every NaN.
pub fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}
