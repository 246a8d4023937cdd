//! Sub-block scale searches for the K formats, instead of taking the range (asymmetric) or the
//! largest value (symmetric) as the scale.
//!
//! Round-to-nearest against the range wastes levels whenever one value sits far from the rest.
//! Both searches here try a sweep of scales around that first guess, round every value against
//! each, and keep the candidate whose weighted squared error is lowest, the scale (and min)
//! refitted by least squares to the levels that candidate chose. The weights favour large
//! values, whose errors cost the matmul most. The idea is ggml's (`make_qkx2_quants`,
//! `make_qx_quants`); the code is ondo's own.

/// Asymmetric sweep: candidate inverse scales `(levels + first + step·k) / range`, k in
/// `0..=steps`.
pub(crate) struct Sweep {
    pub first: f32,
    pub step: f32,
    pub steps: usize,
}

/// Q4_K's sweep (levels 0..=15).
pub(crate) const Q4_K_SWEEP: Sweep = Sweep {
    first: -1.0,
    step: 0.1,
    steps: 20,
};
/// Q5_K's sweep (levels 0..=31).
pub(crate) const Q5_K_SWEEP: Sweep = Sweep {
    first: -0.5,
    step: 0.1,
    steps: 15,
};

/// Weights for an asymmetric sub-block: the values' RMS plus each value's size.
pub(crate) fn asym_weights(x: &[f32], w: &mut [f32]) {
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for (w, v) in w.iter_mut().zip(x) {
        *w = rms + v.abs();
    }
}

/// `(scale, min)` with `x ≈ scale · q − min`, `q` in `0..=levels`, `min ≥ 0`, minimizing the
/// `w`-weighted squared error over the sweep's candidates (the plain range fit is the first).
pub(crate) fn fit_asym(x: &[f32], w: &[f32], levels: i32, sweep: &Sweep) -> (f32, f32) {
    let lo = x.iter().fold(0f32, |a, &v| a.min(v));
    let hi = x.iter().fold(lo, |a, &v| a.max(v));
    if hi == lo {
        return (0.0, -lo);
    }
    let mut best = ((hi - lo) / levels as f32, lo);
    let mut best_err = asym_error(x, w, best.0, best.1, levels);
    for k in 0..=sweep.steps {
        let iscale = (levels as f32 + sweep.first + sweep.step * k as f32) / (hi - lo);
        let level = |v: f32| ((iscale * (v - lo)).round() as i32).clamp(0, levels) as f32;
        let Some((scale, offset)) = least_squares(x, w, level) else {
            continue;
        };
        let err = asym_error(x, w, scale, offset, levels);
        if err < best_err {
            (best, best_err) = ((scale, offset), err);
        }
    }
    (best.0, -best.1)
}

/// The least-squares `(scale, offset ≤ 0)` of `x ≈ scale · level(x) + offset` under weights `w`.
fn least_squares(x: &[f32], w: &[f32], level: impl Fn(f32) -> f32) -> Option<(f32, f32)> {
    let (mut sw, mut sq, mut sqq, mut sx, mut sqx) = (0f32, 0f32, 0f32, 0f32, 0f32);
    for (&v, &w) in x.iter().zip(w) {
        let q = level(v);
        (sw, sq, sqq, sx, sqx) = (sw + w, sq + w * q, sqq + w * q * q, sx + w * v, sqx + w * q * v);
    }
    let det = sw * sqq - sq * sq;
    if det <= 0.0 {
        return None;
    }
    let (scale, offset) = ((sw * sqx - sq * sx) / det, (sqq * sx - sq * sqx) / det);
    match offset > 0.0 {
        // a positive offset is not storable (the min is subtracted): scale alone, offset 0
        true => (sqq > 0.0).then(|| (sqx / sqq, 0.0)),
        false => Some((scale, offset)),
    }
}

/// Weighted squared error of `x` rounded against `scale` and `offset` (`x ≈ scale · q + offset`).
fn asym_error(x: &[f32], w: &[f32], scale: f32, offset: f32, levels: i32) -> f32 {
    let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    x.iter()
        .zip(w)
        .map(|(&v, &w)| {
            let q = (((v - offset) * inv).round() as i32).clamp(0, levels) as f32;
            let e = scale * q + offset - v;
            w * e * e
        })
        .sum()
}

