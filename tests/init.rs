//! Seeded initialisation: the bounds and spreads of `torch.nn.init`, reproducible per seed.

use nnkern::init::Init;
use nnkern::rng::Rng;

fn stats(v: &[f32]) -> (f64, f64, f32) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let max = v.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    (mean, var.sqrt(), max)
}

#[test]
fn spreads_and_bounds_match_torch() {
    let (fan_in, fan_out, n) = (300usize, 100usize, 40_000usize);
    let cases = [
        (Init::KaimingUniform, (6.0 / 300.0f64).sqrt(), true),
        (Init::KaimingNormal, (2.0 / 300.0f64).sqrt(), false),
        (Init::XavierUniform, (6.0 / 400.0f64).sqrt(), true),
        (Init::XavierNormal, (2.0 / 400.0f64).sqrt(), false),
        (Init::TorchDefault, 1.0 / 300.0f64.sqrt(), true),
    ];
    for (init, scale, uniform) in cases {
        let mut v = vec![0.0f32; n];
        init.fill(&mut Rng::new(1), &mut v, fan_in, fan_out);
        let (mean, std, max) = stats(&v);
        // Uniform(-b, b) has std b/sqrt(3); normal has std `scale`.
        let want_std = if uniform { scale / 3f64.sqrt() } else { scale };
        // 40k samples: the sample std is within 2% and the mean within 5 standard errors.
        assert!(
            (std / want_std - 1.0).abs() < 0.02,
            "{init:?}: std {std} vs {want_std}"
        );
        assert!(
            mean.abs() < 5.0 * want_std / (n as f64).sqrt(),
            "{init:?}: mean {mean}"
        );
        if uniform {
            assert!(
                max as f64 <= scale && max as f64 > 0.99 * scale,
                "{init:?}: max {max}"
            );
        }
        let mut again = vec![0.0f32; n];
        init.fill(&mut Rng::new(1), &mut again, fan_in, fan_out);
        assert_eq!(v, again, "{init:?} is reproducible");
    }
    let mut z = vec![1.0f32; 8];
    Init::Zeros.fill(&mut Rng::new(0), &mut z, 1, 1);
    assert!(z.iter().all(|&x| x == 0.0));
}
