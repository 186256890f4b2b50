//! Convolution: every pass and backend against the f64 reference over random descriptors,
//! finite-difference checks of the reference gradients, transposed convolution against an
//! independent scatter formulation, every invalid descriptor, and bitwise determinism across
//! thread counts.

#[path = "conv_common/winograd.rs"]
mod winograd_bound;

use nnkern_kernels::conv::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{Backend, KernelError};
use proptest::prelude::*;
use winograd_bound::winograd_extra;

fn backends() -> Vec<Backend> {
    [Backend::Native, Backend::OpenBlas]
        .into_iter()
        .filter(|b| b.available())
        .collect()
}

fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn abs64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| (x as f64).abs()).collect()
}

/// `|got - want| <= (len + 1) * eps_f32 * mag + tiny` elementwise, where `mag` is the sum of
/// absolute terms (the reference run on absolute values) and `len` the reduction length: the
/// classic bound for a float sum of `len` products in any order.
fn assert_close(what: &str, got: &[f32], want: &[f64], mag: &[f64], len: usize) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let gamma = (len as f64 + 1.0) * f32::EPSILON as f64;
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let bound = gamma * m + 1e-30;
        assert!(
            (g as f64 - w).abs() <= bound,
            "{what}[{i}]: got {g}, want {w}, bound {bound}"
        );
    }
}

