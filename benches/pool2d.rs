//! Criterion benches of the pool2d cases of the public suite, native vs reference side by side
//! in one group per case and pass.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnkern_kernels::pool::{
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward, Pool2dParams,
};
use nnkern_kernels::Backend;

/// name, max (else average), [n, c, h, w], kernel, stride, pad.
type Case = (&'static str, bool, [usize; 4], usize, usize, usize);

/// The pool2d cases of ../shared/bench/suite.json.
const CASES: [Case; 2] = [
    ("max2_mnist", true, [64, 32, 26, 26], 2, 2, 0),
    ("avg3_resnet", false, [8, 64, 56, 56], 3, 2, 1),
];

fn bench(c: &mut Criterion) {
    for (name, max, shape, k, s, pad) in CASES {
        let p = Pool2dParams::new(shape, [k, k], [s, s], [pad, pad]).expect("valid case");
        let (il, ol) = (p.input_len(), p.output_len());
        let x: Vec<f32> = (0..il)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let dy: Vec<f32> = (0..ol)
            .map(|i| ((i * 104729) % 1000) as f32 * 1e-3)
            .collect();
        let (mut y, mut arg, mut dx) = (vec![0.0f32; ol], vec![0u32; ol], vec![0.0f32; il]);
        for pass in ["forward", "backward"] {
            let mut g = c.benchmark_group(format!("pool2d/{name}/{pass}"));
            g.throughput(Throughput::Bytes(4 * (il + ol) as u64));
            for backend in [Backend::Native, Backend::Reference] {
                g.bench_function(backend.name(), |b| {
                    b.iter(|| match (max, pass) {
                        (true, "forward") => max_pool2d_forward(backend, &p, &x, &mut y, &mut arg),
                        (true, _) => max_pool2d_backward(backend, &p, &dy, &arg, &mut dx),
                        (false, "forward") => avg_pool2d_forward(backend, &p, true, &x, &mut y),
                        (false, _) => avg_pool2d_backward(backend, &p, true, &dy, &mut dx),
                    })
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
