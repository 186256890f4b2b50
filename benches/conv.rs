//! criterion: conv2d passes over the suite's conv2d cases, backends side by side (one group
//! per case and pass). Reads `../shared/bench/suite.json` (or `NNKERN_SUITE`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnkern::bench::{conv2d::params, random_vec};
use nnkern_kernels::conv::{conv2d_backward_data, conv2d_backward_weight, conv2d_forward};
use nnkern_kernels::Backend;

fn cases() -> Vec<serde_json::Value> {
    let path = std::env::var("NNKERN_SUITE").unwrap_or("../shared/bench/suite.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let suite: serde_json::Value = serde_json::from_str(&text).expect("suite JSON");
    suite["conv2d"].as_array().cloned().unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let name = nnkern::bench::case_name(&case);
        let Ok(p) = params(&case) else { continue };
        let x = random_vec(p.input_len(), 1);
        let w = random_vec(p.weight_len(), 2);
        let b = random_vec(p.k(), 3);
        let dy = random_vec(p.output_len(), 4);
        let (mut y, mut dx) = (vec![0.0; p.output_len()], vec![0.0; p.input_len()]);
        let (mut dw, mut db) = (vec![0.0; p.weight_len()], vec![0.0; p.k()]);
        let mut ws = vec![0.0; p.workspace_len()];
        for pass in ["forward", "backward_data", "backward_weight"] {
            let mut g = c.benchmark_group(format!("conv2d/{name}/{pass}"));
            g.throughput(Throughput::Elements(p.flops() as u64));
            g.sample_size(10);
            for be in [Backend::Native, Backend::OpenBlas]
                .into_iter()
                .filter(|b| b.available())
            {
                g.bench_function(BenchmarkId::from_parameter(be.name()), |bch| {
                    bch.iter(|| match pass {
                        "forward" => conv2d_forward(be, &p, &x, &w, Some(&b), &mut y, &mut ws),
                        "backward_data" => conv2d_backward_data(be, &p, &dy, &w, &mut dx, &mut ws),
                        _ => {
                            conv2d_backward_weight(be, &p, &x, &dy, &mut dw, Some(&mut db), &mut ws)
                        }
                    })
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
