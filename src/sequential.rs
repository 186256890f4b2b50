//! [`Sequential`]: layers applied in order, with named parameters, a parameter count and a
//! Keras-like [`Sequential::summary`].

use crate::error::{Error, Result};
use crate::layer::{Layer, Param};
use crate::tensor::Tensor;

/// A stack of layers; itself a [`Layer`], so models nest.
///
/// Parameter names follow PyTorch's `state_dict`: `"<index>.<name>"`, e.g. `"0.weight"`.
/// The model computes no gradient for its own input unless [`Layer::set_input_grad`] turns it
/// on (as PyTorch skips inputs that do not require grad); every inner layer does.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    input_grad: bool,
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer (builder style; Keras' name, hence the lint exception).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Sequential {
        self.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, mut layer: Box<dyn Layer>) {
        layer.set_input_grad(!self.layers.is_empty() || self.input_grad);
        self.layers.push(layer);
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, mutable.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// Training mode (dropout on).
    pub fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (dropout off).
    pub fn eval(&mut self) {
        self.set_training(false);
    }

    /// `(name, parameter)` pairs in a fixed order, names like `"0.weight"`.
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        let mut out = Vec::new();
        self.visit_named_params("", &mut |name, p| out.push((name, p)));
        out
    }

    /// A table like Keras' `model.summary()` for samples of shape `sample_shape` (without the
    /// batch dimension): each layer's type, output shape (`None` is the batch) and parameter
    /// count, then the totals.
    pub fn summary(&self, sample_shape: &[usize]) -> Result<String> {
        let mut shape = Vec::with_capacity(sample_shape.len() + 1);
        shape.push(1);
        shape.extend_from_slice(sample_shape);
        let rule = "=".repeat(64);
        let mut s = format!(
            "{:<28}{:<24}{:>12}\n{rule}\n",
            "Layer (type)", "Output Shape", "Param #"
        );
        for (i, layer) in self.layers.iter().enumerate() {
            shape = layer.output_shape(&shape)?;
            let dims: Vec<String> = std::iter::once("None".to_string())
                .chain(shape[1..].iter().map(|d| d.to_string()))
                .collect();
            let name = format!("{} ({})", i, layer.kind());
            let out = format!("({})", dims.join(", "));
            s += &format!("{name:<28}{out:<24}{:>12}\n", layer.param_count());
        }
        let total = self.param_count();
        s += &format!(
            "{rule}\nTotal params: {total}\nTrainable params: {total}\nNon-trainable params: 0\n"
        );
        Ok(s)
    }

    fn check_nonempty(&self) -> Result<()> {
        if self.layers.is_empty() {
            Err(Error::Invalid("Sequential model has no layers".into()))
        } else {
            Ok(())
        }
    }
}

impl Layer for Sequential {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.check_nonempty()?;
        let mut shape = input.to_vec();
        for layer in &self.layers {
            shape = layer.output_shape(&shape)?;
        }
        Ok(shape)
    }

    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.check_nonempty()?;
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let input = before.last().map_or(x, |l| l.output());
            rest[0].forward(input)?;
        }
        Ok(self.output())
    }

    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        self.check_nonempty()?;
        let n = self.layers.len();
        for i in (0..n).rev() {
            let (before, rest) = self.layers.split_at_mut(i);
            let (layer, after) = rest.split_first_mut().expect("i < n");
            let input = before.last().map_or(x, |l| l.output());
            let grad = after.first().map_or(dy, |l| l.input_grad());
            layer.backward(input, grad)?;
        }
        Ok(self.layers[0].input_grad())
    }

    fn output(&self) -> &Tensor {
        self.layers.last().map_or(&EMPTY, |l| l.output())
    }

    fn input_grad(&self) -> &Tensor {
        self.layers.first().map_or(&EMPTY, |l| l.input_grad())
    }

    fn set_training(&mut self, training: bool) {
        self.layers
            .iter_mut()
            .for_each(|l| l.set_training(training));
    }

    fn set_input_grad(&mut self, on: bool) {
        self.input_grad = on;
        if let Some(l) = self.layers.first_mut() {
            l.set_input_grad(on);
        }
    }

    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a Param)) {
        self.layers.iter().for_each(|l| l.visit_params(f));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut Param)) {
        self.layers.iter_mut().for_each(|l| l.visit_params_mut(f));
    }

    fn visit_named_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_named_params(&format!("{prefix}{i}."), f);
        }
    }
}

static EMPTY: Tensor = Tensor::new_empty();
