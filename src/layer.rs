//! The [`Layer`] trait and [`Param`], a trainable tensor with its gradient.

use crate::error::Result;
use crate::init::Init;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A trainable tensor, its gradient (same shape) and its name within its layer
/// (`"weight"`, `"bias"`, as in PyTorch's `state_dict`).
#[derive(Clone, Debug)]
pub struct Param {
    /// Local name.
    pub name: &'static str,
    /// The values.
    pub value: Tensor,
    /// The gradient of the loss, written by the layer's `backward`.
    pub grad: Tensor,
}

impl Param {
    /// A parameter holding `value`, with a zero gradient of the same shape.
    pub fn new(name: &'static str, value: Tensor) -> Param {
        // A copy of an existing tensor: no shape to validate.
        let mut grad = value.clone();
        grad.fill(0.0);
        Param { name, value, grad }
    }

    /// Visits a weight and its optional bias, in that order (`Linear`, `Conv2d`).
    pub(crate) fn visit_pair<'a>(
        weight: &'a Param,
        bias: &'a Option<Param>,
        f: &mut dyn FnMut(&'a Param),
    ) {
        f(weight);
        bias.iter().for_each(f);
    }

    /// [`Param::visit_pair`], mutably.
    pub(crate) fn visit_pair_mut(
        weight: &mut Param,
        bias: &mut Option<Param>,
        f: &mut dyn FnMut(&mut Param),
    ) {
        f(weight);
        bias.iter_mut().for_each(f);
    }
}

/// A weight of `shape` filled by `init` and, when `bias`, a bias of `shape[0]` elements
/// filled like PyTorch's (`TorchDefault` with the same fans): the parameters of `Linear` and
/// `Conv2d`. Fails if a size overflows or cannot be allocated.
pub(crate) fn init_params(
    shape: &[usize],
    bias: bool,
    init: Init,
    fan_in: usize,
    fan_out: usize,
    rng: &mut Rng,
) -> Result<(Param, Option<Param>)> {
    let mut w = Tensor::zeros(shape)?;
    init.fill(rng, w.data_mut(), fan_in, fan_out);
    let bias = match bias {
        true => {
            let mut b = Tensor::zeros(&shape[..1])?;
            Init::TorchDefault.fill(rng, b.data_mut(), fan_in, shape[0]);
            Some(Param::new("bias", b))
        }
        false => None,
    };
    Ok((Param::new("weight", w), bias))
}

/// A differentiable building block.
///
/// The contract, which lets layers compose by hand (residual adds, two-headed models, GANs):
/// * [`forward`](Layer::forward) computes the output into a buffer the layer owns and reuses,
///   keeping whatever its backward needs (masks, argmax indices, its output);
/// * [`backward`](Layer::backward) takes the *same* input as the latest forward and the
///   gradient of the loss with respect to the output, **writes** (does not accumulate) the
///   gradients of the parameters, and returns the gradient with respect to the input, also in
///   a buffer the layer owns (empty when input gradients are switched off with
///   [`set_input_grad`](Layer::set_input_grad)).
///
/// After the first call with a given batch shape, forward and backward allocate nothing.
pub trait Layer: Send {
    /// The layer's kind, e.g. `"Linear"` (used by summaries).
    fn kind(&self) -> &'static str;

    /// The output shape for an input of `input` shape (`[N, ...]`), or a shape error.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Computes the output of `x` and returns it.
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor>;

    /// Given the input `x` of the latest forward and `dy` (shaped like the output), writes the
    /// parameter gradients and returns the input gradient.
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor>;

    /// The output of the latest forward.
    fn output(&self) -> &Tensor;

    /// The input gradient of the latest backward (empty when switched off).
    fn input_grad(&self) -> &Tensor;

    /// Training (`true`, the default) or evaluation mode (dropout off).
    fn set_training(&mut self, _training: bool) {}

    /// Whether backward computes the input gradient (default on). A model's first layer
    /// switches it off, as PyTorch skips gradients of inputs that do not need them.
    fn set_input_grad(&mut self, _on: bool) {}

    /// Calls `f` on each parameter, in a fixed order.
    fn visit_params<'a>(&'a self, _f: &mut dyn FnMut(&'a Param)) {}

    /// Calls `f` on each parameter mutably, in the same order as [`Layer::visit_params`].
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&mut Param)) {}

    /// Calls `f` with the full name (`prefix` + local name) of each parameter, in the order of
    /// [`Layer::visit_params`]. Containers extend the prefix (`"3."`).
    fn visit_named_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param)) {
        self.visit_params(&mut |p| f(format!("{prefix}{}", p.name), p));
    }

    /// The number of trainable scalars.
    fn param_count(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |p| n += p.value.len());
        n
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |p| p.grad.fill(0.0));
    }
}

/// Fails with a shape error unless `x` has rank `rank` and the trailing dimensions `tail`
/// (`None` entries match anything).
pub(crate) fn expect_shape(what: &str, x: &[usize], tail: &[Option<usize>]) -> Result<()> {
    let ok = x.len() == tail.len() + 1
        && x.iter()
            .skip(1)
            .zip(tail)
            .all(|(d, t)| t.is_none_or(|t| *d == t));
    if ok {
        Ok(())
    } else {
        let dims: Vec<String> = tail
            .iter()
            .map(|t| t.map_or("*".to_string(), |d| d.to_string()))
            .collect();
        Err(crate::error::shape_err(
            what,
            format!("expected [N, {}]", dims.join(", ")),
            x,
        ))
    }
}

/// Fails unless `dy` has the shape `want` (the layer's output shape).
pub(crate) fn expect_same(what: &str, dy: &[usize], want: &[usize]) -> Result<()> {
    if dy == want {
        Ok(())
    } else {
        Err(crate::error::shape_err(
            what,
            format!("expected the output shape {want:?}"),
            dy,
        ))
    }
}
