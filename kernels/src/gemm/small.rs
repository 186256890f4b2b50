//! Small products (below the frame's `PAR_MIN_FLOPS`, one K block) run the micro-kernel on the
//! operands: for these the frame's fixed costs (packing A, scratch pools, a rayon pass over
//! one task) take as long as the arithmetic (32^3: a third of the time went to packing).
//! A is read in place, each element broadcast from its row (or column, A transposed) with the
//! strides computed once, when a tile's rows stay in L1 (`a_in_place`; otherwise the frame
//! runs it); B is read in place when its rows are contiguous and its panel stays in L1, else
//! packed; register tiles, edge pieces and the alpha/beta stores are those of the packed path.
//!
//! Below `PAR_MIN_FLOPS` the product runs on the calling thread, so its bits do not depend on
//! the thread count; each element is summed in order of depth.

use super::frame::{a_in_place, b_in_place, PackCache, PAR_MIN_FLOPS};
use super::kernels::{run_in_place, GemmKernel, MacroArgs};
use super::pack::{pack_b, with_scratch, Operand};
use super::{Gemm, Layout};

/// Computes a small product directly; false (doing nothing) if the product is not small.
/// `simd`: packing may use the AVX2 transposes.
pub(super) fn run<T: PackCache, K: GemmKernel<T>>(
    g: &Gemm<T>,
    l: Layout,
    a: &[T],
    b: &[T],
    c: &mut [T],
    simd: bool,
) -> bool {
    let (m, n, k) = (g.m, g.n, g.k);
    let a_op = Operand {
        data: a,
        ld: l.lda,
        trans: g.trans_a,
        simd,
        gather: None,
    };
    let flops = m.saturating_mul(n).saturating_mul(k).saturating_mul(2);
    if k > K::KC || flops >= PAR_MIN_FLOPS || !a_in_place(a_op, k, K::MR) {
        return false;
    }
    let b_op = Operand {
        data: b,
        ld: l.ldb,
        trans: g.trans_b,
        simd,
        gather: None,
    };
    // Whole panels in place when B's rows allow it; the rest (the last, partial panel, or
    // all of op(B)) packed.
    let in_place = if b_in_place(b_op, k, K::NR) {
        n / K::NR * K::NR
    } else {
        0
    };
    let packed = n - in_place;
    let c = c.as_mut_ptr();
    let run = |buf: &[T]| {
        let (b, b_panel, b_row, b_edge) = match (in_place, packed) {
            (0, _) => (buf.as_ptr(), k * K::NR, K::NR, std::ptr::null()),
            (_, 0) => (b.as_ptr(), K::NR, l.ldb, std::ptr::null()),
            _ => (b.as_ptr(), K::NR, l.ldb, buf.as_ptr()),
        };
        let args = MacroArgs {
            kc: k,
            a: a.as_ptr(),
            b,
            b_panel,
            b_row,
            b_edge,
            b_rows: std::ptr::null(),
            m,
            n,
            c,
            ldc: l.ldc,
            alpha: g.alpha,
            beta: g.beta,
        };
        // SAFETY: the call was validated: A holds `m x k` (rows `lda` apart, or columns when
        // transposed), B's full panels in place hold `k x NR` each (`ldb` apart) and `buf`
        // the packed rest, C holds `m x n` (`ldc` apart) and is ours alone.
        unsafe { run_in_place::<T, K>(&args, g.trans_a, l.lda) }
    };
    if packed == 0 {
        run(&[]);
    } else {
        with_buffer(k * packed.div_ceil(K::NR) * K::NR, |buf| {
            pack_b(b_op, K::NR, 0, k, in_place, packed, buf);
            run(buf)
        });
    }
    true
}

/// Elements of packed B kept on the stack (16^3 transposed: 256).
const STACK: usize = 256;

/// The smaller stack buffer (a 7^3 product packs 56).
const STACK_SHORT: usize = 64;

/// Runs `f` on a buffer of `len` elements, which it overwrites whole (`pack_b` writes every
/// lane of its panels): on the stack when it is short, else from the thread-local pool (which
/// costs a tenth of a 7^3 product). The stack array must be initialised, so short ones take a
/// 64-element array: zeroing 1 kB for a 7^3 product was a `memset` call and a fifth of its
/// time, 256 B is a few vector stores.
fn with_buffer<T: PackCache>(len: usize, f: impl FnOnce(&mut [T])) {
    if len <= STACK_SHORT {
        f(&mut [T::zero(); STACK_SHORT][..len])
    } else if len <= STACK {
        f(&mut [T::zero(); STACK][..len])
    } else {
        with_scratch(T::cache_b(), len, f)
    }
}
