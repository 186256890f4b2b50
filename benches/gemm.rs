//! Criterion: every gemm case of the suite file, backends side by side, 1 and 2 threads.
//! `cargo bench [--features openblas] --bench gemm`; NNKERN_SUITE overrides the suite path.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnkern::bench::{case_name, field, flag, random_vec};
use nnkern_kernels::gemm::set_openblas_threads;
use nnkern_kernels::{gemm, Backend, Gemm};

fn suite() -> serde_json::Value {
    let path =
        std::env::var("NNKERN_SUITE").unwrap_or_else(|_| "../shared/bench/suite.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("suite is JSON")
}

fn bench_gemm(cr: &mut Criterion) {
    let suite = suite();
    let cases = suite["gemm"].as_array().cloned().unwrap_or_default();
    for case in &cases {
        let (m, n, k) = (
            field(case, "m").unwrap(),
            field(case, "n").unwrap(),
            field(case, "k").unwrap(),
        );
        let g = Gemm::<f32>::new(m, n, k)
            .trans_a(flag(case, "ta"))
            .trans_b(flag(case, "tb"));
        let (a, b) = (random_vec(m * k, 1), random_vec(k * n, 2));
        let mut c = vec![0.0f32; m * n];
        let mut group = cr.benchmark_group(format!("gemm/{}", case_name(case)));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.sample_size(10);
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for backend in [Backend::Native, Backend::OpenBlas]
                .into_iter()
                .filter(|b| b.available())
            {
                set_openblas_threads(threads);
                group.bench_function(
                    BenchmarkId::new(backend.name(), format!("{threads}t")),
                    |bch| pool.install(|| bch.iter(|| gemm(backend, &g, &a, &b, &mut c).unwrap())),
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
