//! Native average pooling, separable. Forward: the window sums of an output row are a
//! vertical sum of the covered input rows (contiguous vector adds) into a zero-padded row
//! buffer, then a horizontal `kernel_w`-tap sum at every `stride_w`-th position, done in blocks
//! of 8 outputs whose strided reads the compiler turns into vector loads and shuffles, scaled
//! by precomputed reciprocals of the divisors. The vertical sums of several output rows are
//! written before any is read back, which keeps the reads clear of the store buffer.
//! Backward: the scaled gradients of one output row are placed at their windows' starts in a
//! zeroed row buffer, spread over `kernel_w` cells by shifted vector adds, and that row is
//! added into each covered `dx` row, so each `dx` cell sums its terms in a fixed order. Rows
//! wider than the stack buffers take the direct per-window loops.

use super::rowops::{add_into, block_starts, set_sum, BLOCK};
use super::{for_planes, Pool2dParams};
use crate::simd::{dispatch, Isa, SimdFn, Vector};

/// Longest padded row (`w + 2 * pad_w`) the separable path handles.
const ROW_MAX: usize = 1024;
/// Size of the forward's buffer of vertical sums (several rows).
const ROWS_BUF: usize = 4096;

/// The divisor of output `(oh, ow)`.
#[inline(always)]
fn divisor(p: &Pool2dParams, include_pad: bool, rows: (usize, usize), ow: usize) -> f32 {
    if include_pad {
        (p.kh * p.kw) as f32
    } else {
        let (w0, w1) = p.cols(ow);
        ((rows.1 - rows.0) * (w1 - w0)) as f32
    }
}

/// Forward over all planes (arguments already validated).
pub(super) fn forward(p: &Pool2dParams, include_pad: bool, x: &[f32], y: &mut [f32]) {
    let isa = Isa::active().for_row(p.ow);
    let (inp, outp) = (p.in_plane(), p.out_plane());
    let _ = for_planes(p.planes(), inp + outp, y, outp, |first, y| {
        let x = &x[first * inp..];
        dispatch(
            isa,
            Forward {
                p,
                include_pad,
                x,
                y,
            },
        );
        Ok(())
    });
}

/// Backward over all planes (arguments already validated).
pub(super) fn backward(p: &Pool2dParams, include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    let isa = Isa::active();
    let (inp, outp) = (p.in_plane(), p.out_plane());
    let _ = for_planes(p.planes(), inp + outp, dx, inp, |first, dx| {
        let dy = &dy[first * outp..];
        dispatch(
            isa,
            Backward {
                p,
                include_pad,
                dy,
                dx,
            },
        );
        Ok(())
    });
}

struct Forward<'a> {
    p: &'a Pool2dParams,
    include_pad: bool,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl SimdFn<f32> for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (p, inp, outp) = (self.p, self.p.in_plane(), self.p.out_plane());
        let padded = p.w + 2 * p.pw;
        // Output rows whose vertical sums fit the buffer at once.
        let group = ROWS_BUF / padded;
        let mut rows_buf = [0.0f32; ROWS_BUF];
        let mut scales = Scales::new();
        for (i, y) in self.y.chunks_exact_mut(outp).enumerate() {
            let x = &self.x[i * inp..][..inp];
            if padded > ROW_MAX {
                forward_direct(p, self.include_pad, x, y);
                continue;
            }
            for g0 in (0..p.oh).step_by(group) {
                let g1 = p.oh.min(g0 + group);
                // Vertical sums, each in the middle of its padded row (whose padding cells
                // are never written, so stay zero).
                for oh in g0..g1 {
                    let rows = p.rows(oh);
                    let mid = &mut rows_buf[(oh - g0) * padded + p.pw..][..p.w];
                    let first = &x[rows.0 * p.w..][..p.w];
                    let second: &[f32] = if rows.1 - rows.0 >= 2 {
                        &x[(rows.0 + 1) * p.w..][..p.w]
                    } else {
                        &[]
                    };
                    set_sum::<V>(mid, first, second);
                    for ih in rows.0 + 2..rows.1 {
                        add_into::<V>(mid, &x[ih * p.w..][..p.w]);
                    }
                }
                for oh in g0..g1 {
                    let row = &rows_buf[(oh - g0) * padded..][..padded];
                    let inv = scales.get(p, self.include_pad, p.rows(oh));
                    horizontal(p, row, inv, &mut y[oh * p.ow..][..p.ow]);
                }
            }
        }
    }
}

/// One output row from its padded vertical sums: `y[j] = inv[j] * sum_t row[j * sw + t]`.
#[inline(always)]
fn horizontal(p: &Pool2dParams, row: &[f32], inv: &[f32], y: &mut [f32]) {
    let (sw, kw) = (p.sw, p.kw);
    if y.len() >= BLOCK && (sw == 1 || sw == 2) {
        for j in block_starts(y.len()) {
            let inv = (&inv[j..][..BLOCK]).try_into().expect("BLOCK scales");
            let out = (&mut y[j..][..BLOCK]).try_into().expect("BLOCK outputs");
            // Literal kernel widths let the compiler unroll the common cases.
            match (sw, kw) {
                (1, 3) => horizontal_block::<1>(&row[j..], 3, inv, out),
                (1, _) => horizontal_block::<1>(&row[j..], kw, inv, out),
                (_, 2) => horizontal_block::<2>(&row[2 * j..], 2, inv, out),
                (_, 3) => horizontal_block::<2>(&row[2 * j..], 3, inv, out),
                _ => horizontal_block::<2>(&row[2 * j..], kw, inv, out),
            }
        }
        return;
    }
    for (j, (y, s)) in y.iter_mut().zip(inv).enumerate() {
        *y = row[j * sw..][..kw].iter().fold(0.0, |acc, &v| acc + v) * s;
    }
}

