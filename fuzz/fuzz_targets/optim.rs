//! Optimizer updates (SGD with momentum/Nesterov, AdaGrad, RMSprop plain/centered/momentum,
//! Adam/AdamW): random hyperparameters (valid and invalid: negative, NaN, inf, beta = 1),
//! step counts (0, 1, huge), lengths (some beyond one parallel chunk) and states; one step on
//! every ISA against the f64 reference of `optim::reference`, within
//! `eps (4 |p| + 64 M (1 + cond))` where `M` is the update computed on magnitudes and `cond`
//! the cancellation factor of centered RMSprop's `v - gbar^2` (the bound of `tests/optim.rs`
//! for one step); invalid configurations and wrong state lengths fail alike on every ISA.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::optim::*;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::KernelError;

const HYPER: [f32; 12] = [
    0.0,
    0.1,
    0.5,
    0.9,
    0.999,
    1e-8,
    0.01,
    2.0,
    -0.1,
    f32::NAN,
    f32::INFINITY,
    1.0,
];
const STEPS: [u64; 6] = [1, 2, 3, 1000, u64::MAX, 0];

/// One step of f32 state on the current ISA.
type Step32<'a> = dyn Fn(&mut [f32], &[f32], &mut [Vec<f32>; 3]) -> Result<(), KernelError> + 'a;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let n = match inp.byte() {
        255 => PAR_CHUNK + 17,
        b => b as usize % 80,
    };
    let h: Vec<f64> = (0..6).map(|_| inp.pick(&HYPER) as f64).collect();
    let (b1, b2) = (inp.bool(), inp.bool());
    let step = inp.pick(&STEPS);
    let p0 = inp.values(n);
    let g = inp.values(n);
    // States: non-negative where the rule needs it; grad_avg small against square_avg.
    let s0 = inp.values(n);
    let sq: Vec<f32> = s0.iter().map(|v| v * v).collect();
    let s1 = inp.values(n);
    let gavg: Vec<f32> = s1
        .iter()
        .zip(&s0)
        .map(|(a, b)| a.signum() * b.abs() * 0.5)
        .collect();
    let kind = inp.byte() % 4;
    let mut lens = [n, n, n];
    let bad_len = inp.perturb(4);
    if let Some(i) = bad_len {
        if i < 3 {
            lens[i] = off_by_one(n);
        }
    }
    let grad_len = if bad_len == Some(3) { off_by_one(n) } else { n };
    let g = if grad_len == n {
        g
    } else {
        inp.values(grad_len)
    };
    let f32c = |v: f64| v as f32;
    let (lr, a, bb, c, d, e) = (h[0], h[1], h[2], h[3], h[4], h[5]);
    // (used slots, initial states, f32 step, f64 reference step, magnitude of the update)
    let init: [Vec<f32>; 3];
    let used: [bool; 3];
    let step32: Box<Step32>;
    let step64: Box<dyn Fn(&mut [f64], &[f64], &mut [Vec<f64>; 3]) -> Result<(), KernelError>>;
    match kind {
        0 => {
            let cfg = SgdConfig {
                lr: f32c(lr),
                momentum: f32c(a),
                dampening: f32c(bb),
                weight_decay: f32c(c),
                nesterov: b1,
            };
            let first = b2;
            used = [cfg.momentum > 0.0, false, false];
            init = [s1.clone(), vec![], vec![]];
            step32 = Box::new(move |p, g, s| sgd_step(&cfg, p, g, &mut s[0], first));
            step64 = Box::new(move |p, g, s| reference::sgd(&cfg, p, g, &mut s[0], first));
        }
        1 => {
            let cfg = AdaGradConfig {
                lr: f32c(lr),
                lr_decay: f32c(a),
                weight_decay: f32c(bb),
                eps: f32c(c),
            };
            used = [true, false, false];
            init = [sq.clone(), vec![], vec![]];
            step32 = Box::new(move |p, g, s| adagrad_step(&cfg, step, p, g, &mut s[0]));
            step64 = Box::new(move |p, g, s| reference::adagrad(&cfg, step, p, g, &mut s[0]));
        }
        2 => {
            let cfg = RmsPropConfig {
                lr: f32c(lr),
                alpha: f32c(a),
                eps: f32c(bb),
                weight_decay: f32c(c),
                momentum: f32c(d),
                centered: b1,
            };
            used = [true, cfg.momentum > 0.0, cfg.centered];
            init = [sq.clone(), s1.clone(), gavg.clone()];
            step32 = Box::new(move |p, g, s| {
                let [a, b, c] = s;
                rmsprop_step(&cfg, p, g, a, b, c)
            });
            step64 = Box::new(move |p, g, s| {
                let [a, b, c] = s;
                reference::rmsprop(&cfg, p, g, a, b, c)
            });
        }
        _ => {
            let cfg = AdamConfig {
                lr: f32c(lr),
                beta1: f32c(a),
                beta2: f32c(bb),
                eps: f32c(c),
                weight_decay: f32c(d),
                decoupled: b1,
            };
            used = [true, true, false];
            init = [s1.clone(), sq.clone(), vec![]];
            step32 = Box::new(move |p, g, s| {
                let [m, v, _] = s;
                adam_step(&cfg, step, p, g, m, v)
            });
            step64 = Box::new(move |p, g, s| {
                let [m, v, _] = s;
                reference::adam(&cfg, step, p, g, m, v)
            });
        }
    }
    let _ = e;
    let states32 = |lens: [usize; 3]| -> [Vec<f32>; 3] {
        [0, 1, 2].map(|k| {
            let v = if init[k].is_empty() {
                vec![0.0; n]
            } else {
                init[k].clone()
            };
            let mut v = v;
            v.resize(lens[k], 0.5);
            v
        })
    };
    // The expected outcome: the first ISA decides, every other must agree.
    let mut first: Option<(Result<(), KernelError>, Vec<f32>, [Vec<f32>; 3])> = None;
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut p = p0.clone();
        let mut s = states32(lens);
        let r = with_isa(isa, || step32(&mut p, &g, &mut s));
        if let Err(e) = &r {
            assert!(
                matches!(
                    e,
                    KernelError::InvalidParam { .. } | KernelError::BufferLength { .. }
                ),
                "{e:?}"
            );
        }
        match &first {
            None => first = Some((r, p, s)),
            Some((r0, p_first, s_first)) => {
                assert_eq!(&r, r0, "{isa:?}: a different outcome");
                // Every ISA runs the same arithmetic per element (fused multiply-adds where
                // the portable and scalar paths use them too): compare within the bound below.
                let _ = (p_first, s_first);
            }
        }
    }
    let (r, _, _) = first.unwrap();
    // The f64 reference from the same f32 starting values validates with the kernels' own
    // checks: the same outcome, error included.
    let mut p64 = f64s(&p0);
    let mut s64: [Vec<f64>; 3] = states32(lens).map(|s| f64s(&s));
    let s_start = s64.clone();
    assert_eq!(
        step64(&mut p64, &f64s(&g), &mut s64),
        r,
        "the reference disagrees"
    );
    let state_len_bad = (0..3).any(|k| used[k] && lens[k] != n) || grad_len != n;
    if state_len_bad {
        assert!(r.is_err(), "a wrong state or gradient length was accepted");
        return;
    }
    if r.is_err() || inp.specials() {
        return;
    }
    // `g + wd p` can cancel, and the rules divide it by a denominator that holds its own
    // square: near the cancellation the update jumps (with v0 = 0, from 0 to about
    // `lr / sqrt(1 - alpha)`). The rounding of the f32 sum (a few ulp of `|g| + |wd p|`) is
    // then an error no magnitude bound sees: measure the reference's own spread over a
    // gradient moved by that much.
    let wd = [h[3], h[2], h[3], h[4]][kind as usize].abs();
    let spread: Vec<f64> = (0..n)
        .map(|i| {
            let (p, gi) = (p0[i] as f64, g[i] as f64);
            let delta = 4.0 * EPS * (gi.abs() + wd * p.abs());
            let at = |gi: f64| {
                let mut s1 = [0, 1, 2].map(|k| vec![s_start[k].get(i).copied().unwrap_or(0.0)]);
                let mut p1 = [p];
                step64(&mut p1, &[gi], &mut s1).map_or(0.0, |_| p1[0])
            };
            (at(gi + delta) - at(gi - delta)).abs()
        })
        .collect();
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut p = p0.clone();
        let mut s = states32(lens);
        with_isa(isa, || step32(&mut p, &g, &mut s)).unwrap();
        for i in 0..n {
            let dp = (p64[i] - p0[i] as f64).abs();
            let mut cond = 1.0;
            if kind == 2 && used[2] {
                // centered: v - gbar^2 cancels; its relative error grows by (v + gbar^2) / (v - gbar^2).
                let (v, gb) = (s64[0][i], s64[2][i]);
                let var = v - gb * gb;
                // Where f32 rounding (a few ulp of v and gbar^2) can reach var itself, the f32
                // variance may come out negative and its square root NaN, as in PyTorch: no
                // bound to check there.
                if var <= 16.0 * EPS * (v + gb * gb) {
                    continue;
                }
                cond = (v + gb * gb) / var;
            }
            let mag = update_magnitude(kind, &h, step, b1, p0[i] as f64, g[i] as f64, &s_start, i);
            let bound = EPS * (4.0 * (p0[i] as f64).abs() + 64.0 * (mag + dp) * (1.0 + cond))
                + 2.0 * spread[i]
                + 64.0 * DENORM;
            if !p64[i].is_finite() || p64[i].abs() > 1e30 || !mag.is_finite() {
                continue;
            }
            assert!(
                close(p[i], p64[i], bound),
                "{isa:?} kind {kind} h {h:?} step {step} [{i}]: p0 {} g {} -> {:e} vs {:e} (bound {bound:e})",
                p0[i], g[i], p[i], p64[i]
            );
        }
    }
});

