//! Micro-kernels: one register-tiled body, generic over the vector type, instantiated per ISA
//! with its block sizes (the BLIS "context": MR, NR, MC, KC, NC). Adding an ISA means adding
//! one `GemmKernel` impl here; the frame (blocking, packing, threads) is shared.
//!
//! Names follow XNNPACK: `F32Gemm6x16Avx2Fma` computes a 6 x 16 tile of f32 with AVX2+FMA.

use super::Transpose;
use crate::simd::{prefetch, Vector};
use num_traits::{Float, One, Zero};

/// One call of the macro-kernel: a block of A (packed in MR-row panels, `kc` deep, or read in
/// place) times a chunk of B panels (packed or in place), written into C with alpha/beta.
pub(super) struct MacroArgs<T> {
    /// Depth of this K block.
    pub kc: usize,
    /// A, laid out as the call's [`ASource`] says.
    pub a: *const T,
    /// B panels: depth `p`, column `j` of panel `q` is at `b + q * b_panel + p * b_row + j`.
    /// Packed: `b_panel = kc * NR`, `b_row = NR`. Read in place from a row-major B:
    /// `b_panel = NR`, `b_row = ldb`.
    pub b: *const T,
    pub b_panel: usize,
    pub b_row: usize,
    /// With B read in place and `n` not a multiple of NR: the last, partial panel, packed
    /// (`kc * NR`, zero-filled, row stride NR). Null otherwise.
    pub b_edge: *const T,
    /// A gathered B read in place (convolution's implicit im2col, see `frame::gathered_in_place`):
    /// depth `p` of panel `q` is at `b + q * b_panel + b_rows[p]` (`b_row` unused) instead.
    /// Null otherwise.
    pub b_rows: *const usize,
    /// Rows of C in this block.
    pub m: usize,
    /// Columns of C in this chunk.
    pub n: usize,
    /// C at the block's first element.
    pub c: *mut T,
    /// Row stride of C.
    pub ldc: usize,
    pub alpha: T,
    /// Scale of the old C (1 after the first K block; 0 overwrites without reading).
    pub beta: T,
}

/// How the macro-kernel finds A: row `i`, depth `p` of the block is at
/// `a + (i / MR) * panel(MR, kc) + (i % MR) * row() + p * depth(MR)` (in elements). A type per
/// layout, so each is compiled with its constant strides (the packed one's are all constant).
pub(super) trait ASource: Copy {
    /// Whether to prefetch each C tile before computing it: the frame's blocks come from
    /// products too large for C to stay in cache; a small product's C is a few kB, and the
    /// prefetches cost more than they save (16^3: 8% of the call).
    const PREFETCH_C: bool;
    fn panel(self, mr: usize, kc: usize) -> usize;
    fn row(self) -> usize;
    fn depth(self, mr: usize) -> usize;
}

/// A packed by `pack_a`: MR-row panels of `kc * MR`, element `(i, p)` at `p * MR + i`.
#[derive(Clone, Copy)]
pub(super) struct Packed;

impl ASource for Packed {
    const PREFETCH_C: bool = true;
    #[inline(always)]
    fn panel(self, mr: usize, kc: usize) -> usize {
        kc * mr
    }
    #[inline(always)]
    fn row(self) -> usize {
        1
    }
    #[inline(always)]
    fn depth(self, mr: usize) -> usize {
        mr
    }
}

/// A read in place with row stride `lda`: op(A)'s rows are contiguous (`TRANS` false), or its
/// columns are (A stored transposed).
#[derive(Clone, Copy)]
pub(super) struct InPlace<const TRANS: bool>(pub usize);

impl<const TRANS: bool> ASource for InPlace<TRANS> {
    const PREFETCH_C: bool = false;
    #[inline(always)]
    fn panel(self, mr: usize, _kc: usize) -> usize {
        mr * self.row()
    }
    #[inline(always)]
    fn row(self) -> usize {
        if TRANS {
            1
        } else {
            self.0
        }
    }
    #[inline(always)]
    fn depth(self, _mr: usize) -> usize {
        if TRANS {
            self.0
        } else {
            1
        }
    }
}

