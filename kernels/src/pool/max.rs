//! Native max pooling. The common 2x2 stride-2 unpadded case has its own loop over blocks of
//! 8 outputs: each output reads its four cells with branch-free selects, on fixed-size arrays
//! the compiler vectorises inside the ISA's target-feature function (`Vector` has no integer
//! lanes for the argmax nor strided loads), and its backward writes every `dx` cell once, with no separate zero
//! fill. Strides 1 and 2 with at least 8 outputs per row take the blocked loop of
//! `max_blocked.rs`; other shapes the general loop over clipped windows.

use super::reference::out_of_window;
use super::rowops::{block_starts, BLOCK};
use super::{for_planes, for_planes2, max_blocked, Pool2dParams};
use crate::error::KernelError;
use crate::simd::{dispatch, Isa, SimdFn, Vector};

/// Whether `p` is 2x2 windows with stride 2 and no padding.
fn is_2x2_s2(p: &Pool2dParams) -> bool {
    p.kernel() == [2, 2] && p.stride() == [2, 2] && p.padding() == [0, 0]
}

/// Forward over all planes (arguments already validated).
pub(super) fn forward(p: &Pool2dParams, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    let isa = Isa::active();
    let (inp, outp) = (p.in_plane(), p.out_plane());
    let work = inp + 2 * outp;
    let _ = for_planes2(
        p.planes(),
        work,
        (y, outp),
        (argmax, outp),
        |first, y, arg| {
            let x = &x[first * inp..];
            dispatch(isa, Forward { p, x, y, arg });
            Ok(())
        },
    );
}

/// Backward over all planes (arguments already validated).
pub(super) fn backward(
    p: &Pool2dParams,
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let isa = Isa::active();
    let (inp, outp) = (p.in_plane(), p.out_plane());
    for_planes(p.planes(), inp + 2 * outp, dx, inp, |first, dx| {
        let (dy, arg) = (&dy[first * outp..], &argmax[first * outp..]);
        dispatch(isa, Backward { p, dy, arg, dx })
    })
}

/// `(m, k)` updated with cell `v` at offset `at`: PyTorch's rule, greater or NaN wins.
#[inline(always)]
pub(super) fn take(m: f32, k: u32, v: f32, at: u32) -> (f32, u32) {
    // `|`, not `||`: no branch, so blocks of it vectorise.
    let wins = (v > m) | v.is_nan();
    (if wins { v } else { m }, if wins { at } else { k })
}

struct Forward<'a> {
    p: &'a Pool2dParams,
    x: &'a [f32],
    y: &'a mut [f32],
    arg: &'a mut [u32],
}

impl SimdFn<f32> for Forward<'_> {
    type Output = ();
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) {
        let p = self.p;
        let (inp, outp) = (p.in_plane(), p.out_plane());
        let planes = self
            .y
            .chunks_exact_mut(outp)
            .zip(self.arg.chunks_exact_mut(outp));
        let blocked = !is_2x2_s2(p) && max_blocked::applies(p);
        let mut buf = if blocked {
            Some(max_blocked::plane_buffer())
        } else {
            None
        };
        for (i, (y, arg)) in planes.enumerate() {
            let x = &self.x[i * inp..][..inp];
            if is_2x2_s2(p) {
                forward_2x2_s2(p, x, y, arg);
            } else if let Some(buf) = &mut buf {
                max_blocked::forward_plane::<V>(p, x, buf, y, arg);
            } else {
                forward_general(p, x, y, arg);
            }
        }
    }
}

