//! Checkpoint loader: arbitrary bytes, and valid checkpoints (with and without optimizer
//! state) with bytes overwritten, truncated or extended, loaded into a small model with an
//! Adam optimizer. Requires no panic, `Ok` for the unmodified file (restoring the saved
//! values), the model and optimizer unchanged on error, and that a loaded optimizer can step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern::layers::{Activation, Linear};
use nnkern::optim::Optimizer;
use nnkern::rng::Rng;
use nnkern::{checkpoint, Layer, Sequential};
use nnkern_fuzz::Input;
use std::path::PathBuf;
use std::sync::OnceLock;

fn model(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .add(Linear::new(3, 2, &mut rng))
        .add(Activation::relu())
        .add(Linear::new(2, 2, &mut rng))
}

fn params(m: &Sequential) -> Vec<u32> {
    let mut out = Vec::new();
    m.visit_params(&mut |p| out.extend(p.value.data().iter().map(|v| v.to_bits())));
    out
}

fn path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "nnkern-fuzz-{tag}-{}.safetensors",
        std::process::id()
    ))
}

/// Two valid files: parameters only, and parameters with Adam state after one step.
fn valid() -> &'static [Vec<u8>; 2] {
    static FILES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut m = model(7);
        let mut opt = Optimizer::adam(1e-2);
        let p = path("seed");
        checkpoint::save(&p, &m, None).unwrap();
        let plain = std::fs::read(&p).unwrap();
        opt.step(&mut m).unwrap();
        checkpoint::save(&p, &m, Some(&opt)).unwrap();
        let with_opt = std::fs::read(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        [plain, with_opt]
    })
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let mode = inp.byte() % 4;
    let (bytes, pristine) = if mode == 0 {
        (data.to_vec(), false)
    } else {
        let mut b = valid()[(mode % 2) as usize].clone();
        let edits = inp.byte() % 6;
        for _ in 0..edits {
            let at = u16::from_le_bytes([inp.byte(), inp.byte()]) as usize % b.len().max(1);
            match inp.byte() % 4 {
                0 => b.truncate(at),
                1 => b.extend_from_slice(&[inp.byte(); 4]),
                _ => {
                    if at < b.len() {
                        b[at] = inp.byte();
                    }
                }
            }
        }
        let pristine = edits == 0;
        (b, pristine)
    };
    let p = path("load");
    std::fs::write(&p, &bytes).unwrap();
    let mut m = model(11);
    let mut opt = Optimizer::adam(1e-3);
    let before = params(&m);
    let with_opt = inp.bool();
    let r = checkpoint::load(&p, &mut m, with_opt.then_some(&mut opt));
    match r {
        Ok(()) => {
            if pristine {
                let want = model(7);
                // The saved model took one Adam step before the second file was written.
                if mode % 2 == 0 {
                    assert_eq!(
                        params(&m),
                        params(&want),
                        "valid file restored wrong values"
                    );
                }
            }
            // A loaded optimizer must be able to continue.
            let _ = opt.step(&mut m);
        }
        Err(e) => {
            assert!(
                !pristine || (with_opt && mode % 2 == 0),
                "valid file refused: {e}"
            );
            assert_eq!(params(&m), before, "model changed by a failed load");
            assert_eq!(opt.steps(), 0, "optimizer changed by a failed load");
            let _ = e.to_string();
        }
    }
    let _ = std::fs::remove_file(&p);
});
