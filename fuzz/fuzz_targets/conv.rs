//! Convolution: random descriptors (stride, asymmetric padding, dilation, groups, depthwise,
//! chunk and tile limits, batches for the batch-blocked path); forward, backward-data and backward-weight and the three
//! transposed-convolution passes on every path against the f64 reference, with the bounds of
//! `kernels/tests/conv.rs` (a dot product of `c/groups * r * s + 1`, `k/groups * r * s` and
//! `n * oh * ow` terms); wrong buffer lengths and bad descriptors fail.
#![no_main]

#[path = "../../kernels/tests/conv_common/winograd.rs"]
mod winograd_bound;

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::conv::*;
use nnkern_kernels::KernelError;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    // One input in four is a batch of 16 to 20 with 14 or 16 channels per group, shapes the
    // native batch-blocked path (`conv/blocked.rs`) takes (small planes, to fit `CAP`); one
    // in four has 28 or 32 output channels per group and enough input channels for a depth
    // of 32 at 3x3, shapes the direct paths with output channels in the vector lanes take
    // (`conv/kvec.rs`, `conv/kvec_grad.rs`); one in four has 28 or 32 input channels per
    // group, the backward-data with input channels in the lanes
    // (`conv/kvec_strided.rs`; also the transposed forward). 3x3 stride-1 shapes of the
    // first and third kinds with 16 or more channels per group both ways take the Winograd
    // path (`conv/winograd.rs`).
    let mode = inp.byte() % 4;
    let (blocked, kvec, kvec_in) = (mode == 0, mode == 1, mode == 2);
    let (n, groups) = if blocked {
        (inp.dim(4).saturating_add(16), inp.dim1(2))
    } else {
        (inp.dim(3), inp.dim1(3))
    };
    // (The direct paths with channels in the lanes take batches of 4 or more.)
    let (n, groups) = if kvec || kvec_in {
        (n.saturating_add(4), groups.min(2))
    } else {
        (n, groups)
    };
    let channels = |inp: &mut Input, out: bool| {
        let per_group = if blocked {
            [14, 16][inp.byte() as usize % 2]
        } else if kvec && out {
            [28, 32][inp.byte() as usize % 2]
        } else if kvec {
            inp.dim(3).saturating_add(4)
        } else if kvec_in && !out {
            [28, 32][inp.byte() as usize % 2]
        } else if kvec_in {
            inp.dim(8).saturating_add(8)
        } else {
            inp.dim1(3)
        };
        groups.saturating_mul(per_group)
    };
    let (c, k) = (channels(&mut inp, false), channels(&mut inp, true));
    let (c, k) = if inp.byte() == 255 {
        (c.wrapping_add(1), k)
    } else {
        (c, k)
    };
    let side = if blocked { 4 } else { 8 };
    let (h, w, r, s) = (inp.dim1(side), inp.dim1(side), inp.dim1(3), inp.dim1(3));
    let b = Conv2dParams::builder(n, c, h, w, k, r, s)
        .stride(inp.dim1(3), inp.dim1(3))
        .padding(inp.dim(2), inp.dim(2), inp.dim(2), inp.dim(2))
        .dilation(inp.dim1(2), inp.dim1(2))
        .groups(groups);
    let Ok(mut p) = b.build() else { return };
    match inp.byte() % 4 {
        1 => p = p.with_max_chunk(inp.dim(3)),
        2 => p = p.with_max_tile(inp.dim(20)),
        _ => {}
    }
    if inp.bool() {
        forward_passes(&mut inp, &p);
    } else {
        transposed_passes(&mut inp, &p);
    }
});

struct Bufs {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
    ws: usize,
    short: bool,
}

/// Buffers of the descriptor's sizes (x, w, dy, bias, ws), one perhaps off by one; tiny ones
/// (and `short`) when a size exceeds [`CAP`].
fn buffers(inp: &mut Input, lens: [usize; 5]) -> Bufs {
    let mut lens = lens;
    let mut short = false;
    for l in &mut lens {
        if *l > CAP {
            *l = 3;
            short = true;
        }
    }
    if let Some(i) = inp.perturb(5) {
        if i < 4 {
            lens[i] = off_by_one(lens[i]);
            short = true;
        } else if lens[4] > 0 {
            lens[4] -= 1;
            short = true;
        }
    }
    Bufs {
        x: inp.values(lens[0]),
        w: inp.values(lens[1]),
        dy: inp.values(lens[2]),
        b: inp.values(lens[3]),
        ws: lens[4],
        short,
    }
}

