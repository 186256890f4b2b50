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

use super::kernels::{run_in_place, GemmKernel, MacroArgs, Packed};
use super::pack::{pack_a, pack_b, with_scratch, Gather, Operand, PackElem};
use super::{Gemm, Layout, Transpose};
use crate::simd::Isa;
use num_traits::Float;
use rayon::prelude::*;
use std::cell::RefCell;

/// Below this many flops a call stays on the calling thread (a rayon fork costs microseconds).
pub(super) const PAR_MIN_FLOPS: usize = 1 << 21;

/// Column tasks per thread. One: measured side by side at 2 threads (quiet machine), four
/// tasks per thread lost 5-15% on sq256, mlp_bwd_w and the im2col shapes to task overhead
/// (each packs its own B panels), more than balance gained.
const TASKS_PER_THREAD: usize = 1;

thread_local! {
    static PACK_A_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static PACK_B_F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static PACK_A_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    static PACK_B_F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// The per-thread packing caches of an element type.
pub(super) trait PackCache: PackElem + Send + Sync + 'static {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<Self>>>>;
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<Self>>>>;
}

impl PackCache for f32 {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<f32>>>> {
        &PACK_A_F32
    }
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<f32>>>> {
        &PACK_B_F32
    }
}

impl PackCache for f64 {
    fn cache_a() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<f64>>>> {
        &PACK_A_F64
    }
    fn cache_b() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<f64>>>> {
        &PACK_B_F64
    }
}

/// `gather`: B is read through it (see [`Gather`]) instead of `l.ldb`.
pub(super) fn gemm_f32(
    g: &Gemm<f32>,
    l: Layout,
    a: &[f32],
    b: &[f32],
    gather: Option<Gather<'_>>,
    c: &mut [f32],
) {
    use super::kernels::*;
    let b = (b, gather);
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 if g.n <= 8 => run::<f32, F32Gemm12x8Avx2Fma>(g, l, a, b, c, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => run::<f32, F32Gemm6x16Avx2Fma>(g, l, a, b, c, true),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => run::<f32, F32Gemm8x32Avx512>(g, l, a, b, c, true),
        Isa::Scalar => run::<f32, F32Gemm4x4Scalar>(g, l, a, b, c, false),
        _ => run::<f32, F32Gemm4x8Wide>(g, l, a, b, c, false),
    }
}

pub(super) fn gemm_f64(g: &Gemm<f64>, l: Layout, a: &[f64], b: &[f64], c: &mut [f64]) {
    use super::kernels::*;
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => run::<f64, F64Gemm6x8Avx2Fma>(g, l, a, (b, None), c, true),
        Isa::Scalar => run::<f64, F64Gemm4x4Scalar>(g, l, a, (b, None), c, false),
        _ => run::<f64, F64Gemm4x4Wide>(g, l, a, (b, None), c, false),
    }
}

/// A pointer to an output shared by parallel tasks that write disjoint parts of it: blocks
/// of C here (distinct row blocks or column chunks), channel blocks of `dx` in
/// `conv/col_blocks.rs`.
#[derive(Clone, Copy)]
pub(crate) struct SharedPtr<T>(pub(crate) *mut T);
// SAFETY: every user writes only its task's disjoint part through it, and the owning
// `&mut [T]` outlives the tasks (they all finish before the owner is used again).
unsafe impl<T: Send> Send for SharedPtr<T> {}
unsafe impl<T: Send> Sync for SharedPtr<T> {}

