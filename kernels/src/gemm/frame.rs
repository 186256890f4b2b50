//! The Goto/BLIS frame: the five loops around the micro-kernel, packing and threading, written
//! once for every ISA and element type.
//!
//! ```text
//! for jc in 0..n step NC            B block (L3)
//!   for pc in 0..k step KC          K block; beta applies to the first one only
//!     pack B[pc.., jc..]            shared by all threads (packed in parallel)
//!     parallel over tasks = (row block of MC rows) x (chunk of NR panels):
//!       pack A[ic.., pc..]          per task, in the worker's cache (L2)
//!       for jr, ir: micro-kernel    tile MR x NR in registers
//! ```
//! Threads split M and N only; every element of C sums its K blocks in order, each block in
//! micro-kernel order, so the bits do not depend on the thread count or the task split.

use super::kernels::{GemmKernel, MacroArgs};
use super::pack::{pack_a, pack_b, with_scratch, Operand};
use super::{Gemm, Layout, Transpose};
use crate::simd::Isa;
use num_traits::Float;
use rayon::prelude::*;
use std::cell::RefCell;

/// Below this many flops a call stays on the calling thread (a rayon fork costs microseconds).
const PAR_MIN_FLOPS: usize = 1 << 21;

/// Tasks per thread, for load balance when blocks are uneven.
const TASKS_PER_THREAD: usize = 4;

thread_local! {
    static PACK_A_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PACK_B_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static PACK_A_F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    static PACK_B_F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// The per-thread packing caches of an element type.
trait PackCache: Float + Send + Sync + 'static {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<Self>>>;
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<Self>>>;
}

impl PackCache for f32 {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<f32>>> {
        &PACK_A_F32
    }
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<f32>>> {
        &PACK_B_F32
    }
}

impl PackCache for f64 {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<f64>>> {
        &PACK_A_F64
    }
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<f64>>> {
        &PACK_B_F64
    }
}

pub(super) fn gemm_f32(g: &Gemm<f32>, l: Layout, a: &[f32], b: &[f32], c: &mut [f32]) {
    use super::kernels::*;
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run::<f32, F32Gemm6x16Avx2Fma>(g, l, a, b, c),
        Isa::Scalar => run::<f32, F32Gemm4x4Scalar>(g, l, a, b, c),
        _ => run::<f32, F32Gemm4x8Wide>(g, l, a, b, c),
    }
}

pub(super) fn gemm_f64(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
    use super::kernels::*;
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run::<f64, F64Gemm6x8Avx2Fma>(g, l, a, b, c),
        Isa::Scalar => run::<f64, F64Gemm4x4Scalar>(g, l, a, b, c),
        _ => run::<f64, F64Gemm4x4Wide>(g, l, a, b, c),
    }
}

/// A pointer into C (or B) shared by tasks; tasks write disjoint tiles of C.
#[derive(Clone, Copy)]
struct SharedC<T>(*mut T);
// SAFETY: tasks write disjoint blocks of C (distinct row blocks or column chunks), and the
// owning `&mut [T]` outlives every task (they all finish inside `run`).
unsafe impl<T: Send> Send for SharedC<T> {}
unsafe impl<T: Send> Sync for SharedC<T> {}

impl<T> SharedC<T> {
    // A method, so closures capture the whole wrapper (which is Sync), not its raw field.
    fn get(self) -> *mut T {
        self.0
    }
}

