//! Finite-difference gradient checks of every layer, each loss, and a whole small model.

mod common;

use common::{assert_close, check_layer, rand_tensor};
use nnkern::layers::{Activation, Dropout, Flatten, Linear, Softmax};
use nnkern::loss::{BceWithLogitsLoss, HingeLoss, MseLoss, SoftmaxCrossEntropy};
use nnkern::rng::Rng;
use nnkern::{Layer, Sequential, Tensor};

#[test]
fn linear_with_and_without_bias() {
    let mut rng = Rng::new(1);
    let x = rand_tensor(&[5, 7], 2, 0.0);
    check_layer("Linear", &mut Linear::new(7, 3, &mut rng), &x, 1e-2, 20);
    let mut nb =
        Linear::with_init(7, 3, false, nnkern::init::Init::XavierNormal, &mut rng).unwrap();
    assert_eq!(nb.param_count(), 21);
    check_layer("Linear (no bias)", &mut nb, &x, 1e-2, 20);
}

#[test]
fn activations() {
    let x = rand_tensor(&[4, 3, 5], 3, 0.05);
    for mut a in [
        Activation::relu(),
        Activation::leaky_relu(0.1),
        Activation::sigmoid(),
        Activation::tanh(),
        Activation::gelu(),
    ] {
        let kind = a.kind();
        check_layer(kind, &mut a, &x, 1e-2, 30);
    }
    check_layer(
        "Softmax",
        &mut Softmax::new(),
        &rand_tensor(&[4, 6], 4, 0.0),
        1e-2,
        24,
    );
    check_layer("Flatten", &mut Flatten::new(), &x, 1e-2, 20);
}

#[test]
fn relu_propagates_nan_and_zeroes_negatives() {
    let mut a = Activation::relu();
    let x = Tensor::from_vec(&[1, 3], vec![-1.0, f32::NAN, 2.0]).unwrap();
    let y = a.forward(&x).unwrap();
    assert_eq!(y.data()[0], 0.0);
    assert!(y.data()[1].is_nan());
    assert_eq!(y.data()[2], 2.0);
}

#[test]
fn dropout_masks_scales_and_is_seeded() {
    let x = rand_tensor(&[100, 100], 5, 0.1);
    let mut d = Dropout::new(0.3, 11).unwrap();
    let y = d.forward(&x).unwrap().clone();
    let kept = y.data().iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
    // 10_000 Bernoulli(0.7) draws: standard deviation 0.0046; 5 sigma.
    assert!((kept - 0.7).abs() < 0.023, "kept fraction {kept}");
    for (&a, &b) in y.data().iter().zip(x.data()) {
        assert!(a == 0.0 || (a - b / 0.7).abs() <= 1e-6 * b.abs().max(1.0));
    }
    // Backward applies the same mask.
    let dy = rand_tensor(&[100, 100], 6, 0.0);
    let dx = d.backward(&x, &dy).unwrap();
    for i in 0..x.len() {
        let m = y.data()[i] / x.data()[i];
        assert!((dx.data()[i] - dy.data()[i] * m).abs() <= 1e-5);
    }
    // Same seed, same mask; eval mode is the identity.
    let mut d2 = Dropout::new(0.3, 11).unwrap();
    assert_eq!(d2.forward(&x).unwrap(), &y);
    d2.set_training(false);
    assert_eq!(d2.forward(&x).unwrap(), &x);
    assert!(Dropout::new(1.0, 0).is_err());
}

/// Checks a loss's gradient against central differences of its value.
fn check_loss(what: &str, mut f: impl FnMut(&Tensor) -> (f32, Tensor), x: &Tensor) {
    let (_, g) = f(x);
    let h = 1e-2f32;
    let mut xp = x.clone();
    for i in 0..x.len() {
        let o = xp.data()[i];
        xp.data_mut()[i] = o + h;
        let lp = f(&xp).0 as f64;
        xp.data_mut()[i] = o - h;
        let lm = f(&xp).0 as f64;
        xp.data_mut()[i] = o;
        let fd = (lp - lm) / (2.0 * h as f64);
        assert_close(
            &format!("{what}[{i}]"),
            g.data()[i] as f64,
            fd,
            lp.abs().max(1.0),
            h as f64,
            2e-2,
        );
    }
}

