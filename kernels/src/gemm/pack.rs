//! Packing: copies a block of op(A) into MR-row panels and a block of op(B) into NR-column
//! panels, contiguous in the order the micro-kernel reads them, zero-filling the edges so the
//! micro-kernel always computes full tiles. Transposes and leading dimensions are absorbed here.
//!
//! Both layouts are "R lines interleaved": element `(line i, depth p)` goes to `p * R + i`.
//! A line is contiguous in memory for A not transposed and B transposed (an interleaving
//! transpose, `interleave`), and strided for the other two (a row copy, `copy_lines`). Both are
//! monomorphised per R so the inner loop unrolls; they are hot for small and skinny products,
//! where packing costs as much as the arithmetic.

use super::Transpose;
use crate::simd::in_vector_context;
use num_traits::Float;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A stored operand: `data` with row stride `ld`, used as stored or transposed.
#[derive(Clone, Copy)]
pub(super) struct Operand<'a, T> {
    pub data: &'a [T],
    pub ld: usize,
    pub trans: Transpose,
    /// Whether packing may use the AVX2 transposes (the call runs the AVX2 path).
    pub simd: bool,
    /// Rows placed by a table instead of `ld` (see [`Gather`]).
    pub gather: Option<Gather<'a>>,
}

/// A stored matrix read through a row table, so that it need not exist in memory:
/// convolution's implicit im2col (rows are kernel taps, column segments are images).
///
/// Stored row `i` starts at `data[row[i]]`. Its columns come in segments of `seg_len`
/// columns, segment `s` starting `s * seg_stride` after the row start; the first `seg_valid`
/// columns of a segment are read, the rest are zero and never read. Within a segment, column
/// `local` is at `local` (`line = None`), or, with `line = Some((len, used))`, the segment's
/// columns are the first `used` of each line of `len` stored ones, packed densely: column
/// `local` is at `local / used * len + local % used` (convolution's output rows, skipping
/// the columns past the output width). So stored element `(i, j)` is
/// `data[row[i] + (j / seg_len) * seg_stride + at(j % seg_len)]` when `j % seg_len < seg_valid`.
///
/// With `seg_off`, segment `s` starts at `seg_off[s]` instead of `s * seg_stride`.
///
/// A column panel inside one segment packs with fixed-size copies, one across a segment
/// boundary with two short ones. Packing honours `line` on the fast path only where stored
/// rows are read as lines (B transposed); other layouts take an element-by-element path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gather<'a> {
    pub row: &'a [usize],
    pub seg_len: usize,
    pub seg_valid: usize,
    pub seg_stride: usize,
    pub line: Option<(usize, usize)>,
    /// Segment starts from a table instead (`seg_off[s]`, `seg_stride` unused): the kernel
    /// taps of a channels-last image (see `conv/wide.rs`, `backward_weight`).
    pub seg_off: Option<&'a [usize]>,
}

impl Gather<'_> {
    /// Where a segment's column `local` is, from the segment start.
    #[inline]
    fn at(&self, local: usize) -> usize {
        match self.line {
            Some((len, used)) => local / used * len + local % used,
            None => local,
        }
    }

    /// Where column `j` of a row is, from the row start, and its position in its segment.
    #[inline]
    pub(super) fn offset(&self, j: usize) -> (usize, usize) {
        let (seg, local) = (j / self.seg_len, j % self.seg_len);
        (self.seg_start(seg) + self.at(local), local)
    }

    /// Where segment `seg` starts, from the row start.
    #[inline]
    pub(crate) fn seg_start(&self, seg: usize) -> usize {
        match self.seg_off {
            Some(t) => t[seg],
            None => seg * self.seg_stride,
        }
    }

    /// Elements from a segment's start that its first `cols` (valid) columns span.
    pub(crate) fn span(&self, cols: usize) -> usize {
        if cols == 0 {
            0
        } else {
            self.at(cols - 1) + 1
        }
    }

    /// From position `local` of a segment, at most `max` columns: how many are read and
    /// contiguous (`valid`), and how long the run of the same kind is (`valid`, or a run of
    /// zeros).
    #[inline]
    fn run(&self, local: usize, max: usize) -> (usize, usize) {
        if local >= self.seg_valid {
            return (0, (self.seg_len - local).min(max));
        }
        let valid = (self.seg_valid - local).min(max);
        let valid = self
            .line
            .map_or(valid, |(_, used)| valid.min(used - local % used));
        (valid, valid)
    }

    /// Element `(i, j)` of the stored matrix.
    fn get<T: Float>(&self, data: &[T], i: usize, j: usize) -> T {
        let (off, local) = self.offset(j);
        if local < self.seg_valid {
            data[self.row[i] + off]
        } else {
            T::zero()
        }
    }
}

