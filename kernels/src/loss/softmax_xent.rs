//! Fused softmax-cross-entropy over logits `[n, classes]` with integer class labels, with
//! PyTorch's `F.cross_entropy` semantics (`ignore_index`, `reduction`, `label_smoothing`).
//!
//! Per row `i` with label `y`, `m = max_j x_j`, `s = sum_j exp(x_j - m)`, smoothing `eps`
//! and `C` classes:
//!
//! * `loss_i = ln s + (1 - eps) (m - x_y) + eps (m - mean_j x_j)`
//!   (that is `(1 - eps) (-log p_y) + eps mean_j (-log p_j)`);
//! * `dlogits_ij = scale (exp(x_j - m) / s - (1 - eps) [j == y] - eps / C)`,
//!
//! where `scale` is `1 / (rows not ignored)` for [`Reduction::Mean`] and 1 for `Sum`. Ignored
//! rows add nothing to the loss and get a zero gradient row. With `Mean` and every row
//! ignored (or `n == 0`) the loss is NaN (0/0, as in PyTorch) and the gradient is zero.
//!
//! With the gradient, one call makes three passes over a row that stays in cache: the maximum,
//! `exp(x - m)` written to `dlogits` while summing, then the scaling in place. The loss-only
//! call makes one pass, reading each logit once (`row_log_sum_exp`: a running bound, raised
//! when exceeded, and a cheaper exponential for the terms); its loss may differ from the
//! gradient call's in the last bits, within the same error bound. Stable for logits of any
//! finite magnitude (the maximum is subtracted in f32, exact for nearby values, and the row
//! loss is formed in f64); `-inf` logits have
//! probability 0 (a `-inf` at the label gives an infinite loss). A row holding `+inf` or
//! NaN, or only `-inf`, gives NaN. Per-row losses are summed in f64 over a fixed binary tree
//! of row blocks, so the result is bitwise identical for any thread count.

use super::Reduction;
use crate::activation::softmax::{row_affine, row_exp_sum, row_log_sum_exp, row_max};
use crate::error::{check_len, checked_mul, KernelError};
use crate::simd::{dispatch, Isa, SimdFn, Vector};
use crate::Backend;
use num_traits::Float;

/// Rows are processed in leaves of about this many logits (a leaf is the unit of both
/// parallel work and the fixed summation tree).
const LEAF_ELEMS: usize = 1 << 14;
/// Below this many logits everything stays on the calling thread.
const PAR_MIN_ELEMS: usize = 1 << 17;

/// An integer class label type: `i64` (PyTorch's), `i32`, `u8`, `u32` or `usize`.
pub trait ClassLabel: Copy + Send + Sync {
    /// The label as an `i64` (values above `i64::MAX` saturate, and so are out of range).
    fn to_i64(self) -> i64;
}