/// One plane, 2x2 windows, stride 2, no padding.
#[inline(always)]
fn forward_2x2_s2(p: &Pool2dParams, x: &[f32], y: &mut [f32], arg: &mut [u32]) {
    let (w, ow) = (p.w, p.ow);
    let w32 = w as u32;
    for oh in 0..p.oh {
        let r0 = &x[2 * oh * w..][..2 * ow];
        let r1 = &x[(2 * oh + 1) * w..][..2 * ow];
        let y = &mut y[oh * ow..][..ow];
        let arg = &mut arg[oh * ow..][..ow];
        let base = (2 * oh * w) as u32;
        if ow < BLOCK {
            for j in 0..ow {
                let at = base + 2 * j as u32;
                let (top, bottom) = ([r0[2 * j], r0[2 * j + 1]], [r1[2 * j], r1[2 * j + 1]]);
                (y[j], arg[j]) = window_2x2(top, bottom, at, w32);
            }
            continue;
        }
        for j in block_starts(ow) {
            forward_block(
                (&r0[2 * j..][..2 * BLOCK])
                    .try_into()
                    .expect("2 * BLOCK cells"),
                (&r1[2 * j..][..2 * BLOCK])
                    .try_into()
                    .expect("2 * BLOCK cells"),
                (&mut y[j..][..BLOCK]).try_into().expect("BLOCK outputs"),
                (&mut arg[j..][..BLOCK]).try_into().expect("BLOCK outputs"),
                base + 2 * j as u32,
                w32,
            );
        }
    }
}

/// The maximum and argmax of one window, cells in scan order; `at` is the top-left offset.
#[inline(always)]
fn window_2x2(top: [f32; 2], bottom: [f32; 2], at: u32, w32: u32) -> (f32, u32) {
    let (m, k) = (top[0], at);
    let (m, k) = take(m, k, top[1], at + 1);
    let (m, k) = take(m, k, bottom[0], at + w32);
    take(m, k, bottom[1], at + w32 + 1)
}

/// `BLOCK` windows: fixed-size arrays, so the compiler turns the loop into vector code
/// (stride-2 loads become loads and shuffles, the comparisons selects).
#[inline(always)]
fn forward_block(
    r0: &[f32; 2 * BLOCK],
    r1: &[f32; 2 * BLOCK],
    y: &mut [f32; BLOCK],
    arg: &mut [u32; BLOCK],
    at: u32,
    w32: u32,
) {
    for j in 0..BLOCK {
        let top = [r0[2 * j], r0[2 * j + 1]];
        let bottom = [r1[2 * j], r1[2 * j + 1]];
        (y[j], arg[j]) = window_2x2(top, bottom, at + 2 * j as u32, w32);
    }
}

/// One plane, any window.
#[inline(always)]
fn forward_general(p: &Pool2dParams, x: &[f32], y: &mut [f32], arg: &mut [u32]) {
    for oh in 0..p.oh {
        let (h0, h1) = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let (mut m, mut k) = (f32::NEG_INFINITY, (h0 * p.w + w0) as u32);
            for ih in h0..h1 {
                let row = &x[ih * p.w..][w0..w1];
                for (iw, &v) in (w0..w1).zip(row) {
                    (m, k) = take(m, k, v, (ih * p.w + iw) as u32);
                }
            }
            y[oh * p.ow + ow] = m;
            arg[oh * p.ow + ow] = k;
        }
    }
}

struct Backward<'a> {
    p: &'a Pool2dParams,
    dy: &'a [f32],
    arg: &'a [u32],
    dx: &'a mut [f32],
}

impl SimdFn<f32> for Backward<'_> {
    type Output = Result<(), KernelError>;
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> Result<(), KernelError> {
        let p = self.p;
        let (inp, outp) = (p.in_plane(), p.out_plane());
        for (i, dx) in self.dx.chunks_exact_mut(inp).enumerate() {
            let (dy, arg) = (&self.dy[i * outp..][..outp], &self.arg[i * outp..][..outp]);
            if is_2x2_s2(p) {
                backward_2x2_s2(p, dy, arg, dx)?;
            } else {
                backward_general(p, dy, arg, dx)?;
            }
        }
        Ok(())
    }
}

