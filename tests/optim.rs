//! Each fused optimizer kernel against a plain f64 loop of its equations for 10 steps on fixed
//! numbers, on every ISA; bitwise determinism across thread counts; argument errors; LR
//! schedules; the `Optimizer` wrapper.

use nnkern::kernels::optim::{
    adagrad_step, adam_step, reference, rmsprop_step, sgd_step, AdaGradConfig, AdamConfig,
    RmsPropConfig, SgdConfig,
};
use nnkern::kernels::simd::{with_isa, Isa};
use nnkern::optim::LrSchedule;

/// 37 elements: a full 32-element block plus a tail, for every lane width.
const LEN: usize = 37;

fn start() -> Vec<f64> {
    (0..LEN).map(|i| ((i as f64) * 0.37).sin() * 2.0).collect()
}

/// The gradient at step `t`: magnitudes from 1e-3 to 10 and both signs.
fn grad(t: usize) -> Vec<f64> {
    (0..LEN)
        .map(|i| ((i as f64) * 0.7 + t as f64 * 1.3).sin() * 10f64.powi((i % 5) as i32 - 3))
        .collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// One optimizer under test: an f32 step (kernel) and an f64 step (reference), both with
/// three state buffers (unused ones stay empty) and the 1-based step.
type Step32<'a> = dyn Fn(u64, &mut [f32], &[f32], &mut [Vec<f32>; 3]) + 'a;
type Step64<'a> = dyn Fn(u64, &mut [f64], &[f64], &mut [Vec<f64>; 3]) + 'a;

/// Runs 10 steps of both and compares every element after every step. The bound follows the
/// error propagation of the update: each f32 step adds a rounding error of at most a few ulps
/// of the parameter and of the update (sqrt, division and the state recurrences included),
/// so after `t` steps `|p32 − p64| ≤ 2·eps32·Σ_s |p_s| + 64·eps32·Σ_s |Δp_s|` (the first term is the rounding of
/// `p + Δp`, the second the relative error of the updates, which the state carries over).
fn compare(name: &str, slots: [bool; 3], init: f64, s32: &Step32<'_>, s64: &Step64<'_>) {
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        let mut p64 = start();
        let mut p32 = f32s(&p64);
        let mk = |u: bool| if u { vec![init; LEN] } else { Vec::new() };
        let mut st64 = [mk(slots[0]), mk(slots[1]), mk(slots[2])];
        let mut st32 = [0, 1, 2].map(|k| f32s(&st64[k]));
        let (mut sum_p, mut sum_d) = (vec![0.0f64; LEN], vec![0.0f64; LEN]);
        for t in 1..=10u64 {
            let g = grad(t as usize);
            let before = p64.clone();
            s64(t, &mut p64, &g, &mut st64);
            with_isa(isa, || s32(t, &mut p32, &f32s(&g), &mut st32));
            for i in 0..LEN {
                sum_p[i] += before[i].abs();
                sum_d[i] += (p64[i] - before[i]).abs();
                let bound = f32::EPSILON as f64 * (2.0 * sum_p[i] + 64.0 * sum_d[i]);
                let err = (p32[i] as f64 - p64[i]).abs();
                assert!(
                    err <= bound,
                    "{name} on {isa:?}, step {t}, element {i}: f32 {} vs f64 {} (err {err:e}, bound {bound:e})",
                    p32[i],
                    p64[i]
                );
            }
        }
        // The parameters moved: a no-op kernel cannot pass.
        assert!(
            p64.iter().zip(start()).any(|(a, b)| (a - b).abs() > 1e-3),
            "{name} did not move"
        );
    }
}

#[test]
fn sgd_variants_match_the_equations() {
    for (momentum, dampening, wd, nesterov) in [
        (0.0, 0.0, 0.0, false),
        (0.9, 0.0, 0.0, false),
        (0.9, 0.1, 1e-2, false),
        (0.8, 0.0, 5e-2, true),
    ] {
        let cfg = SgdConfig {
            lr: 0.05,
            momentum,
            dampening,
            weight_decay: wd,
            nesterov,
        };
        compare(
            &format!("SGD {cfg:?}"),
            [momentum > 0.0, false, false],
            0.0,
            &|t, p, g, s| sgd_step(&cfg, p, g, &mut s[0], t == 1).unwrap(),
            &|t, p, g, s| reference::sgd(&cfg, p, g, &mut s[0], t == 1).unwrap(),
        );
    }
}