impl<T> SharedPtr<T> {
    // A method, so closures capture the whole wrapper (which is Sync), not its raw field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// `simd`: the call runs the AVX2 path, so packing may use AVX2 too.
fn run<T: PackCache + crate::simd::SimdElem, K: GemmKernel<T>>(
    g: &Gemm<T>,
    l: Layout,
    a: &[T],
    (b, gather): (&[T], Option<Gather<'_>>),
    c: &mut [T],
    simd: bool,
) {
    let (m, n, k) = (g.m, g.n, g.k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || g.alpha == T::zero() {
        scale_c(g.beta, c, m, n, l.ldc);
        return;
    }
    if gather.is_none()
        && (super::thin::run(g, l, a, b, c) || super::small::run::<T, K>(g, l, a, b, c, simd))
    {
        return;
    }
    let threads = if 2 * m * n * k < PAR_MIN_FLOPS {
        1
    } else {
        rayon::current_num_threads()
    };
    // Balanced K blocks: a 288-deep product runs as 144 + 144, not 256 + 32. The K blocking
    // fixes each element's summation order, so it depends on the shape only.
    let kc_max = k.div_ceil(k.div_ceil(K::KC));
    // Balanced row blocks rounded to MR, their count a multiple of the thread count when
    // there are enough rows (15 blocks on 2 threads would leave one idle for a block). Row
    // and column splits never change how an element is summed, so they may follow threads.
    let mut row_blocks = m.div_ceil(K::MC);
    if threads > 1 && row_blocks >= threads {
        row_blocks = row_blocks.div_ceil(threads) * threads;
    }
    let mc_max = m.div_ceil(row_blocks).div_ceil(K::MR) * K::MR;
    let p = Plan {
        g,
        a: Operand {
            data: a,
            ld: l.lda,
            trans: g.trans_a,
            simd,
            gather: None,
        },
        b: Operand {
            data: b,
            ld: l.ldb,
            trans: g.trans_b,
            simd,
            gather,
        },
        c: SharedPtr(c.as_mut_ptr()),
        ldc: l.ldc,
        threads,
        kc_max,
        mc_max,
        row_blocks: m.div_ceil(mc_max),
    };
    if p.row_blocks == 1 && mc_max * k <= SKINNY_A_MAX {
        run_skinny::<T, K>(&p)
    } else {
        run_blocked::<T, K>(&p)
    }
}

/// Below this many elements, a single-row-block A is packed whole, once per call.
const SKINNY_A_MAX: usize = 1 << 20;

/// Bytes of B a skinny task packs at a time (stays in L2 beside the packed A).
const SKINNY_B_BYTES: usize = 192 << 10;

/// One call's shape and blocking.
struct Plan<'a, T> {
    g: &'a Gemm<T>,
    a: Operand<'a, T>,
    b: Operand<'a, T>,
    c: SharedPtr<T>,
    ldc: usize,
    threads: usize,
    kc_max: usize,
    mc_max: usize,
    row_blocks: usize,
}

impl<T: PackCache> Plan<'_, T> {
    /// Splits `n_panels` column panels into chunks of at most `max_panels`, and into at least
    /// `TASKS_PER_THREAD * threads / row_blocks` chunks when threads > 1.
    fn column_chunks(&self, n_panels: usize, max_panels: usize) -> (usize, usize) {
        let want = if self.threads == 1 {
            1
        } else {
            (TASKS_PER_THREAD * self.threads).div_ceil(self.row_blocks)
        };
        let chunk_panels = n_panels.div_ceil(want.clamp(1, n_panels)).min(max_panels);
        (chunk_panels, n_panels.div_ceil(chunk_panels))
    }

    /// Whether A is read in place instead of packed (see [`a_in_place`] for L1): with one
    /// K block (the packed layout would hold the same elements in the same order of use, so
    /// the bits are the same), or one B panel (each element of A is used once, and packing
    /// it is a pass of its own: 4096 x 8 x 64 spent half its time there).
    fn a_in_place<K: GemmKernel<T>>(&self) -> bool {
        (self.g.k == self.kc_max || self.g.n <= K::NR) && a_in_place(self.a, self.kc_max, K::MR)
    }

    /// Runs `task(0..tasks)`, in parallel when the call is big enough.
    fn for_each_task(&self, tasks: usize, task: impl Fn(usize) + Sync + Send) {
        if self.threads == 1 || tasks == 1 {
            (0..tasks).for_each(task);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    }

    /// Runs the macro-kernel on rows `i0..i0+mc`, columns `j0..j0+ncols` of C for the K block
    /// at `pc` (beta applies on the first K block only).
    ///
    /// # Safety
    /// `a_pack` holds the packed `mc x kc` block (or is None: A read in place), `b` covers
    /// `kc x ncols`; no other task writes this block of C.
    #[allow(clippy::too_many_arguments)]
    unsafe fn macro_block<K: GemmKernel<T>>(
        &self,
        a_pack: Option<&[T]>,
        b: BPanels<T>,
        pc: usize,
        kc: usize,
        i0: usize,
        mc: usize,
        j0: usize,
        ncols: usize,
    ) {
        let a = &self.a;
        let a_at = match a.trans {
            Transpose::No => i0 * a.ld + pc,
            Transpose::Yes => pc * a.ld + i0,
        };
        let args = MacroArgs {
            kc,
            a: a_pack.map_or(a.data[a_at..].as_ptr(), |a| a.as_ptr()),
            b: b.base,
            b_panel: b.panel,
            b_row: b.row,
            b_edge: b.edge,
            b_rows: b.rows,
            m: mc,
            n: ncols,
            // SAFETY: (i0, j0) is inside the validated C (i0 < m, j0 < n).
            c: unsafe { self.c.get().add(i0 * self.ldc + j0) },
            ldc: self.ldc,
            alpha: self.g.alpha,
            beta: if pc == 0 { self.g.beta } else { T::one() },
        };
        // SAFETY: the caller's contract.
        unsafe {
            match a_pack {
                Some(_) => K::run(&args, Packed),
                None => run_in_place::<T, K>(&args, a.trans, a.ld),
            }
        }
    }
}

/// One row block (m <= MC): threads split the columns and run the whole K loop each, packing
/// a few B panels at a time just before the row panels use them (each B element is used by
/// this one row block only, so a shared packed B block would only add traffic).
///
/// A small packed A (at most `PRIVATE_A_BYTES`) is packed by every column task itself, into
/// its own scratch: that duplicates the packing on each thread, but a shared one costs more
/// there, a join before the column tasks and every thread but the packer pulling all of A
/// from the other core's cache (mlp_fwd, 64 x 128 x 784, at 2 threads: 87 us shared, 74 us
/// private). A larger one (a long K) is packed once, in parallel, then shared.
fn run_skinny<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>) {
    let (m, n, k) = (p.g.m, p.g.n, p.g.k);
    let mp = m.div_ceil(K::MR) * K::MR;
    let n_panels = n.div_ceil(K::NR);
    let (chunk_panels, chunks) = p.column_chunks(n_panels, n_panels);
    let b_len = skinny_b_len::<T, K>(p);
    // All scratch comes from the calling thread's pools, a slice per task: scratch taken
    // inside the tasks would come from whichever worker ran them, and a worker meeting a
    // size for the first time allocates, in any later step (the network layer promises none).
    let in_place = p.a_in_place::<K>();
    let private = !in_place && chunks > 1 && mp * k * std::mem::size_of::<T>() <= PRIVATE_A_BYTES;
    let a_len = match (in_place, private) {
        (true, _) => 0,
        (_, true) => chunks * mp * k,
        _ => mp * k,
    };
    with_scratch(T::cache_a(), a_len, |a_all| {
        with_scratch(T::cache_b(), chunks * b_len, |b_all| {
            let b_packs = b_all.par_chunks_mut(b_len).enumerate();
            if in_place {
                b_packs.for_each(|(cc, b_pack)| {
                    skinny_columns::<T, K>(p, None, b_pack, cc, chunk_panels)
                });
            } else if private {
                b_packs
                    .zip(a_all.par_chunks_mut(mp * k))
                    .for_each(|((cc, b_pack), a_pack)| {
                        pack_a_whole::<T, K>(p, a_pack, false);
                        skinny_columns::<T, K>(p, Some(a_pack), b_pack, cc, chunk_panels);
                    });
            } else {
                pack_a_whole::<T, K>(p, a_all, p.threads > 1);
                let a_pack = &*a_all;
                b_packs.for_each(|(cc, b_pack)| {
                    skinny_columns::<T, K>(p, Some(a_pack), b_pack, cc, chunk_panels)
                });
            }
        })
    });
}

/// Largest packed A that each column task of a skinny product packs for itself.
const PRIVATE_A_BYTES: usize = 256 << 10;

/// Packs the whole of A (one row block) into `a_pack`: K block `pc` holds `mp x kc` at
/// `pc * mp`, panel by panel; in parallel if `parallel` (rayon workers that found no work
/// for a few tens of microseconds are asleep, and waking one costs ~40 us here: forking
/// first lets the wake-up overlap the packing instead of delaying the column tasks).
fn pack_a_whole<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>, a_pack: &mut [T], parallel: bool) {
    let (m, k) = (p.g.m, p.g.k);
    let mp = m.div_ceil(K::MR) * K::MR;
    // Full K blocks (depth kc_max) first, then the shorter last one; chunk `c` of a region is
    // the panel of rows (c % panels) * MR.. in K block c / panels.
    let panels = mp / K::MR;
    let full = k / p.kc_max * p.kc_max;
    let (head, tail) = a_pack.split_at_mut(full * mp);
    let pack_panel = |kc: usize, pc0: usize, c: usize, panel: &mut [T]| {
        let (pc, i0) = (pc0 + c / panels * kc, c % panels * K::MR);
        pack_a(p.a, K::MR, i0, K::MR.min(m - i0), pc, kc, panel);
    };
    let kc_last = (k - full).max(1);
    // One pass (one fork) over the panels of both regions.
    if parallel {
        let head = head.par_chunks_mut(p.kc_max * K::MR).enumerate();
        let tail = tail.par_chunks_mut(kc_last * K::MR).enumerate();
        head.map(|(c, x)| (p.kc_max, 0, c, x))
            .chain(tail.map(|(c, x)| (kc_last, full, c, x)))
            .for_each(|(kc, pc0, c, x)| pack_panel(kc, pc0, c, x));
    } else {
        let head = head.chunks_mut(p.kc_max * K::MR).enumerate();
        let tail = tail.chunks_mut(kc_last * K::MR).enumerate();
        head.map(|(c, x)| (p.kc_max, 0, c, x))
            .chain(tail.map(|(c, x)| (kc_last, full, c, x)))
            .for_each(|(kc, pc0, c, x)| pack_panel(kc, pc0, c, x));
    }
}

