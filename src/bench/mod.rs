//! The suite runner behind `nnkern-bench`: reads any file with the schema of
//! `../shared/bench/suite.json`, runs each case of each op family it knows, and prints one JSON
//! object per line. Families plug in through [`run_case`]; a family or case that cannot run
//! yet is skipped with a line on stderr, never a crash.
//!
//! Timing follows benchdnn: buffers are allocated and filled once, each case is spot-checked
//! against the f64 reference, warmed up, then called repeatedly for about `target_s` seconds;
//! the median of the per-call times is reported.

pub mod cli;
pub mod conv2d;
pub mod eltwise;
pub mod gemm;
pub mod pool2d;
pub mod softmax_xent;
pub mod train_step;

use nnkern_kernels::Backend;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Backend under test.
    pub backend: Backend,
    /// Threads of the rayon pool (and of OpenBLAS).
    pub threads: usize,
    /// Seconds of timed calls per case and pass.
    pub target_s: f64,
    /// Op families to run (suite section names); empty means all.
    pub ops: Vec<String>,
    /// Case names to run; empty means all.
    pub cases: Vec<String>,
}

/// One line of output.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub op: String,
    pub case: String,
    pub pass: String,
    pub backend: String,
    pub threads: usize,
    pub median_ms: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    pub reps: usize,
}

/// What a family's runner returns for one case: records, or why it was skipped.
pub type CaseResult = Result<Vec<Record>, String>;

/// A timed pass before it becomes a [`Record`]: the work it does, for the rates.
pub struct Work {
    /// Floating-point operations per call, if the op counts flops.
    pub flops: Option<f64>,
    /// Bytes per call, if the op counts bytes.
    pub bytes: Option<f64>,
}

impl Config {
    /// Builds the record of one timed pass.
    pub fn record(&self, op: &str, case: &str, pass: &str, t: Timing, work: Work) -> Record {
        let secs = t.median_ms * 1e-3;
        let rate = |x: Option<f64>| x.map(|v| round3(v / secs * 1e-9));
        Record {
            op: op.to_string(),
            case: case.to_string(),
            pass: pass.to_string(),
            backend: self.backend.name().to_string(),
            threads: self.threads,
            median_ms: round_sig(t.median_ms),
            gflops: rate(work.flops),
            gbps: rate(work.bytes),
            reps: t.reps,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 5 - x.abs().log10().ceil() as i32;
    let p = 10f64.powi(digits.max(0));
    (x * p).round() / p
}

/// Median time of repeated calls.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median milliseconds per call.
    pub median_ms: f64,
    /// Timed calls.
    pub reps: usize,
}

/// Seconds on the clock the per-call times are read from: wall time, or with
/// `NNKERN_BENCH_CLOCK=thread` the CPU time of the calling thread. On a shared machine the
/// thread clock does not count the time other processes take the core away; it is only
/// meaningful with `--threads 1` (the work must run on the timing thread).
fn clock_s() -> f64 {
    static THREAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *THREAD.get_or_init(|| std::env::var("NNKERN_BENCH_CLOCK").is_ok_and(|v| v == "thread")) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant libc knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Shortest timed sample: calls shorter than this are timed in batches, so the clock reads
/// (20-30 ns each, a third of a 4x4x4 GEMM call) do not count as the call's time.
const MIN_SAMPLE_S: f64 = 20e-6;

/// Warms `f` up, then calls it for about `target_s` seconds (at least 5 samples) and returns
/// the median per-call time (see `clock_s` for the clock). Calls shorter than 20 us
/// (`MIN_SAMPLE_S`) are timed in equal batches, a sample being a batch's time divided by its
/// length.
pub fn time_median(target_s: f64, mut f: impl FnMut()) -> Timing {
    // Warm-up: at least 2 calls and about a tenth of the budget.
    let warm = Instant::now();
    let mut warm_calls = 0;
    while warm_calls < 2 || warm.elapsed().as_secs_f64() < 0.1 * target_s {
        f();
        warm_calls += 1;
    }
    let per_call = warm.elapsed().as_secs_f64() / warm_calls as f64;
    let batch = ((MIN_SAMPLE_S / per_call).ceil() as usize).clamp(1, 1 << 20);
    let mut times = Vec::with_capacity(1024);
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed().as_secs_f64() < target_s && times.len() < 10_000_000)
    {
        let t = clock_s();
        for _ in 0..batch {
            f();
        }
        times.push((clock_s() - t) / batch as f64);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    Timing {
        median_ms: median * 1e3,
        reps: n * batch,
    }
}

/// Reads a `usize` field of a case.
pub fn field(case: &Value, name: &str) -> Result<usize, String> {
    case.get(name)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| format!("field `{name}` missing or not a non-negative integer"))
}

/// Reads a boolean field of a case (absent means false).
pub fn flag(case: &Value, name: &str) -> bool {
    case.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Reads a string field of a case.
pub fn text<'a>(case: &'a Value, name: &str) -> Result<&'a str, String> {
    case.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("field `{name}` missing or not a string"))
}

