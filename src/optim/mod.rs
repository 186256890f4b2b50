//! Optimizers with `torch.optim`'s update rules (the equations are in
//! [`nnkern_kernels::optim`], which runs each update as one fused SIMD pass per parameter)
//! and learning-rate schedules.
//!
//! ```
//! use nnkern::{layers::Linear, optim::Optimizer, rng::Rng, Layer};
//! let mut rng = Rng::new(0);
//! let mut layer = Linear::new(3, 2, &mut rng);
//! let mut opt = Optimizer::adam(1e-3);
//! // ... forward, loss, backward ...
//! opt.step(&mut layer).unwrap();
//! ```

mod schedule;

pub use schedule::LrSchedule;

use crate::error::{Error, Result};
use crate::layer::{Layer, Param};
use nnkern_kernels::optim::{
    adagrad_step, adam_step, rmsprop_step, sgd_step, AdaGradConfig, AdamConfig, RmsPropConfig,
    SgdConfig,
};

/// SGD settings (defaults: no momentum, no dampening, no weight decay).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f32,
    /// Dampening of the momentum.
    pub dampening: f32,
    /// L2 penalty.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// AdaGrad settings (PyTorch defaults: `eps = 1e-10`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGrad {
    /// Learning-rate decay per step.
    pub lr_decay: f32,
    /// L2 penalty.
    pub weight_decay: f32,
    /// Denominator term.
    pub eps: f32,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f32,
}

impl Default for AdaGrad {
    fn default() -> Self {
        AdaGrad {
            lr_decay: 0.0,
            weight_decay: 0.0,
            eps: 1e-10,
            initial_accumulator_value: 0.0,
        }
    }
}

/// RMSprop settings (PyTorch defaults: `alpha = 0.99`, `eps = 1e-8`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsProp {
    /// Smoothing constant.
    pub alpha: f32,
    /// Denominator term.
    pub eps: f32,
    /// L2 penalty.
    pub weight_decay: f32,
    /// Momentum factor.
    pub momentum: f32,
    /// Centered variant.
    pub centered: bool,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// Adam / AdamW settings (PyTorch defaults: `betas = (0.9, 0.999)`, `eps = 1e-8`; weight
/// decay 0 for Adam, 0.01 for AdamW).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator term.
    pub eps: f32,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// An update rule and its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.Adagrad`.
    AdaGrad(AdaGrad),
    /// `torch.optim.RMSprop`.
    RmsProp(RmsProp),
    /// `torch.optim.Adam`.
    Adam(Adam),
    /// `torch.optim.AdamW`.
    AdamW(Adam),
}

impl Method {
    /// A short name (`"sgd"`, `"adagrad"`, `"rmsprop"`, `"adam"`, `"adamw"`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Sgd(_) => "sgd",
            Method::AdaGrad(_) => "adagrad",
            Method::RmsProp(_) => "rmsprop",
            Method::Adam(_) => "adam",
            Method::AdamW(_) => "adamw",
        }
    }

    /// The names of the per-parameter state buffers (PyTorch's), by slot; a slot is used only
    /// when the settings need it (e.g. `momentum_buffer` when `momentum > 0`).
    pub fn slot_names(&self) -> &'static [&'static str] {
        match self {
            Method::Sgd(_) => &["momentum_buffer"],
            Method::AdaGrad(_) => &["sum"],
            Method::RmsProp(_) => &["square_avg", "momentum_buffer", "grad_avg"],
            Method::Adam(_) | Method::AdamW(_) => &["exp_avg", "exp_avg_sq"],
        }
    }

    fn slots_used(&self) -> [bool; 3] {
        match self {
            Method::Sgd(s) => [s.momentum > 0.0, false, false],
            Method::AdaGrad(_) => [true, false, false],
            Method::RmsProp(r) => [true, r.momentum > 0.0, r.centered],
            Method::Adam(_) | Method::AdamW(_) => [true, true, false],
        }
    }

    fn initial_value(&self) -> f32 {
        match self {
            Method::AdaGrad(a) => a.initial_accumulator_value,
            _ => 0.0,
        }
    }
}

/// An optimizer: an update rule, a learning rate, a step count and per-parameter state,
/// created lazily on the first step (later steps allocate nothing).
#[derive(Clone, Debug)]
pub struct Optimizer {
    method: Method,
    lr: f32,
    steps: u64,
    /// Per parameter, up to three state buffers (empty when the slot is unused).
    state: Vec<[Vec<f32>; 3]>,
}

impl Optimizer {
    /// An optimizer with `method` and learning rate `lr`.
    pub fn new(method: Method, lr: f32) -> Optimizer {
        Optimizer {
            method,
            lr,
            steps: 0,
            state: Vec::new(),
        }
    }