/// The columns of chunk `cc` (`chunk_panels` B panels wide) of a skinny product, with A
/// packed whole in `a_pack`.
/// B scratch of one skinny column task, and the columns it packs at a time: B is packed a
/// few panels at a time, sized to stay in L2 beside the packed A, or read in place when that
/// is safe for L1 (see `b_in_place`; then only a partial last panel is packed).
fn skinny_b_len<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>) -> usize {
    p.kc_max
        * if b_in_place::<T>(p.b, p.kc_max, K::NR) {
            K::NR
        } else {
            skinny_step::<T, K>(p)
        }
}

fn skinny_step<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>) -> usize {
    K::NR * (SKINNY_B_BYTES / (p.kc_max * K::NR * std::mem::size_of::<T>())).max(1)
}

fn skinny_columns<T: PackCache, K: GemmKernel<T>>(
    p: &Plan<'_, T>,
    a_pack: Option<&[T]>,
    b_pack: &mut [T],
    cc: usize,
    chunk_panels: usize,
) {
    let (m, n, k) = (p.g.m, p.g.n, p.g.k);
    let mp = m.div_ceil(K::MR) * K::MR;
    let j0 = cc * chunk_panels * K::NR;
    let j1 = (j0 + chunk_panels * K::NR).min(n);
    let in_place = b_in_place::<T>(p.b, p.kc_max, K::NR);
    let step = skinny_step::<T, K>(p);
    let gathered = gathered_in_place(&p.b, K::NR);
    // Columns outermost: the m x step block of C stays in cache across K blocks. A gathered B
    // read in place comes in pieces that stay inside one segment (`gathered_pieces`).
    let pieces = gathered
        .map(|g| gathered_pieces(g, (j0, j1), K::NR, step))
        .into_iter()
        .flatten();
    let steps = gathered
        .is_none()
        .then(|| {
            (j0..j1)
                .step_by(step)
                .map(|j| (j, step.min(j1 - j), in_place))
        })
        .into_iter()
        .flatten();
    for (j, ncols, in_place) in pieces.chain(steps) {
        for pc in (0..k).step_by(p.kc_max) {
            let kc = p.kc_max.min(k - pc);
            let b = match gathered {
                Some(g) => gathered_panels(p.b, g, (pc, kc), (j, ncols, in_place), K::NR, b_pack),
                None if in_place => {
                    let full = ncols / K::NR * K::NR;
                    let edge = if full < ncols {
                        pack_b(p.b, K::NR, pc, kc, j + full, ncols - full, b_pack);
                        b_pack.as_ptr()
                    } else {
                        std::ptr::null()
                    };
                    let base = p.b.data[pc * p.b.ld + j..].as_ptr();
                    BPanels {
                        base,
                        panel: K::NR,
                        row: p.b.ld,
                        edge,
                        rows: std::ptr::null(),
                    }
                }
                None => {
                    pack_b(p.b, K::NR, pc, kc, j, ncols, b_pack);
                    BPanels::packed(b_pack, kc, K::NR)
                }
            };
            // SAFETY: A block pc is packed (mp x kc) or read in place, B covers kc x ncols
            // (in place: elements the validation checked, or through the row table elements
            // `gemm_gather` checked; else packed in b_pack); this task alone writes columns
            // j0..j1 of C.
            let a = a_pack.map(|a| &a[pc * mp..]);
            unsafe { p.macro_block::<K>(a, b, pc, kc, 0, m, j, ncols) };
        }
    }
}

