//! The conv2d family of the suite: NCHW input `[n, c, h, w]`, weight `[k, c/groups, r, s]`.
//! Passes `forward` (with bias), `backward_data`, `backward_weight` (with the bias gradient);
//! gflops = 2 n k (c/groups) r s oh ow for every pass.
//!
//! Case fields: `n c h w k r s` (required); `stride`, `pad`, `dilation` (one value for both
//! axes) or `stride_h`/`stride_w`, `pad_h`/`pad_w`, `pad_top`/`pad_bottom`/`pad_left`/
//! `pad_right`, `dilation_h`/`dilation_w` (per axis, overriding); `groups` (default 1).

use super::{field, random_vec, spot_check, time_median, CaseResult, Config, Work};
use crate::rng::Rng;
use nnkern_kernels::conv::{
    conv2d_backward_data, conv2d_backward_weight, conv2d_forward, Conv2dParams,
};
use serde_json::Value;

fn opt(case: &Value, name: &str, default: usize) -> Result<usize, String> {
    match case.get(name) {
        None => Ok(default),
        Some(_) => field(case, name),
    }
}

/// The descriptor of a case.
pub fn params(case: &Value) -> Result<Conv2dParams, String> {
    let f = |name| field(case, name);
    let (stride, pad, dil) = (
        opt(case, "stride", 1)?,
        opt(case, "pad", 0)?,
        opt(case, "dilation", 1)?,
    );
    let (ph, pw) = (opt(case, "pad_h", pad)?, opt(case, "pad_w", pad)?);
    Conv2dParams::builder(
        f("n")?,
        f("c")?,
        f("h")?,
        f("w")?,
        f("k")?,
        f("r")?,
        f("s")?,
    )
    .stride(
        opt(case, "stride_h", stride)?,
        opt(case, "stride_w", stride)?,
    )
    .padding(
        opt(case, "pad_top", ph)?,
        opt(case, "pad_bottom", ph)?,
        opt(case, "pad_left", pw)?,
        opt(case, "pad_right", pw)?,
    )
    .dilation(opt(case, "dilation_h", dil)?, opt(case, "dilation_w", dil)?)
    .groups(opt(case, "groups", 1)?)
    .build()
    .map_err(|e| e.to_string())
}

/// The term of output `(b, ko, y, x)` at input channel `cl` of its group and tap `(r, s)`:
/// `(x index, y index, weight index)`, or `None` in the padding.
fn term(p: &Conv2dParams, [b, ko, y, x, cl, r, s]: [usize; 7]) -> Option<(usize, usize, usize)> {
    let [_, k, oh, ow] = p.output_shape();
    let (cg, kg) = (p.c() / p.groups(), k / p.groups());
    let ((sh, sw), (dh, dw), (pt, _, pl, _)) = (p.stride(), p.dilation(), p.padding());
    let ih = (y * sh + r * dh).checked_sub(pt).filter(|&i| i < p.h())?;
    let iw = (x * sw + s * dw).checked_sub(pl).filter(|&i| i < p.w())?;
    let ci = ko / kg * cg + cl;
    let xi = ((b * p.c() + ci) * p.h() + ih) * p.w() + iw;
    let yi = ((b * k + ko) * oh + y) * ow + x;
    Some((xi, yi, ((ko * cg + cl) * p.r() + r) * p.s() + s))
}

/// Accumulates f64 terms: (sum, sum of magnitudes, count).
#[derive(Default)]
struct Acc(f64, f64, usize);

impl Acc {
    fn add(&mut self, a: f32, b: f32) {
        let v = a as f64 * b as f64;
        (self.0, self.1, self.2) = (self.0 + v, self.1 + v.abs(), self.2 + 1);
    }
    /// `(got, want, bound)` with the bound of a float sum of this many terms.
    fn sample(&self, got: f32) -> (f64, f64, f64) {
        let gamma = (self.2 as f64 + 1.0) * f32::EPSILON as f64;
        (got as f64, self.0, gamma * self.1 + 1e-30)
    }
}