/// `BLOCK` outputs of [`horizontal`] with a constant stride, so that each tap is one strided
/// gather of `BLOCK` values the compiler turns into vector loads and shuffles.
#[inline(always)]
fn horizontal_block<const SW: usize>(
    row: &[f32],
    kw: usize,
    inv: &[f32; BLOCK],
    y: &mut [f32; BLOCK],
) {
    let mut acc = [0.0f32; BLOCK];
    for t in 0..kw {
        let taps = &row[t..][..SW * (BLOCK - 1) + 1];
        for (j, a) in acc.iter_mut().enumerate() {
            *a += taps[SW * j];
        }
    }
    for ((y, a), s) in y.iter_mut().zip(acc).zip(inv) {
        *y = a * s;
    }
}

/// `1 / divisor` of each output of a row, recomputed only when the row's count changes.
struct Scales {
    inv: [f32; ROW_MAX],
    /// Rows covered by the windows the scales are for (0: none yet).
    rows: usize,
}

impl Scales {
    #[inline(always)]
    fn new() -> Scales {
        Scales {
            inv: [0.0; ROW_MAX],
            rows: 0,
        }
    }

    /// The scales of the outputs of a row whose windows cover input rows `rows`.
    #[inline(always)]
    fn get(&mut self, p: &Pool2dParams, include_pad: bool, rows: (usize, usize)) -> &[f32] {
        let count = if include_pad { p.kh } else { rows.1 - rows.0 };
        if count != self.rows {
            self.rows = count;
            for (ow, s) in self.inv[..p.ow].iter_mut().enumerate() {
                *s = 1.0 / divisor(p, include_pad, rows, ow);
            }
        }
        &self.inv[..p.ow]
    }
}

/// One plane, direct window sums (rows too wide for the stack buffers).
#[inline(always)]
fn forward_direct(p: &Pool2dParams, include_pad: bool, x: &[f32], y: &mut [f32]) {
    for oh in 0..p.oh {
        let rows = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let sum = (rows.0..rows.1)
                .flat_map(|ih| &x[ih * p.w..][w0..w1])
                .fold(0.0f32, |s, &v| s + v);
            y[oh * p.ow + ow] = sum / divisor(p, include_pad, rows, ow);
        }
    }
}

struct Backward<'a> {
    p: &'a Pool2dParams,
    include_pad: bool,
    dy: &'a [f32],
    dx: &'a mut [f32],
}

impl SimdFn<f32> for Backward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let (p, inp, outp) = (self.p, self.p.in_plane(), self.p.out_plane());
        let padded = p.w + 2 * p.pw;
        let mut spikes = [0.0f32; ROW_MAX];
        let mut row = [0.0f32; ROW_MAX];
        let mut scales = Scales::new();
        for (i, dx) in self.dx.chunks_exact_mut(inp).enumerate() {
            let dy = &self.dy[i * outp..][..outp];
            set_sum::<V>(dx, &[], &[]);
            if padded > ROW_MAX {
                backward_direct(p, self.include_pad, dy, dx);
                continue;
            }
            let (spikes, row) = (&mut spikes[..padded], &mut row[..padded]);
            for (oh, dy) in dy.chunks_exact(p.ow).enumerate() {
                let rows = p.rows(oh);
                // Each scaled gradient at its window's start (the cells between stay zero)...
                let inv = scales.get(p, self.include_pad, rows);
                for (ow, (&g, &s)) in dy.iter().zip(inv).enumerate() {
                    spikes[ow * p.sw] = g * s;
                }
                // ...spread over the kw cells of its window: row[i] = sum_t spikes[i - t].
                set_sum::<V>(row, spikes, &[]);
                for t in 1..p.kw {
                    add_into::<V>(&mut row[t..], &spikes[..padded - t]);
                }
                let mid = &row[p.pw..p.pw + p.w];
                for ih in rows.0..rows.1 {
                    add_into::<V>(&mut dx[ih * p.w..][..p.w], mid);
                }
            }
        }
    }
}

/// One plane, direct scatter (rows too wide for the stack buffer); `dx` is zeroed.
#[inline(always)]
fn backward_direct(p: &Pool2dParams, include_pad: bool, dy: &[f32], dx: &mut [f32]) {
    for oh in 0..p.oh {
        let rows = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let g = dy[oh * p.ow + ow] / divisor(p, include_pad, rows, ow);
            for ih in rows.0..rows.1 {
                for d in &mut dx[ih * p.w..][w0..w1] {
                    *d += g;
                }
            }
        }
    }
}