    /// Plain SGD.
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::new(Method::Sgd(Sgd::default()), lr)
    }

    /// SGD with momentum.
    pub fn sgd_momentum(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(
            Method::Sgd(Sgd {
                momentum,
                ..Sgd::default()
            }),
            lr,
        )
    }

    /// Adam with PyTorch's defaults.
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::new(Method::Adam(Adam::default()), lr)
    }

    /// AdamW with PyTorch's defaults and weight decay `weight_decay`.
    pub fn adamw(lr: f32, weight_decay: f32) -> Optimizer {
        Optimizer::new(
            Method::AdamW(Adam {
                weight_decay,
                ..Adam::default()
            }),
            lr,
        )
    }

    /// The update rule.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The current learning rate.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Sets the learning rate (schedules call this between epochs).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Updates every parameter of `model` from its gradient. The first call creates the state
    /// for the model's parameters; a model whose parameter shapes changed since is an error
    /// (nothing is updated then).
    pub fn step(&mut self, model: &mut dyn Layer) -> Result<()> {
        self.ensure_state(model)?;
        // A step count restored from a checkpoint may be u64::MAX: an error, not an overflow.
        let t = self
            .steps
            .checked_add(1)
            .ok_or_else(|| Error::Invalid("optimizer step count would overflow u64".into()))?;
        let (method, lr, first) = (self.method, self.lr, self.steps == 0);
        let mut states = self.state.iter_mut();
        let mut result = Ok(());
        model.visit_params_mut(&mut |p: &mut Param| {
            if result.is_err() {
                return;
            }
            let s = states.next().expect("state count checked");
            result = update(&method, lr, t, first, p, s);
        });
        result?;
        self.steps = t;
        Ok(())
    }

    fn ensure_state(&mut self, model: &dyn Layer) -> Result<()> {
        let used = self.method.slots_used();
        let init = self.method.initial_value();
        if self.state.is_empty() && self.steps == 0 {
            model.visit_params(&mut |p| {
                let n = p.value.len();
                let slot = |u: bool| if u { vec![init; n] } else { Vec::new() };
                self.state
                    .push([slot(used[0]), slot(used[1]), slot(used[2])]);
            });
        }
        let mut i = 0;
        let mut ok = true;
        model.visit_params(&mut |p| {
            let matches = self.state.get(i).is_some_and(|s| {
                s.iter()
                    .zip(used)
                    .all(|(b, u)| !u || b.len() == p.value.len())
            });
            ok &= matches && p.grad.len() == p.value.len();
            i += 1;
        });
        if !ok || i != self.state.len() {
            return Err(Error::Invalid(
                "optimizer state does not match the model's parameters".into(),
            ));
        }
        Ok(())
    }

    /// The state buffers of parameter `index` with their slot names (used slots only).
    pub fn param_state(&self, index: usize) -> Vec<(&'static str, &[f32])> {
        let used = self.method.slots_used();
        let names = self.method.slot_names();
        self.state
            .get(index)
            .map(|s| {
                (0..names.len())
                    .filter(|&k| used[k])
                    .map(|k| (names[k], s[k].as_slice()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the step count and the whole state (used by checkpoints, which validate the
    /// shapes first).
    pub(crate) fn restore(&mut self, steps: u64, state: Vec<[Vec<f32>; 3]>) {
        self.steps = steps;
        self.state = state;
    }

    /// Which slots hold state.
    pub(crate) fn used_slots(&self) -> [bool; 3] {
        self.method.slots_used()
    }

    /// Number of parameters with state (0 before the first step).
    pub fn state_len(&self) -> usize {
        self.state.len()
    }
}

fn update(
    method: &Method,
    lr: f32,
    t: u64,
    first: bool,
    p: &mut Param,
    s: &mut [Vec<f32>; 3],
) -> Result<()> {
    let (param, grad) = (p.value.data_mut(), p.grad.data());
    let [s0, s1, s2] = s;
    match *method {
        Method::Sgd(c) => {
            let cfg = SgdConfig {
                lr,
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: c.weight_decay,
                nesterov: c.nesterov,
            };
            sgd_step(&cfg, param, grad, s0, first)?
        }
        Method::AdaGrad(c) => {
            let cfg = AdaGradConfig {
                lr,
                lr_decay: c.lr_decay,
                weight_decay: c.weight_decay,
                eps: c.eps,
            };
            adagrad_step(&cfg, t, param, grad, s0)?
        }
        Method::RmsProp(c) => {
            let cfg = RmsPropConfig {
                lr,
                alpha: c.alpha,
                eps: c.eps,
                weight_decay: c.weight_decay,
                momentum: c.momentum,
                centered: c.centered,
            };
            rmsprop_step(&cfg, param, grad, s0, s1, s2)?
        }
        Method::Adam(c) | Method::AdamW(c) => {
            let cfg = AdamConfig {
                lr,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: c.weight_decay,
                decoupled: matches!(method, Method::AdamW(_)),
            };
            adam_step(&cfg, t, param, grad, s0, s1)?
        }
    }
    Ok(())
}