/// Random valid descriptors: groups (incl. depthwise), stride, asymmetric padding, dilation,
/// 1x1, non-square, batch 1, and a random chunk cap (several chunks per batch).
fn params() -> impl Strategy<Value = Conv2dParams> {
    (
        (
            1usize..4,
            1usize..4,
            1usize..4,
            0usize..3,
            1usize..4,
            1usize..40,
        ),
        (1usize..10, 1usize..40, 1usize..5, 1usize..5),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map("invalid shape", |(a, b, c, d)| {
            let (n, cg, kg, gsel, chunk, tile) = a;
            let (h, w, r, s) = b;
            let (sh, sw, dh, dw) = c;
            // gsel: 0 one group, 1 two groups, 2 depthwise.
            let (groups, cg, kg) = match gsel {
                0 => (1, cg, kg),
                1 => (2, cg, kg),
                _ => (cg + 1, 1, 1),
            };
            let p = Conv2dParams::builder(n, cg * groups, h, w, kg * groups, r, s)
                .stride(sh, sw)
                .padding(d.0, d.1, d.2, d.3)
                .dilation(dh, dw)
                .groups(groups)
                .build()
                .ok()?;
            Some(p.with_max_tile(tile).with_max_chunk(chunk))
        })
}

#[derive(Clone)]
struct Case {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

fn case(p: &Conv2dParams, seed: u64) -> Case {
    Case {
        x: data(p.input_len(), seed),
        w: data(p.weight_len(), seed + 1),
        b: data(p.k(), seed + 2),
        dy: data(p.output_len(), seed + 3),
    }
}

/// Runs all three passes of `backend` under the current ISA override.
fn run_passes(backend: Backend, p: &Conv2dParams, c: &Case) -> [Vec<f32>; 4] {
    let mut ws = vec![f32::NAN; p.workspace_len()];
    let mut y = vec![f32::NAN; p.output_len()];
    conv2d_forward(backend, p, &c.x, &c.w, Some(&c.b), &mut y, &mut ws).unwrap();
    let mut dx = vec![f32::NAN; p.input_len()];
    conv2d_backward_data(backend, p, &c.dy, &c.w, &mut dx, &mut ws).unwrap();
    let mut dw = vec![f32::NAN; p.weight_len()];
    let mut db = vec![f32::NAN; p.k()];
    conv2d_backward_weight(backend, p, &c.x, &c.dy, &mut dw, Some(&mut db), &mut ws).unwrap();
    [y, dx, dw, db]
}

/// `mag` with `extra` (an absolute bound) folded in for a bound of `(len + 1) eps mag`.
fn plus_extra(mag: &mut [f64], extra: Option<&Vec<f64>>, len: usize) {
    let scale = (len as f64 + 1.0) * f32::EPSILON as f64;
    for (m, e) in mag.iter_mut().zip(extra.into_iter().flatten()) {
        *m += e / scale;
    }
}

/// The reference results of a case and their error bounds' magnitudes, computed once for
/// every backend and ISA checked against them.
struct Expected {
    /// y, dx, dw, db: the f64 reference, the magnitudes, the reduction length.
    passes: [(Vec<f64>, Vec<f64>, usize); 4],
}

fn expected(p: &Conv2dParams, c: &Case) -> Expected {
    let (x, w, b, dy) = (f64s(&c.x), f64s(&c.w), f64s(&c.b), f64s(&c.dy));
    let (xa, wa, ba, dya) = (abs64(&c.x), abs64(&c.w), abs64(&c.b), abs64(&c.dy));
    let [n, k, oh, ow] = p.output_shape();
    let (cg, kg, rs) = (p.c() / p.groups(), k / p.groups(), p.r() * p.s());
    // 3x3 stride-1 shapes may run on the Winograd path: its bound on top.
    let extra = winograd_extra(p, &xa, &wa, &dya);
    let mut want_y = vec![0.0; p.output_len()];
    let mut mag_y = want_y.clone();
    conv2d_forward_reference(p, &x, &w, Some(&b), &mut want_y).unwrap();
    conv2d_forward_reference(p, &xa, &wa, Some(&ba), &mut mag_y).unwrap();
    plus_extra(&mut mag_y, extra.as_ref().map(|e| &e.0), cg * rs + 1);
    let mut want_dx = vec![0.0; p.input_len()];
    let mut mag_dx = want_dx.clone();
    conv2d_backward_data_reference(p, &dy, &w, &mut want_dx).unwrap();
    conv2d_backward_data_reference(p, &dya, &wa, &mut mag_dx).unwrap();
    plus_extra(&mut mag_dx, extra.as_ref().map(|e| &e.1), kg * rs);
    let (mut want_dw, mut mag_dw) = (vec![0.0; p.weight_len()], vec![0.0; p.weight_len()]);
    let (mut wb, mut mb) = (vec![0.0; k], vec![0.0; k]);
    conv2d_backward_weight_reference(p, &x, &dy, &mut want_dw, Some(&mut wb)).unwrap();
    conv2d_backward_weight_reference(p, &xa, &dya, &mut mag_dw, Some(&mut mb)).unwrap();
    Expected {
        passes: [
            (want_y, mag_y, cg * rs + 1),
            (want_dx, mag_dx, kg * rs),
            (want_dw, mag_dw, n * oh * ow),
            (wb, mb, n * oh * ow),
        ],
    }
}

fn check_expected(e: &Expected, got: &[Vec<f32>; 4], who: &str) {
    for (name, (got, (want, mag, len))) in ["y", "dx", "dw", "db"]
        .iter()
        .zip(got.iter().zip(&e.passes))
    {
        assert_close(&format!("{who} {name}"), got, want, mag, *len);
    }
}

/// The native backend's passes on every ISA against the reference.
fn native_matches_reference(p: &Conv2dParams, seed: u64) {
    let c = case(p, seed);
    let e = expected(p, &c);
    for isa in Isa::ALL {
        let got = with_isa(isa, || run_passes(Backend::Native, p, &c));
        check_expected(&e, &got, &format!("Native/{isa:?} {p:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn passes_match_reference(p in params(), seed in 0u64..1000) {
        let c = case(&p, seed);
        let e = expected(&p, &c);
        let got = run_passes(Backend::Reference, &p, &c);
        check_expected(&e, &got, "reference-f32");
        for backend in backends() {
            for isa in Isa::ALL {
                let got = with_isa(isa, || run_passes(backend, &p, &c));
                check_expected(&e, &got, &format!("{backend:?}/{isa:?} {p:?}"));
            }
        }
    }
}

/// Shapes deep enough (`c/groups * r * s >= 32`) for the native implicit-im2col path
/// (`conv/wide.rs`): strides (phase-split input), padding, dilation, groups, several images
/// per task, chunking; 16 or 24 channels per group for the channels-last weight gradient.
fn implicit_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (
            1usize..6,
            prop_oneof![4usize..9, Just(16), Just(24)],
            1usize..5,
            1usize..3,
            1usize..4,
        ),
        (
            1usize..14,
            1usize..14,
            1usize..4,
            1usize..4,
            1usize..3,
            1usize..3,
        ),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (1usize..4, 1usize..4),
    )
        .prop_filter_map("invalid shape", |(a, b, pad, stride)| {
            let (n, cg, kg, groups, chunk) = a;
            let (h, w, r, s, dh, dw) = b;
            if cg * r * s < 32 {
                return None;
            }
            let p = Conv2dParams::builder(n, cg * groups, h, w, kg * groups, r, s)
                .stride(stride.0, stride.1)
                .padding(pad.0, pad.1, pad.2, pad.3)
                .dilation(dh, dw)
                .groups(groups)
                .build()
                .ok()?;
            Some(p.with_max_chunk(chunk))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn implicit_im2col_matches_reference(p in implicit_params(), seed in 0u64..1000) {
        native_matches_reference(&p, seed);
    }
}

/// Output channels that fill blocks of 32 per group, for the direct path with output
/// channels in the vector lanes (`conv/kvec.rs`): column strides 1 and 2 (3 falls back),
/// padding (a column-padded copy), dilation, groups, rows of one to three tiles with
/// remainders, several waves; stride-1 "same" shapes also run backward-data through it.
fn kvec_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (4usize..7, 4usize..9, 0usize..3, 1usize..3, 1usize..5),
        (1usize..10, 1usize..36, 1usize..4, 1usize..4),
        (1usize..3, 1usize..4, 1usize..3, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map("invalid shape", |(a, b, st, pad)| {
            let (n, cg, ki, groups, chunk) = a;
            let kg = [28, 32, 64][ki];
            let (h, w, r, s) = b;
            if cg * r * s < 32 {
                return None;
            }
            let dims = [n, cg * groups, h, w, kg * groups, r, s];
            let p = descriptor(dims, (st.0, st.1), (st.2, st.3), pad, groups)?;
            Some(p.with_max_chunk(chunk))
        })
}

/// The descriptor `[n, c, h, w, k, r, s]` with these strides, dilations, padding
/// `(top, bottom, left, right)` and groups, if valid.
fn descriptor(
    [n, c, h, w, k, r, s]: [usize; 7],
    stride: (usize, usize),
    dilation: (usize, usize),
    pad: (usize, usize, usize, usize),
    groups: usize,
) -> Option<Conv2dParams> {
    Conv2dParams::builder(n, c, h, w, k, r, s)
        .stride(stride.0, stride.1)
        .dilation(dilation.0, dilation.1)
        .padding(pad.0, pad.1, pad.2, pad.3)
        .groups(groups)
        .build()
        .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn kvec_direct_matches_reference(p in kvec_params(), seed in 0u64..1000) {
        native_matches_reference(&p, seed);
    }
}

/// Shapes whose input channels fill blocks of 32 per group, for the direct backward-data
/// with input channels in the vector lanes (`conv/kvec_strided.rs`; stride-1 "same" shapes
/// take the adjoint first): column strides 1 to 3, row strides up to 3,
/// row dilation, padding (column phases whose first tap lies left of the image), groups,
/// rows of several tiles, several waves.
fn kvec_strided_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (4usize..7, 0usize..3, 1usize..12, 1usize..3, 1usize..5),
        (1usize..12, 3usize..40, 1usize..4, 0usize..3),
        (1usize..4, 1usize..4, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map("invalid shape", |(a, b, st, pad)| {
            let (n, ci, kg, groups, chunk) = a;
            let cg = [28, 32, 64][ci];
            let (h, w, r, extra) = b;
            let (sh, sw, dh) = st;
            // At least as many column taps as the column stride: every phase has taps.
            let s = sw + extra;
            if kg * r * s < 32 * sh * sw {
                return None;
            }
            let dims = [n, cg * groups, h, w, kg * groups, r, s];
            let p = descriptor(dims, (sh, sw), (dh, 1), pad, groups)?;
            Some(p.with_max_chunk(chunk))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn kvec_strided_backward_data_matches_reference(
        p in kvec_strided_params(),
        seed in 0u64..1000,
    ) {
        native_matches_reference(&p, seed);
    }
}

/// Batches of 16 to 40 whose channels fill the batch-blocked path's register tiles
/// (`conv/blocked.rs`: 14, 16, 28 or 32 per group): strides, padding, dilation, groups,
/// a last block with empty lanes, one block per wave.
fn blocked_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (16usize..40, 0usize..4, 0usize..4, 1usize..3, any::<bool>()),
        (1usize..7, 1usize..7, 1usize..4, 1usize..4),
        (1usize..3, 1usize..3, 1usize..3, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map("invalid shape", |(a, b, st, pad)| {
            let (n, ci, ki, groups, one_block) = a;
            let per_group = [14, 16, 28, 32];
            let (cg, kg) = (per_group[ci], per_group[ki]);
            let (h, w, r, s) = b;
            let p = Conv2dParams::builder(n, cg * groups, h, w, kg * groups, r, s)
                .stride(st.0, st.1)
                .dilation(st.2, st.3)
                .padding(pad.0, pad.1, pad.2, pad.3)
                .groups(groups)
                .build()
                .ok()?;
            Some(if one_block { p.with_max_chunk(16) } else { p })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn batch_blocked_matches_reference(p in blocked_params(), seed in 0u64..1000) {
        native_matches_reference(&p, seed);
    }
}

/// 3x3 stride-1 shapes with 16 or more channels per group, for the Winograd F(2x2, 3x3)
/// path (`conv/winograd.rs`, forward and backward-data): odd and even planes (tiles
/// overhanging the edges), padding 0 to 2 on each side (backward-data's adjoint padding),
/// groups, tasks that start and end inside tile rows, several tasks per slot.
fn winograd_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (1usize..6, 0usize..3, 0usize..3, 1usize..3, 1usize..5),
        (3usize..24, 3usize..24),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map("invalid shape", |(a, (h, w), pad)| {
            let (n, ci, ki, groups, chunk) = a;
            let per_group = [16, 30, 48];
            let (cg, kg) = (per_group[ci], per_group[ki]);
            let p = descriptor(
                [n, cg * groups, h, w, kg * groups, 3, 3],
                (1, 1),
                (1, 1),
                pad,
                groups,
            )?;
            Some(p.with_max_chunk(chunk))
        })
}

/// Small integers (-3..=3): every product and sum of the Winograd transforms (halves and
/// quarters of the weights included) is exact in f32, so the path must match the reference
/// bit for bit.
fn small_ints(len: usize, seed: u64) -> Vec<f32> {
    data(len, seed).iter().map(|v| (v * 3.49).round()).collect()
}

fn winograd_matches_exactly(p: &Conv2dParams, seed: u64) {
    let c = Case {
        x: small_ints(p.input_len(), seed),
        w: small_ints(p.weight_len(), seed + 1),
        b: small_ints(p.k(), seed + 2),
        dy: small_ints(p.output_len(), seed + 3),
    };
    let mut want_y = vec![0.0; p.output_len()];
    conv2d_forward_reference(p, &c.x, &c.w, Some(&c.b), &mut want_y).unwrap();
    let mut want_dx = vec![0.0; p.input_len()];
    conv2d_backward_data_reference(p, &c.dy, &c.w, &mut want_dx).unwrap();
    for isa in Isa::ALL {
        let got = with_isa(isa, || run_passes(Backend::Native, p, &c));
        assert_eq!(got[0], want_y, "{isa:?} y {p:?}");
        assert_eq!(got[1], want_dx, "{isa:?} dx {p:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn winograd_matches_reference(p in winograd_params(), seed in 0u64..1000) {
        winograd_matches_exactly(&p, seed);
        native_matches_reference(&p, seed);
    }
}

/// Tile counts whose last register tile is widened on AVX-512 (12 + 1 and 12 + 2 tiles):
/// backward-data of a 13x13 plane (49 tiles) and the forward of a 10x20 output (50 tiles).
#[test]
fn winograd_widened_last_tiles_match_exactly() {
    for (dims, seed) in [([2, 32, 13, 13, 32], 3), ([1, 16, 12, 22, 32], 4)] {
        let [n, c, h, w, k] = dims;
        let p = Conv2dParams::new(n, c, h, w, k, 3, 3).unwrap();
        winograd_matches_exactly(&p, seed);
    }
}

/// Winograd (`conv/winograd.rs`): a NaN input reaches exactly the outputs whose window holds
/// it, as in the plain sums, in both passes, though each tile's transform mixes its whole
/// 4x4 patch; an infinite one does no more than make those outputs non-finite.
#[test]
fn winograd_special_values_reach_only_their_window() {
    let p = Conv2dParams::builder(2, 16, 9, 10, 16, 3, 3)
        .padding(1, 0, 2, 1)
        .build()
        .unwrap();
    let c = case(&p, 5);
    for bad in [f32::NAN, f32::INFINITY] {
        for (pos, what) in [
            (1, "x"),
            (p.input_len() / 2 + 7, "x"),
            (13, "dy"),
            (p.output_len() - 30, "dy"),
        ] {
            let mut c = c.clone();
            let (got, want) = if what == "x" {
                c.x[pos] = bad;
                let mut want = vec![0.0; p.output_len()];
                conv2d_forward_reference(&p, &f64s(&c.x), &f64s(&c.w), None, &mut want).unwrap();
                (0, want)
            } else {
                c.dy[pos] = bad;
                let mut want = vec![0.0; p.input_len()];
                conv2d_backward_data_reference(&p, &f64s(&c.dy), &f64s(&c.w), &mut want).unwrap();
                (1, want)
            };
            for isa in Isa::ALL {
                let out = with_isa(isa, || run_passes(Backend::Native, &p, &c))[got].clone();
                for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                    if bad.is_nan() {
                        assert_eq!(
                            g.is_nan(),
                            w.is_nan(),
                            "{isa:?} {what}[{pos}] NaN: out[{i}] = {g}"
                        );
                    } else {
                        assert_eq!(
                            g.is_finite(),
                            w.is_finite(),
                            "{isa:?} {what}[{pos}] inf: out[{i}] = {g}"
                        );
                    }
                }
                assert!(want.iter().any(|v| !v.is_finite()) && want.iter().any(|v| v.is_finite()));
            }
        }
    }
}

/// Shallow, unpadded stride-1 shapes (`c * r * s <= 32`, output rows at least 16 wide) for
/// the native direct kernels (`conv/shallow.rs`): rows not a multiple of the vector width
/// (the overlapping last vector), odd channel counts, kernels up to 4x4.
fn shallow_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (1usize..4, 1usize..4, 1usize..7),
        (1usize..12, 16usize..45, 1usize..5, 1usize..5),
    )
        .prop_filter_map("not shallow", |((n, c, k), (h, w, r, s))| {
            if c * r * s > 32 || w + 1 < s + 16 {
                return None;
            }
            Conv2dParams::builder(n, c, h, w, k, r, s).build().ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shallow_direct_matches_reference(p in shallow_params(), seed in 0u64..1000) {
        native_matches_reference(&p, seed);
    }
}

/// Depthwise shapes for the padded-plane kernels (`conv/depthwise.rs`): strides per axis
/// (phase-split planes), asymmetric and odd padding, dilation, rows narrower than a vector
/// and rows of several vectors of column pairs,
/// and kernels past 64 taps (the stencil fallback of `direct.rs`).
fn depthwise_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (
            1usize..3,
            1usize..5,
            1usize..24,
            1usize..40,
            1usize..4,
            1usize..4,
        ),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3),
    )
        .prop_filter_map(
            "invalid shape",
            |((n, c, h, w, r, s), pad, (sh, sw, dh, dw))| {
                Conv2dParams::builder(n, c, h, w, c, r, s)
                    .stride(sh, sw)
                    .padding(pad.0, pad.1, pad.2, pad.3)
                    .dilation(dh, dw)
                    .groups(c)
                    .build()
                    .ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn depthwise_matches_reference(p in depthwise_params(), seed in 0u64..1000) {
        native_matches_reference(&p, seed);
    }
}

/// An infinite input element makes exactly the weight-gradient entries NaN or infinite that
/// the definition does: the implicit path's junk columns (which read real image elements)
/// must not add `inf * 0` anywhere else.
#[test]
fn infinite_input_reaches_only_its_taps() {
    let p = Conv2dParams::builder(2, 8, 7, 9, 4, 3, 3).build().unwrap();
    let mut c = case(&p, 3);
    // Column 8 of row 2 of channel 5: tap s = 0 never reads the last two columns.
    c.x[p.c() * p.h() * p.w() + 5 * p.h() * p.w() + 2 * p.w() + 8] = f32::INFINITY;
    let (x, dy) = (f64s(&c.x), f64s(&c.dy));
    let mut want = vec![0.0; p.weight_len()];
    conv2d_backward_weight_reference(&p, &x, &dy, &mut want, None).unwrap();
    for isa in Isa::ALL {
        let got = with_isa(isa, || run_passes(Backend::Native, &p, &c));
        for (i, (g, w)) in got[2].iter().zip(&want).enumerate() {
            assert_eq!(
                g.is_finite(),
                w.is_finite(),
                "{isa:?} dw[{i}] = {g}, want {w}"
            );
        }
        assert!(want.iter().any(|v| !v.is_finite()) && want.iter().any(|v| v.is_finite()));
    }
}

/// f64 central differences of `loss = sum(g * conv(x, w) + bias)` against the reference
/// backward passes, for every element of x, w and bias.
#[test]
fn reference_gradients_match_finite_differences() {
    let shapes = [
        Conv2dParams::builder(2, 4, 6, 5, 4, 3, 2)
            .stride(2, 1)
            .padding(1, 0, 2, 1)
            .dilation(1, 2)
            .groups(2),
        Conv2dParams::builder(1, 3, 5, 5, 3, 3, 3)
            .pad(1, 1)
            .groups(3),
        Conv2dParams::builder(2, 2, 4, 4, 3, 1, 1),
    ];
    for b in shapes {
        let p = b.build().unwrap();
        let c = case(&p, 7);
        let (x, w, bias, g) = (f64s(&c.x), f64s(&c.w), f64s(&c.b), f64s(&c.dy));
        let loss = |x: &[f64], w: &[f64], bias: &[f64]| {
            let mut y = vec![0.0; p.output_len()];
            conv2d_forward_reference(&p, x, w, Some(bias), &mut y).unwrap();
            y.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
        };
        let fd = |v: &[f64], which: usize| -> Vec<f64> {
            (0..v.len())
                .map(|i| {
                    let h = 1e-4;
                    let e = |d: f64| {
                        let mut t = v.to_vec();
                        t[i] += d;
                        match which {
                            0 => loss(&t, &w, &bias),
                            1 => loss(&x, &t, &bias),
                            _ => loss(&x, &w, &t),
                        }
                    };
                    (e(h) - e(-h)) / (2.0 * h)
                })
                .collect()
        };
        let mut dx = vec![0.0; x.len()];
        conv2d_backward_data_reference(&p, &g, &w, &mut dx).unwrap();
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; bias.len()]);
        conv2d_backward_weight_reference(&p, &x, &g, &mut dw, Some(&mut db)).unwrap();
        for (name, got, want) in [
            ("dx", dx, fd(&x, 0)),
            ("dw", dw, fd(&w, 1)),
            ("db", db, fd(&bias, 2)),
        ] {
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-7 * (1.0 + b.abs()),
                    "{name}[{i}] {a} vs {b} ({p:?})"
                );
            }
        }
    }
}

/// The transposed convolution by its definition (scatter), in f64: calls
/// `f(x_index, y_index, w_index)` for each contribution, in a fixed order.
fn transposed_taps(p: &ConvTranspose2dParams, mut f: impl FnMut(usize, usize, usize)) {
    let [n, cin, h, w] = p.input_shape();
    let [_, cout, oh, ow] = p.output_shape();
    let q = p.conv();
    let (g, (sh, sw), (dh, dw)) = (q.groups(), q.stride(), q.dilation());
    let (pt, _, pl, _) = q.padding();
    let (cin_g, cout_g) = (cin / g, cout / g);
    for b in 0..n {
        for ci in 0..cin {
            for i in 0..h {
                for j in 0..w {
                    for col in 0..cout_g {
                        let co = ci / cin_g * cout_g + col;
                        for r in 0..q.r() {
                            for s in 0..q.s() {
                                let oy = (i * sh + r * dh) as isize - pt as isize;
                                let ox = (j * sw + s * dw) as isize - pl as isize;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                let xi = ((b * cin + ci) * h + i) * w + j;
                                let yi = ((b * cout + co) * oh + oy as usize) * ow + ox as usize;
                                let wi = ((ci * cout_g + col) * q.r() + r) * q.s() + s;
                                f(xi, yi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The three transposed passes by definition, in f64 (with bias and its gradient).
fn transposed_reference(
    p: &ConvTranspose2dParams,
    x: &[f64],
    w: &[f64],
    b: &[f64],
    dy: &[f64],
) -> [Vec<f64>; 4] {
    let [_, cout, oh, ow] = p.output_shape();
    let mut y: Vec<f64> = (0..dy.len()).map(|i| b[i / (oh * ow) % cout]).collect();
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; cout]);
    transposed_taps(p, |xi, yi, wi| {
        y[yi] += x[xi] * w[wi];
        dx[xi] += dy[yi] * w[wi];
        dw[wi] += x[xi] * dy[yi];
    });
    for (i, v) in dy.iter().enumerate() {
        db[i / (oh * ow) % cout] += v;
    }
    [y, dx, dw, db]
}

fn transposed_params() -> impl Strategy<Value = ConvTranspose2dParams> {
    (
        (1usize..3, 1usize..4, 1usize..4, 1usize..3),
        (1usize..6, 1usize..6, 1usize..4, 1usize..4),
        (
            1usize..4,
            1usize..4,
            1usize..3,
            1usize..3,
            0usize..3,
            0usize..3,
        ),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map(
            "invalid",
            |((n, cig, cog, g), (h, w, r, s), (sh, sw, dh, dw, oph, opw), pad)| {
                ConvTranspose2dParams::new(
                    [n, cig * g, h, w],
                    cog * g,
                    (r, s),
                    (sh, sw),
                    pad,
                    (dh, dw),
                    (oph, opw),
                    g,
                )
                .ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn transposed_matches_definition(p in transposed_params(), seed in 0u64..1000) {
        let [n, cin, h, w] = p.input_shape();
        let [_, cout, oh, ow] = p.output_shape();
        let q = *p.conv();
        let (x, wt, b, dy) = (data(n * cin * h * w, seed), data(q.weight_len(), seed + 1), data(cout, seed + 2), data(n * cout * oh * ow, seed + 3));
        let want = transposed_reference(&p, &f64s(&x), &f64s(&wt), &f64s(&b), &f64s(&dy));
        let mag = transposed_reference(&p, &abs64(&x), &abs64(&wt), &abs64(&b), &abs64(&dy));
        let rs = q.r() * q.s();
        let lens = [cin / q.groups() * rs + 1, cout / q.groups() * rs, n * h * w, n * oh * ow];
        for backend in [Backend::Reference].into_iter().chain(backends()) {
            let mut ws = vec![f32::NAN; p.workspace_len()];
            let mut got = [vec![f32::NAN; dy.len()], vec![f32::NAN; x.len()], vec![f32::NAN; wt.len()], vec![f32::NAN; cout]];
            conv_transpose2d_forward(backend, &p, &x, &wt, Some(&b), &mut got[0], &mut ws).unwrap();
            conv_transpose2d_backward_data(backend, &p, &dy, &wt, &mut got[1], &mut ws).unwrap();
            let [_, _, dw, db] = &mut got;
            conv_transpose2d_backward_weight(backend, &p, &x, &dy, dw, Some(db), &mut ws).unwrap();
            for (i, name) in ["y", "dx", "dw", "db"].iter().enumerate() {
                assert_close(&format!("{backend:?} transposed {name} {p:?}"), &got[i], &want[i], &mag[i], lens[i]);
            }
        }
    }
}

/// f64 finite differences of the transposed definition's gradients (so the formulas the
/// property test trusts are themselves checked).
#[test]
fn transposed_reference_gradients_match_finite_differences() {
    let p = ConvTranspose2dParams::new(
        [2, 4, 3, 4],
        2,
        (3, 2),
        (2, 1),
        (1, 0, 0, 1),
        (1, 2),
        (1, 0),
        2,
    )
    .unwrap();
    let [n, cin, h, w] = p.input_shape();
    let [_, cout, oh, ow] = p.output_shape();
    let (x, wt, b, g) = (
        f64s(&data(n * cin * h * w, 1)),
        f64s(&data(p.conv().weight_len(), 2)),
        f64s(&data(cout, 3)),
        f64s(&data(n * cout * oh * ow, 4)),
    );
    let [_, dx, dw, db] = transposed_reference(&p, &x, &wt, &b, &g);
    let loss = |x: &[f64], wt: &[f64], b: &[f64]| {
        let [y, ..] = transposed_reference(&p, x, wt, b, &g);
        y.iter().zip(&g).map(|(a, c)| a * c).sum::<f64>()
    };
    let h = 1e-4;
    for (name, grad, which) in [("dx", &dx, 0), ("dw", &dw, 1), ("db", &db, 2)] {
        for i in 0..grad.len() {
            let e = |d: f64| {
                let (mut x2, mut w2, mut b2) = (x.clone(), wt.clone(), b.clone());
                [&mut x2, &mut w2, &mut b2][which][i] += d;
                loss(&x2, &w2, &b2)
            };
            let fd = (e(h) - e(-h)) / (2.0 * h);
            assert!(
                (grad[i] - fd).abs() <= 1e-7 * (1.0 + fd.abs()),
                "{name}[{i}]: {} vs {fd}",
                grad[i]
            );
        }
    }
}

fn err_arg(e: KernelError) -> &'static str {
    match e {
        KernelError::InvalidParam { arg, .. }
        | KernelError::Overflow { arg }
        | KernelError::BufferLength { arg, .. }
        | KernelError::BufferTooShort { arg, .. } => arg,
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn invalid_descriptors_name_their_argument() {
    let b = || Conv2dParams::builder(2, 4, 8, 8, 6, 3, 3);
    let cases: Vec<(Conv2dBuilder, &str)> = vec![
        (Conv2dParams::builder(2, 0, 8, 8, 6, 3, 3), "c"),
        (Conv2dParams::builder(2, 4, 0, 8, 6, 3, 3), "h"),
        (Conv2dParams::builder(2, 4, 8, 0, 6, 3, 3), "w"),
        (Conv2dParams::builder(2, 4, 8, 8, 0, 3, 3), "k"),
        (Conv2dParams::builder(2, 4, 8, 8, 6, 0, 3), "r"),
        (Conv2dParams::builder(2, 4, 8, 8, 6, 3, 0), "s"),
        (b().stride(0, 1), "stride_h"),
        (b().stride(1, 0), "stride_w"),
        (b().dilation(0, 1), "dilation_h"),
        (b().dilation(1, 0), "dilation_w"),
        (b().groups(0), "groups"),
        (b().groups(3), "c"),
        (b().groups(4), "k"),
        (Conv2dParams::builder(1, 1, 2, 8, 1, 3, 3), "r"),
        (Conv2dParams::builder(1, 1, 8, 2, 1, 3, 3), "s"),
        (b().dilation(4, 1), "r"),
        (b().padding(0, 0, 0, 0).dilation(1, 5), "s"),
        (Conv2dParams::builder(usize::MAX / 2, 4, 8, 8, 6, 3, 3), "x"),
        (
            Conv2dParams::builder(1, 1, usize::MAX, 1, 1, 1, 1).pad(1, 0),
            "padding",
        ),
        (
            Conv2dParams::builder(1, 1, 8, 8, 1, usize::MAX, 1).dilation(2, 1),
            "dilation",
        ),
        // Each part of the implicit-im2col workspace fits, their sum does not (fuzz find).
        (
            Conv2dParams::builder(1, 1 << 43, 1, 1, 1 << 43, 5, 5)
                .pad(512, 512)
                .groups(1 << 42),
            "workspace",
        ),
    ];
    for (builder, arg) in cases {
        let e = builder.build().expect_err(arg);
        assert_eq!(err_arg(e.clone()), arg, "{builder:?}: {e}");
        assert!(!e.to_string().is_empty());
    }
    // Huge output channel counts: building may succeed or fail, never panic (fuzz find:
    // rounding `k` up to whole vector blocks overflowed).
    for n in [1, 4] {
        let _ = Conv2dParams::builder(n, 1, 1, 1, usize::MAX, 1, 1).build();
        let _ = Conv2dParams::builder(n, 4, 3, 3, usize::MAX - 3, 3, 3).build();
    }
    // Kernel exactly as large as the padded input is fine.
    assert_eq!(
        b().pad(0, 0).dilation(3, 3).build().unwrap().output_shape(),
        [2, 6, 2, 2]
    );

    let p = b().pad(1, 1).build().unwrap();
    let (x, w, y) = (
        vec![0.0; p.input_len()],
        vec![0.0; p.weight_len()],
        vec![0.0; p.output_len()],
    );
    let mut ws = vec![0.0; p.workspace_len()];
    let (mut y2, mut dx, mut dw) = (y.clone(), x.clone(), w.clone());
    let bias = [0.0; 6];
    for backend in [Backend::Native, Backend::Reference] {
        let e = |r: Result<(), KernelError>| err_arg(r.unwrap_err());
        assert_eq!(
            e(conv2d_forward(
                backend,
                &p,
                &x[1..],
                &w,
                None,
                &mut y2,
                &mut ws
            )),
            "x"
        );
        assert_eq!(
            e(conv2d_forward(
                backend,
                &p,
                &x,
                &w[1..],
                None,
                &mut y2,
                &mut ws
            )),
            "w"
        );
        assert_eq!(
            e(conv2d_forward(
                backend,
                &p,
                &x,
                &w,
                None,
                &mut y2[1..],
                &mut ws
            )),
            "y"
        );
        assert_eq!(
            e(conv2d_forward(
                backend,
                &p,
                &x,
                &w,
                Some(&bias[1..]),
                &mut y2,
                &mut ws
            )),
            "bias"
        );
        assert_eq!(
            e(conv2d_forward(
                backend,
                &p,
                &x,
                &w,
                None,
                &mut y2,
                &mut ws[1..]
            )),
            "ws"
        );
        assert_eq!(
            e(conv2d_backward_data(
                backend,
                &p,
                &y[1..],
                &w,
                &mut dx,
                &mut ws
            )),
            "dy"
        );
        assert_eq!(
            e(conv2d_backward_data(
                backend,
                &p,
                &y,
                &w,
                &mut dx[1..],
                &mut ws
            )),
            "dx"
        );
        assert_eq!(
            e(conv2d_backward_weight(
                backend,
                &p,
                &x,
                &y,
                &mut dw[1..],
                None,
                &mut ws
            )),
            "dw"
        );
        let mut db = vec![0.0; 5];
        assert_eq!(
            e(conv2d_backward_weight(
                backend,
                &p,
                &x,
                &y,
                &mut dw,
                Some(&mut db),
                &mut ws
            )),
            "dbias"
        );
    }
    if !Backend::OpenBlas.available() {
        let r = conv2d_forward(Backend::OpenBlas, &p, &x, &w, None, &mut y2, &mut ws);
        assert!(matches!(r, Err(KernelError::BackendUnavailable { .. })));
    }
    // Transposed descriptors.
    let t = |op: (usize, usize), pad| {
        ConvTranspose2dParams::new([1, 2, 3, 3], 2, (3, 3), (2, 2), pad, (1, 1), op, 1)
    };
    assert_eq!(
        err_arg(t((2, 0), (0, 0, 0, 0)).unwrap_err()),
        "output_padding_h"
    );
    assert_eq!(
        err_arg(t((0, 2), (0, 0, 0, 0)).unwrap_err()),
        "output_padding_w"
    );
    assert_eq!(err_arg(t((0, 0), (4, 3, 0, 0)).unwrap_err()), "padding");
    assert_eq!(
        t((1, 0), (1, 1, 1, 1)).unwrap().output_shape(),
        [1, 2, 6, 5]
    );
    let g = ConvTranspose2dParams::new(
        [1, 3, 3, 3],
        2,
        (1, 1),
        (1, 1),
        (0, 0, 0, 0),
        (1, 1),
        (0, 0),
        2,
    );
    assert_eq!(err_arg(g.unwrap_err()), "c_in");
}

/// Every pass gives the same bits in pools of 1, 2 and 3 threads.
#[test]
fn bitwise_identical_across_thread_counts() {
    let shapes = [
        Conv2dParams::builder(9, 3, 12, 11, 8, 3, 3)
            .pad(1, 1)
            .build()
            .unwrap()
            .with_max_chunk(4),
        Conv2dParams::builder(6, 16, 7, 7, 8, 1, 1).build().unwrap(),
        Conv2dParams::builder(5, 8, 9, 9, 8, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .groups(8)
            .build()
            .unwrap(),
        Conv2dParams::builder(7, 6, 10, 9, 4, 2, 3)
            .stride(2, 1)
            .dilation(2, 1)
            .groups(2)
            .build()
            .unwrap(),
        Conv2dParams::builder(4, 200, 3, 3, 64, 3, 3)
            .pad(1, 1)
            .build()
            .unwrap(),
        Conv2dParams::builder(9, 1, 12, 11, 9, 3, 3)
            .build()
            .unwrap(),
        Conv2dParams::builder(9, 2, 12, 21, 5, 3, 3)
            .build()
            .unwrap(),
        // Batch-blocked (`blocked.rs`): both passes, strided; then grouped, two waves.
        Conv2dParams::builder(32, 16, 7, 7, 32, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .build()
            .unwrap(),
        Conv2dParams::builder(16, 32, 6, 6, 32, 3, 3)
            .groups(2)
            .pad(0, 1)
            .dilation(2, 1)
            .build()
            .unwrap()
            .with_max_chunk(4),
        // Winograd (`winograd.rs`): whole images per task over two slots; then three tasks
        // per image, the last one short.
        Conv2dParams::builder(5, 32, 13, 11, 48, 3, 3)
            .padding(1, 0, 2, 1)
            .build()
            .unwrap()
            .with_max_chunk(2),
        Conv2dParams::builder(2, 32, 40, 36, 32, 3, 3)
            .pad(1, 1)
            .build()
            .unwrap(),
        // Channel-block backward-data (`col_blocks.rs`): two blocks per group, two groups,
        // several waves.
        Conv2dParams::builder(6, 40, 9, 9, 16, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .groups(2)
            .build()
            .unwrap()
            .with_max_chunk(2),
        // Implicit forward with B read in place over two row blocks; channels-last weight
        // gradient read in place, with the bias gradient.
        // (164 output channels: too few to fill blocks of 32, which would take `kvec.rs`.)
        Conv2dParams::builder(3, 16, 12, 12, 164, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .build()
            .unwrap(),
        Conv2dParams::builder(5, 32, 9, 12, 24, 3, 3)
            .build()
            .unwrap(),
        // Output channels in the vector lanes (`kvec.rs`): several waves, rows of 31 in three
        // tiles, two channel slices; stride 2 with groups; and backward-data as the forward
        // of the adjoint.
        Conv2dParams::builder(5, 40, 10, 31, 64, 3, 3)
            .pad(1, 1)
            .build()
            .unwrap()
            .with_max_chunk(2),
        Conv2dParams::builder(4, 16, 11, 30, 128, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .groups(2)
            .build()
            .unwrap(),
        // Strided backward-data with input channels in the lanes (`kvec_strided.rs`), column
        // phases of 15 and 14 positions, several waves.
        Conv2dParams::builder(5, 64, 13, 29, 48, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .build()
            .unwrap()
            .with_max_chunk(2),
    ];
    for p in shapes {
        let c = case(&p, 11);
        for backend in backends() {
            let runs: Vec<[Vec<f32>; 4]> = [1, 2, 3]
                .iter()
                .map(|&t| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(t)
                        .build()
                        .unwrap();
                    pool.install(|| run_passes(backend, &p, &c))
                })
                .collect();
            for r in &runs[1..] {
                for (a, b) in r.iter().zip(&runs[0]) {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(a), bits(b), "{backend:?} {p:?}");
                }
            }
        }
    }
}

/// An empty batch is valid: every pass is a no-op except that gradients are zeroed.
#[test]
fn empty_batch_is_a_no_op() {
    for b in [
        Conv2dParams::builder(0, 4, 6, 6, 8, 3, 3).pad(1, 1),
        Conv2dParams::builder(0, 4, 6, 6, 4, 3, 3).groups(4),
        Conv2dParams::builder(0, 4, 6, 6, 8, 1, 1),
    ] {
        let p = b.build().unwrap();
        assert_eq!(p.input_len(), 0);
        let mut ws = vec![0.0; p.workspace_len()];
        for backend in [Backend::Reference].into_iter().chain(backends()) {
            let w = data(p.weight_len(), 1);
            let (mut dw, mut db) = (vec![f32::NAN; p.weight_len()], vec![f32::NAN; p.k()]);
            conv2d_forward(backend, &p, &[], &w, None, &mut [], &mut ws).unwrap();
            conv2d_backward_data(backend, &p, &[], &w, &mut [], &mut ws).unwrap();
            conv2d_backward_weight(backend, &p, &[], &[], &mut dw, Some(&mut db), &mut ws).unwrap();
            assert!(dw.iter().chain(&db).all(|&v| v == 0.0), "{backend:?} {p:?}");
        }
    }
}

/// Depthwise shapes whose padded plane would dwarf the image (huge padding or dilation, read
/// at a huge stride, so the output stays small): the native passes fall back to kernels that
/// copy no padded plane (a fuzz find: the copy was a terabyte-sized hidden allocation).
#[test]
fn extreme_padding_needs_no_padded_copy() {
    let big = 1 << 30;
    let shapes = [
        Conv2dParams::builder(2, 3, 4, 5, 3, 3, 3)
            .groups(3)
            .padding(big, big, 1, 2)
            .stride(big, 1)
            .build()
            .unwrap(),
        Conv2dParams::builder(1, 2, 3, 3, 2, 2, 2)
            .groups(2)
            .dilation(1, big)
            .padding(0, 0, big, big)
            .stride(1, big)
            .build()
            .unwrap(),
    ];
    for p in shapes {
        assert!(p.output_len() < 1 << 16, "{p:?}");
        native_matches_reference(&p, 5);
    }
}

/// Shapes too large for the proptest: depthwise planes beyond the stencil's whole-plane
/// scratch (per-row de-interleaving), and a convolution with several column tiles per image.
#[test]
fn large_planes_match_reference() {
    let shapes = [
        Conv2dParams::builder(1, 2, 70, 69, 2, 3, 3)
            .stride(2, 2)
            .pad(1, 1)
            .groups(2),
        Conv2dParams::builder(2, 3, 33, 40, 3, 3, 5)
            .stride(1, 3)
            .padding(2, 0, 1, 2)
            .groups(3),
        Conv2dParams::builder(2, 3, 40, 40, 5, 3, 3).pad(1, 1),
        // Unpadded stride-1 shapes with several whole images per task: the plain vector
        // col2im of backward-data (rows of 11 = 8 + 3 and of 16 outputs), dilation too.
        Conv2dParams::builder(3, 8, 13, 13, 16, 3, 3),
        Conv2dParams::builder(2, 16, 9, 20, 8, 3, 3).dilation(2, 1),
        // One input channel per group with several output channels: the stencil's blocks of
        // four output planes and its remainder.
        Conv2dParams::builder(3, 1, 13, 12, 9, 3, 3).pad(1, 1),
        Conv2dParams::builder(2, 2, 11, 10, 10, 3, 2)
            .groups(2)
            .stride(2, 1),
        // More output channels than a GEMM row block and a depth of two K blocks: the
        // implicit forward's GEMM reads its B panels in place, per row block and K block.
        Conv2dParams::builder(2, 48, 9, 30, 164, 3, 3).pad(1, 1),
        // 32 channels, short rows: the channels-last weight gradient, its B panels (32
        // channels of a tap at each position) read in place.
        Conv2dParams::builder(3, 32, 9, 12, 24, 3, 3),
        // Output channels in the vector lanes (`kvec.rs`) with several channel slices, each
        // continuing the tiles' sums: 3x3 forward with rows of three tiles; 5x5 "same",
        // whose backward-data runs there too (the adjoint's forward).
        Conv2dParams::builder(4, 40, 10, 31, 64, 3, 3).pad(1, 1),
        Conv2dParams::builder(4, 20, 9, 16, 32, 5, 5).pad(2, 2),
        // Three bands of output rows, two images per weight-gradient task: the gradient
        // tiles add band after band and image after image into one partial.
        Conv2dParams::builder(6, 8, 40, 30, 64, 3, 3).pad(1, 1),
        // The kvec weight gradient with a kernel row that meets no output row (padding 2
        // above, row dilation 2): its tiles read no input, and their address must not
        // overflow (a proptest find).
        Conv2dParams::builder(4, 4, 3, 4, 32, 3, 3)
            .padding(2, 0, 0, 0)
            .dilation(2, 1),
        // Output rows with no taps in a later band of padded rows, in the second group:
        // the kvec forward's and the strided backward-data's (odd rows of dx, a 1-row
        // kernel at row stride 2) tile addresses must not overflow either.
        Conv2dParams::builder(4, 8, 20, 62, 64, 3, 3)
            .padding(1, 6, 1, 1)
            .groups(2),
        Conv2dParams::builder(4, 64, 40, 28, 128, 1, 3)
            .stride(2, 2)
            .padding(0, 0, 1, 1)
            .groups(2),
        // Strided backward-data with input channels in the lanes (`kvec_strided.rs`): three
        // bands of rows of dx, several slices of dy's channels.
        Conv2dParams::builder(4, 64, 40, 28, 160, 3, 3)
            .stride(2, 2)
            .pad(1, 1),
        // Winograd (`winograd.rs`): several tasks per image, odd planes, asymmetric padding,
        // channels padded to the vector width (30 of 32).
        Conv2dParams::builder(2, 30, 33, 41, 32, 3, 3).padding(2, 1, 0, 2),
    ];
    for b in shapes {
        let p = b.build().unwrap();
        let c = case(&p, 5);
        let e = expected(&p, &c);
        for backend in backends() {
            for isa in Isa::ALL {
                let got = with_isa(isa, || run_passes(backend, &p, &c));
                check_expected(&e, &got, &format!("{backend:?}/{isa:?} {p:?}"));
            }
        }
    }
}
