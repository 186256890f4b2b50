//! `nnkern mnist`: the command line of the MNIST job (progress bar, epoch lines, `--metrics`,
//! `--plot`, `--save`).

use super::model;
use super::plot::plot_history;
use super::report::{EpochStats, MetricsWriter};
use super::train::{TrainConfig, Trainer};
use crate::data::Mnist;
use crate::rng::Rng;
use crate::Sequential;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Which network to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// The seed CNN (Conv 32, pool, Conv 64, pool, Dense 128, Dense 10).
    Cnn,
    /// A one-hidden-layer perceptron (Dense 128, Dense 10), a quick baseline.
    Mlp,
}

/// Arguments of `nnkern mnist`.
#[derive(Args, Debug, Clone)]
pub struct MnistArgs {
    /// Passes over the 60,000 training images.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Images per training step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Threads of the rayon pool the training runs in.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Directory of the four MNIST .gz files.
    #[arg(long, default_value = crate::data::mnist::DEFAULT_DIR)]
    pub data: PathBuf,
    /// Seed of the initialisation and the shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the trained model and Adam state here (safetensors).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Draw loss and accuracy per epoch into this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write one JSON object per epoch to this file.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// The network.
    #[arg(long, value_enum, default_value_t = ModelKind::Cnn)]
    pub model: ModelKind,
    /// Train on the first N training images only (quick runs).
    #[arg(long = "train-limit")]
    pub train_limit: Option<usize>,
}

/// Builds the chosen network, initialised from `seed`.
pub fn build_model(kind: ModelKind, seed: u64) -> crate::Result<Sequential> {
    let mut rng = Rng::new(seed);
    match kind {
        ModelKind::Cnn => model::seed_cnn(&mut rng),
        ModelKind::Mlp => Ok(model::mlp(&mut rng)),
    }
}

fn check(args: &MnistArgs) -> Result<(), String> {
    if args.epochs == 0 {
        return Err("--epochs must be at least 1".into());
    }
    if args.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err("--lr must be a positive number".into());
    }
    Ok(())
}

/// Runs the job as the arguments say: loads the data, trains, prints a line per epoch and
/// writes the requested files.
pub fn run(args: &MnistArgs) -> Result<(), String> {
    check(args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| format!("cannot start {} threads: {e}", args.threads))?;
    let mut data = Mnist::load(&args.data).map_err(|e| e.to_string())?;
    if let Some(n) = args.train_limit {
        data.train = data.train.take(n);
    }
    // Open output files before training, so a bad path fails now, not after the run.
    let mut metrics = args
        .metrics
        .as_deref()
        .map(MetricsWriter::create)
        .transpose()?;
    let cfg = TrainConfig {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let model = build_model(args.model, args.seed).map_err(|e| e.to_string())?;
    let summary = model.summary(&[1, 28, 28]).map_err(|e| e.to_string())?;
    println!(
        "nnkern mnist: {} training / {} test images from {}; {} epochs of batch {}, Adam lr {}, \
         seed {}, {} threads",
        data.train.len(),
        data.test.len(),
        args.data.display(),
        cfg.epochs,
        cfg.batch,
        cfg.lr,
        cfg.seed,
        args.threads
    );
    print!("{summary}");
    let mut trainer = Trainer::new(model, &cfg);
    let mut history = Vec::new();
    pool.install(|| -> Result<(), String> {
        for epoch in 1..=cfg.epochs {
            let stats = run_epoch(&mut trainer, &data, epoch, cfg.epochs)?;
            println!("{}", stats.console_line(cfg.epochs));
            if let Some(m) = metrics.as_mut() {
                m.write(&stats)?;
            }
            history.push(stats);
        }
        Ok(())
    })?;
    if let Some(path) = &args.save {
        crate::checkpoint::save(path, &trainer.model, Some(&trainer.opt))
            .map_err(|e| format!("cannot save checkpoint {}: {e}", path.display()))?;
        println!("saved the model and Adam state to {}", path.display());
    }
    if let Some(path) = &args.plot {
        let text = plot_history(path, &history)?;
        println!("plotted loss and accuracy to {}", path.display());
        if !text {
            eprintln!("note: no TrueType font found, the plot has no labels");
        }
    }
    Ok(())
}

/// One epoch with its progress bar (on stderr, hidden when it is not a terminal), then the
/// evaluation on the test set.
fn run_epoch(
    trainer: &mut Trainer,
    data: &Mnist,
    epoch: usize,
    epochs: usize,
) -> Result<EpochStats, String> {
    let n = data.train.len();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec:>12} loss {msg} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    let start = Instant::now();
    let train_loss = trainer
        .train_epoch(&data.train, &mut |done, loss| {
            bar.set_position(done as u64);
            bar.set_message(format!("{loss:.4}"));
        })
        .map_err(|e| format!("training failed in epoch {epoch}: {e}"))?;
    let epoch_s = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let test_acc = trainer
        .evaluate(&data.test)
        .map_err(|e| format!("evaluation failed after epoch {epoch}: {e}"))?;
    Ok(EpochStats {
        epoch,
        train_loss,
        test_acc,
        epoch_s,
        images_per_s: n as f64 / epoch_s.max(1e-9),
    })
}