fn run<T: PackCache, K: GemmKernel<T>>(g: &Gemm<T>, l: Layout, a: &[T], b: &[T], c: &mut [T]) {
    let (m, n, k) = (g.m, g.n, g.k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || g.alpha == T::zero() {
        scale_c(g.beta, c, m, n, l.ldc);
        return;
    }
    let threads = if 2 * m * n * k < PAR_MIN_FLOPS {
        1
    } else {
        rayon::current_num_threads()
    };
    let a_op = Operand {
        data: a,
        ld: l.lda,
        trans: g.trans_a,
    };
    let b_op = Operand {
        data: b,
        ld: l.ldb,
        trans: g.trans_b,
    };
    let c_ptr = SharedC(c.as_mut_ptr());

    // Balanced blocks: equal K blocks (a 288-deep product runs as 144 + 144, not 256 + 32),
    // and equal row blocks rounded to MR. Both depend on the shape only, never on threads.
    let kc_max = k.div_ceil(k.div_ceil(K::KC));
    let row_blocks = m.div_ceil(K::MC);
    let mc_max = m.div_ceil(row_blocks).div_ceil(K::MR) * K::MR;
    let row_blocks = m.div_ceil(mc_max);
    // With a single row block every B panel is used once per row panel straight from L1, so
    // a row-major B is read in place instead of packed (packing would cost as much as the
    // arithmetic for skinny products); only a partial last panel is packed.
    let b_in_place = row_blocks == 1 && g.trans_b == Transpose::No;

    let b_len = if b_in_place {
        kc_max * K::NR
    } else {
        kc_max * K::NC.min(n.div_ceil(K::NR) * K::NR)
    };
    with_scratch(T::cache_b(), b_len, |b_pack| {
        for jc in (0..n).step_by(K::NC) {
            let nc = K::NC.min(n - jc);
            let n_panels = nc.div_ceil(K::NR);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let panel_len = kc * K::NR;
                let (b_base, b_panel, b_row, b_edge) = if b_in_place {
                    let full = nc / K::NR * K::NR;
                    let edge = if full < nc {
                        pack_b(
                            b_op,
                            K::NR,
                            pc,
                            kc,
                            jc + full,
                            nc - full,
                            &mut b_pack[..panel_len],
                        );
                        b_pack.as_ptr()
                    } else {
                        std::ptr::null()
                    };
                    // Index pc * ldb + jc is inside B (pc < k, jc < n).
                    (b[pc * l.ldb + jc..].as_ptr(), K::NR, l.ldb, edge)
                } else {
                    pack_b_block::<T, K>(
                        b_op,
                        pc,
                        kc,
                        jc,
                        nc,
                        &mut b_pack[..n_panels * panel_len],
                        threads,
                    );
                    (b_pack.as_ptr(), panel_len, K::NR, std::ptr::null())
                };
                let b_ptrs = SharedC(b_base as *mut T);
                let b_edge = SharedC(b_edge as *mut T);
                let beta = if pc == 0 { g.beta } else { T::one() };

                // Tasks: row blocks x column chunks, at least TASKS_PER_THREAD per thread
                // when the shape allows.
                let want_chunks = (TASKS_PER_THREAD * threads).div_ceil(row_blocks);
                let chunk_panels = if threads == 1 {
                    n_panels
                } else {
                    n_panels.div_ceil(want_chunks.clamp(1, n_panels))
                };
                let col_chunks = n_panels.div_ceil(chunk_panels);
                let task = |t: usize| {
                    let (rb, cc) = (t / col_chunks, t % col_chunks);
                    let i0 = rb * mc_max;
                    let mc = mc_max.min(m - i0);
                    let p0 = cc * chunk_panels;
                    let j0 = p0 * K::NR;
                    let ncols = (chunk_panels * K::NR).min(nc - j0);
                    with_scratch(T::cache_a(), mc.div_ceil(K::MR) * K::MR * kc, |a_pack| {
                        pack_a(a_op, K::MR, i0, mc, pc, kc, a_pack);
                        let args = MacroArgs {
                            kc,
                            a: a_pack.as_ptr(),
                            b: b_ptrs.get().wrapping_add(p0 * b_panel),
                            b_panel,
                            b_row,
                            b_edge: b_edge.get(),
                            m: mc,
                            n: ncols,
                            // SAFETY: (i0, jc + j0) is inside C: i0 < m, jc + j0 < n.
                            c: unsafe { c_ptr.get().add(i0 * l.ldc + jc + j0) },
                            ldc: l.ldc,
                            alpha: g.alpha,
                            beta,
                        };
                        // SAFETY: packed A covers mc x kc; B panels cover kc x ncols (packed,
                        // or in place within the validated B with its edge panel packed); the
                        // mc x ncols block of C is inside the validated C and no other task
                        // writes it.
                        unsafe { K::run(&args) };
                    });
                };
                let tasks = row_blocks * col_chunks;
                if threads == 1 || tasks == 1 {
                    (0..tasks).for_each(task);
                } else {
                    (0..tasks).into_par_iter().for_each(task);
                }
            }
        }
    });
}

/// Packs the K x N block of B, in parallel over panel chunks when there is enough of it.
fn pack_b_block<T: PackCache, K: GemmKernel<T>>(
    b: Operand<'_, T>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    out: &mut [T],
    threads: usize,
) {
    let panel_len = kc * K::NR;
    let n_panels = nc.div_ceil(K::NR);
    if threads == 1 || n_panels < 2 * threads {
        pack_b(b, K::NR, pc, kc, jc, nc, out);
        return;
    }
    let per = n_panels.div_ceil(2 * threads);
    out.par_chunks_mut(per * panel_len)
        .enumerate()
        .for_each(|(q, chunk)| {
            let j0 = q * per * K::NR;
            pack_b(b, K::NR, pc, kc, jc + j0, (per * K::NR).min(nc - j0), chunk);
        });
}

/// `C = beta * C` (beta = 0 writes zeros without reading C).
fn scale_c<T: Float>(beta: T, c: &mut [T], m: usize, n: usize, ldc: usize) {
    if beta == T::one() {
        return;
    }
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        if beta == T::zero() {
            row.fill(T::zero());
        } else {
            row.iter_mut().for_each(|x| *x = beta * *x);
        }
    }
}
