//! Checkpoints: a bit-exact round trip of parameters and optimizer state; truncated,
//! corrupted and mismatched files refused with a clear error and the model unchanged.

use nnkern::checkpoint::{load, save};
use nnkern::layers::{Activation, Linear};
use nnkern::loss::SoftmaxCrossEntropy;
use nnkern::optim::Optimizer;
use nnkern::rng::Rng;
use nnkern::{Layer, Sequential, Tensor};
use std::path::PathBuf;

fn mlp(seed: u64, hidden: usize) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .add(Linear::new(5, hidden, &mut rng))
        .add(Activation::relu())
        .add(Linear::new(hidden, 3, &mut rng))
}

fn train(model: &mut Sequential, opt: &mut Optimizer, steps: usize) {
    let mut rng = Rng::new(77);
    let mut x = Tensor::zeros(&[8, 5]).unwrap();
    rng.fill_uniform(x.data_mut(), -1.0, 1.0);
    let labels: Vec<u32> = (0..8).map(|i| i % 3).collect();
    let mut loss = SoftmaxCrossEntropy::new();
    for _ in 0..steps {
        let y = model.forward(&x).unwrap();
        loss.forward(y, &labels).unwrap();
        model.backward(&x, loss.grad()).unwrap();
        opt.step(model).unwrap();
    }
}

fn bits(model: &Sequential) -> Vec<u32> {
    let mut out = Vec::new();
    model.visit_params(&mut |p| out.extend(p.value.data().iter().map(|v| v.to_bits())));
    out
}

fn opt_bits(opt: &Optimizer) -> Vec<u32> {
    (0..opt.state_len())
        .flat_map(|i| opt.param_state(i))
        .flat_map(|(_, s)| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// A path in a directory of its own per file name (tests run in parallel).
fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnkern-ckpt-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn round_trip_is_bit_exact_and_training_resumes_identically() {
    let mut model = mlp(1, 7);
    let mut opt = Optimizer::adam(1e-2);
    train(&mut model, &mut opt, 3);
    let path = tmp("rt.safetensors");
    save(&path, &model, Some(&opt)).unwrap();
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    let mut model2 = mlp(2, 7);
    let mut opt2 = Optimizer::adam(1e-2);
    load(&path, &mut model2, Some(&mut opt2)).unwrap();
    assert_eq!(bits(&model), bits(&model2));
    assert_eq!(opt_bits(&opt), opt_bits(&opt2));
    assert_eq!(opt.steps(), opt2.steps());
    train(&mut model, &mut opt, 2);
    train(&mut model2, &mut opt2, 2);
    assert_eq!(
        bits(&model),
        bits(&model2),
        "training resumes bit-identically"
    );
}

#[test]
fn file_is_plain_safetensors() {
    let model = mlp(1, 4);
    let path = tmp("fmt.safetensors");
    save(&path, &model, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let w = &header["0.weight"];
    assert_eq!(w["dtype"], "F32");
    assert_eq!(w["shape"], serde_json::json!([4, 5]));
    let [b, e] = [0, 1].map(|i| w["data_offsets"][i].as_u64().unwrap() as usize);
    let first = f32::from_le_bytes(bytes[8 + n + b..8 + n + b + 4].try_into().unwrap());
    assert_eq!(e - b, 4 * 20);
    let mut got = Vec::new();
    model.visit_params(&mut |p| got.push(p.value.data()[0]));
    assert_eq!(first.to_bits(), got[0].to_bits());
}

fn assert_refused(path: &PathBuf, want: &str) {
    let mut model = mlp(5, 7);
    let mut opt = Optimizer::adam(1e-2);
    let (before, obefore) = (bits(&model), opt_bits(&opt));
    let err = load(path, &mut model, Some(&mut opt))
        .unwrap_err()
        .to_string();
    assert!(err.contains(want), "error `{err}` should mention `{want}`");
    assert_eq!(bits(&model), before, "model unchanged");
    assert_eq!(opt_bits(&opt), obefore, "optimizer unchanged");
    assert_eq!(opt.steps(), 0);
}

#[test]
fn corrupted_truncated_and_mismatched_files_are_refused() {
    let mut model = mlp(1, 7);
    let mut opt = Optimizer::adam(1e-2);
    train(&mut model, &mut opt, 2);
    let path = tmp("good.safetensors");
    save(&path, &model, Some(&opt)).unwrap();
    let good = std::fs::read(&path).unwrap();

    let bad = tmp("bad.safetensors");
    // A flipped bit in the data.
    let mut b = good.clone();
    let last = b.len() - 3;
    b[last] ^= 0x10;
    std::fs::write(&bad, &b).unwrap();
    assert_refused(&bad, "checksum");
    // Truncated data, truncated header, empty file.
    std::fs::write(&bad, &good[..good.len() - 10]).unwrap();
    assert_refused(&bad, "truncated");
    std::fs::write(&bad, &good[..100]).unwrap();
    assert_refused(&bad, "truncated");
    std::fs::write(&bad, b"").unwrap();
    assert_refused(&bad, "too short");
    // Garbage header.
    let mut b = good.clone();
    b[9] = b'#';
    std::fs::write(&bad, &b).unwrap();
    assert_refused(&bad, "JSON");
    // Another architecture: different hidden width.
    save(&bad, &mlp(1, 6), None).unwrap();
    assert_refused(&bad, "shape");
    // Parameters only, but optimizer state requested.
    save(&bad, &mlp(1, 7), None).unwrap();
    assert_refused(&bad, "no optimizer state");
    // Another optimizer.
    let mut m = mlp(1, 7);
    let mut sgd = Optimizer::sgd_momentum(0.1, 0.9);
    train(&mut m, &mut sgd, 1);
    save(&bad, &m, Some(&sgd)).unwrap();
    assert_refused(&bad, "sgd");
    // Missing file.
    assert_refused(&tmp("missing.safetensors"), "missing.safetensors");
}

/// The reference safetensors implementation (the Rust crate behind Python's `safetensors`)
/// reads the file: names, dtypes, shapes and values.
#[test]
fn reference_safetensors_reader_accepts_the_file() {
    let mut model = mlp(3, 6);
    let mut opt = Optimizer::adam(1e-2);
    train(&mut model, &mut opt, 1);
    let path = tmp("interop.safetensors");
    save(&path, &model, Some(&opt)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["nnkern.optimizer"], "adam");
    assert_eq!(meta["nnkern.steps"], "1");
    for (name, p) in model.named_params() {
        let t = st.tensor(&name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        assert_eq!(t.shape(), p.value.shape());
        let vals: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals, p.value.data());
        for slot in ["exp_avg", "exp_avg_sq"] {
            let s = st.tensor(&format!("optim.{name}.{slot}")).unwrap();
            assert_eq!(s.shape(), p.value.shape());
        }
    }
    assert_eq!(st.len(), 4 * 3);
}
