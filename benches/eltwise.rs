//! criterion: activations forward/backward on 16M and 64K f32, next to `copy_from_slice` of
//! the same size (the memory-speed yardstick); native vs reference on the small size.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnkern_kernels::{activation_backward, activation_forward, Activation, Backend};

fn eltwise(c: &mut Criterion) {
    for len in [1usize << 16, 1 << 24] {
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 8000) as f32 * 1e-3 - 4.0)
            .collect();
        let dy = x.clone();
        let (mut y, mut dx) = (vec![0.0f32; len], vec![0.0f32; len]);
        let mut g = c.benchmark_group(format!("eltwise_{len}"));
        g.sample_size(if len > 1 << 20 { 10 } else { 50 });
        g.throughput(Throughput::Bytes(8 * len as u64));
        g.bench_function("copy_from_slice", |b| b.iter(|| y.copy_from_slice(&x)));
        let backends: &[Backend] = if len > 1 << 20 {
            &[Backend::Native]
        } else {
            &[Backend::Native, Backend::Reference]
        };
        for act in [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            for &be in backends {
                g.throughput(Throughput::Bytes(8 * len as u64));
                let id = BenchmarkId::new(format!("{}_forward", act.name()), be.name());
                g.bench_function(id, |b| {
                    b.iter(|| activation_forward(be, act, &x, &mut y).unwrap())
                });
                g.throughput(Throughput::Bytes(12 * len as u64));
                let id = BenchmarkId::new(format!("{}_backward", act.name()), be.name());
                g.bench_function(id, |b| {
                    b.iter(|| activation_backward(be, act, &x, &y, &dy, &mut dx).unwrap())
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, eltwise);
criterion_main!(benches);
