//! Table-driven bad input for the public API of `nnkern`: tensors, layers, the model, losses,
//! optimizers, checkpoints and the data loaders. Each row is one call with one thing wrong and
//! the error variant it must return; failed checkpoint loads must leave the model and the
//! optimizer unchanged. (The kernels crate has its own table in `kernels/tests/bad_input.rs`.)

use nnkern::data::idx::parse_idx;
use nnkern::data::mnist::{MnistSplit, PIXELS};
use nnkern::data::{read_idx, DataError, Mnist};
use nnkern::init::Init;
use nnkern::kernels::KernelError;
use nnkern::layers::{
    ActKind, Activation, AvgPool2d, Conv2d, Conv2dOptions, Dropout, Flatten, GlobalAvgPool, Linear,
    MaxPool2d, Softmax,
};
use nnkern::loss::{BceWithLogitsLoss, HingeLoss, MseLoss, SoftmaxCrossEntropy};
use nnkern::mnist::cli::{build_model, run, MnistArgs, ModelKind};
use nnkern::mnist::plot::plot_history;
use nnkern::mnist::report::{EpochStats, MetricsWriter};
use nnkern::mnist::train::{TrainConfig, Trainer};
use nnkern::optim::Optimizer;
use nnkern::rng::Rng;
use nnkern::{checkpoint, Error, Layer, Sequential, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Collects rows whose call did not fail as expected.
struct Table(Vec<String>);

impl Table {
    fn row<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
        &mut self,
        name: &str,
        got: Result<T, E>,
        want: impl Fn(&E) -> bool,
    ) {
        match &got {
            Err(e) if want(e) => assert!(!e.to_string().is_empty()),
            _ => self.0.push(format!("{name}: got {got:?}")),
        }
    }
    fn check(self) {
        assert!(self.0.is_empty(), "rows failed:\n{}", self.0.join("\n"));
    }
}

