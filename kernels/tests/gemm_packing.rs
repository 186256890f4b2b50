//! GEMM packing and micro-kernel edges on small shapes, cheap enough for Miri (`.ci/fuzz` runs
//! this file with `NNKERN_ISA=scalar`): partial MR x NR tiles, both transposes, padded leading
//! dimensions, more rows than one row block (the blocked path) and a K split. Values are small
//! integers, so every summation order gives the exact result and the native backend must
//! equal the reference bit for bit.

use nnkern_kernels::{gemm, Backend, Gemm, GemmScalar};

/// (m, n, k): tiny, partial tiles, a second row block (scalar MC is 128 for f32, 64 for
/// f64), a second K block (scalar KC is 256).
const SHAPES: [(usize, usize, usize); 5] =
    [(1, 1, 1), (5, 7, 3), (9, 17, 13), (130, 5, 3), (5, 3, 260)];

fn check<T: GemmScalar + std::fmt::Debug>(of: impl Fn(usize) -> T) {
    for (m, n, k) in SHAPES {
        // Every transpose pair on the small shapes; the large ones (slow under Miri) once.
        let pairs = if m * n * k < 1000 { 4 } else { 1 };
        for (ta, tb) in [(false, false), (true, true), (true, false), (false, true)]
            .into_iter()
            .take(pairs)
        {
            let g = Gemm::<T>::new(m, n, k).trans_a(ta).trans_b(tb);
            let (ar, ac) = g.a_stored_shape();
            let (br, bc) = g.b_stored_shape();
            // Leading dimensions two past tight: the padding must not be read as data.
            let g = g.lda(ac + 2).ldb(bc + 2).ldc(n + 2).beta(of(1));
            let a: Vec<T> = (0..ar * (ac + 2)).map(|i| of(i % 5)).collect();
            let b: Vec<T> = (0..br * (bc + 2)).map(|i| of(i % 3)).collect();
            let c0: Vec<T> = (0..m * (n + 2)).map(|i| of(i % 2)).collect();
            let (mut want, mut got) = (c0.clone(), c0);
            gemm(Backend::Reference, &g, &a, &b, &mut want).unwrap();
            gemm(Backend::Native, &g, &a, &b, &mut got).unwrap();
            assert_eq!(got, want, "m {m} n {n} k {k} ta {ta} tb {tb}");
        }
    }
}

#[test]
fn packed_f32_matches_the_reference_exactly() {
    check(|i| i as f32 - 1.0);
}

#[test]
fn packed_f64_matches_the_reference_exactly() {
    check(|i| i as f64 - 1.0);
}