/// Runs `K` on `args` with A read in place: op(A)'s element `(i, p)` at `args.a + i * lda + p`,
/// or `args.a + p * lda + i` when A is stored transposed.
///
/// # Safety
/// As [`GemmKernel::run`].
#[inline]
pub(super) unsafe fn run_in_place<T, K: GemmKernel<T>>(
    args: &MacroArgs<T>,
    trans: Transpose,
    lda: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match trans {
            Transpose::No => K::run(args, InPlace::<false>(lda)),
            Transpose::Yes => K::run(args, InPlace::<true>(lda)),
        }
    }
}

/// A micro-kernel with its block sizes.
pub(super) trait GemmKernel<T>: Sync {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Rows of an A block (a multiple of MR; the block stays in L2).
    const MC: usize;
    /// Depth of a K block (a B micro-panel `KC x NR` stays in L1).
    const KC: usize;
    /// Columns of a B block (a multiple of NR; the block stays in L3).
    const NC: usize;
    /// Runs the macro-kernel.
    ///
    /// # Safety
    /// The pointers of `args` cover the `m x kc` block of A (laid out as `a_src` says), the B
    /// panels and the `m x n` block of C (row stride `ldc`); no other thread touches that
    /// block of C during the call.
    unsafe fn run<A: ASource>(args: &MacroArgs<T>, a_src: A);
}

/// The macro-kernel: every MR x NR tile of the block, B panel outermost so it stays in L1
/// while the A panels stream from L2 (or A from wherever it is, read in place).
///
/// # Safety
/// As [`GemmKernel::run`]; `NRV * V::LANES` is the kernel's NR.
#[inline(always)]
unsafe fn macro_kernel<V: Vector, A: ASource, const MR: usize, const NRV: usize>(
    args: &MacroArgs<V::Elem>,
    a_src: A,
) where
    V::Elem: Float,
{
    let nr = NRV * V::LANES;
    let mut j = 0;
    while j < args.n {
        let nr_eff = nr.min(args.n - j);
        // SAFETY (the three arms): panel j / nr exists: packed, the packed edge, or a full
        // panel of B in place (strided, or through the row table).
        unsafe {
            if nr_eff < nr && !args.b_edge.is_null() {
                let b = Strided {
                    b: args.b_edge,
                    row: nr,
                };
                row_panels::<V, A, _, MR, NRV>(args, a_src, b, j, nr_eff);
            } else if args.b_rows.is_null() {
                let b = Strided {
                    b: args.b.add((j / nr) * args.b_panel),
                    row: args.b_row,
                };
                row_panels::<V, A, _, MR, NRV>(args, a_src, b, j, nr_eff);
            } else {
                let b = Table {
                    b: args.b.add((j / nr) * args.b_panel),
                    rows: args.b_rows,
                };
                row_panels::<V, A, _, MR, NRV>(args, a_src, b, j, nr_eff);
            }
        }
        j += nr;
    }
}

/// Every row panel of the block against one B panel (`b`: its depths), at column `j` of C
/// (`nr_eff` of the panel's columns exist).
///
/// # Safety
/// As [`macro_kernel`]; `b` holds the block's `kc` depths of this panel.
#[inline(always)]
unsafe fn row_panels<
    V: Vector,
    A: ASource,
    B: BDepths<V::Elem>,
    const MR: usize,
    const NRV: usize,
