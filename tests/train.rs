//! The seed's examples: a 2-4-1 network learns XOR; linear regression recovers known weights.

use nnkern::init::Init;
use nnkern::layers::{Activation, Linear};
use nnkern::loss::{BceWithLogitsLoss, MseLoss};
use nnkern::optim::{Method, Optimizer, Sgd};
use nnkern::rng::Rng;
use nnkern::{Layer, Sequential, Tensor};

#[test]
fn xor_2_4_1_learns_to_100_percent() {
    let mut rng = Rng::new(3);
    let mut model = Sequential::new()
        .add(Linear::with_init(2, 4, true, Init::XavierUniform, &mut rng).unwrap())
        .add(Activation::tanh())
        .add(Linear::with_init(4, 1, true, Init::XavierUniform, &mut rng).unwrap());
    let x = Tensor::from_vec(&[4, 2], vec![0., 0., 0., 1., 1., 0., 1., 1.]).unwrap();
    let t = Tensor::from_vec(&[4, 1], vec![0., 1., 1., 0.]).unwrap();
    let mut loss = BceWithLogitsLoss::new();
    let mut opt = Optimizer::adam(0.05);
    let mut last = f32::INFINITY;
    for _ in 0..1000 {
        let y = model.forward(&x).unwrap();
        last = loss.forward(y, &t).unwrap();
        model.backward(&x, loss.grad()).unwrap();
        opt.step(&mut model).unwrap();
    }
    let y = model.forward(&x).unwrap();
    let correct = y
        .data()
        .iter()
        .zip(t.data())
        .filter(|(&logit, &target)| (logit > 0.0) == (target > 0.5))
        .count();
    assert_eq!(correct, 4, "XOR predictions {:?}, loss {last}", y.data());
    assert!(last < 0.05, "loss {last}");
}

#[test]
fn linear_regression_recovers_known_weights() {
    let (w_true, b_true) = ([2.0f32, -3.0, 0.5], 1.0f32);
    let mut rng = Rng::new(9);
    let n = 256;
    let mut x = Tensor::zeros(&[n, 3]).unwrap();
    rng.fill_uniform(x.data_mut(), -1.0, 1.0);
    let y: Vec<f32> = x
        .data()
        .chunks_exact(3)
        .map(|r| r.iter().zip(&w_true).map(|(a, b)| a * b).sum::<f32>() + b_true)
        .collect();
    let y = Tensor::from_vec(&[n, 1], y).unwrap();
    let mut model = Linear::new(3, 1, &mut rng);
    let mut loss = MseLoss::new();
    let sgd = Sgd {
        momentum: 0.9,
        ..Sgd::default()
    };
    let mut opt = Optimizer::new(Method::Sgd(sgd), 0.1);
    for _ in 0..300 {
        let p = model.forward(&x).unwrap();
        loss.forward(p, &y).unwrap();
        model.backward(&x, loss.grad()).unwrap();
        opt.step(&mut model).unwrap();
    }
    let w = model.weight().value.data();
    let b = model.bias().unwrap().value.data()[0];
    for (got, want) in w.iter().zip(&w_true) {
        assert!((got - want).abs() < 1e-4, "weights {w:?}, want {w_true:?}");
    }
    assert!((b - b_true).abs() < 1e-4, "bias {b}");
}

/// Two training steps of the seed CNN give bitwise identical parameters in pools of 1, 2 and
/// 3 threads (every kernel fixes its reduction order).
#[test]
fn cnn_training_is_bitwise_identical_for_any_thread_count() {
    use nnkern::bench::train_step::{batch, seed_cnn, step};
    use nnkern::loss::SoftmaxCrossEntropy;
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut s = seed_cnn(&mut Rng::new(4)).unwrap();
            let (x, labels) = batch(&s, 6);
            let mut loss = SoftmaxCrossEntropy::new();
            for _ in 0..2 {
                step(&mut s, &mut loss, &x, &labels).unwrap();
            }
            let mut bits = Vec::new();
            s.model
                .visit_params(&mut |p| bits.extend(p.value.data().iter().map(|v| v.to_bits())));
            bits
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}
