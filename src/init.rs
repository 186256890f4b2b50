//! Seeded weight initialisation: He/Kaiming and Glorot/Xavier, uniform and normal, with the
//! bounds of `torch.nn.init`. `fan_in`/`fan_out` of a weight `[out, in, kh, kw]` are
//! `in·kh·kw` and `out·kh·kw`.

use crate::rng::Rng;

/// An initialisation scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He/Kaiming uniform for ReLU: `U(-b, b)`, `b = sqrt(6 / fan_in)`.
    KaimingUniform,
    /// He/Kaiming normal for ReLU: `N(0, 2 / fan_in)`.
    KaimingNormal,
    /// Glorot/Xavier uniform: `U(-b, b)`, `b = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// PyTorch's default for `Linear`/`Conv2d` weights and biases: `U(-1/sqrt(fan_in),
    /// 1/sqrt(fan_in))` (Kaiming uniform with `a = sqrt(5)`).
    TorchDefault,
    /// All zeros.
    Zeros,
}

impl Init {
    /// Fills `out` from `rng` for a tensor with the given fans (zero fans are treated as 1).
    pub fn fill(self, rng: &mut Rng, out: &mut [f32], fan_in: usize, fan_out: usize) {
        let fi = fan_in.max(1) as f64;
        let fo = fan_out.max(1) as f64;
        let uniform = |rng: &mut Rng, out: &mut [f32], b: f64| {
            for x in out.iter_mut() {
                *x = rng.uniform(-b, b) as f32;
            }
        };
        let normal = |rng: &mut Rng, out: &mut [f32], std: f64| {
            for x in out.iter_mut() {
                *x = (rng.normal() * std) as f32;
            }
        };
        match self {
            Init::KaimingUniform => uniform(rng, out, (6.0 / fi).sqrt()),
            Init::KaimingNormal => normal(rng, out, (2.0 / fi).sqrt()),
            Init::XavierUniform => uniform(rng, out, (6.0 / (fi + fo)).sqrt()),
            Init::XavierNormal => normal(rng, out, (2.0 / (fi + fo)).sqrt()),
            Init::TorchDefault => uniform(rng, out, 1.0 / fi.sqrt()),
            Init::Zeros => out.fill(0.0),
        }
    }
}
