//! GEMM against the f64 reference: every ISA path and backend, all transposes, alpha/beta,
//! padded leading dimensions, shapes around tile and block edges; bitwise identity across
//! thread counts; every bad input's error.

use nnkern_kernels::gemm::set_openblas_threads;
use nnkern_kernels::simd::{with_isa, Isa};
use nnkern_kernels::{gemm, gemm_reference, Backend, Gemm, GemmScalar, KernelError};
use proptest::prelude::*;

/// Dimensions that hit edges: 0, 1, primes, the micro-tile (6 x 16, 4 x 8, 4 x 4) and block
/// (MC = 144 / 72 / 64 / 128, KC = 256 / 384) edges, plus random sizes.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33]),
        1 => prop::sample::select(vec![63usize, 64, 65, 71, 72, 73, 127, 128, 129, 143, 144, 145]),
        2 => 1usize..100,
    ]
}

fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0usize, 1, 2, 3, 7, 16, 17]),
        1 => prop::sample::select(vec![255usize, 256, 257, 300, 383, 384, 385, 769]),
        2 => 1usize..130,
    ]
}

fn scalar() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.0, 1.0, -1.0, 0.5, 2.5, -0.75])
}

#[derive(Debug, Clone)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    alpha: f64,
    beta: f64,
    pad: [usize; 3],
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        dim(),
        dim(),
        depth(),
        any::<(bool, bool)>(),
        scalar(),
        scalar(),
        [0usize..3, 0usize..3, 0usize..3],
        any::<u64>(),
    )
        .prop_map(|(m, n, k, (ta, tb), alpha, beta, pad, seed)| Case {
            m,
            n,
            k,
            ta,
            tb,
            alpha,
            beta,
            pad,
            seed,
        })
}

/// Deterministic values in [-1, 1), with a different scale per matrix.
fn values(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            scale * ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

struct Problem {
    g: Gemm<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl Case {
    fn problem(&self) -> Problem {
        let g = Gemm::<f64>::new(self.m, self.n, self.k)
            .trans_a(self.ta)
            .trans_b(self.tb)
            .alpha(self.alpha)
            .beta(self.beta);
        let (ar, ac) = g.a_stored_shape();
        let (br, bc) = g.b_stored_shape();
        let (lda, ldb, ldc) = (
            ac.max(1) + self.pad[0],
            bc.max(1) + self.pad[1],
            self.n.max(1) + self.pad[2],
        );
        let g = g.lda(lda).ldb(ldb).ldc(ldc);
        Problem {
            g,
            a: values(ar * lda, self.seed, 1.0),
            b: values(br * ldb, self.seed ^ 0x55, 3.0),
            c: values(self.m * ldc, self.seed ^ 0xAA, 2.0),
        }
    }
}

fn cast<T: GemmScalar>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from(x).unwrap()).collect()
}

/// Checks `backend` in precision T against the f64 reference computed from the same
/// (rounded-to-T) inputs. Bound per element: `(k + 2) * eps_T * (|alpha| sum_p |a b| + |beta c|)`
/// times 2, the classic dot-product error bound with slack for FMA/non-FMA differences.
fn check<T: GemmScalar>(backend: Backend, p: &Problem) -> Result<(), TestCaseError> {
    let (a, b, c0): (Vec<T>, Vec<T>, Vec<T>) = (cast(&p.a), cast(&p.b), cast(&p.c));
    let gt = Gemm::<T> {
        alpha: T::from(p.g.alpha).unwrap(),
        beta: T::from(p.g.beta).unwrap(),
        m: p.g.m,
        n: p.g.n,
        k: p.g.k,
        trans_a: p.g.trans_a,
        trans_b: p.g.trans_b,
        lda: p.g.lda,
        ldb: p.g.ldb,
        ldc: p.g.ldc,
    };
    let mut c = c0.clone();
    gemm(backend, &gt, &a, &b, &mut c).map_err(|e| TestCaseError::fail(e.to_string()))?;

    // Reference and magnitude in f64 from the rounded inputs.
    let up = |v: &[T]| v.iter().map(|x| x.to_f64().unwrap()).collect::<Vec<f64>>();
    let (a64, b64, c64) = (up(&a), up(&b), up(&c0));
    let mut want = c64.clone();
    gemm_reference(&p.g, &a64, &b64, &mut want).unwrap();
    let abs = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<f64>>();
    let mut mag = abs(&c64);
    let gm = p.g.alpha(p.g.alpha.abs()).beta(p.g.beta.abs());
    gemm_reference(&gm, &abs(&a64), &abs(&b64), &mut mag).unwrap();

    let eps = T::epsilon().to_f64().unwrap();
    let ldc = p.g.ldc.unwrap();
    for (idx, (&got, (&w, &mg))) in c.iter().zip(want.iter().zip(mag.iter())).enumerate() {
        let (i, j) = (idx / ldc, idx % ldc);
        let got = got.to_f64().unwrap();
        if i < p.g.m && j < p.g.n {
            let bound = 2.0 * (p.g.k as f64 + 2.0) * eps * mg + f64::MIN_POSITIVE;
            prop_assert!(
                (got - w).abs() <= bound,
                "{backend:?} C[{i},{j}] = {got}, reference {w}, bound {bound}"
            );
        } else {
            // Padding columns of C are never touched.
            prop_assert_eq!(
                got.to_bits(),
                c64[idx].to_bits(),
                "padding C[{},{}] was written",
                i,
                j
            );
        }
    }
    Ok(())
}

fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Native, Backend::Reference];
    if Backend::OpenBlas.available() {
        set_openblas_threads(1);
        b.push(Backend::OpenBlas);
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn native_every_isa_matches_reference(c in case()) {
        let p = c.problem();
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            with_isa(isa, || -> Result<(), TestCaseError> {
                check::<f32>(Backend::Native, &p)?;
                check::<f64>(Backend::Native, &p)
            })?;
        }
    }

    #[test]
    fn every_backend_matches_reference(c in case()) {
        let p = c.problem();
        for backend in backends() {
            check::<f32>(backend, &p)?;
            check::<f64>(backend, &p)?;
        }
    }
}

/// Every alpha/beta pair of the sampled scalars (the special cases 0 and 1 included) on
/// every transpose and ISA, for small products (direct path: B packed, in place, in place
/// with a packed edge; k = 1), a matrix-vector one, a packed one (k past the K block) and a
/// threaded one-row-block one (A in place for f32, one K block; packed for f64, two) and a
/// row-blocked one a panel wide (A in place over two K blocks): each special case has its
/// own code in every path.
#[test]
fn every_alpha_beta_pair_on_every_path() {
    let scalars = [0.0, 1.0, -1.0, 0.5, 2.5];
    let shapes = [
        (3, 5, 4),
        (16, 16, 16),
        (7, 1, 33),
        (40, 37, 20),
        (13, 32, 1),
        (40, 37, 400),
        (50, 100, 300),
        (200, 5, 400),
    ];
    for (m, n, k) in shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for alpha in scalars {
                for beta in scalars {
                    let c = Case {
                        m,
                        n,
                        k,
                        ta,
                        tb,
                        alpha,
                        beta,
                        pad: [1, 0, 2],
                        seed: 7,
                    };
                    let p = c.problem();
                    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                        with_isa(isa, || check::<f32>(Backend::Native, &p))
                            .unwrap_or_else(|e| panic!("{isa:?} {c:?}: {e}"));
                        with_isa(isa, || check::<f64>(Backend::Native, &p))
                            .unwrap_or_else(|e| panic!("{isa:?} {c:?}: {e}"));
                    }
                }
            }
        }
    }
}

#[test]
fn large_blocks_cross_every_cache_block_edge() {
    // m > MC, n > one NC block for the scalar/wide kernels, k > KC: every loop of the frame
    // runs more than once.
    let c = Case {
        m: 300,
        n: 4200,
        k: 530,
        ta: false,
        tb: true,
        alpha: 1.5,
        beta: -0.5,
        pad: [1, 2, 3],
        seed: 7,
    };
    let p = c.problem();
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        with_isa(isa, || check::<f32>(Backend::Native, &p)).unwrap();
    }
}

#[test]
fn beta_zero_overwrites_nan() {
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        for (m, n, k) in [(7, 19, 5), (12, 32, 0), (64, 64, 64)] {
            let a = vec![1.0f32; m * k];
            let b = vec![1.0f32; k * n];
            let mut c = vec![f32::NAN; m * n];
            with_isa(isa, || {
                gemm(Backend::Native, &Gemm::new(m, n, k), &a, &b, &mut c)
            })
            .unwrap();
            assert!(c.iter().all(|&x| x == k as f32), "{isa:?} {m}x{n}x{k}");
        }
    }
    // alpha = 0: A and B are not read (NaN there does not leak), C = beta * C.
    let mut c = vec![2.0f32; 4];
    gemm(
        Backend::Native,
        &Gemm::new(2, 2, 2).alpha(0.0).beta(0.5),
        &[f32::NAN; 4],
        &[f32::NAN; 4],
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [1.0; 4]);
}