/// The size of one update computed on magnitudes (no cancellation), in f64.
#[allow(clippy::too_many_arguments)]
fn update_magnitude(
    kind: u8,
    h: &[f64],
    step: u64,
    flag: bool,
    p: f64,
    g: f64,
    s: &[Vec<f64>; 3],
    i: usize,
) -> f64 {
    let at = |k: usize| s[k].get(i).copied().unwrap_or(0.0).abs();
    let h: Vec<f64> = h.iter().map(|&v| v as f32 as f64).collect();
    match kind {
        0 => {
            let (lr, mu, damp, wd) = (h[0], h[1], h[2], h[3]);
            let d = g.abs() + wd * p.abs();
            let b = mu * at(0) + (1.0 - damp).abs() * d + d;
            lr * (d + b * (1.0 + mu))
        }
        1 => {
            let (lr, wd, eps) = (h[0], h[2], h[3]);
            let d = g.abs() + wd * p.abs();
            let s = at(0) + d * d;
            lr * d / (s.sqrt() + eps).max(f64::MIN_POSITIVE)
        }
        2 => {
            let (lr, alpha, eps, wd, mu) = (h[0], h[1], h[2], h[3], h[4]);
            let d = g.abs() + wd * p.abs();
            let v = alpha * at(0) + (1.0 - alpha) * d * d;
            let gb = alpha * at(2) + (1.0 - alpha) * d;
            let den = if flag {
                (v - gb * gb).max(0.0).sqrt() + eps
            } else {
                v.sqrt() + eps
            };
            lr * (mu * at(1) + d / den.max(f64::MIN_POSITIVE))
        }
        _ => {
            let (lr, b1, b2, eps, wd) = (h[0], h[1], h[2], h[3], h[4]);
            let d = g.abs() + wd * p.abs();
            let t = step.min(1 << 40) as f64;
            let bc1 = 1.0 - b1.powf(t);
            let bc2 = 1.0 - b2.powf(t);
            let m = b1 * at(0) + (1.0 - b1) * d;
            let v = b2 * at(1) + (1.0 - b2) * d * d;
            let den = v.sqrt() / bc2.sqrt() + eps;
            lr / bc1 * m / den.max(f64::MIN_POSITIVE) + lr * wd * p.abs()
        }
    }
}