/// The name of a case.
pub fn case_name(case: &Value) -> String {
    case.get("name")
        .and_then(Value::as_str)
        .unwrap_or("unnamed")
        .to_string()
}

/// Runs one case of family `op`; `Err` says why it was skipped.
pub fn run_case(op: &str, case: &Value, cfg: &Config) -> CaseResult {
    match op {
        "gemm" => gemm::run(case, cfg),
        "eltwise" => eltwise::run(case, cfg),
        "softmax_xent" => softmax_xent::run(case, cfg),
        "pool2d" => pool2d::run(case, cfg),
        "conv2d" => conv2d::run(case, cfg),
        "train_step" => train_step::run(case, cfg),
        _ => Err(format!("op `{op}` is not implemented yet")),
    }
}

/// Runs every selected case of `suite` inside a rayon pool of `cfg.threads` threads, calling
/// `emit` with each record as soon as it is measured and `skip` with each skipped case.
pub fn run_suite(
    suite: &Value,
    cfg: &Config,
    mut emit: impl FnMut(&Record) + Send,
    mut skip: impl FnMut(&str) + Send,
) -> Result<(), String> {
    let sections = suite
        .as_object()
        .ok_or("suite file must hold a JSON object of op sections")?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .build()
        .map_err(|e| format!("cannot build a pool of {} threads: {e}", cfg.threads))?;
    nnkern_kernels::gemm::set_openblas_threads(cfg.threads);
    pool.install(|| {
        for (op, section) in sections {
            if op == "about" || (!cfg.ops.is_empty() && !cfg.ops.iter().any(|o| o == op)) {
                continue;
            }
            // A section is a list of cases, or a single case object.
            let cases: Vec<&Value> = match section {
                Value::Array(items) => items.iter().collect(),
                Value::Object(_) => vec![section],
                _ => continue,
            };
            for case in cases {
                let name = case_name(case);
                if !cfg.cases.is_empty() && !cfg.cases.contains(&name) {
                    continue;
                }
                match run_case(op, case, cfg) {
                    Ok(records) => records.iter().for_each(&mut emit),
                    Err(why) => skip(&format!("skipped {op}/{name}: {why}")),
                }
            }
        }
    });
    Ok(())
}

/// The largest relative error of sampled entries, checked against a bound: returns `Err` with
/// a message when the spot check fails.
pub fn spot_check(what: &str, samples: &[(f64, f64, f64)]) -> Result<(), String> {
    for &(got, want, bound) in samples {
        let ok = (got - want).abs() <= bound || (got.is_nan() && want.is_nan());
        if !ok {
            return Err(format!(
                "{what}: spot check failed: got {got}, reference {want}, bound {bound}"
            ));
        }
    }
    Ok(())
}

/// Deterministic test data in `[-1, 1)`.
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = crate::rng::Rng::new(seed);
    let mut v = vec![0.0; len];
    rng.fill_uniform(&mut v, -1.0, 1.0);
    v
}
