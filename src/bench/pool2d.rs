//! The pool2d family of the suite: NCHW max or average pooling (`kind`), square window `r x s`,
//! `stride` and `pad` on both axes. Passes `forward` (max pooling records its argmax, as
//! training does) and `backward`; gbps counts 4 bytes per input and output element.
//! Average pooling counts padded cells (`count_include_pad`, PyTorch's default).

use super::{field, random_vec, spot_check, text, time_median, CaseResult, Config, Work};
use crate::rng::Rng;
use nnkern_kernels::pool::{
    avg_pool2d_backward, avg_pool2d_backward_reference, avg_pool2d_forward,
    avg_pool2d_forward_reference, max_pool2d_backward, max_pool2d_backward_reference,
    max_pool2d_forward, max_pool2d_forward_reference, Pool2dParams,
};
use serde_json::Value;

/// Runs one pool2d case: passes `forward` and `backward`.
pub fn run(case: &Value, cfg: &Config) -> CaseResult {
    let shape = [
        field(case, "n")?,
        field(case, "c")?,
        field(case, "h")?,
        field(case, "w")?,
    ];
    let kernel = [field(case, "r")?, field(case, "s")?];
    let (stride, pad) = (field(case, "stride")?, field(case, "pad")?);
    let max = match text(case, "kind")? {
        "max" => true,
        "avg" => false,
        other => {
            return Err(format!(
                "unknown pooling kind `{other}` (expected max or avg)"
            ))
        }
    };
    let p = Pool2dParams::new(shape, kernel, [stride, stride], [pad, pad])
        .map_err(|e| e.to_string())?;
    let (il, ol) = (p.input_len(), p.output_len());
    let x = random_vec(il, 1);
    let dy = random_vec(ol, 2);
    let (mut y, mut arg, mut dx) = (vec![0.0f32; ol], vec![0u32; ol], vec![0.0f32; il]);
    let b = cfg.backend;
    let err = |e: nnkern_kernels::KernelError| e.to_string();

    // Spot check both passes against the f64 reference.
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let dy64: Vec<f64> = dy.iter().map(|&v| v as f64).collect();
    let (mut y_ref, mut arg_ref, mut dx_ref) = (vec![0.0; ol], vec![0u32; ol], vec![0.0; il]);
    let terms = (kernel[0] * kernel[1]) as f64;
    if max {
        max_pool2d_forward(b, &p, &x, &mut y, &mut arg).map_err(err)?;
        max_pool2d_backward(b, &p, &dy, &arg, &mut dx).map_err(err)?;
        max_pool2d_forward_reference(&p, &x64, &mut y_ref, &mut arg_ref).map_err(err)?;
        max_pool2d_backward_reference(&p, &dy64, &arg_ref, &mut dx_ref).map_err(err)?;
        if arg != arg_ref {
            return Err("pool2d: argmax differs from the reference".into());
        }
    } else {
        avg_pool2d_forward(b, &p, true, &x, &mut y).map_err(err)?;
        avg_pool2d_backward(b, &p, true, &dy, &mut dx).map_err(err)?;
        avg_pool2d_forward_reference(&p, true, &x64, &mut y_ref).map_err(err)?;
        avg_pool2d_backward_reference(&p, true, &dy64, &mut dx_ref).map_err(err)?;
    }
    // Inputs are in [-1, 1), so each sum has magnitude at most `terms`.
    let bound = 4.0 * terms * f32::EPSILON as f64 * terms;
    let mut rng = Rng::new(3);
    let mut samples = Vec::new();
    for _ in 0..64 {
        if ol > 0 {
            let o = rng.below(ol);
            samples.push((y[o] as f64, y_ref[o], bound));
        }
        if il > 0 {
            let i = rng.below(il);
            samples.push((dx[i] as f64, dx_ref[i], bound));
        }
    }
    spot_check("pool2d", &samples)?;

    let bytes = Some(4.0 * (il + ol) as f64);
    let work = || Work { flops: None, bytes };
    let name = super::case_name(case);
    let fwd = time_median(cfg.target_s, || {
        let r = if max {
            max_pool2d_forward(b, &p, &x, &mut y, &mut arg)
        } else {
            avg_pool2d_forward(b, &p, true, &x, &mut y)
        };
        r.expect("validated above");
    });
    let bwd = time_median(cfg.target_s, || {
        let r = if max {
            max_pool2d_backward(b, &p, &dy, &arg, &mut dx)
        } else {
            avg_pool2d_backward(b, &p, true, &dy, &mut dx)
        };
        r.expect("validated above");
    });
    Ok(vec![
        cfg.record("pool2d", &name, "forward", fwd, work()),
        cfg.record("pool2d", &name, "backward", bwd, work()),
    ])
}