/// Where the B panels of one macro-kernel call are (see `MacroArgs`).
#[derive(Clone, Copy)]
struct BPanels<T> {
    base: *const T,
    panel: usize,
    row: usize,
    edge: *const T,
    rows: *const usize,
}

impl<T> BPanels<T> {
    fn packed(buf: &[T], kc: usize, nr: usize) -> Self {
        BPanels {
            base: buf.as_ptr(),
            panel: kc * nr,
            row: nr,
            edge: std::ptr::null(),
            rows: std::ptr::null(),
        }
    }
}

/// The gather of a B whose full panels the micro-kernel may read in place, through the row
/// table (`MacroArgs::b_rows`), instead of packing them: each stored row is contiguous over a
/// segment, so a panel inside one segment is `NR` consecutive elements at every depth, at an
/// offset from the table. Same products in the same order, so the same bits. Packing was a
/// copy per panel element for at most `MC / MR` tiles of use:
/// * conv forward (rows are kernel taps, segments images' wide columns; 64 output channels):
///   9% of resnet_3x3 at 1 thread. The in-place panel touches fewer cache lines than the
///   packed one (neighbouring taps share lines).
/// * the channels-last weight gradient (rows are output positions, segments (`seg_off`)
///   kernel taps' channels): 9% of mnist_c2's and conv5x5's. Only when consecutive
///   positions are at most a panel apart (stride 1, at most `NR` channels), so a panel's
///   rows form one dense block: resnet_s2's, 256 floats apart, fold onto a few L1 sets and
///   ran 6% slower in place.
///
/// Needs B as stored (rows are depths), columns contiguous within a segment (no `line`), no
/// junk columns, segments at least a panel wide (panels across a segment's end are packed).
fn gathered_in_place<'a, T>(b: &Operand<'a, T>, nr: usize) -> Option<Gather<'a>> {
    let g = b.gather?;
    let dense = g.seg_off.is_none() || g.row.windows(2).next().is_none_or(|r| r[1] <= r[0] + nr);
    let plain = g.line.is_none() && g.seg_valid == g.seg_len && dense;
    (b.trans == Transpose::No && plain && g.seg_len >= nr).then_some(g)
}

