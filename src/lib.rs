//! # nnkern
//!
//! The network layer on top of [`nnkern_kernels`]: tensors, layers with forward and backward,
//! a sequential model, losses, optimizers, checkpoints, data loaders, and the benchmark suite
//! runner (`nnkern-bench`).
//!
//! ## API in brief
//! * [`Tensor`]: owned f32 buffer + shape (`zeros`, `from_vec`, `shape`, `data`, `data_mut`,
//!   `resize` (reuses the allocation), `reshape`, `view`/`rows` for borrowed views); the
//!   constructors and `resize` return `Result` (a shape too large is an error, not a panic).
//! * [`Layer`]: `forward(&mut self, x) -> Result<&Tensor>`, `backward(&mut self, x, dy) ->
//!   Result<&Tensor>` (same `x` as the forward; writes parameter gradients, returns the input
//!   gradient), `output()`, `input_grad()`, `set_training`, `visit_params[_mut]`,
//!   `param_count`, `zero_grad`. Layers own and reuse their buffers.
//! * [`layers`]: `Linear::new(in, out, &mut rng)` / `with_init(in, out, bias, init, rng)`;
//!   `Conv2d::new(in, out, k, &mut rng)` / `with_options(in, out, [kh, kw],
//!   Conv2dOptions { stride, padding, dilation, groups, bias }, init, rng)`;
//!   `MaxPool2d::new(k)` / `with_options(kernel, stride, padding)`, `AvgPool2d` likewise (plus
//!   `count_include_pad`), `GlobalAvgPool::new()` (`[N, C, H, W]` → `[N, C]`),
//!   `Flatten::new()`, `Dropout::new(p, seed)`, `Activation::{relu, leaky_relu, sigmoid, tanh,
//!   gelu}()` or `Activation::new(ActKind::..)`, `Softmax::new()`.
//! * [`Sequential`]: `Sequential::new().add(layer)...`, itself a `Layer`; `named_params()`
//!   (`"0.weight"`), `summary(&[c, h, w])`, `train()`/`eval()`.
//! * [`loss`]: `SoftmaxCrossEntropy::forward(&logits, &labels_u32) -> Result<f32>` then
//!   `.grad()`; `MseLoss`, `BceWithLogitsLoss`, `HingeLoss` likewise with a target tensor.
//! * [`optim`]: `Optimizer::adam(lr)`, `::sgd_momentum(lr, m)`, `::new(Method::.., lr)`;
//!   `step(&mut model)`, `set_lr`; [`optim::LrSchedule`] (`Step`, `Cosine`).
//! * [`checkpoint`]: `save(path, &model, Some(&opt))`, `load(path, &mut model, Some(&mut opt))`
//!   (safetensors; atomic write; validated load that leaves the model unchanged on error).
//! * [`init::Init`]: Kaiming/Xavier uniform/normal from a seeded [`rng::Rng`].
//!
//! A training step:
//! ```
//! use nnkern::{layers::{Activation, Linear}, loss::SoftmaxCrossEntropy, optim::Optimizer};
//! use nnkern::{rng::Rng, Layer, Sequential, Tensor};
//! let mut rng = Rng::new(42);
//! let mut model = Sequential::new()
//!     .add(Linear::new(4, 8, &mut rng))
//!     .add(Activation::relu())
//!     .add(Linear::new(8, 3, &mut rng));
//! let mut loss = SoftmaxCrossEntropy::new();
//! let mut opt = Optimizer::adam(1e-3);
//! let x = Tensor::zeros(&[2, 4]).unwrap();
//! let labels = [0u32, 2];
//! let logits = model.forward(&x).unwrap();
//! let l = loss.forward(logits, &labels).unwrap();
//! model.backward(&x, loss.grad()).unwrap();
//! opt.step(&mut model).unwrap();
//! assert!(l.is_finite());
//! ```

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod init;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod mnist;
pub mod optim;
pub mod rng;
pub mod sequential;
pub mod tensor;

pub use error::{Error, Result};
pub use layer::{Layer, Param};
pub use nnkern_kernels as kernels;
pub use sequential::Sequential;
pub use tensor::{Tensor, TensorView};