>(
    args: &MacroArgs<V::Elem>,
    a_src: A,
    b: B,
    j: usize,
    nr_eff: usize,
) where
    V::Elem: Float,
{
    let kc = args.kc;
    let mut i = 0;
    while i < args.m {
        let mr_eff = MR.min(args.m - i);
        // SAFETY: rows i.. of A exist; the tile of C is inside the block.
        unsafe {
            let a = args.a.add((i / MR) * a_src.panel(MR, kc));
            let c = args.c.add(i * args.ldc + j);
            // Start fetching the C tile now so the write-back does not wait on memory.
            for r in (0..mr_eff).filter(|_| A::PREFETCH_C) {
                prefetch(c.add(r * args.ldc));
                prefetch(c.add(r * args.ldc + nr_eff - 1));
            }
            let rows = Rows {
                kc,
                a,
                a_row: a_src.row(),
                a_depth: a_src.depth(MR),
                b,
                c,
                nr_eff,
            };
            // A last panel at most one vector wide runs one-vector tiles: N = 196 on
            // 32-wide tiles computed 224 columns, this way 208.
            let narrow = NRV > 1 && nr_eff <= V::LANES;
            if mr_eff == MR {
                rows.run_width::<V, MR, NRV>(args, narrow);
            } else {
                // The last, partial row panel in pieces of 4, 2 and 1 rows, each a
                // smaller tile over the same B panel (still in L1): m = 64 on 6-row
                // tiles costs 64 rows of work instead of 66, m = 32 about 31 instead
                // of 36. Every element is still summed in order of depth.
                let mut r = 0;
                while r < mr_eff {
                    let piece = rows.down(r, args.ldc);
                    r += match mr_eff - r {
                        4.. => piece.run_width::<V, 4, NRV>(args, narrow),
                        2 | 3 => piece.run_width::<V, 2, NRV>(args, narrow),
                        _ => piece.run_width::<V, 1, NRV>(args, narrow),
                    };
                }
            }
        }
        i += MR;
    }
}

/// How a tile finds the depths of its B panel: `at(u)` is depth `u` from the current one,
/// `advance(n)` moves the current depth on by `n`.
trait BDepths<T>: Copy {
    /// # Safety
    /// Depth `u` from the current one exists.
    unsafe fn at(self, u: usize) -> *const T;
    fn advance(self, n: usize) -> Self;
}

/// Depths `row` elements apart: a packed panel (`row = NR`) or a row-major B in place.
#[derive(Clone, Copy)]
struct Strided<T> {
    b: *const T,
    row: usize,
}

impl<T: Copy> BDepths<T> for Strided<T> {
    #[inline(always)]
    unsafe fn at(self, u: usize) -> *const T {
        // SAFETY: the caller's contract.
        unsafe { self.b.add(u * self.row) }
    }
    #[inline(always)]
    fn advance(self, n: usize) -> Self {
        // wrapping_add: after the last step the pointer may leave the buffer (never read).
        Self {
            b: self.b.wrapping_add(n * self.row),
            ..self
        }
    }
}

/// Depth `p` at `b + rows[p]`: a gathered B read in place, one row-table load per depth.
#[derive(Clone, Copy)]
struct Table<T> {
    b: *const T,
    rows: *const usize,
}

impl<T: Copy> BDepths<T> for Table<T> {
    #[inline(always)]
    unsafe fn at(self, u: usize) -> *const T {
        // SAFETY: the caller's contract (the table holds this depth's offset).
        unsafe { self.b.add(*self.rows.add(u)) }
    }
    #[inline(always)]
    fn advance(self, n: usize) -> Self {
        Self {
            rows: self.rows.wrapping_add(n),
            ..self
        }
    }
}

/// Where one register tile reads and writes: rows of A (`a_row` elements apart, depths
/// `a_depth` apart), a B panel, and the tile of C (`nr_eff` of its columns exist).
#[derive(Clone, Copy)]
struct Rows<T, B> {
    kc: usize,
    a: *const T,
    a_row: usize,
    a_depth: usize,
    b: B,
    c: *mut T,
    nr_eff: usize,
}

impl<T, B: BDepths<T>> Rows<T, B> {
    /// The same tile from its row `r` on.
    fn down(self, r: usize, ldc: usize) -> Self {
        Self {
            a: self.a.wrapping_add(r * self.a_row),
            c: self.c.wrapping_add(r * ldc),
            ..self
        }
    }

