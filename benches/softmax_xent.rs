//! criterion: fused softmax-cross-entropy on the suite's shapes, loss only and loss with
//! gradient, native vs reference.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnkern_kernels::{softmax_cross_entropy, Backend, SoftmaxXent};

fn softmax_xent(c: &mut Criterion) {
    for (name, n, classes) in [
        ("mnist", 64, 10),
        ("imagenet", 256, 1000),
        ("vocab32k", 32, 32000),
    ] {
        let nc = n * classes;
        let x: Vec<f32> = (0..nc)
            .map(|i| ((i * 7919) % 8000) as f32 * 1e-3 - 4.0)
            .collect();
        let labels: Vec<i64> = (0..n).map(|i| (i * 7 % classes) as i64).collect();
        let mut grad = vec![0.0f32; nc];
        let p = SoftmaxXent::new(n, classes);
        let mut g = c.benchmark_group(format!("softmax_xent_{name}"));
        g.sample_size(20);
        for be in [Backend::Native, Backend::Reference] {
            g.throughput(Throughput::Bytes(4 * nc as u64));
            g.bench_function(BenchmarkId::new("forward", be.name()), |b| {
                b.iter(|| softmax_cross_entropy(be, &p, &x, &labels, None).unwrap())
            });
            g.throughput(Throughput::Bytes(8 * nc as u64));
            g.bench_function(BenchmarkId::new("forward_backward", be.name()), |b| {
                b.iter(|| softmax_cross_entropy(be, &p, &x, &labels, Some(&mut grad)).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, softmax_xent);
criterion_main!(benches);
