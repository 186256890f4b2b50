//! Micro-kernels per ISA.
