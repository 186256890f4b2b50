//! The command line of the suite runner, shared by `nnkern-bench` and `nnkern bench`.

use super::{run_suite, Config};
use clap::Args;
use nnkern_kernels::Backend;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of the suite runner.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Suite file (schema of ../shared/bench/suite.json).
    #[arg(long, default_value = "../shared/bench/suite.json")]
    pub suite: PathBuf,
    /// Op family to run (a section name of the suite); repeatable; default all.
    #[arg(long = "op")]
    pub ops: Vec<String>,
    /// Case name to run; repeatable; default all.
    #[arg(long = "case")]
    pub cases: Vec<String>,
    /// Backend: native, openblas or reference.
    #[arg(long, default_value = "native")]
    pub backend: String,
    /// Threads of the rayon pool (and OpenBLAS).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seconds of timed calls per case and pass.
    #[arg(long = "target-s", default_value_t = 1.0)]
    pub target_s: f64,
}

/// Runs the suite as the arguments say, printing JSON lines on stdout and skips on stderr.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    let backend = Backend::parse(&args.backend).ok_or_else(|| {
        format!(
            "unknown backend `{}` (expected native, openblas or reference)",
            args.backend
        )
    })?;
    if !backend.available() {
        return Err(format!(
            "backend `{}` is not compiled in: build with `--features {}`",
            backend.name(),
            backend.name()
        ));
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if !(args.target_s > 0.0 && args.target_s.is_finite()) {
        return Err("--target-s must be a positive number of seconds".into());
    }
    let text = std::fs::read_to_string(&args.suite)
        .map_err(|e| format!("cannot read suite file {}: {e}", args.suite.display()))?;
    let suite: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("suite file {} is not valid JSON: {e}", args.suite.display()))?;
    let cfg = Config {
        backend,
        threads: args.threads,
        target_s: args.target_s,
        ops: args.ops.clone(),
        cases: args.cases.clone(),
    };
    run_suite(
        &suite,
        &cfg,
        |r| {
            let line = serde_json::to_string(r).expect("records serialize");
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        },
        |why| eprintln!("{why}"),
    )
}
