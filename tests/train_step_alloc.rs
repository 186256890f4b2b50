//! After the first step, a training step (forward, loss, backward, optimizer update)
//! allocates nothing: a counting global allocator shows it.
//!
//! The run is in a one-thread rayon pool: GEMM keeps packing buffers per worker thread that
//! grow once per worker, and with several workers, work stealing decides when each worker
//! first meets each shape, so "after the first step" becomes "after every worker has run
//! every shape once", which a test cannot pin down.
//!
//! The count is the pool worker's own (a thread-local the pool's start handler switches on):
//! the test harness's main thread allocates when it reports the other test's result, and a
//! process-wide count saw those allocations whenever the other test finished during this
//! one's steps (about one run in five under load). With a one-thread pool every kernel runs
//! on that worker, and so does the test body (`install`), which reads the count there.

use nnkern::layers::{Activation, Linear};
use nnkern::loss::SoftmaxCrossEntropy;
use nnkern::optim::Optimizer;
use nnkern::rng::Rng;
use nnkern::{Layer, Sequential, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// This thread's allocations, on the threads that count them (a const `Cell` needs no
    /// allocation and no destructor, so the allocator may use it).
    static ALLOCS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get().map(|n| n + 1)));
}

/// Allocations so far on this thread (a counted pool's worker).
fn allocs() -> usize {
    ALLOCS
        .with(Cell::get)
        .expect("runs on a counted pool's worker")
}

/// A one-thread pool whose worker counts its allocations.
fn counted_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .start_handler(|_| ALLOCS.with(|c| c.set(Some(0))))
        .build()
        .unwrap()
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn step(
    model: &mut Sequential,
    loss: &mut SoftmaxCrossEntropy,
    opt: &mut Optimizer,
    x: &Tensor,
    labels: &[u32],
) {
    let y = model.forward(x).unwrap();
    loss.forward(y, labels).unwrap();
    model.backward(x, loss.grad()).unwrap();
    opt.step(model).unwrap();
}

#[test]
fn mlp_training_step_allocates_nothing_after_the_first() {
    let pool = counted_pool();
    pool.install(mlp_steps);
}

fn mlp_steps() {
    let mut rng = Rng::new(1);
    let mut model = Sequential::new()
        .add(Linear::new(784, 128, &mut rng))
        .add(Activation::relu())
        .add(Linear::new(128, 10, &mut rng));
    let mut x = Tensor::zeros(&[64, 784]).unwrap();
    rng.fill_uniform(x.data_mut(), 0.0, 1.0);
    let labels: Vec<u32> = (0..64).map(|i| i % 10).collect();
    let mut loss = SoftmaxCrossEntropy::new();
    for mut opt in [Optimizer::adam(1e-3), Optimizer::sgd_momentum(0.1, 0.9)] {
        step(&mut model, &mut loss, &mut opt, &x, &labels);
        let before = allocs();
        for _ in 0..3 {
            step(&mut model, &mut loss, &mut opt, &x, &labels);
        }
        let after = allocs();
        assert_eq!(
            after - before,
            0,
            "{:?}: allocations in steps 2-4",
            opt.method()
        );
    }
    // The counter works: a fresh model allocates on its first step.
    let before = allocs();
    let mut fresh = Sequential::new().add(Linear::new(784, 10, &mut rng));
    step(
        &mut fresh,
        &mut loss,
        &mut Optimizer::adam(1e-3),
        &x,
        &labels,
    );
    assert!(allocs() > before);
}

#[test]
fn seed_cnn_training_step_allocates_nothing_after_the_first() {
    let pool = counted_pool();
    pool.install(|| {
        let mut s = nnkern::bench::train_step::seed_cnn(&mut Rng::new(2)).unwrap();
        let (x, labels) = nnkern::bench::train_step::batch(&s, 8);
        let mut loss = SoftmaxCrossEntropy::new();
        step(&mut s.model, &mut loss, &mut s.opt, &x, &labels);
        let before = allocs();
        for _ in 0..2 {
            step(&mut s.model, &mut loss, &mut s.opt, &x, &labels);
        }
        assert_eq!(allocs() - before, 0, "allocations in CNN steps 2-3");
    });
}