/// Symmetric sub-block scale (`x ≈ scale · q`, `q` in `-qmax..qmax`, scale signed so the
/// largest value lands on `-qmax`), searched over `±9` tenths of a level around the
/// largest-value fit under weights `x²`: each candidate's levels get their least-squares
/// scale, and the one that explains the most weighted energy wins.
pub(crate) fn fit_sym(x: &[f32], qmax: i32) -> f32 {
    let big = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    if big == 0.0 {
        return 0.0;
    }
    let mut best = (big / -(qmax as f32), f32::NEG_INFINITY);
    for k in -9..=9 {
        let iscale = -(qmax as f32 + 0.1 * k as f32) / big;
        let (mut sxq, mut sqq) = (0f32, 0f32);
        for &v in x {
            let q = ((iscale * v).round() as i32).clamp(-qmax, qmax - 1) as f32;
            let w = v * v;
            (sxq, sqq) = (sxq + w * v * q, sqq + w * q * q);
        }
        if sqq > 0.0 && sxq * sxq / sqq > best.1 {
            best = (sxq / sqq, sxq * sxq / sqq);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use crate::quant::{dequantize_row, kquants::quant_rtn, quantize_row};
    use crate::testutil::Rng;
    use crate::DType;

    /// The error each search lowers: Q4_K/Q5_K weight a value by its sub-block's RMS plus its
    /// size, Q6_K by its square.
    fn weighted_error(dtype: DType, x: &[f32], y: &[f32]) -> f64 {
        let mut w = [0f32; 32];
        x.chunks_exact(32)
            .zip(y.chunks_exact(32))
            .map(|(x, y)| {
                match dtype {
                    DType::Q6_K => x.iter().zip(&mut w).for_each(|(v, w)| *w = v * v),
                    _ => super::asym_weights(x, &mut w),
                }
                x.iter()
                    .zip(y)
                    .zip(&w)
                    .map(|((a, b), w)| (w * (a - b) * (a - b)) as f64)
                    .sum::<f64>()
            })
            .sum()
    }

    /// Normal values with every 29th one six times larger (the outliers real weights have).
    #[test]
    fn searched_scales_lower_the_weighted_error_of_round_to_nearest() {
        let mut rng = Rng::new(31);
        let x: Vec<f32> = rng
            .normals(256 * 64)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i % 29 == 0 { 6.0 * v } else { v })
            .collect();
        for dtype in [DType::Q4_K, DType::Q5_K, DType::Q6_K] {
            let mut block = vec![0u8; dtype.block_bytes()];
            let (mut y, mut searched, mut rtn) = (vec![0f32; 256], 0f64, 0f64);
            for x in x.chunks_exact(256) {
                quantize_row(dtype, x, &mut block).unwrap();
                dequantize_row(dtype, &block, &mut y);
                searched += weighted_error(dtype, x, &y);
                quant_rtn(dtype, x, &mut block);
                dequantize_row(dtype, &block, &mut y);
                rtn += weighted_error(dtype, x, &y);
            }
            eprintln!("{dtype}: searched / round-to-nearest = {:.3}", searched / rtn);
            // 6-bit values leave round-to-nearest less to lose (measured: Q6_K 0.984, Q5_K 0.925, Q4_K 0.880)
            let bound = if dtype == DType::Q6_K { 0.995 } else { 0.95 };
            assert!(
                searched < bound * rtn,
                "{dtype}: searched {searched} vs round-to-nearest {rtn}"
            );
        }
    }

    #[test]
    fn zero_blocks_stay_zero() {
        for dtype in [DType::Q4_K, DType::Q5_K, DType::Q6_K] {
            let mut block = vec![0u8; dtype.block_bytes()];
            let mut y = vec![1f32; 256];
            quantize_row(dtype, &[0.0; 256], &mut block).unwrap();
            dequantize_row(dtype, &block, &mut y);
            assert!(y.iter().all(|v| *v == 0.0), "{dtype}: zeros");
        }
    }
}
