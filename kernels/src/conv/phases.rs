//! Rows split into, and merged from, their two column phases (stride 2): the strided
//! passes of `wide.rs` and `depthwise.rs` read padded images as phase planes (see
//! `wide.rs`). Generic over the vector type: blocks of pairs move through the
//! [`Vector::deinterleave`] and [`Vector::interleave`] shuffles (the same loops written over
//! pairs stayed scalar moves even in an AVX-512 context: 86% of a depthwise stride-2 weight
//! gradient).

use crate::simd::Vector;

/// Column `j` of a row padded with `pl` zeros in front (and zeros behind).
#[inline(always)]
pub(crate) fn padded(row: &[f32], pl: usize, j: usize) -> f32 {
    j.checked_sub(pl)
        .and_then(|i| row.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// Starts of the blocks of `l` that cover `lo..hi` (empty, or `hi - lo >= l`): the last one
/// ends at `hi`, overlapping the one before (which writes the same values again).
#[inline(always)]
fn blocks(lo: usize, hi: usize, l: usize) -> impl Iterator<Item = usize> {
    (lo..hi).step_by(l).map(move |t| t.min(hi - l))
}

/// Padded columns `0, 2, 4, ...` of `row` (`pl` zeros in front) into `even`, `1, 3, ...`
/// into `odd` (zeros past the row): the interior, where both columns of a pair are input,
/// by blocks of `V::LANES` pairs (two loads, [`Vector::deinterleave`], two stores; the last
/// block may overlap the one before, writing the same values again), the few padded pairs
/// one by one.
#[inline(always)]
pub(crate) fn split_row2<V: Vector<Elem = f32>>(
    row: &[f32],
    pl: usize,
    even: &mut [f32],
    odd: &mut [f32],
) {
    let wq = even.len();
    // Pairs t0..t1 have 2t - pl >= 0 and 2t + 1 - pl < w.
    let t0 = pl.div_ceil(2).min(wq);
    let t1 = ((row.len() + pl) / 2).clamp(t0, wq);
    for t in (0..t0).chain(t1..wq) {
        even[t] = padded(row, pl, 2 * t);
        odd[t] = padded(row, pl, 2 * t + 1);
    }
    let l = V::LANES;
    if t1 - t0 < l {
        let pairs = row[2 * t0 - pl..].chunks_exact(2);
        for ((e, o), pair) in even[t0..t1].iter_mut().zip(&mut odd[t0..t1]).zip(pairs) {
            *e = pair[0];
            *o = pair[1];
        }
        return;
    }
    for b in blocks(t0, t1, l) {
        let src = &row[2 * b - pl..][..2 * l];
        let (e, o) = (&mut even[b..b + l], &mut odd[b..b + l]);
        // SAFETY: `src` holds two vectors, `e` and `o` one each (bounds-checked slices).
        unsafe {
            let (ve, vo) = V::load(src.as_ptr()).deinterleave(V::load(src[l..].as_ptr()));
            ve.store(e.as_mut_ptr());
            vo.store(o.as_mut_ptr());
        }
    }
}

/// `dst[i] = src[2 * i]` (`src` at least `2 * dst.len() - 1` long): the columns of a
/// stride-2 row computed at every column. Blocks of `V::LANES` outputs (the last one
/// overlapping the one before); a strided scalar copy took 15% of a depthwise stride-2
/// forward.
#[inline(always)]
pub(crate) fn take_even<V: Vector<Elem = f32>>(src: &[f32], dst: &mut [f32]) {
    // Outputs whose pair (2i, 2i + 1) lies in `src`: the blocks' range.
    let (l, full) = (V::LANES, (src.len() / 2).min(dst.len()));
    let done = if full >= l { full } else { 0 };
    for b in blocks(0, done, l) {
        let pairs = &src[2 * b..][..2 * l];
        let out = &mut dst[b..b + l];
        // SAFETY: `pairs` holds two vectors, `out` one (bounds-checked slices).
        unsafe {
            let (e, _) = V::load(pairs.as_ptr()).deinterleave(V::load(pairs[l..].as_ptr()));
            e.store(out.as_mut_ptr());
        }
    }
    for (i, d) in dst.iter_mut().enumerate().skip(done) {
        *d = src[2 * i];
    }
}

/// The inverse of [`split_row2`] for the row's own columns: `row[j]` is padded column
/// `j + pl`, from `even` (padded columns `0, 2, ...`) or `odd` (`1, 3, ...`). Blocks of
/// `V::LANES` pairs through [`Vector::interleave`], as in [`split_row2`].
#[inline(always)]
pub(crate) fn merge_row2<V: Vector<Elem = f32>>(
    even: &[f32],
    odd: &[f32],
    pl: usize,
    row: &mut [f32],
) {
    // row[2u] is padded column pl + 2u, in phase pl mod 2 at (pl + 2u) / 2; row[2u + 1] in
    // the other phase at (pl + 2u + 1) / 2.
    let (first, second) = if pl.is_multiple_of(2) {
        (even, odd)
    } else {
        (odd, even)
    };
    let (first, second) = (&first[pl / 2..], &second[pl.div_ceil(2)..]);
    let (l, pairs) = (V::LANES, row.len() / 2);
    let done = if pairs >= l { pairs } else { 0 };
    for b in blocks(0, done, l) {
        let (f, s) = (&first[b..b + l], &second[b..b + l]);
        let out = &mut row[2 * b..2 * (b + l)];
        // SAFETY: `f` and `s` hold one vector each, `out` two (bounds-checked slices).
        unsafe {
            let (lo, hi) = V::load(f.as_ptr()).interleave(V::load(s.as_ptr()));
            lo.store(out.as_mut_ptr());
            hi.store(out[l..].as_mut_ptr());
        }
    }
    for u in done..pairs {
        row[2 * u] = first[u];
        row[2 * u + 1] = second[u];
    }
    if row.len() % 2 == 1 {
        row[2 * pairs] = first[pairs];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa, SimdFn};

    /// Split then merge gives the row back, for every padding parity and row length (short
    /// rows and rows of several vector blocks, on every ISA); the phases hold the padded
    /// row's columns in order, zeros outside the row; `take_even` takes the even columns.
    #[test]
    fn split_and_merge_invert() {
        struct Check;
        impl SimdFn<f32> for Check {
            type Output = ();
            #[inline(always)]
            fn call<V: Vector<Elem = f32>>(self) {
                for w in (1usize..40).chain([55, 56, 64, 65, 100]) {
                    let row: Vec<f32> = (0..w).map(|i| i as f32 + 1.0).collect();
                    for pl in 0usize..4 {
                        for pr in 0usize..3 {
                            check::<V>(&row, pl, pr);
                        }
                    }
                }
            }
        }
        fn check<V: Vector<Elem = f32>>(row: &[f32], pl: usize, pr: usize) {
            let (w, l) = (row.len(), V::LANES);
            let wq = (pl + w + pr).div_ceil(2);
            let (mut even, mut odd) = (vec![f32::NAN; wq], vec![f32::NAN; wq]);
            split_row2::<V>(row, pl, &mut even, &mut odd);
            for t in 0..wq {
                assert_eq!(even[t], padded(row, pl, 2 * t), "{l} {w} {pl} {pr} {t}");
                assert_eq!(odd[t], padded(row, pl, 2 * t + 1), "{l} {w} {pl} {pr} {t}");
            }
            let mut back = vec![f32::NAN; w];
            let mut evens = vec![f32::NAN; w.div_ceil(2)];
            take_even::<V>(row, &mut evens);
            assert!(
                evens.iter().enumerate().all(|(i, &v)| v == row[2 * i]),
                "{l} {w}"
            );
            merge_row2::<V>(&even, &odd, pl, &mut back);
            assert_eq!(back, row, "{l} {w} {pl} {pr}");
        }
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            dispatch(isa, Check);
        }
    }
}