#[test]
fn losses() {
    let x = rand_tensor(&[4, 5], 8, 0.0);
    let labels = [0u32, 4, 2, 2];
    let mut sx = SoftmaxCrossEntropy::new();
    check_loss(
        "softmax_xent",
        |x| (sx.forward(x, &labels).unwrap(), sx.grad().clone()),
        &x,
    );
    let t = rand_tensor(&[4, 5], 9, 0.0);
    let mut mse = MseLoss::new();
    check_loss(
        "mse",
        |x| (mse.forward(x, &t).unwrap(), mse.grad().clone()),
        &x,
    );
    let t01 =
        Tensor::from_vec(&[4, 5], t.data().iter().map(|v| (v + 1.0) / 2.0).collect()).unwrap();
    let mut bce = BceWithLogitsLoss::new();
    check_loss(
        "bce",
        |x| (bce.forward(x, &t01).unwrap(), bce.grad().clone()),
        &x,
    );
    // Hinge: targets ±1, inputs away from the kink at t·x = 1.
    let tpm = Tensor::from_vec(&[4, 5], t.data().iter().map(|v| v.signum()).collect()).unwrap();
    let xh = Tensor::from_vec(&[4, 5], x.data().iter().map(|v| v * 3.0).collect()).unwrap();
    let mut hinge = HingeLoss::new();
    check_loss(
        "hinge",
        |x| (hinge.forward(x, &tpm).unwrap(), hinge.grad().clone()),
        &xh,
    );
}

#[test]
fn softmax_xent_values_and_errors() {
    let mut sx = SoftmaxCrossEntropy::new();
    // Huge logits stay finite: loss of [1e4, -1e4] with label 0 is 0, with label 1 is 2e4.
    let x = Tensor::from_vec(&[2, 2], vec![1e4, -1e4, 1e4, -1e4]).unwrap();
    let l = sx.forward(&x, &[0, 1]).unwrap();
    assert!((l - 1e4).abs() <= 1.0, "{l}");
    assert!(sx.forward(&x, &[0, 2]).is_err(), "label out of range");
    assert!(sx.forward(&x, &[0]).is_err(), "label count");
    // -inf logits are allowed.
    let x = Tensor::from_vec(&[1, 3], vec![0.0, f32::NEG_INFINITY, 0.0]).unwrap();
    let l = sx.forward(&x, &[0]).unwrap();
    assert!((l - std::f32::consts::LN_2).abs() < 1e-6);
    assert_eq!(sx.grad().data()[1], 0.0);
}

#[test]
fn mlp_model_gradients() {
    let mut rng = Rng::new(21);
    let mut model = Sequential::new()
        .add(Linear::new(6, 5, &mut rng))
        .add(Activation::tanh())
        .add(Linear::new(5, 4, &mut rng))
        .add(Activation::gelu())
        .add(Linear::new(4, 3, &mut rng));
    model.set_input_grad(true);
    let x = rand_tensor(&[4, 6], 22, 0.0);
    check_layer("MLP", &mut model, &x, 1e-2, 12);
}

#[test]
fn shape_errors_are_reported() {
    let mut rng = Rng::new(0);
    let mut l = Linear::new(3, 2, &mut rng);
    let err = l
        .forward(&Tensor::zeros(&[2, 4]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("Linear input"), "{err}");
    assert!(Sequential::new()
        .forward(&Tensor::zeros(&[1]).unwrap())
        .is_err());
}

/// A residual block written by hand from the same parts: `y = x + f(x)`. Shows that layers
/// compose beyond `Sequential` (the backward adds the skip path's gradient).
struct Residual {
    inner: Sequential,
    y: Tensor,
    dx: Tensor,
}

impl Layer for Residual {
    fn kind(&self) -> &'static str {
        "Residual"
    }
    fn output_shape(&self, input: &[usize]) -> nnkern::Result<Vec<usize>> {
        self.inner.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor) -> nnkern::Result<&Tensor> {
        let f = self.inner.forward(x)?;
        self.y.resize(f.shape())?;
        for ((y, &a), &b) in self.y.data_mut().iter_mut().zip(f.data()).zip(x.data()) {
            *y = a + b;
        }
        Ok(&self.y)
    }
    fn backward(&mut self, x: &Tensor, dy: &Tensor) -> nnkern::Result<&Tensor> {
        let df = self.inner.backward(x, dy)?;
        self.dx.resize(x.shape())?;
        for ((d, &a), &b) in self.dx.data_mut().iter_mut().zip(df.data()).zip(dy.data()) {
            *d = a + b;
        }
        Ok(&self.dx)
    }
    fn output(&self) -> &Tensor {
        &self.y
    }
    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
    fn visit_params<'a>(&'a self, f: &mut dyn FnMut(&'a nnkern::Param)) {
        self.inner.visit_params(f)
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&mut nnkern::Param)) {
        self.inner.visit_params_mut(f)
    }
    fn visit_named_params<'a>(
        &'a self,
        prefix: &str,
        f: &mut dyn FnMut(String, &'a nnkern::Param),
    ) {
        self.inner.visit_named_params(prefix, f)
    }
}

