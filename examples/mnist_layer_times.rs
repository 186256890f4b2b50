//! Where an MNIST training step spends its time: forward and backward of each layer of the
//! seed CNN, the loss and the Adam step, over 100 batches of 64 real images.
//!
//! `cargo run --release --example mnist_layer_times -- [THREADS] [DATA_DIR]`

use nnkern::data::mnist::{Mnist, DEFAULT_DIR};
use nnkern::loss::SoftmaxCrossEntropy;
use nnkern::mnist::cli::{build_model, ModelKind};
use nnkern::optim::Optimizer;
use nnkern::Tensor;
use std::time::Instant;

const BATCH: usize = 64;
const STEPS: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(1), |s| s.parse())?;
    let dir = args.next().unwrap_or_else(|| DEFAULT_DIR.to_string());
    let data = Mnist::load(dir.as_ref())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| run(&data, threads))
}

fn run(data: &Mnist, threads: usize) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut model = build_model(ModelKind::Cnn, 42)?;
    let mut loss = SoftmaxCrossEntropy::new();
    let mut opt = Optimizer::adam(1e-3);
    let n_layers = model.layers().len();
    let (mut fwd, mut bwd) = (vec![0.0f64; n_layers], vec![0.0f64; n_layers]);
    let (mut t_loss, mut t_opt) = (0.0f64, 0.0f64);
    let mut x = Tensor::zeros(&[BATCH, 1, 28, 28]).unwrap();
    let mut labels = vec![0u32; BATCH];
    let total = Instant::now();
    for step in 0..STEPS + 5 {
        let warm = step < 5; // first steps size the buffers
        let idx: Vec<usize> = (step * BATCH..(step + 1) * BATCH).collect();
        data.train.gather(&idx, x.data_mut(), &mut labels).unwrap();
        let layers = model.layers_mut();
        for (i, time) in fwd.iter_mut().enumerate() {
            let (before, rest) = layers.split_at_mut(i);
            let input = before.last().map_or(&x, |l| l.output());
            let t = Instant::now();
            rest[0].forward(input)?;
            *time += if warm { 0.0 } else { t.elapsed().as_secs_f64() };
        }
        let t = Instant::now();
        loss.forward(layers[n_layers - 1].output(), &labels)?;
        t_loss += if warm { 0.0 } else { t.elapsed().as_secs_f64() };
        for i in (0..n_layers).rev() {
            let (before, rest) = layers.split_at_mut(i);
            let (layer, after) = rest.split_first_mut().expect("i < n");
            let input = before.last().map_or(&x, |l| l.output());
            let grad = after.first().map_or(loss.grad(), |l| l.input_grad());
            let t = Instant::now();
            layer.backward(input, grad)?;
            bwd[i] += if warm { 0.0 } else { t.elapsed().as_secs_f64() };
        }
        let t = Instant::now();
        opt.step(&mut model)?;
        t_opt += if warm { 0.0 } else { t.elapsed().as_secs_f64() };
    }
    let ms = |s: f64| s * 1e3 / STEPS as f64;
    println!("ms per step of batch {BATCH}, {threads} thread(s), mean of {STEPS} steps");
    println!("{:<24}{:>10}{:>10}", "layer", "forward", "backward");
    for (i, l) in model.layers().iter().enumerate() {
        let name = format!("{i} {}", l.kind());
        println!("{name:<24}{:>10.3}{:>10.3}", ms(fwd[i]), ms(bwd[i]));
    }
    println!("{:<24}{:>10.3}", "softmax x-entropy", ms(t_loss));
    println!("{:<24}{:>10.3}", "Adam step", ms(t_opt));
    let sum: f64 = fwd.iter().chain(&bwd).sum::<f64>() + t_loss + t_opt;
    println!(
        "total {:.3} ms/step -> {:.1} s per 60,000-image epoch ({:.1} s wall incl. warm-up)",
        ms(sum),
        ms(sum) * 60_000.0 / BATCH as f64 / 1e3,
        total.elapsed().as_secs_f64()
    );
    Ok(())
}
