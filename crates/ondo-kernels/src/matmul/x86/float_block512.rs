//! The blocked float kernel (`float_block`) on 512-bit registers, summing in the same order.
//!
//! The order every float kernel keeps (batch invariance) is one 8-lane accumulator per (row,
//! token), columns in increasing order. A 16-lane register here holds two of them: lanes 0-7 are
//! row `2p`'s accumulator for a token and lanes 8-15 row `2p + 1`'s. A panel step keeps the two
//! rows' eight columns side by side, so one load gives the pair, and each token's eight columns
//! are broadcast to both halves (one load): each FMA does the work of two 256-bit ones and the
//! sums stay exactly those of `float_block::block`.
//!
//! Micro tile: all four row pairs × up to six tokens (24 accumulators; ten loads per 24 FMAs,
//! one panel stream). Chunks are as in `float_block`.

use super::super::table::{FloatAcc, FloatEnds};
use super::float_block::{columns, ROWS, TOKENS};
use super::hsum;
use std::arch::x86_64::*;

/// Row pairs per block.
const PAIRS: usize = ROWS / 2;
/// Columns per chunk (a multiple of 8): a chunk's rows and tokens stay in L1 (24 KiB).
const CHUNK: usize = 256;

/// `acc[r][t] += row r · xs[t]`, as `float_block::block` (the same sums, bit for bit).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512dq")]
pub(crate) unsafe fn block(w: &[f32], rows: usize, xs: &[&[f32]], sums: &mut FloatAcc, mut ends: FloatEnds<'_>) {
    let n = columns(w, rows, xs);
    let mut acc: [[__m512; TOKENS]; PAIRS] = match ends.first {
        true => [[_mm512_setzero_ps(); TOKENS]; PAIRS],
        false => std::array::from_fn(|p| {
            std::array::from_fn(|t| {
                let lo = _mm512_castps256_ps512(_mm256_loadu_ps(sums.0[2 * p][t].as_ptr()));
                _mm512_insertf32x8::<1>(lo, _mm256_loadu_ps(sums.0[2 * p + 1][t].as_ptr()))
            })
        }),
    };
    for k0 in (0..n).step_by(CHUNK) {
        let k1 = (k0 + CHUNK).min(n);
        // rows past `rows` are whatever the panel holds there (their sums are dropped)
        let mut t = 0;
        while t < xs.len() {
            let take = (xs.len() - t).min(6);
            let x = &xs[t..t + take];
            match take {
                6 => micro::<6>(w.as_ptr(), x, k0, k1, &mut acc, t),
                5 => micro::<5>(w.as_ptr(), x, k0, k1, &mut acc, t),
                4 => micro::<4>(w.as_ptr(), x, k0, k1, &mut acc, t),
                3 => micro::<3>(w.as_ptr(), x, k0, k1, &mut acc, t),
                2 => micro::<2>(w.as_ptr(), x, k0, k1, &mut acc, t),
                _ => micro::<1>(w.as_ptr(), x, k0, k1, &mut acc, t),
            }
            t += take;
        }
    }
    for r in 0..rows {
        for t in 0..xs.len() {
            let v = acc[r / 2][t];
            let half = if r % 2 == 0 {
                _mm512_castps512_ps256(v)
            } else {
                _mm512_extractf32x8_ps::<1>(v)
            };
            match &mut ends.last {
                Some(out) => out[t][r] = hsum(half),
                None => _mm256_storeu_ps(sums.0[r][t].as_mut_ptr(), half),
            }
        }
    }
}

/// Every row pair of panel `w` against `T` tokens (`acc[p][t0 + t]`) over columns `k0..k1`.
#[inline(always)]
unsafe fn micro<const T: usize>(
    w: *const f32,
    xs: &[&[f32]],
    k0: usize,
    k1: usize,
    acc: &mut [[__m512; TOKENS]; PAIRS],
    t0: usize,
) {
    let x: [*const f32; T] = std::array::from_fn(|t| xs.get_unchecked(t).as_ptr());
    let mut c: [[__m512; T]; PAIRS] = std::array::from_fn(|p| std::array::from_fn(|t| acc[p][t0 + t]));
    let mut i = k0;
    while i < k1 {
        let step = w.add(i * ROWS);
        let wv: [__m512; PAIRS] = std::array::from_fn(|p| _mm512_loadu_ps(step.add(16 * p)));
        for t in 0..T {
            let xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x[t].add(i)));
            for p in 0..PAIRS {
                c[p][t] = _mm512_fmadd_ps(wv[p], xv, c[p][t]);
            }
        }
        i += 8;
    }
    for p in 0..PAIRS {
        for t in 0..T {
            acc[p][t0 + t] = c[p][t];
        }
    }
}
