//! The MNIST job: the seed CNN trained on the real digits (`nnkern mnist`).

pub mod plot;
pub mod report;