/// Columns `j0..j1` of a gathered B in pieces `(first column, width, in place)`: runs of
/// whole panels inside one segment (at most `max` columns, a multiple of `nr`), read in
/// place, and single panels across a segment boundary or ending at `j1`, packed. (A
/// segment's partial last panel run on its own would waste the rest of its tile: 209-column
/// segments on 32-wide tiles computed 224 columns each, 7% more than across boundaries.)
fn gathered_pieces(
    g: Gather<'_>,
    (j0, j1): (usize, usize),
    nr: usize,
    max: usize,
) -> impl Iterator<Item = (usize, usize, bool)> {
    let piece = move |j: usize| {
        let seg_end = (j / g.seg_len + 1) * g.seg_len;
        let whole = (seg_end.min(j1) - j) / nr * nr;
        if whole == 0 {
            (j, nr.min(j1 - j), false)
        } else {
            (j, whole.min(max), true)
        }
    };
    std::iter::successors((j0 < j1).then(|| piece(j0)), move |&(j, w, _)| {
        (j + w < j1).then(|| piece(j + w))
    })
}

/// The B panels of one piece (see [`gathered_pieces`]) at depths `pc..pc+kc`: read in place
/// through the row table, or one panel packed into `buf` (`kc * nr`).
fn gathered_panels<T: PackElem>(
    b: Operand<'_, T>,
    g: Gather<'_>,
    (pc, kc): (usize, usize),
    (j, ncols, in_place): (usize, usize, bool),
    nr: usize,
    buf: &mut [T],
) -> BPanels<T> {
    if !in_place {
        pack_b(b, nr, pc, kc, j, ncols, buf);
        return BPanels::packed(buf, kc, nr);
    }
    BPanels {
        // Dereferenced only at the panels' elements, which `gemm_gather` checked.
        base: b.data.as_ptr().wrapping_add(g.offset(j).0),
        panel: nr,
        row: 0,
        edge: std::ptr::null(),
        rows: g.row[pc..pc + kc].as_ptr(),
    }
}

