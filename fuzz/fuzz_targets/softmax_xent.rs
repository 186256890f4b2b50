//! Fused softmax-cross-entropy: random `[n, classes]`, labels (ignored, out of range), ignore
//! index, reduction and label smoothing (in and out of `[0, 1]`); every path against the f64
//! reference (loss within `scale * sum_rows eps (16 + C) (1 + R_row) + eps |loss|` where
//! `R_row` is the row's logit range, gradient within the bound of `tests/softmax_xent.rs`
//! plus the rounding of `x - max` through `exp`); invalid calls fail alike on every path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnkern_fuzz::*;
use nnkern_kernels::loss::{softmax_cross_entropy, softmax_cross_entropy_reference};
use nnkern_kernels::{KernelError, Reduction, SoftmaxXent};

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let (n, c) = (inp.dim(6), inp.dim(30));
    let eps = inp.pick(&[0.0, 0.0, 0.1, 1.0, 0.5, -0.1, 1.5, f32::NAN]);
    let ignore = inp.pick(&[None, Some(-100), Some(0), Some(i64::MIN)]);
    let red = if inp.bool() {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    let p = SoftmaxXent::new(n, c)
        .reduction(red)
        .ignore_index(ignore)
        .label_smoothing(eps);
    let nc = n.checked_mul(c);
    let (nl, ll) = match nc {
        Some(v) if v <= CAP && n <= CAP => (v, n),
        _ => (3, 2),
    };
    let (mut nl_alloc, mut ll_alloc, mut gl) = (nl, ll, nl);
    match inp.perturb(3) {
        Some(0) => nl_alloc = off_by_one(nl),
        Some(1) => ll_alloc = off_by_one(ll),
        Some(_) => gl = off_by_one(nl),
        None => {}
    }
    let x = inp.values(nl_alloc);
    let labels: Vec<i64> = (0..ll_alloc)
        .map(|_| match inp.byte() {
            250 => -100,
            251 => -1,
            252 => c as i64,
            253 => i64::MIN,
            254 => i64::MAX,
            b => b as i64 % (c.max(1) as i64),
        })
        .collect();
    let want_grad = inp.bool();
    let x64 = f64s(&x);
    let mut wg = vec![0.0f64; gl];
    let r = softmax_cross_entropy_reference(&p, &x64, &labels, want_grad.then_some(&mut wg[..]));
    let Ok(want) = r else {
        let e = r.unwrap_err();
        assert!(matches!(
            e,
            KernelError::BufferLength { .. }
                | KernelError::Overflow { .. }
                | KernelError::InvalidParam { .. }
                | KernelError::IndexOutOfRange { arg: "labels", .. }
        ));
        for_each_path(|backend, name| {
            let mut g = vec![0.0f32; gl];
            let got =
                softmax_cross_entropy(backend, &p, &x, &labels, want_grad.then_some(&mut g[..]));
            assert_eq!(got, Err(e.clone()), "{name}");
        });
        return;
    };
    assert!(nl_alloc == nl && ll_alloc == ll && (gl == nl || !want_grad));
    // Also with usize labels when all are non-negative: the same result.
    let ulabels: Option<Vec<usize>> = labels.iter().map(|&l| usize::try_from(l).ok()).collect();
    let count = labels.iter().filter(|&&l| Some(l) != ignore).count();
    let scale = match red {
        Reduction::Sum => 1.0,
        Reduction::Mean => 1.0 / count.max(1) as f64,
    };
    let cf = c as f64;
    let mut loss_bound = EPS * want.abs();
    let mut row_range = vec![0.0f64; n];
    for r in 0..n {
        let row = &x64[r * c..(r + 1) * c];
        let fin = row.iter().filter(|v| v.is_finite());
        let (lo, hi) = fin.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
        row_range[r] = if hi >= lo { hi - lo } else { 0.0 };
        loss_bound += scale * EPS * (16.0 + cf) * (1.0 + row_range[r]);
    }
    for_each_path(|backend, name| {
        let mut g = vec![f32::NAN; gl];
        let loss = softmax_cross_entropy(backend, &p, &x, &labels, want_grad.then_some(&mut g[..]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let loss_only = softmax_cross_entropy(backend, &p, &x, &labels, None).unwrap();
        // The loss-only call sums its own way (one pass, a cheaper exponential): the same
        // bound as the gradient call, not the same bits.
        assert!(
            close(loss_only, want, loss_bound),
            "{name}: loss only {loss_only:e} vs {want:e} {p:?}"
        );
        if let Some(u) = &ulabels {
            let lu = softmax_cross_entropy(backend, &p, &x, u, None).unwrap();
            assert!(same(&[loss_only], &[lu]), "{name}: usize labels differ");
        }
        assert!(
            close(loss, want, loss_bound),
            "{name}: loss {loss:e} vs {want:e} {p:?}"
        );
        if !want_grad {
            return;
        }
        for (i, (&got, &w)) in g.iter().zip(&wg).enumerate() {
            let (row, j) = (i / c, i % c);
            let ignored = Some(labels[row]) == ignore;
            let hit = if labels[row] == j as i64 {
                1.0 - eps as f64
            } else {
                0.0
            };
            let target = if ignored { 0.0 } else { hit + eps as f64 / cf };
            let pj = w.abs() / scale + target;
            let b = scale
                * EPS
                * ((16.0 + cf) * (w.abs() / scale + 2.0 * target) + 2.0 * pj * row_range[row])
                + 1e-44;
            assert!(close(got, w, b), "{name}: grad[{i}] {got:e} vs {w:e} {p:?}");
        }
    });
});
