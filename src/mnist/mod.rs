//! The MNIST job: the seed CNN trained on the real digits (`nnkern mnist`).
//!
//! [`train::Trainer`] runs epochs and evaluations on a [`crate::data::MnistSplit`];
//! [`cli::run`] adds the console (progress bar, epoch lines), `--metrics`, `--plot` and
//! `--save`.

pub mod cli;
pub mod model;
pub mod plot;
pub mod report;
pub mod train;