/// Whether a skinny product may read a row-major B in place: a `kc x NR` panel must stay in
/// L1 (see `rows_fit_l1`). Then the B panel is read once from memory and reused from L1 by
/// every row panel, with no packing pass.
pub(super) fn b_in_place<T>(b: Operand<'_, T>, kc: usize, nr: usize) -> bool {
    b.trans == Transpose::No && b.gather.is_none() && rows_fit_l1::<T>(b.ld, kc, nr)
}

/// Whether a product with one K block may read A in place instead of packing it (the packed
/// layout would hold the same elements, used in the same order, so the bits are the same):
/// what a tile reads at a time must stay in L1, `mr` rows a few depths long, or `kc` depths
/// of `mr` columns (A transposed). Packing A costs as much as the arithmetic for a small
/// product (32^3: a third of the call).
pub(super) fn a_in_place<T>(a: Operand<'_, T>, kc: usize, mr: usize) -> bool {
    match a.trans {
        Transpose::No => rows_fit_l1::<T>(a.ld, mr, 4),
        Transpose::Yes => rows_fit_l1::<T>(a.ld, kc, mr),
    }
}

/// Whether `rows` rows of `width` elements, `ld` apart, fit in half of L1 given the cache
/// sets their stride maps to (a stride with a large power-of-two factor, such as 3136
/// floats, folds the rows onto a quarter of the sets and thrashes L1), and span few enough
/// pages for the L1 TLB.
fn rows_fit_l1<T>(ld: usize, rows: usize, width: usize) -> bool {
    const LINE: usize = 64;
    const SETS: usize = 64;
    const WAYS: usize = 8;
    const TLB_BYTES: usize = 64 * 4096;
    let stride = ld * std::mem::size_of::<T>();
    let row_lines = (width * std::mem::size_of::<T>()).div_ceil(LINE) + 1;
    let sets = if stride.is_multiple_of(LINE) {
        let step = stride / LINE;
        SETS >> step.trailing_zeros().min(SETS.trailing_zeros())
    } else {
        SETS
    };
    rows * row_lines <= sets * WAYS / 2 && rows * stride <= TLB_BYTES
}