#[test]
fn adagrad_matches_the_equations() {
    let cfg = AdaGradConfig {
        lr: 0.1,
        lr_decay: 0.01,
        weight_decay: 1e-2,
        eps: 1e-10,
    };
    compare(
        "AdaGrad",
        [true, false, false],
        0.1,
        &|t, p, g, s| adagrad_step(&cfg, t, p, g, &mut s[0]).unwrap(),
        &|t, p, g, s| reference::adagrad(&cfg, t, p, g, &mut s[0]).unwrap(),
    );
}

#[test]
fn rmsprop_variants_match_the_equations() {
    for (momentum, centered, wd) in [
        (0.0, false, 0.0),
        (0.9, false, 1e-2),
        (0.5, true, 0.0),
        (0.0, true, 1e-2),
    ] {
        let cfg = RmsPropConfig {
            lr: 0.01,
            alpha: 0.9,
            eps: 1e-8,
            weight_decay: wd,
            momentum,
            centered,
        };
        compare(
            &format!("RMSprop {cfg:?}"),
            [true, momentum > 0.0, centered],
            0.0,
            &|_, p, g, s| {
                let [a, b, c] = s;
                rmsprop_step(&cfg, p, g, a, b, c).unwrap()
            },
            &|_, p, g, s| {
                let [a, b, c] = s;
                reference::rmsprop(&cfg, p, g, a, b, c).unwrap()
            },
        );
    }
}

#[test]
fn adam_and_adamw_match_the_equations() {
    for (wd, decoupled) in [(0.0, false), (1e-2, false), (1e-2, true)] {
        let cfg = AdamConfig {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
            decoupled,
        };
        compare(
            &format!("Adam {cfg:?}"),
            [true, true, false],
            0.0,
            &|t, p, g, s| {
                let [a, b, _] = s;
                adam_step(&cfg, t, p, g, a, b).unwrap()
            },
            &|t, p, g, s| {
                let [a, b, _] = s;
                reference::adam(&cfg, t, p, g, a, b).unwrap()
            },
        );
    }
}

/// A long parameter (split across workers) gives the same bits in pools of 1, 2 and 3
/// threads, and the same bits as updating it in short pieces.
#[test]
fn bitwise_identical_for_any_thread_count() {
    let n = 100_003;
    let g: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.01).sin()).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let cfg = AdamConfig {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            };
            let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0.0; n], vec![0.0; n]);
            for t in 1..=3 {
                adam_step(&cfg, t, &mut p, &g, &mut m, &mut v).unwrap();
            }
            p
        })
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(one
            .iter()
            .zip(run(threads))
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn bad_arguments_are_errors() {
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: false,
    };
    let (mut p, g) = (vec![0.0f32; 4], vec![0.0f32; 4]);
    assert!(
        sgd_step(&cfg, &mut p, &g[..3], &mut [0.0; 4], false).is_err(),
        "grad length"
    );
    assert!(
        sgd_step(&cfg, &mut p, &g, &mut [0.0; 3], false).is_err(),
        "buffer length"
    );
    let nest = SgdConfig {
        momentum: 0.0,
        nesterov: true,
        ..cfg
    };
    assert!(
        sgd_step(&nest, &mut p, &g, &mut [], false).is_err(),
        "nesterov without momentum"
    );
    let neg = SgdConfig { lr: -1.0, ..cfg };
    assert!(
        sgd_step(&neg, &mut p, &g, &mut [0.0; 4], false).is_err(),
        "negative lr"
    );
    let adam = AdamConfig {
        lr: 1e-3,
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
    };
    let (mut m, mut v) = (vec![0.0f32; 4], vec![0.0f32; 4]);
    assert!(
        adam_step(&adam, 1, &mut p, &g, &mut m, &mut v).is_err(),
        "beta1 = 1"
    );
    let adam = AdamConfig { beta1: 0.9, ..adam };
    assert!(
        adam_step(&adam, 0, &mut p, &g, &mut m, &mut v).is_err(),
        "step 0"
    );
    assert!(adam_step(&adam, 1, &mut p, &g, &mut m, &mut v).is_ok());
}

#[test]
fn lr_schedules() {
    let s = LrSchedule::Step {
        step_size: 3,
        gamma: 0.5,
    };
    let lrs: Vec<f32> = (0..7).map(|e| s.lr_at(0.8, e)).collect();
    assert_eq!(lrs, [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]);
    let c = LrSchedule::Cosine {
        t_max: 10,
        eta_min: 0.1,
    };
    assert_eq!(c.lr_at(1.0, 0), 1.0);
    assert!((c.lr_at(1.0, 5) - 0.55).abs() < 1e-6);
    assert!((c.lr_at(1.0, 10) - 0.1).abs() < 1e-7);
    assert!((c.lr_at(1.0, 20) - 0.1).abs() < 1e-7);
    assert_eq!(LrSchedule::Constant.lr_at(0.3, 99), 0.3);
}
