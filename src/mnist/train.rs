//! The training loop and the evaluation, independent of the console: callers see progress
//! through a callback.

use crate::data::mnist::{MnistSplit, PIXELS, SIDE};
use crate::error::shape_err;
use crate::loss::SoftmaxCrossEntropy;
use crate::optim::Optimizer;
use crate::rng::Rng;
use crate::{Layer, Result, Sequential, Tensor};
use nnkern_kernels::KernelError;

/// Settings of a training run (the seed's defaults: 5 epochs of batch 64, Adam 1e-3).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per training step (the last step of an epoch takes the remainder).
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seed of the initialisation and of the shuffling.
    pub seed: u64,
    /// Images per evaluation forward pass (bounds the evaluation's memory).
    pub eval_batch: usize,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            epochs: 5,
            batch: 64,
            lr: 1e-3,
            seed: 42,
            eval_batch: 256,
        }
    }
}

/// Stream offset of the shuffling generator, so the order of the images does not depend on
/// how many random numbers the initialisation drew.
const SHUFFLE_STREAM: u64 = 0x5348_5546_464c_4531;

/// A model with its loss, optimizer, shuffling generator and reused input buffers.
pub struct Trainer {
    /// The network (ends in logits; the loss applies the softmax).
    pub model: Sequential,
    /// Adam with the configured learning rate.
    pub opt: Optimizer,
    loss: SoftmaxCrossEntropy,
    x: Tensor,
    labels: Vec<u32>,
    order: Vec<usize>,
    shuffle: Rng,
    batch: usize,
    eval_batch: usize,
}

impl Trainer {
    /// A trainer for `model` (already initialised) with the settings of `cfg`.
    pub fn new(model: Sequential, cfg: &TrainConfig) -> Trainer {
        Trainer {
            model,
            opt: Optimizer::adam(cfg.lr),
            loss: SoftmaxCrossEntropy::new(),
            x: Tensor::default(),
            labels: Vec::new(),
            order: Vec::new(),
            shuffle: Rng::new(cfg.seed ^ SHUFFLE_STREAM),
            batch: cfg.batch.max(1),
            eval_batch: cfg.eval_batch.max(1),
        }
    }

    /// One pass over `data` in a fresh random order, one Adam step per batch. Calls
    /// `on_batch(images_done, running_mean_loss)` after each step. Returns the epoch's mean
    /// loss per image.
    pub fn train_epoch(
        &mut self,
        data: &MnistSplit,
        on_batch: &mut dyn FnMut(usize, f64),
    ) -> Result<f64> {
        self.model.train();
        self.order.clear();
        self.order.extend(0..data.len());
        self.shuffle.shuffle(&mut self.order);
        let mut total = 0.0f64;
        let mut done = 0usize;
        for start in (0..data.len()).step_by(self.batch) {
            let end = (start + self.batch).min(data.len());
            load_batch(data, &self.order[start..end], &mut self.x, &mut self.labels)?;
            let logits = self.model.forward(&self.x)?;
            let loss = self.loss.forward(logits, &self.labels)?;
            self.model.backward(&self.x, self.loss.grad())?;
            self.opt.step(&mut self.model)?;
            total += loss as f64 * (end - start) as f64;
            done = end;
            on_batch(done, total / done as f64);
        }
        Ok(if done == 0 { 0.0 } else { total / done as f64 })
    }

    /// Accuracy on `data` in percent, in evaluation mode, in batches of `eval_batch`.
    ///
    /// Errors: the model's output is not `[N, classes]`, a label is not below `classes`, or
    /// the split is inconsistent. The model is back in training mode either way.
    pub fn evaluate(&mut self, data: &MnistSplit) -> Result<f64> {
        self.model.eval();
        let correct = self.count_correct(data);
        self.model.train();
        Ok(if data.is_empty() {
            0.0
        } else {
            100.0 * correct? as f64 / data.len() as f64
        })
    }

    /// How many images of `data` the model classifies right.
    fn count_correct(&mut self, data: &MnistSplit) -> Result<usize> {
        let mut correct = 0usize;
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(self.eval_batch) {
            load_batch(data, chunk, &mut self.x, &mut self.labels)?;
            let logits = self.model.forward(&self.x)?;
            let &[_, classes] = logits.shape() else {
                let what = "MNIST model output";
                return Err(shape_err(what, "expected [N, classes]", logits.shape()));
            };
            // Also guards `chunks_exact` below: no label is below 0 classes.
            if let Some(&l) = self.labels.iter().find(|&&l| l as usize >= classes) {
                return Err(KernelError::IndexOutOfRange {
                    arg: "labels",
                    index: l.into(),
                    bound: classes,
                }
                .into());
            }
            correct += logits
                .data()
                .chunks_exact(classes)
                .zip(&self.labels)
                .filter(|(row, &label)| argmax(row) == label as usize)
                .count();
        }
        Ok(correct)
    }
}

/// Copies the images `indices` of `data` into `x` (`[n, 1, 28, 28]`) and their labels.
fn load_batch(
    data: &MnistSplit,
    indices: &[usize],
    x: &mut Tensor,
    labels: &mut Vec<u32>,
) -> Result<()> {
    x.resize(&[indices.len(), 1, SIDE, SIDE])?;
    labels.resize(indices.len(), 0);
    debug_assert_eq!(x.len(), indices.len() * PIXELS);
    data.gather(indices, x.data_mut(), labels)?;
    Ok(())
}

/// Index of the largest value (the first on ties; comparisons with NaN are false).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