    /// [`run`](Self::run) on `NRV` vectors, or on one if `narrow` (`nr_eff <= LANES`: the
    /// columns past the first vector would all be dropped).
    ///
    /// # Safety
    /// As [`run`](Self::run).
    #[inline(always)]
    unsafe fn run_width<V: Vector<Elem = T>, const R: usize, const NRV: usize>(
        self,
        args: &MacroArgs<T>,
        narrow: bool,
    ) -> usize
    where
        T: Float,
    {
        // SAFETY: the caller's contract; one vector reads and writes a part of the tile.
        unsafe {
            if narrow {
                self.run::<V, R, 1>(args)
            } else {
                self.run::<V, R, NRV>(args)
            }
        }
    }

    /// Computes and writes `R` rows of the tile; returns `R`.
    ///
    /// # Safety
    /// A and the B panel hold `kc` depths of these rows and columns; the `R x nr_eff` tile of
    /// C is inside the block of `args`.
    #[inline(always)]
    unsafe fn run<V: Vector<Elem = T>, const R: usize, const NRV: usize>(
        self,
        args: &MacroArgs<T>,
    ) -> usize
    where
        T: Float,
    {
        // SAFETY: the caller's contract.
        unsafe {
            let a = (self.a, self.a_row, self.a_depth);
            let acc = tile::<V, B, R, NRV>(self.kc, a, self.b);
            if self.nr_eff == NRV * V::LANES {
                store_full::<V, R, NRV>(&acc, self.c, args.ldc, args.alpha, args.beta);
            } else {
                let (ldc, nr, alpha, beta) = (args.ldc, self.nr_eff, args.alpha, args.beta);
                store_edge::<V, R, NRV>(&acc, self.c, ldc, R, nr, alpha, beta);
            }
        }
        R
    }
}

/// The register tile: `acc[i][v] = sum_p a[i][p] * b[p][v]`, in order of p (the fixed
/// reduction order that makes results independent of threads). `a = (ptr, row, depth)`:
/// element `(i, p)` of A at `ptr + i * row + p * depth` (constants for the packed layout, one
/// run-time stride in place).
///
/// # Safety
/// Those elements exist for `i < MR`, `p < kc`; depth `p` of `b` holds `NRV * LANES`.
#[inline(always)]
unsafe fn tile<V: Vector, B: BDepths<V::Elem>, const MR: usize, const NRV: usize>(
    kc: usize,
    (a, a_row, a_depth): (*const V::Elem, usize, usize),
    b: B,
) -> [[V; NRV]; MR] {
    let mut acc = [[V::zero(); NRV]; MR];
    let (mut a, mut b) = (a, b);
    // Four depths per iteration (the inner loop unrolls), then the rest one by one; the
    // summation order is the same either way.
    for _ in 0..kc / 4 {
        for u in 0..4 {
            let mut bv = [V::zero(); NRV];
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: within the B panel (depth < kc).
                *bv = unsafe { V::load(b.at(u).add(v * V::LANES)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: within A (depth < kc).
                let av = V::splat(unsafe { *a.add(u * a_depth + i * a_row) });
                for (acc, bv) in row.iter_mut().zip(bv.iter()) {
                    *acc = av.mul_add(*bv, *acc);
                }
            }
        }
        a = a.wrapping_add(4 * a_depth);
        b = b.advance(4);
    }
    for _ in 0..kc % 4 {
        let mut bv = [V::zero(); NRV];
        for (v, bv) in bv.iter_mut().enumerate() {
            // SAFETY: within the B panel (p < kc).
            *bv = unsafe { V::load(b.at(0).add(v * V::LANES)) };
        }
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: within A (p < kc).
            let av = V::splat(unsafe { *a.add(i * a_row) });
            for (acc, bv) in row.iter_mut().zip(bv.iter()) {
                *acc = av.mul_add(*bv, *acc);
            }
        }
        // wrapping_add: after the last step the pointers may leave the buffers (never read).
        a = a.wrapping_add(a_depth);
        b = b.advance(1);
    }
    acc
}