/// Element types with an optional SIMD interleave.
pub(super) trait PackElem: Float {
    /// Interleaves a full panel of lines (`rows[i]` is line `i`, `r = rows.len()`) with SIMD
    /// transposes when this type, `r` and the CPU allow it; returns false (having written
    /// nothing) otherwise.
    ///
    /// # Safety
    /// `rows[i]` is valid for `kc` reads; `out.len() == kc * rows.len()`.
    unsafe fn interleave_simd(_rows: &[*const Self], _kc: usize, _out: &mut [Self]) -> bool {
        false
    }
}

impl PackElem for f64 {}

impl PackElem for f32 {
    unsafe fn interleave_simd(rows: &[*const f32], kc: usize, out: &mut [f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if matches!(rows.len(), 6 | 8 | 12 | 16 | 32) && crate::simd::Isa::Avx2.supported() {
            // SAFETY: AVX2 is available; the caller's contract covers the reads and
            // `out.len() == kc * r`.
            unsafe { avx2::interleave_f32(rows, kc, out.as_mut_ptr()) };
            return true;
        }
        let _ = (rows, kc, out);
        false
    }
}

/// Pointers to `n <= MAX_R` lines `ld` apart from `src` (the rest repeat `src`, unused).
///
/// # Safety
/// `src + i * ld` is in bounds of one allocation for `i < n`.
#[inline(always)]
unsafe fn line_ptrs<T>(src: *const T, ld: usize, n: usize) -> [*const T; MAX_R] {
    let mut rows = [src; MAX_R];
    for (i, row) in rows.iter_mut().enumerate().take(n) {
        *row = unsafe { src.add(i * ld) };
    }
    rows
}

/// Packs `op(A)[row0..row0+mc, col0..col0+kc]` into `ceil(mc / mr)` panels of `kc * mr`.
pub(super) fn pack_a<T: PackElem>(
    a: Operand<'_, T>,
    mr: usize,
    row0: usize,
    mc: usize,
    col0: usize,
    kc: usize,
    out: &mut [T],
) {
    // Line i of op(A) is row i: contiguous in memory unless A is stored transposed.
    let contiguous = a.trans == Transpose::No;
    pack(a, Block::new(contiguous, mr, (row0, mc), (col0, kc)), out)
}

/// Packs `op(B)[row0..row0+kc, col0..col0+nc]` into `ceil(nc / nr)` panels of `kc * nr`.
pub(super) fn pack_b<T: PackElem>(
    b: Operand<'_, T>,
    nr: usize,
    row0: usize,
    kc: usize,
    col0: usize,
    nc: usize,
    out: &mut [T],
) {
    // Line j of op(B) is column j: contiguous in memory only if B is stored transposed.
    let contiguous = b.trans == Transpose::Yes;
    pack(b, Block::new(contiguous, nr, (col0, nc), (row0, kc)), out)
}

/// A block to pack: lines `line0..line0+lines` at depths `depth0..depth0+kc`, into panels of
/// `r` lines. `contiguous`: line `i` depth `p` is at `(line0+i)*ld + depth0+p`; else at
/// `(depth0+p)*ld + line0+i`.
#[derive(Clone, Copy)]
struct Block {
    contiguous: bool,
    r: usize,
    line0: usize,
    lines: usize,
    depth0: usize,
    kc: usize,
}

impl Block {
    fn new(contiguous: bool, r: usize, lines: (usize, usize), depths: (usize, usize)) -> Self {
        Block {
            contiguous,
            r,
            line0: lines.0,
            lines: lines.1,
            depth0: depths.0,
            kc: depths.1,
        }
    }
}

/// Packs a block (see [`Block`]).
fn pack<T: PackElem>(x: Operand<'_, T>, b: Block, out: &mut [T]) {
    let Block {
        contiguous,
        r,
        line0,
        lines,
        depth0,
        kc,
    } = b;
    let panels = lines.div_ceil(r);
    assert!(out.len() >= panels * kc * r, "pack buffer too small");
    if let Some(g) = x.gather {
        return pack_gathered(x, g, b, out);
    }
    // The last element the block addresses must be inside the slice (the caller validated the
    // whole operand; this makes the unchecked reads below local to this function).
    if lines > 0 && kc > 0 {
        let last = if contiguous {
            (line0 + lines - 1) * x.ld + depth0 + kc - 1
        } else {
            (depth0 + kc - 1) * x.ld + line0 + lines - 1
        };
        assert!(last < x.data.len(), "pack source out of bounds");
    }
    if !contiguous {
        return pack_depth_major(x, b, out);
    }
    for q in 0..panels {
        let i0 = q * r;
        let n = r.min(lines - i0);
        let panel = &mut out[q * kc * r..(q + 1) * kc * r];
        // SAFETY: every read is inside the block checked above (lines i0..i0+n < lines,
        // depths < kc), every write inside `panel` (kc * r elements).
        unsafe {
            let src = x.data.as_ptr().add((line0 + i0) * x.ld + depth0);
            if n == r
                && r <= MAX_R
                && x.simd
                && T::interleave_simd(&line_ptrs(src, x.ld, r)[..r], kc, panel)
            {
                continue;
            }
            interleave_panel(src, x.ld, r, n, kc, panel);
        }
    }
}

/// The gathered layouts of [`pack`] (own function: see `interleave_panel`).
#[inline(never)]
fn pack_gathered<T: PackElem>(x: Operand<'_, T>, g: Gather<'_>, b: Block, out: &mut [T]) {
    in_vector_context(
        x.simd,
        #[inline(always)]
        || pack_gathered_body(x, g, b, out),
    )
}

#[inline(always)]
fn pack_gathered_body<T: PackElem>(x: Operand<'_, T>, g: Gather<'_>, b: Block, out: &mut [T]) {
    // Bounds were checked when the call was validated (`gemm_gather`); indexing is
    // checked here too.
    match (b.contiguous, b.r) {
        (false, 8) if g.line.is_some() => gather_cols_lines::<T, 8>(x.data, g, b, out),
        (false, 16) if g.line.is_some() => gather_cols_lines::<T, 16>(x.data, g, b, out),
        (false, 32) if g.line.is_some() => gather_cols_lines::<T, 32>(x.data, g, b, out),
        (false, _) if g.line.is_some() => gather_any(x.data, g, b, out),
        (false, 4) => gather_cols::<T, 4>(x.data, g, b, out),
        (false, 6) => gather_cols::<T, 6>(x.data, g, b, out),
        (false, 8) => gather_cols::<T, 8>(x.data, g, b, out),
        (false, 16) => gather_cols::<T, 16>(x.data, g, b, out),
        (false, 32) => gather_cols::<T, 32>(x.data, g, b, out),
        (true, 1..=MAX_R) => gather_lines(x, g, b, out),
        _ => gather_any(x.data, g, b, out),
    }
}

/// The strided layouts of [`pack`]: line `i` depth `p` at `(depth0 + p) * ld + line0 + i`.
#[inline(never)]
fn pack_depth_major<T: PackElem>(x: Operand<'_, T>, b: Block, out: &mut [T]) {
    in_vector_context(
        x.simd,
        #[inline(always)]
        || pack_depth_major_body(x, b, out),
    )
}

#[inline(always)]
fn pack_depth_major_body<T: PackElem>(x: Operand<'_, T>, b: Block, out: &mut [T]) {
    let Block {
        r,
        line0,
        lines,
        depth0,
        kc,
        ..
    } = b;
    // Depth-major: each source row is read once, front to back, across all panels, so
    // the hardware prefetcher streams it (panel by panel would touch `kc` rows `ld` apart
    // for every 16 elements and wait on memory latency).
    match r {
        4 => copy_depth_major::<T, 4>(x, line0, lines, depth0, kc, out),
        6 => copy_depth_major::<T, 6>(x, line0, lines, depth0, kc, out),
        8 => copy_depth_major::<T, 8>(x, line0, lines, depth0, kc, out),
        12 => copy_depth_major::<T, 12>(x, line0, lines, depth0, kc, out),
        16 => copy_depth_major::<T, 16>(x, line0, lines, depth0, kc, out),
        32 => copy_depth_major::<T, 32>(x, line0, lines, depth0, kc, out),
        _ => {
            for p in 0..kc {
                let start = (depth0 + p) * x.ld + line0;
                for (q, src) in x.data[start..start + lines].chunks(r).enumerate() {
                    let dst = &mut out[q * kc * r + p * r..q * kc * r + (p + 1) * r];
                    dst[..src.len()].copy_from_slice(src);
                    dst[src.len()..].fill(T::zero());
                }
            }
        }
    }
}

/// One panel of `n <= r` lines without SIMD transposes. Not inlined: its five
/// instantiations inlined into `pack` made every call run through kilobytes of code, the
/// SIMD path's too (a 16 x 16 panel: 77 ns in `pack_b` for 25 ns of transposing).
///
/// # Safety
/// As [`interleave`].
#[inline(never)]
unsafe fn interleave_panel<T: Float>(
    src: *const T,
    ld: usize,
    r: usize,
    n: usize,
    kc: usize,
    panel: &mut [T],
) {
    // SAFETY: the caller's contract.
    unsafe {
        match r {
            4 => interleave::<T, 4>(src, ld, n, kc, panel),
            6 => interleave::<T, 6>(src, ld, n, kc, panel),
            8 => interleave::<T, 8>(src, ld, n, kc, panel),
            12 => interleave::<T, 12>(src, ld, n, kc, panel),
            16 => interleave::<T, 16>(src, ld, n, kc, panel),
            32 => interleave::<T, 32>(src, ld, n, kc, panel),
            _ => interleave_any(src, ld, r, n, kc, panel),
        }
    }
}

/// How many rows ahead the depth-major copy prefetches: rows `ld` apart (each a few lines
/// long) defeat the hardware prefetcher, and a B from L3 made packing a third of the time
/// of a 64-row product (mnist_c2_im2col at 1 thread: 74 GFLOP/s without, 83-91 with 4 to 8
/// rows ahead, measured alternately).
const PREFETCH_ROWS: usize = 6;

/// Widest panel any micro-kernel packs (the AVX-512 f32 tile is 32 columns wide).
const MAX_R: usize = 32;

/// The depth-major copy with a compile-time panel width, so full panels copy with fixed-size
/// moves (a run-time length becomes a `memmove` call per 16 elements).
#[inline(always)]
fn copy_depth_major<T: Float, const R: usize>(
    x: Operand<'_, T>,
    line0: usize,
    lines: usize,
    depth0: usize,
    kc: usize,
    out: &mut [T],
) {
    let full = lines / R;
    for p in 0..kc {
        let start = (depth0 + p) * x.ld + line0;
        let row = &x.data[start..start + lines];
        if p + PREFETCH_ROWS < kc {
            let next = x.data[start + PREFETCH_ROWS * x.ld..].as_ptr();
            let step = 64 / std::mem::size_of::<T>();
            for j in (0..lines + step).step_by(step) {
                crate::simd::prefetch(next.wrapping_add(j));
            }
        }
        for (q, src) in row.chunks_exact(R).enumerate() {
            let dst: &mut [T; R] = (&mut out[q * kc * R + p * R..q * kc * R + (p + 1) * R])
                .try_into()
                .expect("R elements");
            *dst = src.try_into().expect("R elements");
        }
        let rest = &row[full * R..];
        if !rest.is_empty() {
            let dst = &mut out[full * kc * R + p * R..full * kc * R + (p + 1) * R];
            // Element by element over the R lanes: a copy of run-time length is a `memmove`
            // call per depth, most of the packing time of a 7-column B.
            for (q, d) in dst.iter_mut().enumerate() {
                *d = rest.get(q).copied().unwrap_or(T::zero());
            }
        }
    }
}

/// Packs columns `line0..line0+lines` (panels of R) at rows `depth0..depth0+kc` of a gathered
/// matrix: per panel, one segment offset, then one fixed-size copy per row.
#[inline(always)]
fn gather_cols<T: Float, const R: usize>(data: &[T], g: Gather<'_>, b: Block, out: &mut [T]) {
    let Block {
        line0,
        lines,
        depth0,
        kc,
        ..
    } = b;
    let rows = &g.row[depth0..depth0 + kc];
    for (q, panel) in out
        .chunks_exact_mut(kc * R)
        .take(lines.div_ceil(R))
        .enumerate()
    {
        let j = line0 + q * R;
        let n = R.min(lines - q * R);
        let (off, local) = g.offset(j);
        // The panel's columns in this segment, and the rest from the start of the next one
        // (a panel crosses at most one boundary unless segments are narrower than it).
        let first = n.min(g.seg_len - local);
        let rest = n - first;
        if rest > g.seg_len {
            let one = Block {
                line0: j,
                lines: n,
                ..b
            };
            gather_any(data, g, one, panel);
            continue;
        }
        let v1 = first.min(g.seg_valid.saturating_sub(local));
        if v1 == R {
            for (dst, &row) in panel.chunks_exact_mut(R).zip(rows) {
                let dst: &mut [T; R] = dst.try_into().expect("R elements");
                *dst = data[row + off..row + off + R]
                    .try_into()
                    .expect("R elements");
            }
            continue;
        }
        let (off2, v2) = if rest > 0 {
            (g.offset(j + first).0, rest.min(g.seg_valid))
        } else {
            (0, 0)
        };
        // (Junk columns read nothing: their offsets may lie past the data.)
        for (dst, &row) in panel.chunks_exact_mut(R).zip(rows) {
            if v1 > 0 {
                dst[..v1].copy_from_slice(&data[row + off..row + off + v1]);
            }
            dst[v1..first].fill(T::zero());
            if v2 > 0 {
                dst[first..first + v2].copy_from_slice(&data[row + off2..row + off2 + v2]);
            }
            dst[first + v2..].fill(T::zero());
        }
    }
}

/// Packs columns of a gathered matrix with `line` (convolution's output positions, densely:
/// a panel of R columns is a few runs of at most `used` contiguous elements). Per panel the
/// runs are found once; then every row copies each run as a fixed-size block of R elements,
/// in order, so a run's overhang is overwritten by the next run, or by the next row (the
/// last row goes through a scratch row). A fixed-size copy is a few vector moves where a
/// run-time length would be a `memmove` call per run. Panels whose runs include junk
/// (zero) columns, whose over-reads could leave `data`, or that are partial take
/// [`gather_any`].
#[inline(always)]
fn gather_cols_lines<T: Float, const R: usize>(data: &[T], g: Gather<'_>, b: Block, out: &mut [T]) {
    let Block {
        line0,
        lines,
        depth0,
        kc,
        ..
    } = b;
    if kc == 0 {
        return;
    }
    let rows = &g.row[depth0..depth0 + kc];
    let max_row = rows.iter().copied().max().unwrap_or(0);
    for (q, panel) in out
        .chunks_exact_mut(kc * R)
        .take(lines.div_ceil(R))
        .enumerate()
    {
        let j = line0 + q * R;
        let n = R.min(lines - q * R);
        // Runs (start column in the panel, offset from the row start).
        let mut runs = [(0usize, 0usize); R];
        let (mut count, mut c, mut dense) = (0, 0, n == R);
        while dense && c < n {
            let (off, local) = g.offset(j + c);
            let (valid, piece) = g.run(local, n - c);
            dense = valid > 0 && max_row + off + R <= data.len();
            runs[count] = (c, off);
            count += 1;
            c += piece;
        }
        if !dense {
            let one = Block {
                line0: j,
                lines: n,
                ..b
            };
            gather_any(data, g, one, panel);
            continue;
        }
        let runs = &runs[..count];
        for (p, &row) in rows[..kc - 1].iter().enumerate() {
            for &(c, off) in runs {
                // p <= kc - 2 and c < R: the block ends inside the panel.
                let at = p * R + c;
                let dst: &mut [T; R] = (&mut panel[at..at + R]).try_into().expect("R elements");
                *dst = data[row + off..row + off + R]
                    .try_into()
                    .expect("R elements");
            }
        }
        let mut tmp = [T::zero(); 2 * MAX_R];
        let row = rows[kc - 1];
        for &(c, off) in runs {
            let dst: &mut [T; R] = (&mut tmp[c..c + R]).try_into().expect("R elements");
            *dst = data[row + off..row + off + R]
                .try_into()
                .expect("R elements");
        }
        panel[(kc - 1) * R..].copy_from_slice(&tmp[..R]);
    }
}

/// Packs lines that are stored rows of a gathered matrix (`r <= MAX_R`): per panel, the depth
/// range is walked segment piece by segment piece; each piece is a plain interleave of `n`
/// contiguous runs (SIMD transposes when available), junk depths are zero.
fn gather_lines<T: PackElem>(x: Operand<'_, T>, g: Gather<'_>, b: Block, out: &mut [T]) {
    for (q, panel) in out
        .chunks_exact_mut(b.kc * b.r)
        .take(b.lines.div_ceil(b.r))
        .enumerate()
    {
        let n = b.r.min(b.lines - q * b.r);
        let mut p = 0;
        while p < b.kc {
            let (off, local) = g.offset(b.depth0 + p);
            let (valid, piece) = g.run(local, b.kc - p);
            let dst = &mut panel[p * b.r..(p + piece) * b.r];
            if valid > 0 {
                let mut rows = [x.data.as_ptr(); MAX_R];
                for (i, row) in rows.iter_mut().enumerate().take(n) {
                    let start = g.row[b.line0 + q * b.r + i] + off;
                    *row = x.data[start..start + valid].as_ptr();
                }
                let head = &mut dst[..valid * b.r];
                // SAFETY: each of the first `n` pointers starts `valid` readable elements
                // (sliced above); `head` holds `valid * b.r` elements.
                unsafe {
                    if !(n == b.r && x.simd && T::interleave_simd(&rows[..b.r], valid, head)) {
                        interleave_rows(&rows[..n], b.r, valid, head);
                    }
                }
            }
            dst[valid * b.r..].fill(T::zero());
            p += piece;
        }
    }
}

/// `out[p * r + i] = rows[i][p]` for `i < rows.len()`, zero for the other lines up to `r`.
///
/// # Safety
/// `rows[i]` is valid for `kc` reads; `out.len() == kc * r`.
unsafe fn interleave_rows<T: Float>(rows: &[*const T], r: usize, kc: usize, out: &mut [T]) {
    for (p, dst) in out.chunks_exact_mut(r).enumerate().take(kc) {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: p < kc, i < rows.len() (caller's contract).
            *d = rows.get(i).map_or(T::zero(), |row| unsafe { *row.add(p) });
        }
    }
}

/// Any other gathered packing, element by element (panel widths without a fast path, panels
/// across segments, junk masks on stored columns): `contiguous` means line `i` is stored row
/// `i` (B transposed), else stored column `i`.
fn gather_any<T: Float>(data: &[T], g: Gather<'_>, b: Block, out: &mut [T]) {
    for (q, panel) in out
        .chunks_exact_mut(b.kc * b.r)
        .take(b.lines.div_ceil(b.r))
        .enumerate()
    {
        for (p, dst) in panel.chunks_exact_mut(b.r).enumerate() {
            for (i, d) in dst.iter_mut().enumerate() {
                let (line, depth) = (b.line0 + q * b.r + i, b.depth0 + p);
                *d = match (line < b.line0 + b.lines, b.contiguous) {
                    (false, _) => T::zero(),
                    (true, true) => g.get(data, line, depth),
                    (true, false) => g.get(data, depth, line),
                };
            }
        }
    }
}

/// `out[p * R + i] = src[i * ld + p]` for `i < n`, zero for `n <= i < R`.
///
/// # Safety
/// `src` is valid for reads at `i * ld + p` for `i < n`, `p < kc`; `out.len() == kc * R`.
#[inline(always)]
unsafe fn interleave<T: Float, const R: usize>(
    src: *const T,
    ld: usize,
    n: usize,
    kc: usize,
    out: &mut [T],
) {
    if n < R {
        return unsafe { interleave_any(src, ld, R, n, kc, out) };
    }
    let mut rows = [src; R];
    for (i, row) in rows.iter_mut().enumerate() {
        *row = unsafe { src.add(i * ld) };
    }
    for (p, dst) in out.chunks_exact_mut(R).enumerate().take(kc) {
        for i in 0..R {
            // SAFETY: p < kc and i < R = n (caller's contract).
            dst[i] = unsafe { *rows[i].add(p) };
        }
    }
}

/// `interleave` for any `r` and partial panels.
///
/// # Safety
/// As `interleave`, with `out.len() == kc * r`.
unsafe fn interleave_any<T: Float>(
    src: *const T,
    ld: usize,
    r: usize,
    n: usize,
    kc: usize,
    out: &mut [T],
) {
    for (p, dst) in out.chunks_exact_mut(r).enumerate().take(kc) {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: p < kc, i < n (caller's contract).
            *d = if i < n {
                unsafe { *src.add(i * ld + p) }
            } else {
                T::zero()
            };
        }
    }
}

/// Most buffers a thread keeps per cache (nested GEMM calls on one thread each hold one).
const POOL: usize = 4;

/// Runs `f` on a 64-byte-aligned scratch slice of `len` elements taken from this thread's
/// pool `tls`. Buffers grow to the largest size seen and are reused, so steady-state calls do
/// not allocate. A call that runs while another holds a buffer on the same thread (rayon
/// work-stealing while a GEMM called from a parallel task waits, as convolution does) takes
/// a second buffer, which is kept too: nesting does not allocate in the steady state either.
pub(super) fn with_scratch<T: Float, R>(
    tls: &'static LocalKey<RefCell<Vec<Vec<T>>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let pad = 64 / std::mem::size_of::<T>();
    let mut buf = tls.with(|pool| pool.borrow_mut().pop()).unwrap_or_default();
    if buf.len() < len + pad {
        buf.resize(len + pad, T::zero());
    }
    let offset = buf.as_ptr().align_offset(64).min(pad);
    let result = f(&mut buf[offset..offset + len]);
    tls.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL {
            pool.push(buf);
        }
    });
    result
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::simd::{load8x8, transpose8};
    use std::arch::x86_64::*;

    /// `out[p * r + i] = rows[i][p]` for `i < r = rows.len()`, `p < kc`, `r` in
    /// {6, 8, 12, 16, 32}: 8 x 8 blocks transposed in registers (eight loads, 24 shuffles, eight
    /// stores per 64 values, against 128 scalar moves). A short group of rows (`r = 6`, or
    /// the last four of 12) loads some rows twice and stores eight lanes; the extra lanes land
    /// on the next depth's first lanes, which are stored later: by the next depth of the
    /// same group (`r = 6`), or by an earlier group, hence the groups run last to first.
    ///
    /// # Safety
    /// AVX2 is available; `rows[i]` is valid for `kc` reads; `out` for `kc * r` writes.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn interleave_f32(src_rows: &[*const f32], kc: usize, out: *mut f32) {
        let r = src_rows.len();
        let full = kc / 8 * 8;
        for g in (0..r).step_by(8).rev() {
            let rows = (r - g).min(8);
            // Row pointers; missing rows (r = 6) repeat a valid row and are not stored.
            let mut ptr = [src_rows[g]; 8];
            for (i, p) in ptr.iter_mut().enumerate() {
                *p = src_rows[g + i.min(rows - 1)];
            }
            for p0 in (0..full).step_by(8) {
                // SAFETY: p0 + 8 <= kc, rows < r: inside the caller's block.
                let t = unsafe {
                    let at = |i: usize| ptr[i].add(p0);
                    transpose8(load8x8([
                        at(0),
                        at(1),
                        at(2),
                        at(3),
                        at(4),
                        at(5),
                        at(6),
                        at(7),
                    ]))
                };
                for (q, v) in t.iter().enumerate() {
                    let p = p0 + q;
                    // SAFETY: a full store writes (p * r + g)..+8, inside `out` when
                    // rows == 8 or p + 1 < kc (then its two extra lanes land on depth p + 1,
                    // which the next store overwrites, since depths are stored in order).
                    // The last depth of a short group goes through a buffer instead of
                    // `maskstore`, which is slow on AMD.
                    unsafe {
                        let dst = out.add(p * r + g);
                        if rows == 8 || p + 1 < kc {
                            _mm256_storeu_ps(dst, *v);
                        } else {
                            let mut buf = [0.0f32; 8];
                            _mm256_storeu_ps(buf.as_mut_ptr(), *v);
                            std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, rows);
                        }
                    }
                }
            }
            for p in full..kc {
                for (i, row) in ptr.iter().enumerate().take(rows) {
                    // SAFETY: p < kc, i < rows.
                    unsafe { *out.add(p * r + g + i) = *row.add(p) };
                }
            }
        }
    }
}