fn expect_err(r: Result<(), KernelError>, name: &str) {
    let e = r.expect_err(name);
    assert!(
        matches!(
            e,
            KernelError::BufferLength { .. } | KernelError::BufferTooShort { .. }
        ),
        "{name}: {e:?}"
    );
}

fn forward_passes(inp: &mut Input, p: &Conv2dParams) {
    let lens = [
        p.input_len(),
        p.weight_len(),
        p.output_len(),
        p.k(),
        p.workspace_len(),
    ];
    let Bufs {
        x,
        w,
        b,
        dy,
        ws,
        short,
    } = buffers(inp, lens);
    let mut wsb = vec![f32::NAN; ws];
    let with_bias = inp.bool();
    let bias = with_bias.then_some(&b[..]);
    if short {
        for_each_path(|backend, name| {
            let mut y = vec![0.0; p.output_len().min(CAP)];
            let mut dx = vec![0.0; p.input_len().min(CAP)];
            let mut dw = vec![0.0; p.weight_len().min(CAP)];
            let mut db = vec![0.0; b.len()];
            let y_ok = y.len() == p.output_len() && x.len() == p.input_len();
            let r = conv2d_forward(backend, p, &x, &w, bias, &mut y, &mut wsb);
            if !(y_ok && w.len() == p.weight_len() && ws >= p.workspace_len())
                || (with_bias && b.len() != p.k())
            {
                expect_err(r, name);
            }
            let r = conv2d_backward_data(backend, p, &dy, &w, &mut dx, &mut wsb);
            if !(dy.len() == p.output_len() && dx.len() == p.input_len())
                || w.len() != p.weight_len()
                || ws < p.workspace_len()
            {
                expect_err(r, name);
            }
            let dbias = with_bias.then_some(&mut db[..]);
            let r = conv2d_backward_weight(backend, p, &x, &dy, &mut dw, dbias, &mut wsb);
            if !(x.len() == p.input_len() && dy.len() == p.output_len())
                || dw.len() != p.weight_len()
                || ws < p.workspace_len()
                || (with_bias && b.len() != p.k())
            {
                expect_err(r, name);
            }
        });
        return;
    }
    let [nn, k, oh, ow] = p.output_shape();
    let finite = [&x, &w, &b, &dy]
        .iter()
        .all(|v| v.iter().all(|f| f.is_finite()));
    let cg = p.c() / p.groups();
    let (x64, w64, b64, dy64) = (f64s(&x), f64s(&w), f64s(&b), f64s(&dy));
    let (xa, wa, ba, dya) = (abs64(&x), abs64(&w), abs64(&b), abs64(&dy));
    let mut want_y = vec![0.0; p.output_len()];
    let mut mag_y = want_y.clone();
    conv2d_forward_reference(p, &x64, &w64, with_bias.then_some(&b64[..]), &mut want_y).unwrap();
    conv2d_forward_reference(p, &xa, &wa, with_bias.then_some(&ba[..]), &mut mag_y).unwrap();
    let mut want_dx = vec![0.0; p.input_len()];
    let mut mag_dx = want_dx.clone();
    conv2d_backward_data_reference(p, &dy64, &w64, &mut want_dx).unwrap();
    conv2d_backward_data_reference(p, &dya, &wa, &mut mag_dx).unwrap();
    // 3x3 stride-1 shapes may run on the Winograd path: its bound on top (folded into the
    // magnitudes for `assert_close`'s `2 (terms + 2) eps mag`).
    if let Some((ey, edx)) = winograd_bound::winograd_extra(p, &xa, &wa, &dya) {
        let (kg, rs) = (k / p.groups(), p.r() * p.s());
        for (mag, extra, terms) in [(&mut mag_y, ey, cg * rs + 1), (&mut mag_dx, edx, kg * rs)] {
            let scale = 2.0 * (terms as f64 + 2.0) * f32::EPSILON as f64;
            mag.iter_mut().zip(extra).for_each(|(m, e)| *m += e / scale);
        }
    }
    let (mut want_dw, mut mag_dw) = (vec![0.0; p.weight_len()], vec![0.0; p.weight_len()]);
    let (mut want_db, mut mag_db) = (vec![0.0; k], vec![0.0; k]);
    conv2d_backward_weight_reference(p, &x64, &dy64, &mut want_dw, Some(&mut want_db)).unwrap();
    conv2d_backward_weight_reference(p, &xa, &dya, &mut mag_dw, Some(&mut mag_db)).unwrap();
    for_each_path(|backend, name| {
        let mut y = vec![f32::NAN; p.output_len()];
        conv2d_forward(backend, p, &x, &w, bias, &mut y, &mut wsb).unwrap();
        close_if(
            finite,
            &format!("{name} y {p:?}"),
            &y,
            &want_y,
            &mag_y,
            cg * p.r() * p.s() + 1,
        );
        let mut dx = vec![f32::NAN; p.input_len()];
        conv2d_backward_data(backend, p, &dy, &w, &mut dx, &mut wsb).unwrap();
        let kg = k / p.groups();
        close_if(
            finite,
            &format!("{name} dx {p:?}"),
            &dx,
            &want_dx,
            &mag_dx,
            kg * p.r() * p.s(),
        );
        let mut dw = vec![f32::NAN; p.weight_len()];
        let mut db = vec![f32::NAN; k];
        let dbias = with_bias.then_some(&mut db[..]);
        conv2d_backward_weight(backend, p, &x, &dy, &mut dw, dbias, &mut wsb).unwrap();
        let terms = nn * oh * ow;
        close_if(
            finite,
            &format!("{name} dw {p:?}"),
            &dw,
            &want_dw,
            &mag_dw,
            terms,
        );
        if with_bias {
            close_if(
                finite,
                &format!("{name} db {p:?}"),
                &db,
                &want_db,
                &mag_db,
                terms,
            );
        }
    });
}

