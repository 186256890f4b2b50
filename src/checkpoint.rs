//! Checkpoints in the [safetensors] format, readable by Python's `safetensors`
//! (`safetensors.torch.load_file`): an 8-byte little-endian header length, a JSON header
//! mapping each tensor name to `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`
//! (plus `__metadata__`), then the raw little-endian data.
//!
//! Model parameters are stored under their names (`"0.weight"`, as PyTorch's `state_dict`);
//! optimizer state under `"optim.<param>.<slot>"` (`"optim.0.weight.exp_avg"`), with the
//! optimizer's name, step count and learning rate in the metadata. The metadata also holds an
//! FNV-1a 64-bit checksum of the data (`nnkern.checksum`), so flipped bits are detected.
//!
//! Saving writes a temporary file next to the target, syncs it and renames it over the target,
//! so a crash never leaves a half-written checkpoint. Loading validates everything (format,
//! checksum, names, shapes, optimizer kind) before touching the model or optimizer: on any
//! error both are unchanged.
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::optim::Optimizer;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const MAX_HEADER: u64 = 100 << 20;

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Checkpoint(msg.into())
}

/// FNV-1a, 64 bits: cheap, dependency-free corruption detection (not a cryptographic hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `model`'s parameters and, if given, `opt`'s state to `path` (atomically).
pub fn save(path: impl AsRef<Path>, model: &dyn Layer, opt: Option<&Optimizer>) -> Result<()> {
    let path = path.as_ref();
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    let mut param_index = 0;
    model.visit_named_params("", &mut |name, p| {
        tensors.push((name.clone(), p.value.shape().to_vec(), p.value.data()));
        if let Some(o) = opt {
            for (slot, buf) in o.param_state(param_index) {
                tensors.push((
                    format!("optim.{name}.{slot}"),
                    p.value.shape().to_vec(),
                    buf,
                ));
            }
        }
        param_index += 1;
    });
    let mut header = Map::new();
    let mut data = Vec::with_capacity(tensors.iter().map(|t| t.2.len() * 4).sum());
    for (name, shape, values) in &tensors {
        let begin = data.len();
        for v in values.iter() {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut meta = Map::new();
    meta.insert("format".into(), json!("pt"));
    meta.insert(
        "nnkern.checksum".into(),
        json!(format!("{:016x}", fnv1a(&data))),
    );
    if let Some(o) = opt {
        meta.insert("nnkern.optimizer".into(), json!(o.method().name()));
        meta.insert("nnkern.steps".into(), json!(o.steps().to_string()));
        meta.insert("nnkern.lr".into(), json!(o.lr().to_string()));
    }
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut head = serde_json::to_vec(&Value::Object(header)).expect("JSON of plain values");
    // Pad with spaces to a multiple of 8, as the reference implementation does.
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }

    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&(head.len() as u64).to_le_bytes())?;
        f.write_all(&head)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// A parsed, validated file: tensors by name (shape, values) and metadata.
struct Parsed {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    meta: Map<String, Value>,
}

fn parse(bytes: &[u8]) -> Result<Parsed> {
    if bytes.len() < 8 {
        return Err(bad(format!(
            "file too short ({} bytes): truncated?",
            bytes.len()
        )));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER || 8 + n > bytes.len() as u64 {
        return Err(bad(format!(
            "header length {n} exceeds the file ({} bytes): truncated or not safetensors",
            bytes.len()
        )));
    }
    let header: Value = serde_json::from_slice(&bytes[8..8 + n as usize])
        .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let header = header
        .as_object()
        .ok_or_else(|| bad("header is not a JSON object"))?;
    let data = &bytes[8 + n as usize..];
    let mut tensors = HashMap::new();
    let mut meta = Map::new();
    let mut covered = 0usize;
    let mut ranges = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            meta = entry.as_object().cloned().unwrap_or_default();
            continue;
        }
        let dtype = entry.get("dtype").and_then(Value::as_str);
        if dtype != Some("F32") {
            return Err(bad(format!(
                "tensor `{name}` has dtype {dtype:?}, expected F32"
            )));
        }
        let shape: Vec<usize> = entry
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| bad(format!("tensor `{name}` has no valid shape")))?;
        let offs: Vec<usize> = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .filter(|o: &Vec<usize>| o.len() == 2 && o[0] <= o[1])
            .ok_or_else(|| bad(format!("tensor `{name}` has invalid data_offsets")))?;
        let numel = crate::tensor::numel(&shape)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| bad(format!("tensor `{name}` shape overflows")))?;
        if offs[1] - offs[0] != numel {
            return Err(bad(format!(
                "tensor `{name}`: offsets do not match its shape"
            )));
        }
        if offs[1] > data.len() {
            return Err(bad(format!(
                "tensor `{name}` ends at byte {} of a {}-byte data section: truncated file",
                offs[1],
                data.len()
            )));
        }
        covered += numel;
        ranges.push((offs[0], offs[1]));
        let values = data[offs[0]..offs[1]]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        tensors.insert(name.clone(), (shape, values));
    }
    // The tensors must tile the data section exactly (the format's rule).
    ranges.sort_unstable();
    let mut end = 0;
    for (b, e) in ranges {
        if b != end {
            return Err(bad("tensor data overlaps or leaves holes"));
        }
        end = e;
    }
    if covered != data.len() {
        return Err(bad(format!(
            "data section is {} bytes but the tensors cover {covered}",
            data.len()
        )));
    }
    if let Some(sum) = meta.get("nnkern.checksum").and_then(Value::as_str) {
        let got = format!("{:016x}", fnv1a(data));
        if got != sum {
            return Err(bad(format!(
                "checksum mismatch (file says {sum}, data gives {got}): corrupted file"
            )));
        }
    }
    Ok(Parsed { tensors, meta })
}