/// The general case: for each (NC, KC) block, B is packed once and shared; tasks are
/// (row block) x (column chunk) pairs, each packing its own A block in its worker's cache.
fn run_blocked<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>) {
    if let Some(g) = gathered_in_place(&p.b, K::NR) {
        return run_blocked_gathered::<T, K>(p, g);
    }
    let (m, n, k) = (p.g.m, p.g.n, p.g.k);
    let b_len = p.kc_max * K::NC.min(n.div_ceil(K::NR) * K::NR);
    // Only one panel wide: otherwise a packed block of A serves every column panel of the
    // task from L2, in the order the micro-kernel reads it.
    let in_place = n <= K::NR && p.a_in_place::<K>();
    with_scratch(T::cache_b(), b_len, |b_pack| {
        for jc in (0..n).step_by(K::NC) {
            let nc = K::NC.min(n - jc);
            let n_panels = nc.div_ceil(K::NR);
            let (chunk_panels, col_chunks) = p.column_chunks(n_panels, n_panels);
            for pc in (0..k).step_by(p.kc_max) {
                let kc = p.kc_max.min(k - pc);
                let panel_len = kc * K::NR;
                let b_block = &mut b_pack[..n_panels * panel_len];
                pack_b_block::<T, K>(p.b, pc, kc, jc, nc, b_block, p.threads);
                let b_block = &*b_block;
                p.for_each_task(p.row_blocks * col_chunks, |t| {
                    let (rb, cc) = (t / col_chunks, t % col_chunks);
                    let i0 = rb * p.mc_max;
                    let mc = p.mc_max.min(m - i0);
                    let j0 = cc * chunk_panels * K::NR;
                    let ncols = (chunk_panels * K::NR).min(nc - j0);
                    let a_len = if in_place {
                        0
                    } else {
                        mc.div_ceil(K::MR) * K::MR * kc
                    };
                    with_scratch(T::cache_a(), a_len, |a_pack| {
                        let a_pack = (!in_place).then(|| {
                            pack_a(p.a, K::MR, i0, mc, pc, kc, a_pack);
                            &*a_pack
                        });
                        // SAFETY: A is packed (mc x kc) or read in place, B panels cover
                        // kc x nc; this task alone writes rows i0..i0+mc, columns
                        // jc+j0..jc+j0+ncols of C.
                        unsafe {
                            p.macro_block::<K>(
                                a_pack,
                                BPanels::packed(
                                    &b_block[cc * chunk_panels * panel_len..],
                                    kc,
                                    K::NR,
                                ),
                                pc,
                                kc,
                                i0,
                                mc,
                                jc + j0,
                                ncols,
                            )
                        };
                    });
                });
            }
        }
    });
}

/// [`run_blocked`] with a gathered B read in place (see [`gathered_in_place`]): no shared
/// packed B block, so the tasks, (row block) x (column chunk of at most NC), each pack their
/// A block per K block and the panels across segment ends, in scratch of their own.
fn run_blocked_gathered<T: PackCache, K: GemmKernel<T>>(p: &Plan<'_, T>, g: Gather<'_>) {
    let (m, n, k) = (p.g.m, p.g.n, p.g.k);
    let (chunk_panels, col_chunks) = p.column_chunks(n.div_ceil(K::NR), K::NC / K::NR);
    let tasks = p.row_blocks * col_chunks;
    let a_len = p.mc_max.div_ceil(K::MR) * K::MR * p.kc_max;
    let slot = a_len + p.kc_max * K::NR;
    let task = |(t, buf): (usize, &mut [T])| {
        let (a_pack, panel) = buf.split_at_mut(a_len);
        let (rb, cc) = (t / col_chunks, t % col_chunks);
        let i0 = rb * p.mc_max;
        let mc = p.mc_max.min(m - i0);
        let j0 = cc * chunk_panels * K::NR;
        let j1 = (j0 + chunk_panels * K::NR).min(n);
        for pc in (0..k).step_by(p.kc_max) {
            let kc = p.kc_max.min(k - pc);
            pack_a(p.a, K::MR, i0, mc, pc, kc, a_pack);
            for (j, ncols, in_place) in gathered_pieces(g, (j0, j1), K::NR, usize::MAX) {
                let piece = (j, ncols, in_place);
                let b = gathered_panels(p.b, g, (pc, kc), piece, K::NR, panel);
                // SAFETY: A is packed (mc x kc); B panels are read in place through
                // the row table (elements `gemm_gather` checked), or one is packed in
                // `panel`; this task alone writes rows i0..i0+mc, columns j..j+ncols.
                unsafe { p.macro_block::<K>(Some(a_pack), b, pc, kc, i0, mc, j, ncols) };
            }
        }
    };
    // All scratch from the calling thread's pool (see `run_skinny`).
    with_scratch(T::cache_a(), tasks * slot, |all| {
        if p.threads == 1 || tasks == 1 {
            all.chunks_mut(slot).enumerate().for_each(task);
        } else {
            all.par_chunks_mut(slot).enumerate().for_each(task);
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