/// The transposed convolution of `p` (input `[n, k, oh, ow]`, output `[n, c, h, w]`), also
/// rebuilt through `ConvTranspose2dParams::new` when that describes the same shapes.
fn transposed_passes(inp: &mut Input, p: &Conv2dParams) {
    let t = ConvTranspose2dParams::from_conv(*p);
    let (st, pd, dl) = (p.stride(), p.padding(), p.dilation());
    let opad = (inp.below(st.0), inp.below(st.1));
    // Through PyTorch's arguments: must not panic; when it succeeds its output is at least
    // the one of `from_conv` minus the output padding.
    let _ = ConvTranspose2dParams::new(
        t.input_shape(),
        p.c(),
        (p.r(), p.s()),
        st,
        pd,
        dl,
        opad,
        p.groups(),
    );
    let (ilen, olen, wlen) = (p.output_len(), p.input_len(), p.weight_len());
    let Bufs {
        x,
        w,
        b,
        dy,
        ws,
        short,
    } = buffers(inp, [ilen, wlen, olen, p.c(), p.workspace_len()]);
    let mut wsb = vec![f32::NAN; ws];
    if short {
        for_each_path(|backend, name| {
            let mut y = vec![0.0; olen.min(CAP)];
            let mut dx = vec![0.0; ilen.min(CAP)];
            let mut dw = vec![0.0; wlen.min(CAP)];
            let mut db = vec![0.0; b.len()];
            let ok = y.len() == olen && x.len() == ilen && w.len() == wlen;
            let r = conv_transpose2d_forward(backend, &t, &x, &w, Some(&b), &mut y, &mut wsb);
            if !ok || b.len() != p.c() || ws < p.workspace_len() {
                expect_err(r, name);
            }
            let r = conv_transpose2d_backward_data(backend, &t, &dy, &w, &mut dx, &mut wsb);
            if !(dy.len() == olen && dx.len() == ilen && w.len() == wlen) || ws < p.workspace_len()
            {
                expect_err(r, name);
            }
            let r = conv_transpose2d_backward_weight(
                backend,
                &t,
                &x,
                &dy,
                &mut dw,
                Some(&mut db),
                &mut wsb,
            );
            if !(x.len() == ilen && dy.len() == olen && dw.len() == wlen)
                || b.len() != p.c()
                || ws < p.workspace_len()
            {
                expect_err(r, name);
            }
        });
        return;
    }
    let [nn, k, oh, ow] = p.output_shape();
    let finite = [&x, &w, &b, &dy]
        .iter()
        .all(|v| v.iter().all(|f| f.is_finite()));
    // Set NNKERN_FUZZ_DUMP to print a crashing input's descriptor and buffers.
    if std::env::var_os("NNKERN_FUZZ_DUMP").is_some() {
        eprintln!("DUMP {p:?}\nx={x:?}\nw={w:?}\nb={b:?}\ndy={dy:?}");
    }
    let (x64, w64, dy64) = (f64s(&x), f64s(&w), f64s(&dy));
    let (xa, wa, dya) = (abs64(&x), abs64(&w), abs64(&dy));
    let hw = p.h() * p.w();
    // y = backward_data(x) + bias.
    let mut want_y = vec![0.0; olen];
    let mut mag_y = want_y.clone();
    conv2d_backward_data_reference(p, &x64, &w64, &mut want_y).unwrap();
    conv2d_backward_data_reference(p, &xa, &wa, &mut mag_y).unwrap();
    for (i, (wy, my)) in want_y.iter_mut().zip(&mut mag_y).enumerate() {
        *wy += b[(i / hw) % p.c()] as f64;
        *my += (b[(i / hw) % p.c()] as f64).abs();
    }
    let mut want_dx = vec![0.0; ilen];
    let mut mag_dx = want_dx.clone();
    conv2d_forward_reference(p, &dy64, &w64, None, &mut want_dx).unwrap();
    conv2d_forward_reference(p, &dya, &wa, None, &mut mag_dx).unwrap();
    let (mut want_dw, mut mag_dw) = (vec![0.0; wlen], vec![0.0; wlen]);
    conv2d_backward_weight_reference(p, &dy64, &x64, &mut want_dw, None).unwrap();
    conv2d_backward_weight_reference(p, &dya, &xa, &mut mag_dw, None).unwrap();
    let (mut want_db, mut mag_db) = (vec![0.0; p.c()], vec![0.0; p.c()]);
    for (i, &v) in dy.iter().enumerate() {
        want_db[(i / hw) % p.c()] += v as f64;
        mag_db[(i / hw) % p.c()] += (v as f64).abs();
    }
    let (cg, kg) = (p.c() / p.groups(), k / p.groups());
    for_each_path(|backend, name| {
        let mut y = vec![f32::NAN; olen];
        conv_transpose2d_forward(backend, &t, &x, &w, Some(&b), &mut y, &mut wsb).unwrap();
        close_if(
            finite,
            &format!("{name} T y {p:?}"),
            &y,
            &want_y,
            &mag_y,
            kg * p.r() * p.s() + 1,
        );
        let mut dx = vec![f32::NAN; ilen];
        conv_transpose2d_backward_data(backend, &t, &dy, &w, &mut dx, &mut wsb).unwrap();
        close_if(
            finite,
            &format!("{name} T dx {p:?}"),
            &dx,
            &want_dx,
            &mag_dx,
            cg * p.r() * p.s(),
        );
        let mut dw = vec![f32::NAN; wlen];
        let mut db = vec![f32::NAN; p.c()];
        conv_transpose2d_backward_weight(backend, &t, &x, &dy, &mut dw, Some(&mut db), &mut wsb)
            .unwrap();
        close_if(
            finite,
            &format!("{name} T dw {p:?}"),
            &dw,
            &want_dw,
            &mag_dw,
            nn * oh * ow,
        );
        close_if(
            finite,
            &format!("{name} T db {p:?}"),
            &db,
            &want_db,
            &mag_db,
            nn * hw,
        );
    });
}

/// [`assert_close`] when every input is finite. With an infinite or NaN value the native
/// im2col path multiplies the zeros of the padding by it (`0 * inf = NaN`), where the
/// reference skips padded taps: documented in `nnkern_kernels::semantics`, not compared.
fn close_if(finite: bool, what: &str, got: &[f32], want: &[f64], mag: &[f64], terms: usize) {
    if finite {
        assert_close(what, got, want, mag, terms);
    }
}
