//! Shape and regularisation layers: [`Flatten`] and [`Dropout`].

use crate::error::{Error, Result};
use crate::layer::{expect_same, Layer};
use crate::rng::Rng;
use crate::tensor::{numel, Tensor};

/// Flattens `[N, d1, d2, ...]` to `[N, d1·d2·...]` (a copy into the layer's buffer).
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    y: Tensor,
    dx: Tensor,
    shape: [usize; 2],
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Flatten {
        Flatten::default()
    }
}

fn flat_shape(input: &[usize]) -> Result<[usize; 2]> {
    let n = *input
        .first()
        .ok_or_else(|| crate::error::shape_err("Flatten input", "expected at least [N]", input))?;
    let rest = numel(&input[1..])
        .ok_or_else(|| crate::error::shape_err("Flatten input", "size overflows", input))?;
    Ok([n, rest])
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(flat_shape(input)?.to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.shape = flat_shape(x.shape())?;
        self.y.resize(&self.shape)?;
        self.y.data_mut().copy_from_slice(x.data());
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        expect_same(
            "Flatten output gradient",
            dy.shape(),
            &flat_shape(x.shape())?,
        )?;
        self.dx.resize(x.shape())?;
        self.dx.data_mut().copy_from_slice(dy.data());
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

/// Inverted dropout: in training, zeroes each element with probability `p` and scales the
/// rest by `1 / (1 - p)`, from a seeded generator (reproducible runs); identity in eval mode.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    rng: Rng,
    training: bool,
    mask: Vec<f32>,
    y: Tensor,
    dx: Tensor,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)` and a mask generator seeded with `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Invalid(format!(
                "Dropout probability must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout {
            p,
            rng: Rng::new(seed),
            training: true,
            mask: Vec::new(),
            y: Tensor::default(),
            dx: Tensor::default(),
        })
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &Tensor) -> Result<&Tensor> {
        self.y.resize(x.shape())?;
        self.mask.resize(x.len(), 1.0);
        if self.training && self.p > 0.0 {
            let scale = 1.0 / (1.0 - self.p);
            for m in self.mask.iter_mut() {
                let keep = self.rng.next_f64() >= self.p as f64;
                *m = if keep { scale } else { 0.0 };
            }
        } else {
            self.mask.fill(1.0);
        }
        for ((y, &x), &m) in self.y.data_mut().iter_mut().zip(x.data()).zip(&self.mask) {
            *y = x * m;
        }
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> Result<&Tensor> {
        expect_same("Dropout output gradient", dy.shape(), x.shape())?;
        if self.mask.len() != x.len() {
            return Err(Error::Invalid("Dropout backward before forward".into()));
        }
        self.dx.resize(x.shape())?;
        for ((d, &g), &m) in self.dx.data_mut().iter_mut().zip(dy.data()).zip(&self.mask) {
            *d = g * m;
        }
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