/// Writes a full tile: `C = alpha * acc + beta * C` (`beta == 0`: C is not read).
///
/// # Safety
/// `c` addresses an `MR x NR` tile with row stride `ldc`.
#[inline(always)]
unsafe fn store_full<V: Vector, const MR: usize, const NRV: usize>(
    acc: &[[V; NRV]; MR],
    c: *mut V::Elem,
    ldc: usize,
    alpha: V::Elem,
    beta: V::Elem,
) where
    V::Elem: Float,
{
    let alpha_v = V::splat(alpha);
    let beta_v = V::splat(beta);
    let (zero, one) = (V::Elem::zero(), V::Elem::one());
    for (i, row) in acc.iter().enumerate() {
        for (v, acc) in row.iter().enumerate() {
            // SAFETY: inside the tile.
            unsafe {
                let p = c.add(i * ldc + v * V::LANES);
                // The special cases give the same bits as the general formula (x * 1 and
                // fma(x, 1, c) round exactly like x and x + c); they only save instructions.
                let out = match (alpha == one, beta == zero, beta == one) {
                    (true, true, _) => *acc,
                    (_, true, _) => acc.mul(alpha_v),
                    (true, _, true) => acc.add(V::load(p)),
                    _ => acc.mul_add(alpha_v, V::load(p).mul(beta_v)),
                };
                out.store(p);
            }
        }
    }
}

/// Writes the top-left `mr x nr` part of a tile at the edge of C.
///
/// # Safety
/// `c` addresses an `mr x nr` tile with row stride `ldc`.
#[inline(always)]
unsafe fn store_edge<V: Vector, const MR: usize, const NRV: usize>(
    acc: &[[V; NRV]; MR],
    c: *mut V::Elem,
    ldc: usize,
    mr: usize,
    nr: usize,
    alpha: V::Elem,
    beta: V::Elem,
) where
    V::Elem: Float,
{
    let mut buf = [V::Elem::zero(); 64];
    let alpha_v = V::splat(alpha);
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (v, acc) in row.iter().enumerate() {
            // SAFETY: buf holds 64 >= NRV * LANES elements (checked by the kernel consts).
            unsafe { acc.mul(alpha_v).store(buf.as_mut_ptr().add(v * V::LANES)) };
        }
        // Over all NR columns, skipping those past `nr`: a constant trip count unrolls (a
        // loop to `nr` was a third of a 7 x 7 x 7 product).
        for (j, &x) in buf[..NRV * V::LANES].iter().enumerate() {
            if j < nr {
                // SAFETY: (i, j) is inside the mr x nr tile.
                unsafe {
                    let p = c.add(i * ldc + j);
                    *p = if beta == V::Elem::zero() {
                        x
                    } else {
                        x + beta * *p
                    };
                }
            }
        }
    }
}

