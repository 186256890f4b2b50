//! Rows split into, and merged from, their two column phases (stride 2): the strided
//! passes of `wide.rs` and `depthwise.rs` read padded images as phase planes (see
//! `wide.rs`). Written as plain loops over pairs, which vectorize into shuffles inside a
//! vector context (`simd::in_vector_context`, or a `SimdFn`).

/// Column `j` of a row padded with `pl` zeros in front (and zeros behind).
#[inline(always)]
pub(crate) fn padded(row: &[f32], pl: usize, j: usize) -> f32 {
    j.checked_sub(pl)
        .and_then(|i| row.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// Padded columns `0, 2, 4, ...` of `row` (`pl` zeros in front) into `even`, `1, 3, ...`
/// into `odd` (zeros past the row): the interior, where both columns of a pair are input,
/// as one de-interleaving loop (vector shuffles), the few padded pairs one by one.
#[inline(always)]
pub(crate) fn split_row2(row: &[f32], pl: usize, even: &mut [f32], odd: &mut [f32]) {
    let wq = even.len();
    // Pairs t0..t1 have 2t - pl >= 0 and 2t + 1 - pl < w.
    let t0 = pl.div_ceil(2).min(wq);
    let t1 = ((row.len() + pl) / 2).clamp(t0, wq);
    for t in (0..t0).chain(t1..wq) {
        even[t] = padded(row, pl, 2 * t);
        odd[t] = padded(row, pl, 2 * t + 1);
    }
    if t1 - t0 < SPLIT_BLOCK {
        let pairs = row[2 * t0 - pl..].chunks_exact(2);
        for ((e, o), pair) in even[t0..t1].iter_mut().zip(&mut odd[t0..t1]).zip(pairs) {
            *e = pair[0];
            *o = pair[1];
        }
        return;
    }
    // Fixed-size blocks of pairs (a few shuffles each), the last one ending at t1 (it may
    // overlap the one before: the same values written again). A loop of run-time length
    // over rows this short (14 pairs for 28-wide maps) ran mostly in its scalar remainder.
    let mut t = t0;
    while t < t1 {
        let b = t.min(t1 - SPLIT_BLOCK);
        let src: &[f32; 2 * SPLIT_BLOCK] = row[2 * b - pl..][..2 * SPLIT_BLOCK]
            .try_into()
            .expect("2 * SPLIT_BLOCK elements");
        let e: &mut [f32; SPLIT_BLOCK] = (&mut even[b..b + SPLIT_BLOCK])
            .try_into()
            .expect("SPLIT_BLOCK elements");
        let o: &mut [f32; SPLIT_BLOCK] = (&mut odd[b..b + SPLIT_BLOCK])
            .try_into()
            .expect("SPLIT_BLOCK elements");
        for i in 0..SPLIT_BLOCK {
            e[i] = src[2 * i];
            o[i] = src[2 * i + 1];
        }
        t = b + SPLIT_BLOCK;
    }
}

/// `dst[i] = src[2 * i]` (`src` at least `2 * dst.len() - 1` long): the columns of a
/// stride-2 row computed at every column. Fixed-size blocks (shuffles), the last one
/// overlapping the one before; a strided scalar copy took 15% of a depthwise stride-2
/// forward.
#[inline(always)]
pub(crate) fn take_even(src: &[f32], dst: &mut [f32]) {
    // Outputs whose pair (2i, 2i + 1) lies in `src`: the blocks' range.
    let full = (src.len() / 2).min(dst.len());
    let mut t = 0;
    while full >= SPLIT_BLOCK && t < full {
        let b = t.min(full - SPLIT_BLOCK);
        let pairs: &[f32; 2 * SPLIT_BLOCK] = src[2 * b..][..2 * SPLIT_BLOCK]
            .try_into()
            .expect("2 * SPLIT_BLOCK elements");
        let out: &mut [f32; SPLIT_BLOCK] = (&mut dst[b..b + SPLIT_BLOCK])
            .try_into()
            .expect("SPLIT_BLOCK elements");
        for i in 0..SPLIT_BLOCK {
            out[i] = pairs[2 * i];
        }
        t = b + SPLIT_BLOCK;
    }
    for (i, d) in dst.iter_mut().enumerate().skip(t) {
        *d = src[2 * i];
    }
}

/// Pairs per fixed-size block of [`split_row2`].
const SPLIT_BLOCK: usize = 8;

/// The inverse of [`split_row2`] for the row's own columns: `row[j]` is padded column
/// `j + pl`, from `even` (padded columns `0, 2, ...`) or `odd` (`1, 3, ...`).
#[inline(always)]
pub(crate) fn merge_row2(even: &[f32], odd: &[f32], pl: usize, row: &mut [f32]) {
    // row[2u] is padded column pl + 2u, in phase pl mod 2 at (pl + 2u) / 2; row[2u + 1] in
    // the other phase at (pl + 2u + 1) / 2.
    let (first, second) = if pl.is_multiple_of(2) {
        (even, odd)
    } else {
        (odd, even)
    };
    let (f0, s0) = (pl / 2, pl.div_ceil(2));
    let pairs = row.len() / 2;
    let (head, tail) = row.split_at_mut(2 * pairs);
    let src = first[f0..f0 + pairs].iter().zip(&second[s0..s0 + pairs]);
    for (pair, (&a, &b)) in head.chunks_exact_mut(2).zip(src) {
        pair[0] = a;
        pair[1] = b;
    }
    if let Some(last) = tail.first_mut() {
        *last = first[f0 + pairs];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split then merge gives the row back, for every padding parity and row length; the
    /// phases hold the padded row's columns in order, zeros outside the row; `take_even`
    /// takes the row's even columns.
    #[test]
    fn split_and_merge_invert() {
        for w in (1usize..12).chain([16, 17, 28, 29, 40]) {
            let row: Vec<f32> = (0..w).map(|i| i as f32 + 1.0).collect();
            for pl in 0usize..4 {
                for pr in 0usize..3 {
                    let wq = (pl + w + pr).div_ceil(2);
                    let (mut even, mut odd) = (vec![f32::NAN; wq], vec![f32::NAN; wq]);
                    split_row2(&row, pl, &mut even, &mut odd);
                    for t in 0..wq {
                        assert_eq!(even[t], padded(&row, pl, 2 * t), "{w} {pl} {pr} {t}");
                        assert_eq!(odd[t], padded(&row, pl, 2 * t + 1), "{w} {pl} {pr} {t}");
                    }
                    let mut back = vec![f32::NAN; w];
                    let mut evens = vec![f32::NAN; w.div_ceil(2)];
                    take_even(&row, &mut evens);
                    assert!(evens.iter().enumerate().all(|(i, &v)| v == row[2 * i]));
                    merge_row2(&even, &odd, pl, &mut back);
                    assert_eq!(back, row, "{w} {pl} {pr}");
                }
            }
        }
    }
}