/// Runs one conv2d case: the three passes, each spot-checked against f64 sums first.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    let p = params(case)?;
    let name = super::case_name(case);
    let x = random_vec(p.input_len(), 1);
    let w = random_vec(p.weight_len(), 2);
    let bias = random_vec(p.k(), 3);
    let dy = random_vec(p.output_len(), 4);
    let mut y = vec![0.0f32; p.output_len()];
    let mut dx = vec![0.0f32; p.input_len()];
    let mut dw = vec![0.0f32; p.weight_len()];
    let mut db = vec![0.0f32; p.k()];
    let mut ws = vec![0.0f32; p.workspace_len()];
    let err = |e: nnkern_kernels::KernelError| e.to_string();
    let be = cfg.backend;
    conv2d_forward(be, &p, &x, &w, Some(&bias), &mut y, &mut ws).map_err(err)?;
    conv2d_backward_data(be, &p, &dy, &w, &mut dx, &mut ws).map_err(err)?;
    conv2d_backward_weight(be, &p, &x, &dy, &mut dw, Some(&mut db), &mut ws).map_err(err)?;

    // Spot checks: a few sampled elements of each output, as f64 sums over their terms.
    let [n, k, oh, ow] = p.output_shape();
    let (cg, kg, rs) = (p.c() / p.groups(), k / p.groups(), p.r() * p.s());
    let mut rng = Rng::new(5);
    let mut fwd = Vec::new();
    let mut bwd_d = Vec::new();
    let mut bwd_w = Vec::new();
    for _ in 0..8 {
        // forward: y[b, ko, i, j]
        let (b, ko, i, j) = (rng.below(n), rng.below(k), rng.below(oh), rng.below(ow));
        let mut acc = Acc(bias[ko] as f64, (bias[ko] as f64).abs(), 1);
        for cl in 0..cg {
            for t in 0..rs {
                if let Some((xi, _, wi)) = term(&p, [b, ko, i, j, cl, t / p.s(), t % p.s()]) {
                    acc.add(x[xi], w[wi]);
                }
            }
        }
        fwd.push(acc.sample(y[((b * k + ko) * oh + i) * ow + j]));
        // backward_data: dx at a sampled input element, gathered from its group's outputs.
        let (b, ci) = (rng.below(n), rng.below(p.c()));
        let xi_want = ((b * p.c() + ci) * p.h() + rng.below(p.h())) * p.w() + rng.below(p.w());
        let mut acc = Acc::default();
        for ko in (ci / cg) * kg..(ci / cg + 1) * kg {
            for (yy, xx, t) in (0..oh * ow * rs).map(|q| (q / (ow * rs), q / rs % ow, q % rs)) {
                match term(&p, [b, ko, yy, xx, ci % cg, t / p.s(), t % p.s()]) {
                    Some((xi, yi, wi)) if xi == xi_want => acc.add(dy[yi], w[wi]),
                    _ => {}
                }
            }
        }
        bwd_d.push(acc.sample(dx[xi_want]));
        // backward_weight: dw at a sampled tap, summed over the batch and positions.
        let wi_want = rng.below(p.weight_len());
        let (ko, cl, t) = (wi_want / (cg * rs), wi_want / rs % cg, wi_want % rs);
        let mut acc = Acc::default();
        for (b, yy, xx) in (0..n * oh * ow).map(|q| (q / (oh * ow), q / ow % oh, q % ow)) {
            if let Some((xi, yi, _)) = term(&p, [b, ko, yy, xx, cl, t / p.s(), t % p.s()]) {
                acc.add(x[xi], dy[yi]);
            }
        }
        bwd_w.push(acc.sample(dw[wi_want]));
    }
    spot_check("conv2d forward", &fwd)?;
    spot_check("conv2d backward_data", &bwd_d)?;
    spot_check("conv2d backward_weight", &bwd_w)?;

    let work = || Work {
        flops: Some(p.flops()),
        bytes: None,
    };
    let t = time_median(cfg.target_s, || {
        conv2d_forward(be, &p, &x, &w, Some(&bias), &mut y, &mut ws).expect("validated");
    });
    let mut out = vec![cfg.record("conv2d", &name, "forward", t, work())];
    let t = time_median(cfg.target_s, || {
        conv2d_backward_data(be, &p, &dy, &w, &mut dx, &mut ws).expect("validated");
    });
    out.push(cfg.record("conv2d", &name, "backward_data", t, work()));
    let t = time_median(cfg.target_s, || {
        conv2d_backward_weight(be, &p, &x, &dy, &mut dw, Some(&mut db), &mut ws)
            .expect("validated");
    });
    out.push(cfg.record("conv2d", &name, "backward_weight", t, work()));
    Ok(out)
}