macro_rules! gemm_kernel {
    ($(#[$doc:meta])* $name:ident, $t:ty, $v:ty, mr = $mr:expr, nrv = $nrv:expr,
     mc = $mc:expr, kc = $kc:expr, nc = $nc:expr $(, target_feature = $tf:literal)?) => {
        $(#[$doc])*
        pub(super) struct $name;

        // The frame steps through blocks of MC rows and NC columns in whole tiles.
        const _: () = assert!(
            $mc % $mr == 0 && $nc % ($nrv * <$v as Vector>::LANES) == 0,
            "MC and NC must be multiples of MR and NR"
        );

        impl GemmKernel<$t> for $name {
            const MR: usize = $mr;
            const NR: usize = $nrv * <$v as Vector>::LANES;
            const MC: usize = $mc;
            const KC: usize = $kc;
            const NC: usize = $nc;
            unsafe fn run<A: ASource>(args: &MacroArgs<$t>, a_src: A) {
                $(#[target_feature(enable = $tf)])?
                unsafe fn body<A: ASource>(args: &MacroArgs<$t>, a_src: A) {
                    // SAFETY: forwarded from `run`'s contract.
                    unsafe { macro_kernel::<$v, A, $mr, $nrv>(args, a_src) }
                }
                // SAFETY: `run`'s contract; for the AVX2 (AVX-512) kernels, the frame only
                // selects them when the CPU has AVX2 and FMA (and AVX-512 F and DQ), as
                // `Isa::supported` checked.
                unsafe { body(args, a_src) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
gemm_kernel!(
    /// f32, 6 x 16 tile (12 ymm accumulators), AVX2+FMA.
    F32Gemm6x16Avx2Fma, f32, crate::simd::F32x8Avx2, mr = 6, nrv = 2,
    mc = 144, kc = 384, nc = 4080, target_feature = "avx2,fma"
);
#[cfg(target_arch = "x86_64")]
gemm_kernel!(
    /// f32, 8 x 32 tile (16 zmm accumulators), AVX-512: each depth is two B loads and
    /// sixteen FMAs that broadcast A from memory. Zen 5 issues two zmm FMAs per cycle with
    /// four cycles of latency, so eight chains in flight are the bare minimum: the 8 x 16
    /// tile (8 accumulators) ran sq1024 at 189-197 GFLOP/s on one thread, this one at
    /// 213-220, of a 234 peak (16 independent FMA chains, measured on the same core); 16 x 16
    /// (one B load, 16 broadcasts) 193-201, 12 x 32 199-214. On Zen 4 (one zmm FMA per
    /// cycle) the extra chains cost nothing. The 4-, 2- and 1-row edge pieces keep 8, 4 and
    /// 2 chains.
    F32Gemm8x32Avx512, f32, crate::simd::F32x16Avx512, mr = 8, nrv = 2,
    mc = 144, kc = 384, nc = 4064, target_feature = "avx512f,avx512dq,avx2,fma"
);
#[cfg(target_arch = "x86_64")]
gemm_kernel!(
    /// f32, 12 x 8 tile (12 ymm accumulators), AVX2+FMA: for products at most 8 columns
    /// wide (tall-skinny), where a 16-column tile would compute half zeros.
    F32Gemm12x8Avx2Fma, f32, crate::simd::F32x8Avx2, mr = 12, nrv = 1,
    mc = 144, kc = 384, nc = 4080, target_feature = "avx2,fma"
);
#[cfg(target_arch = "x86_64")]
gemm_kernel!(
    /// f64, 6 x 8 tile (12 ymm accumulators), AVX2+FMA.
    F64Gemm6x8Avx2Fma, f64, crate::simd::F64x4Avx2, mr = 6, nrv = 2,
    mc = 72, kc = 256, nc = 4080, target_feature = "avx2,fma"
);
gemm_kernel!(
    /// f32, 4 x 8 tile, `wide` (SSE2 on baseline x86-64, NEON on aarch64).
    F32Gemm4x8Wide, f32, crate::simd::F32x8Wide, mr = 4, nrv = 1,
    mc = 128, kc = 256, nc = 4096
);
gemm_kernel!(
    /// f64, 4 x 4 tile, `wide`.
    F64Gemm4x4Wide, f64, crate::simd::F64x4Wide, mr = 4, nrv = 1,
    mc = 64, kc = 256, nc = 4096
);
gemm_kernel!(
    /// f32, 4 x 4 tile, scalar.
    F32Gemm4x4Scalar, f32, f32, mr = 4, nrv = 4, mc = 128, kc = 256, nc = 4096
);
gemm_kernel!(
    /// f64, 4 x 4 tile, scalar.
    F64Gemm4x4Scalar, f64, f64, mr = 4, nrv = 4, mc = 64, kc = 256, nc = 4096
);