macro_rules! is {
    ($p:pat) => {
        |e: &_| matches!(e, $p)
    };
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnkern-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn model(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .add(Linear::new(3, 4, &mut rng))
        .add(Activation::relu())
        .add(Linear::new(4, 2, &mut rng))
}

fn bits(m: &Sequential) -> Vec<u32> {
    let mut v = Vec::new();
    m.visit_params(&mut |p| v.extend(p.value.data().iter().map(|x| x.to_bits())));
    v
}

#[test]
fn tensor_layer_and_loss_table() {
    let mut t = Table(Vec::new());
    t.row(
        "from_vec",
        Tensor::from_vec(&[2, 3], vec![0.0; 5]),
        is!(Error::Shape { .. }),
    );
    let over = Tensor::from_vec(&[usize::MAX, 2], vec![]);
    t.row("from_vec overflow", over, is!(Error::Shape { .. }));
    t.row(
        "zeros overflow",
        Tensor::zeros(&[usize::MAX, 2]),
        is!(Error::Shape { .. }),
    );
    // Fits in usize, not in memory: an error, not an allocation abort.
    t.row(
        "zeros too large",
        Tensor::zeros(&[1 << 62]),
        is!(Error::Shape { .. }),
    );
    let mut x = Tensor::zeros(&[2, 3]).unwrap();
    t.row(
        "resize overflow",
        x.resize(&[usize::MAX, 3]),
        is!(Error::Shape { .. }),
    );
    t.row(
        "resize too large",
        x.resize(&[1 << 40, 1 << 20]),
        is!(Error::Shape { .. }),
    );
    assert_eq!(
        x.shape(),
        [2, 3],
        "a failed resize leaves the tensor unchanged"
    );
    t.row("reshape", x.reshape(&[4, 2]), is!(Error::Shape { .. }));
    t.row(
        "reshape overflow",
        x.reshape(&[usize::MAX, 3]),
        is!(Error::Shape { .. }),
    );
    t.row("rows reversed", x.rows(2, 1), is!(Error::Invalid(_)));
    t.row("rows past end", x.rows(0, 3), is!(Error::Invalid(_)));
    t.row(
        "view rows",
        x.view().rows(1, usize::MAX),
        is!(Error::Invalid(_)),
    );

    let mut rng = Rng::new(1);
    t.row(
        "linear overflow",
        Linear::with_init(usize::MAX, 2, true, Init::TorchDefault, &mut rng),
        is!(Error::Shape { .. }),
    );
    let mut lin = Linear::new(4, 3, &mut rng);
    t.row(
        "linear forward",
        lin.forward(&x).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    t.row(
        "linear rank",
        lin.forward(&Tensor::zeros(&[4]).unwrap()).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    let x4 = Tensor::zeros(&[2, 4]).unwrap();
    let dy = Tensor::zeros(&[2, 2]).unwrap();
    t.row(
        "linear backward dy",
        lin.backward(&x4, &dy).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    t.row(
        "linear output_shape",
        lin.output_shape(&[2, 5]),
        is!(Error::Shape { .. }),
    );
    // A layer with no outputs is degenerate but must not panic.
    let mut empty = Linear::new(4, 0, &mut rng);
    let y = empty.forward(&x4).map(|y| y.shape().to_vec());
    assert_eq!(y.unwrap(), vec![2, 0]);
    assert!(empty
        .backward(&x4, &Tensor::zeros(&[2, 0]).unwrap())
        .is_ok());

    for p in [1.0, -0.1, f32::NAN, f32::INFINITY] {
        t.row(
            &format!("dropout {p}"),
            Dropout::new(p, 0),
            is!(Error::Invalid(_)),
        );
    }
    let mut drop = Dropout::new(0.5, 0).unwrap();
    t.row(
        "dropout backward first",
        drop.backward(&x, &x).map(|_| ()),
        is!(Error::Invalid(_)),
    );
    let mut fl = Flatten::new();
    t.row(
        "flatten rank 0",
        fl.forward(&Tensor::new_empty()).map(|_| ()),
        is!(Error::Shape { .. }),
    );

    let mut m = model(1);
    t.row(
        "model input",
        m.forward(&Tensor::zeros(&[2, 5]).unwrap()).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    t.row("summary", m.summary(&[5]), is!(Error::Shape { .. }));
    t.row(
        "empty output_shape",
        Sequential::new().output_shape(&[3]),
        is!(Error::Invalid(_)),
    );
    let empty_back = Sequential::new().backward(&x, &x).map(|_| ());
    t.row("empty backward", empty_back, is!(Error::Invalid(_)));
    t.row(
        "empty model",
        Sequential::new().forward(&x).map(|_| ()),
        is!(Error::Invalid(_)),
    );

    let mut xent = SoftmaxCrossEntropy::new();
    t.row(
        "xent rank",
        xent.forward(&Tensor::zeros(&[6]).unwrap(), &[0]),
        is!(Error::Shape { .. }),
    );
    t.row(
        "xent classes 0",
        xent.forward(&Tensor::zeros(&[2, 0]).unwrap(), &[0, 0]),
        is!(Error::Shape { .. }),
    );
    t.row(
        "xent labels len",
        xent.forward(&x, &[0]),
        is!(Error::Kernel(KernelError::BufferLength {
            arg: "labels",
            ..
        })),
    );
    t.row(
        "xent label range",
        xent.forward(&x, &[0, 3]),
        is!(Error::Kernel(KernelError::IndexOutOfRange { index: 3, .. })),
    );
    t.row(
        "xent label max",
        xent.forward(&x, &[u32::MAX, 0]),
        is!(Error::Kernel(KernelError::IndexOutOfRange {
            arg: "labels",
            ..
        })),
    );
    let y3 = Tensor::zeros(&[3, 2]).unwrap();
    t.row(
        "mse shape",
        MseLoss::new().forward(&x, &y3),
        is!(Error::Shape { .. }),
    );
    t.row(
        "bce shape",
        BceWithLogitsLoss::new().forward(&x, &y3),
        is!(Error::Shape { .. }),
    );
    t.row(
        "hinge shape",
        HingeLoss::new().forward(&x, &y3),
        is!(Error::Shape { .. }),
    );
    // Hinge targets other than -1, 0 (for -1) and +1 are the kernel's label error.
    let half = Tensor::from_vec(&[2, 3], vec![1.0, 0.0, -1.0, 0.5, 1.0, 1.0]).unwrap();
    t.row(
        "hinge label 0.5",
        HingeLoss::new().forward(&x, &half),
        is!(Error::Kernel(KernelError::InvalidParam {
            arg: "target",
            ..
        })),
    );
    let zero_one = Tensor::from_vec(&[2, 3], vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]).unwrap();
    assert!(HingeLoss::new().forward(&x, &zero_one).is_ok());
    for (name, mut opt) in [
        ("lr NaN", Optimizer::adam(f32::NAN)),
        ("lr negative", Optimizer::sgd(-1.0)),
        ("momentum", Optimizer::sgd_momentum(0.1, -0.5)),
        ("weight decay", Optimizer::adamw(1e-3, f32::INFINITY)),
    ] {
        let before = bits(&m);
        t.row(
            name,
            opt.step(&mut m),
            is!(Error::Kernel(KernelError::InvalidParam { .. })),
        );
        assert_eq!(bits(&m), before, "{name}: a refused step changed the model");
    }
    t.check();
}

/// A checkpoint of `model(7)` with Adam state after one step: (bytes, header JSON, data).
fn valid_checkpoint(tag: &str) -> (Vec<u8>, serde_json::Value, Vec<u8>) {
    let mut m = model(7);
    let mut opt = Optimizer::adam(1e-2);
    opt.step(&mut m).unwrap();
    let p = tmp(&format!("valid-{tag}.safetensors"));
    checkpoint::save(&p, &m, Some(&opt)).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = bytes[8 + n..].to_vec();
    (bytes, header, data)
}

fn assemble(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

#[test]
fn checkpoint_table() {
    let (bytes, header, data) = valid_checkpoint("table");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut h = header.clone();
        f(&mut h);
        assemble(&h, &data)
    };
    let first = header
        .as_object()
        .unwrap()
        .keys()
        .find(|k| !k.starts_with("__") && !k.starts_with("optim."))
        .unwrap()
        .clone();
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x40;
    let mut extra = header.clone();
    extra["9.weight"] = extra[&first].clone();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", bytes[..5].to_vec()),
        (
            "header past end",
            [&u64::MAX.to_le_bytes()[..], &bytes[8..]].concat(),
        ),
        ("truncated", bytes[..bytes.len() - 4].to_vec()),
        (
            "not json",
            assemble(&serde_json::json!(0), &data)[..8]
                .iter()
                .chain(b"{oops")
                .copied()
                .collect(),
        ),
        ("not an object", assemble(&serde_json::json!([1, 2]), &data)),
        ("dtype", edit(&|h| h[&first]["dtype"] = "F16".into())),
        (
            "shape",
            edit(&|h| h[&first]["shape"] = serde_json::json!([5, 3])),
        ),
        (
            "shape overflow",
            edit(&|h| h[&first]["shape"] = serde_json::json!([u64::MAX, 4])),
        ),
        (
            "offsets",
            edit(&|h| h[&first]["data_offsets"] = serde_json::json!([4, 0])),
        ),
        (
            "offsets past end",
            edit(&|h| h[&first]["data_offsets"] = serde_json::json!([0, u64::MAX])),
        ),
        ("checksum", flipped),
        (
            "missing param",
            edit(&|h| {
                h.as_object_mut().unwrap().remove(&first);
            }),
        ),
        ("extra tensor", assemble(&extra, &data)),
        (
            "steps",
            edit(&|h| h["__metadata__"]["nnkern.steps"] = "x".into()),
        ),
        (
            "optimizer kind",
            edit(&|h| h["__metadata__"]["nnkern.optimizer"] = "sgd".into()),
        ),
    ];
    let mut t = Table(Vec::new());
    for (name, file) in cases {
        let p = tmp(&format!("bad-{}.safetensors", name.replace(' ', "-")));
        std::fs::write(&p, &file).unwrap();
        let mut m = model(1);
        let mut opt = Optimizer::adam(1e-3);
        let before = bits(&m);
        t.row(
            name,
            checkpoint::load(&p, &mut m, Some(&mut opt)),
            is!(Error::Checkpoint(_)),
        );
        assert_eq!(bits(&m), before, "{name}: a failed load changed the model");
        assert_eq!(
            opt.steps(),
            0,
            "{name}: a failed load changed the optimizer"
        );
    }
    // Parameters only, but optimizer state asked for.
    let p = tmp("params-only.safetensors");
    checkpoint::save(&p, &model(2), None).unwrap();
    let mut opt = Optimizer::adam(1e-3);
    t.row(
        "no optimizer state",
        checkpoint::load(&p, &mut model(1), Some(&mut opt)),
        is!(Error::Checkpoint(_)),
    );
    t.row(
        "missing file",
        checkpoint::load(tmp("nope"), &mut model(1), None),
        is!(Error::Io { .. }),
    );
    let nowhere = tmp("no-such-dir").join("x.safetensors");
    t.row(
        "save into a missing dir",
        checkpoint::save(&nowhere, &model(1), None),
        is!(Error::Io { .. }),
    );
    t.check();
}

#[test]
fn checkpoint_with_a_huge_step_count_does_not_panic_later() {
    let (_, mut header, data) = valid_checkpoint("steps");
    header["__metadata__"]["nnkern.steps"] = u64::MAX.to_string().into();
    let p = tmp("huge-steps.safetensors");
    std::fs::write(&p, assemble(&header, &data)).unwrap();
    let mut m = model(1);
    let mut opt = Optimizer::adam(1e-3);
    if checkpoint::load(&p, &mut m, Some(&mut opt)).is_ok() {
        // The next step cannot count past u64::MAX: an error, not an overflow panic.
        let before = bits(&m);
        assert!(matches!(opt.step(&mut m), Err(Error::Invalid(_))));
        assert_eq!(bits(&m), before);
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(dims: &[u32], data_len: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(7u8, data_len));
    b
}

/// A damaged file: its name, its bytes, and the error it must give.
type FileCase = (&'static str, Vec<u8>, fn(&DataError) -> bool);

#[test]
fn idx_and_mnist_table() {
    let mut t = Table(Vec::new());
    let good = gz(&idx(&[2, 3], 6));
    let mut crc = good.clone();
    let at = crc.len() - 6;
    crc[at] ^= 1;
    let files: Vec<FileCase> = vec![
        ("empty", vec![], is!(DataError::Format { .. })),
        ("not gzip", b"IDX!".to_vec(), is!(DataError::Format { .. })),
        (
            "truncated gzip",
            good[..good.len() / 2].to_vec(),
            is!(DataError::Gzip { .. }),
        ),
        ("bad crc", crc, is!(DataError::Gzip { .. })),
        (
            "bad magic",
            gz(&[1, 2, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0]),
            is!(DataError::Format { .. }),
        ),
        (
            "element type",
            gz(&[0, 0, 9, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0]),
            is!(DataError::Format { .. }),
        ),
        ("rank", gz(&idx(&[6], 6)), is!(DataError::Format { .. })),
        (
            "header short",
            gz(&idx(&[2, 3], 0)[..9]),
            is!(DataError::Format { .. }),
        ),
        (
            "data short",
            gz(&idx(&[2, 3], 5)),
            is!(DataError::Format { .. }),
        ),
        (
            "data long",
            gz(&idx(&[2, 3], 7)),
            is!(DataError::Format { .. }),
        ),
        (
            "dims overflow",
            gz(&idx(&[u32::MAX, u32::MAX], 0)),
            is!(DataError::Format { .. }),
        ),
    ];
    for (name, bytes, want) in files {
        let p = tmp(&format!("{}.gz", name.replace(' ', "-")));
        std::fs::write(&p, bytes).unwrap();
        t.row(name, read_idx(&p, 2), want);
    }
    assert!(read_idx(
        &{
            let p = tmp("good.gz");
            std::fs::write(&p, &good).unwrap();
            p
        },
        2
    )
    .is_ok());
    t.row(
        "missing",
        read_idx(&tmp("missing.gz"), 2),
        is!(DataError::Io { .. }),
    );
    let p = Path::new("x");
    // Absurd ranks: the magic number cannot describe them.
    for rank in [256, 0x1_0000_0001, usize::MAX / 4 + 1, usize::MAX] {
        t.row(
            &format!("rank {rank}"),
            parse_idx(p, &[0xff; 12], rank),
            is!(DataError::Format { .. }),
        );
        t.row(
            &format!("rank {rank} zeros"),
            parse_idx(p, &[0; 12], rank),
            is!(DataError::Format { .. }),
        );
    }
    t.row(
        "parse short",
        parse_idx(p, &[0, 0, 8], 1),
        is!(DataError::Format { .. }),
    );
    t.row(
        "mnist dir",
        Mnist::load(&tmp("no-such-mnist")),
        is!(DataError::MissingDir { .. }),
    );
    let dir = tmp("mnist-bad");
    std::fs::create_dir_all(&dir).unwrap();
    t.row("mnist files", Mnist::load(&dir), is!(DataError::Io { .. }));
    t.check();
}

#[test]
fn conv_pool_activation_and_mnist_table() {
    let mut t = Table(Vec::new());
    let mut rng = Rng::new(3);
    let opts = Conv2dOptions::default();
    let conv =
        |i, o, k, opts, rng: &mut Rng| Conv2d::with_options(i, o, k, opts, Init::TorchDefault, rng);
    t.row(
        "conv 0 channels",
        conv(0, 2, [3, 3], opts, &mut rng),
        is!(Error::Invalid(_)),
    );
    let g3 = Conv2dOptions { groups: 3, ..opts };
    t.row(
        "conv groups",
        conv(4, 6, [3, 3], g3, &mut rng),
        is!(Error::Invalid(_)),
    );
    let s0 = Conv2dOptions {
        stride: [0, 1],
        ..opts
    };
    t.row(
        "conv stride 0",
        conv(1, 1, [3, 3], s0, &mut rng),
        is!(Error::Invalid(_)),
    );
    let huge = conv(1 << 40, 1 << 40, [3, 3], opts, &mut rng);
    t.row("conv weight overflow", huge, is!(Error::Shape { .. }));
    let mut c = conv(2, 3, [3, 3], opts, &mut rng).unwrap();
    let x = Tensor::zeros(&[1, 2, 5, 5]).unwrap();
    let rank3 = Tensor::zeros(&[2, 5, 5]).unwrap();
    t.row(
        "conv rank",
        c.forward(&rank3).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    let x1 = Tensor::zeros(&[1, 1, 5, 5]).unwrap();
    t.row(
        "conv channels",
        c.forward(&x1).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    let small = Tensor::zeros(&[1, 2, 2, 2]).unwrap();
    t.row(
        "conv input < kernel",
        c.forward(&small).map(|_| ()),
        is!(Error::Kernel(_)),
    );
    c.forward(&x).unwrap();
    let dy = Tensor::zeros(&[1, 3, 2, 2]).unwrap();
    t.row(
        "conv backward dy",
        c.backward(&x, &dy).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    t.row(
        "conv output_shape",
        c.output_shape(&[1, 2, 5]),
        is!(Error::Shape { .. }),
    );

    let pools: [(&str, Box<dyn Layer>); 3] = [
        (
            "max",
            Box::new(MaxPool2d::with_options([2, 2], [2, 2], [2, 0])),
        ),
        (
            "avg",
            Box::new(AvgPool2d::with_options([2, 2], [0, 2], [0, 0], true)),
        ),
        ("max k0", Box::new(MaxPool2d::new(0))),
    ];
    for (name, mut p) in pools {
        t.row(name, p.forward(&x).map(|_| ()), is!(Error::Kernel(_)));
    }
    for (name, mut p) in [
        ("max", Box::new(MaxPool2d::new(2)) as Box<dyn Layer>),
        ("avg", Box::new(AvgPool2d::new(2))),
        ("global", Box::new(GlobalAvgPool::new())),
    ] {
        let n = format!("{name} rank");
        t.row(&n, p.forward(&rank3).map(|_| ()), is!(Error::Shape { .. }));
        p.forward(&x).unwrap();
        let n = format!("{name} backward dy");
        t.row(
            &n,
            p.backward(&x, &rank3).map(|_| ()),
            is!(Error::Shape { .. }),
        );
    }

    let mut leaky = Activation::leaky_relu(f32::NAN);
    let slope = leaky.forward(&x).map(|_| ());
    t.row(
        "leaky NaN slope",
        slope,
        is!(Error::Kernel(KernelError::InvalidParam {
            arg: "slope",
            ..
        })),
    );
    let mut elu = Activation::new(ActKind::Elu(-1.0));
    let alpha = elu.forward(&x).map(|_| ());
    t.row(
        "elu alpha",
        alpha,
        is!(Error::Kernel(KernelError::InvalidParam {
            arg: "alpha",
            ..
        })),
    );
    let mut relu = Activation::relu();
    relu.forward(&x).unwrap();
    t.row(
        "act backward dy",
        relu.backward(&x, &rank3).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    let mut sm = Softmax::new();
    let no_cols = Tensor::zeros(&[2, 0]).unwrap();
    t.row(
        "softmax C = 0",
        sm.forward(&no_cols).map(|_| ()),
        is!(Error::Shape { .. }),
    );
    sm.forward(&x).unwrap();
    t.row(
        "softmax backward dy",
        sm.backward(&x, &rank3).map(|_| ()),
        is!(Error::Shape { .. }),
    );

    // MNIST splits have public fields, so they may be inconsistent.
    let split = MnistSplit {
        images: vec![0.5; 2 * PIXELS],
        labels: vec![3, 11, 4],
    };
    assert!(split.image(2).is_none() && split.image(usize::MAX).is_none());
    assert_eq!(split.take(5).len(), 2, "take keeps whole images only");
    t.row("label counts", split.label_counts(), is!(Error::Invalid(_)));
    let (mut img, mut lab) = (vec![0.0; PIXELS], vec![0u32; 1]);
    t.row(
        "gather index",
        split.gather(&[2], &mut img, &mut lab),
        is!(Error::Invalid(_)),
    );
    t.row(
        "gather buffer",
        split.gather(&[0, 1], &mut img, &mut lab),
        is!(Error::Shape { .. }),
    );
    let mut trainer = Trainer::new(model(1), &TrainConfig::default());
    let ok_split = split.take(1);
    t.row(
        "train model shape",
        trainer.evaluate(&ok_split),
        is!(Error::Shape { .. }),
    );
    let mut trainer = Trainer::new(
        build_model(ModelKind::Mlp, 1).unwrap(),
        &TrainConfig::default(),
    );
    let mut quiet = |_: usize, _: f64| {};
    t.row(
        "train bad split",
        trainer.train_epoch(&split, &mut quiet),
        is!(Error::Invalid(_)),
    );
    t.row(
        "evaluate label",
        trainer.evaluate(&split.take(2)),
        is!(Error::Kernel(_)),
    );

    // Output files in a directory that does not exist.
    let nowhere = tmp("no-such-dir").join("x");
    assert!(MetricsWriter::create(&nowhere).is_err(), "metrics file");
    let stats = EpochStats {
        epoch: 1,
        train_loss: 0.5,
        test_acc: 90.0,
        epoch_s: 1.0,
        images_per_s: 1.0,
    };
    assert!(
        plot_history(&nowhere.with_extension("png"), &[stats]).is_err(),
        "plot path"
    );
    assert!(
        plot_history(&tmp("empty.png"), &[]).is_err(),
        "plot of no epochs"
    );
    let args = |f: fn(&mut MnistArgs)| {
        let mut a = MnistArgs {
            epochs: 1,
            batch: 1,
            lr: 1e-3,
            threads: 1,
            data: nowhere.clone(),
            seed: 1,
            save: None,
            plot: None,
            metrics: None,
            model: ModelKind::Mlp,
            train_limit: Some(1),
        };
        f(&mut a);
        run(&a)
    };
    for (name, f) in [
        (
            "epochs",
            (|a: &mut MnistArgs| a.epochs = 0) as fn(&mut MnistArgs),
        ),
        ("batch", |a| a.batch = 0),
        ("threads", |a| a.threads = 0),
        ("lr", |a| a.lr = f32::NAN),
        ("data", |_| {}),
    ] {
        let r = args(f);
        assert!(
            matches!(&r, Err(e) if e.contains(name)),
            "mnist run {name}: {r:?}"
        );
    }
    t.check();
}