macro_rules! label {
    ($($t:ty),*) => {$(
        impl ClassLabel for $t {
            #[inline]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
label!(i64, i32, u8, u32, usize);

/// The descriptor of a softmax-cross-entropy call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxXent {
    /// Rows (samples).
    pub n: usize,
    /// Columns (classes); at least 1 when `n > 0`.
    pub classes: usize,
    /// Mean (default) or sum over the rows.
    pub reduction: Reduction,
    /// Rows whose label equals this are skipped (PyTorch's default is `-100`); `None` means
    /// every label must be a class.
    pub ignore_index: Option<i64>,
    /// Label smoothing `eps` in `[0, 1]` (0 = none).
    pub label_smoothing: f32,
}

impl SoftmaxXent {
    /// `n` rows of `classes` logits, mean reduction, no ignore label, no smoothing.
    pub fn new(n: usize, classes: usize) -> Self {
        SoftmaxXent {
            n,
            classes,
            reduction: Reduction::Mean,
            ignore_index: None,
            label_smoothing: 0.0,
        }
    }
    /// Sets the reduction.
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Sets the ignore label.
    pub fn ignore_index(mut self, ignore: Option<i64>) -> Self {
        self.ignore_index = ignore;
        self
    }
    /// Sets the label smoothing.
    pub fn label_smoothing(mut self, eps: f32) -> Self {
        self.label_smoothing = eps;
        self
    }

    /// Checks shapes, parameters and every label; returns the number of rows not ignored.
    pub fn validate<L: ClassLabel>(
        &self,
        logits_len: usize,
        labels: &[L],
        dlogits_len: Option<usize>,
    ) -> Result<usize, KernelError> {
        let nc = checked_mul("n * classes", self.n, self.classes)?;
        check_len("logits", nc, logits_len)?;
        check_len("labels", self.n, labels.len())?;
        if let Some(len) = dlogits_len {
            check_len("dlogits", nc, len)?;
        }
        let eps = self.label_smoothing;
        if !(0.0..=1.0).contains(&eps) {
            return Err(KernelError::InvalidParam {
                arg: "label_smoothing",
                what: format!("must be in [0, 1], got {eps}"),
            });
        }
        if self.n > 0 && self.classes == 0 {
            return Err(KernelError::InvalidParam {
                arg: "classes",
                what: "must be at least 1 when n > 0".into(),
            });
        }
        let mut count = 0;
        for &l in labels {
            let l = l.to_i64();
            if Some(l) == self.ignore_index {
                continue;
            }
            if l < 0 || l as u64 >= self.classes as u64 {
                return Err(KernelError::IndexOutOfRange {
                    arg: "labels",
                    index: l,
                    bound: self.classes,
                });
            }
            count += 1;
        }
        Ok(count)
    }

    /// `(scale, eps)` of the gradient, and the final divisor of the summed loss.
    fn scales(&self, count: usize) -> (f32, f64) {
        match self.reduction {
            Reduction::Mean if count > 0 => (1.0 / count as f32, count as f64),
            Reduction::Mean => (0.0, 0.0),
            Reduction::Sum => (1.0, 1.0),
        }
    }

    fn label_of<L: ClassLabel>(&self, l: L) -> Option<usize> {
        let l = l.to_i64();
        (Some(l) != self.ignore_index).then_some(l as usize)
    }
}

/// Softmax-cross-entropy loss of `logits` (`[n, classes]`, row-major) against `labels`
/// (`n` entries), and if `dlogits` is given, the gradient of the returned loss with respect
/// to the logits written there (same shape). See the module docs for the formulas.
///
/// Errors: wrong slice lengths, `n * classes` overflowing, `classes == 0` with rows,
/// smoothing outside `[0, 1]`, or a label (not equal to `ignore_index`) outside
/// `0..classes` ([`KernelError::IndexOutOfRange`]). Nothing is written on error.
/// `OpenBlas` runs the native code; `Reference` runs [`softmax_cross_entropy_reference`].
pub fn softmax_cross_entropy<L: ClassLabel>(
    backend: Backend,
    p: &SoftmaxXent,
    logits: &[f32],
    labels: &[L],
    dlogits: Option<&mut [f32]>,
) -> Result<f32, KernelError> {
    if backend == Backend::Reference {
        return softmax_cross_entropy_reference(p, logits, labels, dlogits);
    }
    let count = p.validate(logits.len(), labels, dlogits.as_ref().map(|d| d.len()))?;
    let (scale, divisor) = p.scales(count);
    if p.n == 0 {
        return Ok((0.0 / divisor) as f32);
    }
    let task = Task {
        p,
        labels,
        scale,
        isa: Isa::active().for_row(p.classes),
        leaf_rows: (LEAF_ELEMS / p.classes).max(1),
        parallel: p.n * p.classes >= PAR_MIN_ELEMS,
    };
    let sum = task.rows(0, p.n, logits, dlogits);
    Ok((sum / divisor) as f32)
}

/// What every block of rows needs.
struct Task<'a, L> {
    p: &'a SoftmaxXent,
    labels: &'a [L],
    scale: f32,
    isa: Isa,
    leaf_rows: usize,
    parallel: bool,
}

impl<L: ClassLabel> Task<'_, L> {
    /// The loss sum of rows `r0..r1` (`x` and `g` start at row `r0`), split in halves at
    /// leaf boundaries: the tree depends only on the shape, not on the thread count.
    fn rows(&self, r0: usize, r1: usize, x: &[f32], g: Option<&mut [f32]>) -> f64 {
        let rows = r1 - r0;
        if rows <= self.leaf_rows {
            return dispatch(
                self.isa,
                Leaf {
                    t: self,
                    r0,
                    r1,
                    x,
                    g,
                },
            );
        }
        let leaves = rows.div_ceil(self.leaf_rows);
        let mid = r0 + leaves / 2 * self.leaf_rows;
        let (xa, xb) = x.split_at((mid - r0) * self.p.classes);
        let (ga, gb) = match g {
            Some(g) => {
                let (a, b) = g.split_at_mut((mid - r0) * self.p.classes);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (a, b) = if self.parallel {
            rayon::join(|| self.rows(r0, mid, xa, ga), || self.rows(mid, r1, xb, gb))
        } else {
            (self.rows(r0, mid, xa, ga), self.rows(mid, r1, xb, gb))
        };
        a + b
    }
}

/// One leaf of rows, run inside the ISA dispatch.
struct Leaf<'a, 'b, L> {
    t: &'a Task<'b, L>,
    r0: usize,
    r1: usize,
    x: &'a [f32],
    g: Option<&'a mut [f32]>,
}

impl<L: ClassLabel> SimdFn<f32> for Leaf<'_, '_, L> {
    type Output = f64;
    #[inline(always)]
    fn call<V: Vector<Elem = f32>>(self) -> f64 {
        let (t, c) = (self.t, self.t.p.classes);
        let mut g = self.g;
        let mut sum = 0.0f64;
        for (k, row) in (self.r0..self.r1).enumerate() {
            let x = &self.x[k * c..(k + 1) * c];
            let gr = g.as_deref_mut().map(|g| &mut g[k * c..(k + 1) * c]);
            sum += row_loss::<V>(t.p, t.scale, x, t.p.label_of(t.labels[row]), gr);
        }
        sum
    }
}

/// The loss of one row (0 when ignored), writing its gradient row if asked.
#[inline(always)]
fn row_loss<V: Vector<Elem = f32>>(
    p: &SoftmaxXent,
    scale: f32,
    x: &[f32],
    label: Option<usize>,
    g: Option<&mut [f32]>,
) -> f64 {
    let Some(y) = label else {
        if let Some(g) = g {
            g.fill(0.0);
        }
        return 0.0;
    };
    let eps = p.label_smoothing;
    let c = x.len();
    let (m, ln_s) = match g {
        Some(g) => {
            let m = row_max::<V>(x);
            let s = row_exp_sum::<V>(x, m, g);
            row_affine::<V>(g, scale / s, -scale * eps / c as f32);
            g[y] -= scale * (1.0 - eps);
            (m, (s as f64).ln())
        }
        None => row_log_sum_exp::<V, false>(x),
    };
    // `m` is the row's maximum, or (loss only) a point at most a few units above it: the loss
    // `ln(sum_j e^(x_j - m)) + (1 - eps) (m - x_y) + eps (m - mean x)` is the same for any `m`.
    let (m64, eps64) = (m as f64, eps as f64);
    let mut loss = ln_s + (1.0 - eps64) * (m64 - x[y] as f64);
    if eps > 0.0 {
        // m - mean(x) = -sum(x - m) / C, summed in f64 to stay exact for large logits.
        let sd: f64 = x.iter().map(|&v| v as f64 - m64).sum();
        loss -= eps64 * sd / c as f64;
    }
    loss
}

/// Reference softmax-cross-entropy: plain loops in any [`Float`], same semantics and errors.
pub fn softmax_cross_entropy_reference<T: Float, L: ClassLabel>(
    p: &SoftmaxXent,
    logits: &[T],
    labels: &[L],
    mut dlogits: Option<&mut [T]>,
) -> Result<T, KernelError> {
    let count = p.validate(logits.len(), labels, dlogits.as_ref().map(|d| d.len()))?;
    let cf = |v: f64| T::from(v).expect("representable");
    let eps = cf(p.label_smoothing as f64);
    let (scale, divisor) = match p.reduction {
        Reduction::Mean if count > 0 => (T::one() / cf(count as f64), cf(count as f64)),
        Reduction::Mean => (T::zero(), T::zero()),
        Reduction::Sum => (T::one(), T::one()),
    };
    let c = p.classes;
    let mut total = T::zero();
    for i in 0..p.n {
        let x = &logits[i * c..(i + 1) * c];
        let label = p.label_of(labels[i]);
        let Some(y) = label else {
            if let Some(g) = dlogits.as_deref_mut() {
                g[i * c..(i + 1) * c].fill(T::zero());
            }
            continue;
        };
        let m = x.iter().fold(
            T::neg_infinity(),
            |a, &b| if b.is_nan() || b > a { b } else { a },
        );
        let s = x.iter().fold(T::zero(), |a, &b| a + (b - m).exp());
        let mean_gap = x.iter().fold(T::zero(), |a, &b| a + (m - b)) / cf(c as f64);
        total = total + s.ln() + (T::one() - eps) * (m - x[y]);
        if p.label_smoothing > 0.0 {
            total = total + eps * mean_gap;
        }
        if let Some(g) = dlogits.as_deref_mut() {
            for j in 0..c {
                let hit = if j == y { T::one() - eps } else { T::zero() };
                g[i * c + j] = scale * ((x[j] - m).exp() / s - hit - eps / cf(c as f64));
            }
        }
    }
    Ok(total / divisor)
}