#[test]
fn nan_in_inputs_propagates() {
    let mut a = vec![1.0f32; 8 * 8];
    a[3 * 8 + 5] = f32::NAN;
    let b = vec![1.0f32; 8 * 8];
    let mut c = vec![0.0f32; 64];
    gemm(Backend::Native, &Gemm::new(8, 8, 8), &a, &b, &mut c).unwrap();
    for i in 0..8 {
        for j in 0..8 {
            assert_eq!(c[i * 8 + j].is_nan(), i == 3, "C[{i},{j}]");
        }
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn bitwise_identical_across_thread_counts() {
    let shapes = [
        (64, 128, 784, false, true),
        (128, 784, 64, true, false),
        (333, 517, 300, false, false),
        (1, 4096, 600, false, false),
        (700, 3, 500, true, true),
        (97, 131, 113, false, false),
        (100, 300, 64, true, false),
        (1000, 8, 500, false, false),
    ];
    for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
        for &(m, n, k, ta, tb) in &shapes {
            let p = Case {
                m,
                n,
                k,
                ta,
                tb,
                alpha: 1.0,
                beta: 0.5,
                pad: [0, 1, 0],
                seed: 11,
            }
            .problem();
            let (a, b): (Vec<f32>, Vec<f32>) = (cast(&p.a), cast(&p.b));
            let g = Gemm::<f32> {
                alpha: 1.0,
                beta: 0.5,
                m,
                n,
                k,
                trans_a: p.g.trans_a,
                trans_b: p.g.trans_b,
                lda: p.g.lda,
                ldb: p.g.ldb,
                ldc: p.g.ldc,
            };
            let run = |threads: usize| {
                let mut c: Vec<f32> = cast(&p.c);
                pool(threads)
                    .install(|| with_isa(isa, || gemm(Backend::Native, &g, &a, &b, &mut c)))
                    .unwrap();
                c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
            };
            let one = run(1);
            assert_eq!(one, run(2), "{isa:?} {m}x{n}x{k}: 1 vs 2 threads");
            assert_eq!(one, run(3), "{isa:?} {m}x{n}x{k}: 1 vs 3 threads");
            assert_eq!(one, run(8), "{isa:?} {m}x{n}x{k}: 1 vs 8 threads");
        }
    }
}

#[test]
fn bad_input_gives_its_error() {
    let a = [0.0f32; 12];
    let b = [0.0f32; 12];
    let mut c = [0.0f32; 16];
    let g = Gemm::<f32>::new(3, 3, 4);
    let cases: Vec<(Gemm<f32>, usize, usize, usize, KernelError)> = vec![
        (
            g.lda(3),
            12,
            12,
            9,
            KernelError::LeadingDimension {
                arg: "lda",
                min: 4,
                got: 3,
            },
        ),
        (
            g.ldb(2),
            12,
            12,
            9,
            KernelError::LeadingDimension {
                arg: "ldb",
                min: 3,
                got: 2,
            },
        ),
        (
            g.ldc(0),
            12,
            12,
            9,
            KernelError::LeadingDimension {
                arg: "ldc",
                min: 3,
                got: 0,
            },
        ),
        (
            g.trans_a(true).lda(2),
            12,
            12,
            9,
            KernelError::LeadingDimension {
                arg: "lda",
                min: 3,
                got: 2,
            },
        ),
        (
            g,
            11,
            12,
            9,
            KernelError::BufferTooShort {
                arg: "a",
                expected: 12,
                got: 11,
            },
        ),
        (
            g,
            12,
            10,
            9,
            KernelError::BufferTooShort {
                arg: "b",
                expected: 12,
                got: 10,
            },
        ),
        (
            g,
            12,
            12,
            8,
            KernelError::BufferTooShort {
                arg: "c",
                expected: 9,
                got: 8,
            },
        ),
        (
            g.ldc(5),
            12,
            12,
            12,
            KernelError::BufferTooShort {
                arg: "c",
                expected: 13,
                got: 12,
            },
        ),
        (
            Gemm::new(usize::MAX / 2, 1, 3),
            12,
            12,
            9,
            KernelError::Overflow { arg: "a" },
        ),
        (
            Gemm::new(usize::MAX, 2, 0),
            12,
            12,
            9,
            KernelError::Overflow { arg: "c" },
        ),
    ];
    for (g, al, bl, cl, want) in cases {
        for backend in [Backend::Native, Backend::Reference, Backend::OpenBlas] {
            let got = gemm(backend, &g, &a[..al], &b[..bl], &mut c[..cl]);
            assert_eq!(got, Err(want.clone()), "{backend:?} {g:?}");
        }
        assert_eq!(
            gemm_reference(&g, &a[..al], &b[..bl], &mut c[..cl]),
            Err(want)
        );
    }
    if !Backend::OpenBlas.available() {
        let got = gemm(
            Backend::OpenBlas,
            &Gemm::new(1, 1, 1),
            &[1.0f32],
            &[1.0],
            &mut [0.0],
        );
        assert_eq!(
            got,
            Err(KernelError::BackendUnavailable {
                backend: "openblas"
            })
        );
    }
}

#[test]
fn zero_sized_dimensions() {
    // m = 0 or n = 0: nothing happens, even with empty slices.
    let mut c: Vec<f32> = vec![];
    gemm(
        Backend::Native,
        &Gemm::new(0, 5, 3),
        &[],
        &[0.0; 15],
        &mut c,
    )
    .unwrap();
    gemm(
        Backend::Native,
        &Gemm::new(5, 0, 3),
        &[0.0; 15],
        &[],
        &mut c,
    )
    .unwrap();
    // k = 0 scales C by beta.
    let mut c = vec![4.0f32; 6];
    gemm(
        Backend::Native,
        &Gemm::new(2, 3, 0).beta(0.25),
        &[],
        &[],
        &mut c,
    )
    .unwrap();
    assert_eq!(c, [1.0; 6]);
}
