//! Learning-rate schedules (`torch.optim.lr_scheduler`'s StepLR and CosineAnnealingLR).

/// A learning-rate schedule over epochs (or any step unit), as in `torch.optim.lr_scheduler`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// `StepLR`: `base · gamma^(epoch / step_size)` (integer division).
    Step {
        /// Epochs between decays.
        step_size: u64,
        /// Decay factor.
        gamma: f32,
    },
    /// `CosineAnnealingLR` (closed form): `eta_min + (base − eta_min)(1 + cos(π·e/t_max))/2`,
    /// with `e = min(epoch, t_max)`.
    Cosine {
        /// Epochs of the half cosine.
        t_max: u64,
        /// Final rate.
        eta_min: f32,
    },
}

impl LrSchedule {
    /// The learning rate at `epoch` (0-based) for base rate `base`.
    pub fn lr_at(&self, base: f32, epoch: u64) -> f32 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step { step_size, gamma } => {
                let k = epoch / step_size.max(1);
                (base as f64 * (gamma as f64).powi(k.min(i32::MAX as u64) as i32)) as f32
            }
            LrSchedule::Cosine { t_max, eta_min } => {
                let e = epoch.min(t_max) as f64 / t_max.max(1) as f64;
                let (b, m) = (base as f64, eta_min as f64);
                (m + (b - m) * (1.0 + (std::f64::consts::PI * e).cos()) / 2.0) as f32
            }
        }
    }
}
