//! The train_step family of the suite: one full training step (forward, loss, backward,
//! optimizer update) of a small model, pass `step`. Models are matched by their suite
//! description (the two known ones: the seed CNN and the MLP); anything else is skipped.
//! The rate reported is gflops of the step's GEMM/convolution work: 3 × the forward
//! multiply-adds × 2 (forward, input gradient, weight gradient; the first layer has no input
//! gradient and is counted 2 ×).

use super::{field, random_vec, text, time_median, CaseResult, Config, Work};
use crate::error::Result;
use crate::layers::{Activation, Linear};
use crate::loss::SoftmaxCrossEntropy;
use crate::optim::{Method, Optimizer, Sgd};
use crate::rng::Rng;
use crate::{Layer, Sequential, Tensor};
use nnkern_kernels::Backend;
use serde_json::Value;

/// The suite's seed CNN description.
pub const SEED_CNN: &str = "conv(1->32,3x3) relu maxpool2 conv(32->64,3x3) relu maxpool2 flatten dense(1600->128) relu dense(128->10); softmax cross-entropy; Adam lr=1e-3";
/// The suite's MLP description.
pub const MLP: &str =
    "dense(784->128) relu dense(128->10); softmax cross-entropy; SGD lr=0.1 momentum=0.9";

/// A model ready to train: the network, its optimizer, the shape of one sample, the number of
/// classes and the step's flops for a batch of one.
pub struct TrainSetup {
    /// The network.
    pub model: Sequential,
    /// Its optimizer.
    pub opt: Optimizer,
    /// One sample's shape (without the batch).
    pub sample: Vec<usize>,
    /// Classes of the softmax cross-entropy.
    pub classes: usize,
    /// Flops of one step per sample.
    pub flops_per_sample: f64,
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// Builds the model a suite description names, seeded; `Err` names what is not known.
pub fn build(description: &str, seed: u64) -> std::result::Result<TrainSetup, String> {
    let d = normalize(description);
    let mut rng = Rng::new(seed);
    if d == normalize(MLP) {
        let model = Sequential::new()
            .add(Linear::new(784, 128, &mut rng))
            .add(Activation::relu())
            .add(Linear::new(128, 10, &mut rng));
        let sgd = Sgd {
            momentum: 0.9,
            ..Sgd::default()
        };
        return Ok(TrainSetup {
            model,
            opt: Optimizer::new(Method::Sgd(sgd), 0.1),
            sample: vec![784],
            classes: 10,
            flops_per_sample: 2.0 * (2.0 * 784.0 * 128.0 + 3.0 * 128.0 * 10.0),
        });
    }
    if d == normalize(SEED_CNN) {
        return seed_cnn(&mut rng).map_err(|e| e.to_string());
    }
    Err(format!(
        "unknown model `{description}` (train_step knows the seed CNN and the MLP)"
    ))
}

/// The seed CNN: conv(1→32, 3×3) relu maxpool2 conv(32→64, 3×3) relu maxpool2 flatten
/// dense(1600→128) relu dense(128→10), Adam lr = 1e-3, on 1×28×28 samples.
pub fn seed_cnn(rng: &mut Rng) -> Result<TrainSetup> {
    // The same network (and initialisation) as the MNIST job.
    let model = crate::mnist::model::seed_cnn(rng)?;
    // Multiply-adds per sample: conv1 26·26·32·9, conv2 11·11·64·288, dense 1600·128 + 1280.
    let conv1 = 26.0 * 26.0 * 32.0 * 9.0;
    let rest = 11.0 * 11.0 * 64.0 * 288.0 + 1600.0 * 128.0 + 128.0 * 10.0;
    Ok(TrainSetup {
        model,
        opt: Optimizer::adam(1e-3),
        sample: vec![1, 28, 28],
        classes: 10,
        flops_per_sample: 2.0 * (2.0 * conv1 + 3.0 * rest),
    })
}

/// One training step; returns the loss.
pub fn step(
    s: &mut TrainSetup,
    loss: &mut SoftmaxCrossEntropy,
    x: &Tensor,
    labels: &[u32],
) -> Result<f32> {
    let logits = s.model.forward(x)?;
    let l = loss.forward(logits, labels)?;
    s.model.backward(x, loss.grad())?;
    s.opt.step(&mut s.model)?;
    Ok(l)
}

/// A batch of random inputs in `[-1, 1)` and labels `i mod classes`.
pub fn batch(s: &TrainSetup, n: usize) -> (Tensor, Vec<u32>) {
    let mut shape = vec![n];
    shape.extend_from_slice(&s.sample);
    let len = shape.iter().product();
    let x = Tensor::from_vec(&shape, random_vec(len, 5)).expect("shape matches");
    let labels = (0..n).map(|i| (i % s.classes) as u32).collect();
    (x, labels)
}

/// Runs one train_step case: spot check (the loss starts near ln(classes) and falls over a few
/// steps on a fixed batch), then the median step time.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    if cfg.backend != Backend::Native {
        return Err("train_step runs the native backend only".into());
    }
    let n = field(case, "batch")?;
    let mut s = build(text(case, "model")?, 1)?;
    let (x, labels) = batch(&s, n);
    let mut loss = SoftmaxCrossEntropy::new();
    let first = step(&mut s, &mut loss, &x, &labels).map_err(|e| e.to_string())?;
    let chance = (s.classes as f32).ln();
    if !(first.is_finite() && (first - chance).abs() < 0.5 * chance) {
        return Err(format!(
            "spot check: initial loss {first}, expected about {chance}"
        ));
    }
    let mut last = first;
    for _ in 0..4 {
        last = step(&mut s, &mut loss, &x, &labels).map_err(|e| e.to_string())?;
    }
    if last.is_nan() || last >= first {
        return Err(format!("spot check: loss did not fall ({first} -> {last})"));
    }
    let t = time_median(cfg.target_s, || {
        step(&mut s, &mut loss, &x, &labels).expect("checked above");
    });
    let work = Work {
        flops: Some(s.flops_per_sample * n as f64),
        bytes: None,
    };
    Ok(vec![cfg.record(
        "train_step",
        &super::case_name(case),
        "step",
        t,
        work,
    )])
}