/// Loads parameters (and, if `opt` is given, optimizer state) from `path` into `model`.
/// Every parameter of the model must be present with its shape; tensors other than the
/// model's parameters and `optim.*` state are an error (as PyTorch's strict loading).
/// On any error the model and optimizer are unchanged.
pub fn load(
    path: impl AsRef<Path>,
    model: &mut dyn Layer,
    opt: Option<&mut Optimizer>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let mut parsed = parse(&bytes)?;
    let mut names = Vec::new();
    let mut new_values = Vec::new();
    let mut missing = None;
    model.visit_named_params("", &mut |name, p| {
        match parsed.tensors.remove(&name) {
            Some((shape, v)) if shape == p.value.shape() => new_values.push(v),
            Some((shape, _)) => {
                missing.get_or_insert(format!(
                    "parameter `{name}` has shape {shape:?} in the file, {:?} in the model",
                    p.value.shape()
                ));
            }
            None => {
                missing.get_or_insert(format!("parameter `{name}` is missing from the file"));
            }
        }
        names.push((name, p.value.len()));
    });
    if let Some(m) = missing {
        return Err(bad(m));
    }
    let new_opt = match &opt {
        Some(o) => Some(optimizer_state(&mut parsed, o, &names)?),
        None => {
            parsed.tensors.retain(|k, _| !k.starts_with("optim."));
            None
        }
    };
    if let Some(extra) = parsed.tensors.keys().next() {
        return Err(bad(format!(
            "unexpected tensor `{extra}` (not a parameter of this model)"
        )));
    }
    // Everything checked: commit.
    let mut values = new_values.into_iter();
    model.visit_params_mut(&mut |p| {
        p.value
            .data_mut()
            .copy_from_slice(&values.next().expect("one per parameter"));
    });
    if let (Some(o), Some((steps, state))) = (opt, new_opt) {
        o.restore(steps, state);
    }
    Ok(())
}

type OptState = (u64, Vec<[Vec<f32>; 3]>);

fn optimizer_state(
    parsed: &mut Parsed,
    opt: &Optimizer,
    names: &[(String, usize)],
) -> Result<OptState> {
    let meta_str = |k: &str| {
        parsed
            .meta
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind =
        meta_str("nnkern.optimizer").ok_or_else(|| bad("the file holds no optimizer state"))?;
    if kind != opt.method().name() {
        return Err(bad(format!(
            "the file holds {kind} state, the optimizer is {}",
            opt.method().name()
        )));
    }
    let steps: u64 = meta_str("nnkern.steps")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("missing or invalid nnkern.steps"))?;
    let used = opt.used_slots();
    let slots = opt.method().slot_names();
    let mut state = Vec::new();
    if steps > 0 {
        for (name, len) in names {
            let mut bufs: [Vec<f32>; 3] = Default::default();
            for k in 0..slots.len() {
                if !used[k] {
                    continue;
                }
                let key = format!("optim.{name}.{}", slots[k]);
                let (_, v) = parsed
                    .tensors
                    .remove(&key)
                    .ok_or_else(|| bad(format!("optimizer state `{key}` is missing")))?;
                if v.len() != *len {
                    return Err(bad(format!("optimizer state `{key}` has the wrong size")));
                }
                bufs[k] = v;
            }
            state.push(bufs);
        }
    }
    Ok((steps, state))
}
