//! Criterion: every train_step case of the suite file (forward, loss, backward, optimizer
//! update), 1 and 2 threads. `cargo bench --bench train_step`; NNKERN_SUITE overrides the
//! suite path.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nnkern::bench::train_step::{batch, build, step};
use nnkern::bench::{case_name, field, text};
use nnkern::loss::SoftmaxCrossEntropy;

fn suite() -> serde_json::Value {
    let path =
        std::env::var("NNKERN_SUITE").unwrap_or_else(|_| "../shared/bench/suite.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("suite is JSON")
}

fn bench_train_step(cr: &mut Criterion) {
    let suite = suite();
    let cases = suite["train_step"].as_array().cloned().unwrap_or_default();
    for case in &cases {
        let n = field(case, "batch").unwrap();
        let description = text(case, "model").unwrap();
        let mut group = cr.benchmark_group(format!("train_step/{}", case_name(case)));
        group.sample_size(20);
        for threads in [1usize, 2] {
            let mut setup = match build(description, 1) {
                Ok(s) => s,
                Err(why) => {
                    eprintln!("skipped {}: {why}", case_name(case));
                    break;
                }
            };
            let (x, labels) = batch(&setup, n);
            let mut loss = SoftmaxCrossEntropy::new();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            group.bench_function(BenchmarkId::new("native", format!("{threads}t")), |b| {
                pool.install(|| b.iter(|| step(&mut setup, &mut loss, &x, &labels).unwrap()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