#[test]
fn hand_written_residual_block_composes() {
    let mut rng = Rng::new(31);
    let mut inner = Sequential::new()
        .add(Linear::new(4, 4, &mut rng))
        .add(Activation::tanh());
    inner.set_input_grad(true);
    let block = Residual {
        inner,
        y: Tensor::default(),
        dx: Tensor::default(),
    };
    let mut model = Sequential::new()
        .add(block)
        .add(Linear::new(4, 2, &mut rng));
    model.set_input_grad(true);
    assert_eq!(model.param_count(), 4 * 4 + 4 + 4 * 2 + 2);
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]);
    check_layer(
        "Residual MLP",
        &mut model,
        &rand_tensor(&[3, 4], 32, 0.0),
        1e-2,
        12,
    );
}

#[test]
fn conv2d_with_every_option() {
    use nnkern::init::Init;
    use nnkern::layers::{Conv2d, Conv2dOptions};
    let mut rng = Rng::new(41);
    let x = rand_tensor(&[2, 4, 7, 6], 42, 0.0);
    let cases = [
        Conv2dOptions::default(),
        Conv2dOptions {
            stride: [2, 1],
            padding: [1, 2],
            ..Default::default()
        },
        Conv2dOptions {
            dilation: [2, 2],
            padding: [1, 1],
            bias: false,
            ..Default::default()
        },
        Conv2dOptions {
            groups: 2,
            stride: [2, 2],
            padding: [1, 0],
            ..Default::default()
        },
    ];
    for opts in cases {
        let mut c =
            Conv2d::with_options(4, 6, [3, 2], opts, Init::KaimingUniform, &mut rng).unwrap();
        let want = c.output_shape(x.shape()).unwrap();
        assert_eq!(c.forward(&x).unwrap().shape(), &want[..]);
        check_layer(&format!("Conv2d {opts:?}"), &mut c, &x, 1e-2, 16);
    }
    assert!(Conv2d::with_options(
        4,
        6,
        [3, 3],
        Conv2dOptions {
            groups: 4,
            ..Default::default()
        },
        Init::Zeros,
        &mut rng
    )
    .is_err());
    let mut c = Conv2d::new(3, 2, 3, &mut rng);
    assert!(c.forward(&x).is_err(), "channel mismatch is an error");
}

#[test]
fn pooling_layers() {
    use nnkern::layers::{AvgPool2d, GlobalAvgPool, MaxPool2d};
    // Distinct values at least 0.05 apart, so no window has a near-tie the step could flip.
    let mut x = Tensor::zeros(&[2, 3, 6, 5]).unwrap();
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(51).shuffle(&mut order);
    for (i, v) in x.data_mut().iter_mut().enumerate() {
        *v = order[i] as f32 * 0.05 - 4.0;
    }
    check_layer("MaxPool2d(2)", &mut MaxPool2d::new(2), &x, 1e-2, 24);
    check_layer(
        "MaxPool2d(3, s2, p1)",
        &mut MaxPool2d::with_options([3, 3], [2, 2], [1, 1]),
        &x,
        1e-2,
        24,
    );
    check_layer("AvgPool2d(2)", &mut AvgPool2d::new(2), &x, 1e-2, 24);
    check_layer(
        "AvgPool2d(3, s2, p1)",
        &mut AvgPool2d::with_options([3, 3], [2, 2], [1, 1], false),
        &x,
        1e-2,
        24,
    );
    let mut g = GlobalAvgPool::new();
    assert_eq!(g.forward(&x).unwrap().shape(), &[2, 3]);
    check_layer("GlobalAvgPool", &mut g, &x, 1e-2, 24);
}

#[test]
fn small_cnn_model_gradients() {
    use nnkern::layers::{AvgPool2d, Conv2d, Conv2dOptions, MaxPool2d};
    let mut rng = Rng::new(61);
    let pad = Conv2dOptions {
        padding: [1, 1],
        ..Default::default()
    };
    let init = nnkern::init::Init::KaimingNormal;
    let mut model = Sequential::new()
        .add(Conv2d::with_options(2, 4, [3, 3], pad, init, &mut rng).unwrap())
        .add(Activation::tanh())
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(4, 5, 2, &mut rng))
        .add(Activation::gelu())
        .add(AvgPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(5, 3, &mut rng));
    model.set_input_grad(true);
    let x = rand_tensor(&[2, 2, 8, 8], 62, 0.0);
    assert_eq!(model.output_shape(x.shape()).unwrap(), [2, 3]);
    check_layer("small CNN", &mut model, &x, 1e-2, 10);
    let table = model.summary(&[2, 8, 8]).unwrap();
    assert!(
        table.contains("0 (Conv2d)") && table.contains("(None, 4, 8, 8)"),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "Total params: {}",
            2 * 4 * 9 + 4 + 4 * 5 * 4 + 5 + 5 * 3 + 3
        )),
        "{table}"
    );
}