/// One plane, 2x2 windows, stride 2, no padding: writes each `dx` cell once.
#[inline(always)]
fn backward_2x2_s2(
    p: &Pool2dParams,
    dy: &[f32],
    arg: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    let (w, ow) = (p.w, p.ow);
    let w32 = w as u32;
    let mut bad = false;
    for oh in 0..p.oh {
        let (r0, r1) = dx[2 * oh * w..][..2 * w].split_at_mut(w);
        let (r0, r1) = (&mut r0[..2 * ow], &mut r1[..2 * ow]);
        let dy = &dy[oh * ow..][..ow];
        let arg = &arg[oh * ow..][..ow];
        let base = (2 * oh * w) as u32;
        if ow < BLOCK {
            for j in 0..ow {
                let (top, bottom) = (&mut r0[2 * j..][..2], &mut r1[2 * j..][..2]);
                let at = base + 2 * j as u32;
                bad |= scatter_2x2(dy[j], arg[j], top, bottom, at, w32);
            }
            continue;
        }
        for j in block_starts(ow) {
            bad |= backward_block(
                (&dy[j..][..BLOCK]).try_into().expect("BLOCK outputs"),
                (&arg[j..][..BLOCK]).try_into().expect("BLOCK outputs"),
                (&mut r0[2 * j..][..2 * BLOCK])
                    .try_into()
                    .expect("2 * BLOCK cells"),
                (&mut r1[2 * j..][..2 * BLOCK])
                    .try_into()
                    .expect("2 * BLOCK cells"),
                base + 2 * j as u32,
                w32,
            );
        }
    }
    // An odd width leaves a last column no window covers.
    if w > 2 * ow {
        for row in dx[..2 * p.oh * w].chunks_exact_mut(w) {
            row[w - 1] = 0.0;
        }
    }
    // An odd height leaves a last row no window covers.
    dx[2 * p.oh * w..].fill(0.0);
    if bad {
        let corner = |o: usize| (2 * (o / ow) * w + 2 * (o % ow)) as u32;
        let first_bad = (0..dy.len())
            .map(|o| arg[o])
            .zip((0..dy.len()).map(corner))
            .find(|&(at, c)| at.wrapping_sub(c) > 1 && at.wrapping_sub(c + w32) > 1);
        return Err(out_of_window(first_bad.map_or(0, |(at, _)| at), p));
    }
    Ok(())
}

/// Writes one window's four `dx` cells: `g` at the argmax, 0 elsewhere. Returns whether the
/// argmax lies outside the window (`at` is its top-left offset).
#[inline(always)]
fn scatter_2x2(g: f32, arg: u32, top: &mut [f32], bottom: &mut [f32], at: u32, w32: u32) -> bool {
    // Position of the argmax in the window: 0, 1, w or w + 1.
    let k = arg.wrapping_sub(at);
    top[0] = if k == 0 { g } else { 0.0 };
    top[1] = if k == 1 { g } else { 0.0 };
    bottom[0] = if k == w32 { g } else { 0.0 };
    bottom[1] = if k == w32 + 1 { g } else { 0.0 };
    (k > 1) & (k.wrapping_sub(w32) > 1)
}

/// `BLOCK` windows of the backward (fixed sizes, vectorised like [`forward_block`]).
#[inline(always)]
fn backward_block(
    dy: &[f32; BLOCK],
    arg: &[u32; BLOCK],
    r0: &mut [f32; 2 * BLOCK],
    r1: &mut [f32; 2 * BLOCK],
    at: u32,
    w32: u32,
) -> bool {
    let mut bad = false;
    for j in 0..BLOCK {
        let (top, bottom) = (&mut r0[2 * j..2 * j + 2], &mut r1[2 * j..2 * j + 2]);
        bad |= scatter_2x2(dy[j], arg[j], top, bottom, at + 2 * j as u32, w32);
    }
    bad
}

/// One plane, any window: zero fill, then scatter in output order.
#[inline(always)]
fn backward_general(
    p: &Pool2dParams,
    dy: &[f32],
    arg: &[u32],
    dx: &mut [f32],
) -> Result<(), KernelError> {
    dx.fill(0.0);
    for oh in 0..p.oh {
        let (h0, h1) = p.rows(oh);
        for ow in 0..p.ow {
            let (w0, w1) = p.cols(ow);
            let o = oh * p.ow + ow;
            let at = arg[o] as usize;
            let (ih, iw) = (at / p.w, at % p.w);
            if ih < h0 || ih >= h1 || iw < w0 || iw >= w1 {
                return Err(out_of_window(arg[o], p));
            }
            dx[at] += dy[o];
        }
    }
    Ok(())
}
