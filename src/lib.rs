//! # nnkern
//!
//! The network layer on top of [`nnkern_kernels`]: tensors, layers with forward and backward,
//! a sequential model, losses, optimizers, checkpoints, data loaders, and the benchmark suite
//! runner (`nnkern-bench`).

pub mod bench;
pub mod data;
pub mod mnist;
pub mod rng;

pub use nnkern_kernels as kernels;
