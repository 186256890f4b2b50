//! GEMM: random shapes, transposes, leading dimensions, alpha/beta (NaN included), f32 and
//! f64, every path against the f64 reference within `2 (k + 2) eps |alpha||A||B| + |beta||C|`;
//! the padding columns of C are never written; short buffers and bad leading dimensions fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::{gemm, gemm_reference, Gemm, GemmScalar, KernelError};
use num_traits::Float;

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    if inp.bool() {
        run::<f32>(&mut inp);
    } else {
        run::<f64>(&mut inp);
    }
});

fn run<T: GemmScalar>(inp: &mut Input) {
    let (m, n, k) = (inp.dim(13), inp.dim(13), inp.dim(13));
    let alpha = inp.pick(&[1.0, 0.0, -1.0, 0.5, 3.0, f64::NAN]);
    let beta = inp.pick(&[0.0, 0.0, 1.0, -0.5, 2.0, f64::NAN]);
    let mut g = Gemm::<T>::new(m, n, k)
        .trans_a(inp.bool())
        .trans_b(inp.bool())
        .alpha(T::from(alpha).unwrap())
        .beta(T::from(beta).unwrap());
    // Leading dimensions: tight, padded, or (one time in 16) one too small.
    let mut bad_ld = false;
    let mut ld = |inp: &mut Input, cols: usize| {
        let b = inp.byte();
        let min = cols.max(1);
        if b % 16 == 15 && cols > 1 {
            bad_ld = true;
            Some(min - 1)
        } else {
            (b % 3 != 0).then(|| min.saturating_add((b / 16) as usize % 4))
        }
    };
    g.lda = ld(inp, g.a_stored_shape().1);
    g.ldb = ld(inp, g.b_stored_shape().1);
    g.ldc = ld(inp, n);
    let lens = [
        needed(g.a_stored_shape(), g.lda),
        needed(g.b_stored_shape(), g.ldb),
        needed((m, n), g.ldc),
    ];
    let flops_overflow = m.checked_mul(n).and_then(|v| v.checked_mul(k)).is_none();
    let mut alloc = [0usize; 3];
    let mut short = bad_ld || flops_overflow;
    for (i, l) in lens.iter().enumerate() {
        alloc[i] = match l {
            Some(l) if *l <= CAP => *l,
            _ => {
                short = true;
                CAP.min(16)
            }
        };
    }
    if let Some(which) = inp.perturb(3) {
        if alloc[which] > 0 {
            alloc[which] -= 1;
            short = true;
        }
    }
    let conv = |v: Vec<f32>| {
        v.into_iter()
            .map(|x| T::from(x).unwrap())
            .collect::<Vec<T>>()
    };
    let a = conv(inp.values(alloc[0]));
    let b = conv(inp.values(alloc[1]));
    let nan_c = beta == 0.0 && inp.bool();
    let c0 = if nan_c {
        vec![T::nan(); alloc[2]]
    } else {
        conv(inp.values(alloc[2]))
    };

    let up = |v: &[T]| v.iter().map(|x| x.to_f64().unwrap()).collect::<Vec<f64>>();
    let g64 = Gemm::<f64> {
        m,
        n,
        k,
        trans_a: g.trans_a,
        trans_b: g.trans_b,
        alpha,
        beta,
        lda: g.lda,
        ldb: g.ldb,
        ldc: g.ldc,
    };
    let (a64, b64, c64) = (up(&a), up(&b), up(&c0));
    let mut want = c64.clone();
    let r = gemm_reference(&g64, &a64, &b64, &mut want);
    if short {
        // Wrong lengths, bad leading dimensions or overflowing sizes: every path fails alike.
        let e = r.expect_err("reference accepted a bad call");
        for_each_path(|backend, name| {
            let mut c = c0.clone();
            let got = gemm(backend, &g, &a, &b, &mut c).expect_err(name);
            assert_eq!(got, e, "{name}: a different error than the reference");
            assert!(matches!(
                got,
                KernelError::BufferTooShort { .. }
                    | KernelError::LeadingDimension { .. }
                    | KernelError::Overflow { .. }
            ));
        });
        return;
    }
    r.expect("reference refused a valid call");
    let absv = |v: &[f64]| v.iter().map(|x| x.abs()).collect::<Vec<f64>>();
    let mut mag = absv(&c64);
    let gm = g64.alpha(alpha.abs()).beta(beta.abs());
    gemm_reference(&gm, &absv(&a64), &absv(&b64), &mut mag).unwrap();
    let ldc = g.ldc.unwrap_or(n.max(1));
    let eps = T::epsilon().to_f64().unwrap();
    let tiny = T::min_positive_value().to_f64().unwrap();
    for_each_path(|backend, name| {
        let mut c = c0.clone();
        gemm(backend, &g, &a, &b, &mut c).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (idx, &got) in c.iter().enumerate() {
            let (i, j) = (idx / ldc, idx % ldc);
            let got = got.to_f64().unwrap();
            if i < m && j < n {
                let (w, mg) = (want[idx], mag[idx]);
                if !comparable(w, mg) || (T::max_value().to_f64().unwrap() < 1e300 && mg > 1e36) {
                    continue;
                }
                let bound = 2.0 * (k as f64 + 2.0) * eps * mg + 4.0 * (k as f64 + 2.0) * tiny;
                assert!(
                    (got - w).abs() <= bound,
                    "{name} C[{i},{j}] = {got:e}, reference {w:e}, bound {bound:e}, {g:?}"
                );
            } else {
                assert_eq!(got.to_bits(), c64[idx].to_bits(), "{name}: padding written");
            }
        }
        if nan_c && m > 0 && n > 0 && k > 0 && alpha == 1.0 && !inp_specials_any(&a, &b) {
            // beta = 0 overwrites a NaN C.
            assert!(c
                .iter()
                .enumerate()
                .all(|(idx, v)| idx % ldc >= n || !v.is_nan()));
        }
    });
}

fn inp_specials_any<T: Float>(a: &[T], b: &[T]) -> bool {
    a.iter().chain(b).any(|v| !v.is_finite())
}

/// Elements a `rows x cols` operand with row stride `ld` addresses, if representable.
fn needed((rows, cols): (usize, usize), ld: Option<usize>) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(ld.unwrap_or(cols))?
        .checked_add(cols)
}
