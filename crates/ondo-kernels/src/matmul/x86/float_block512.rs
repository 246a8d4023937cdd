//! The blocked float kernel (`float_block`) on 512-bit registers, summing in the same order.
//!
//! The order every float kernel keeps (batch invariance) is one 8-lane accumulator per (row,
//! token), columns in increasing order. A 16-lane register here holds two of them: lanes 0-7 are
//! row `2p`'s accumulator for a token and lanes 8-15 row `2p + 1`'s, for the same token. A step
//! builds each row pair's eight columns once (two loads and an insert) and multiplies it with
//! every token's eight columns broadcast to both halves (one load), so each FMA does the work
//! of two 256-bit ones and the sums stay exactly those of `float_block::block`.
//!
//! Micro tile: two row pairs × up to eight tokens (sixteen accumulators; six loads and two
//! inserts per sixteen FMAs). Blocks, chunks and the ragged last pair are as in `float_block`.

use super::float_block::{ROWS, TOKENS};
use super::hsum;
use std::arch::x86_64::*;

/// Row pairs per block.
const PAIRS: usize = ROWS / 2;
/// Columns per chunk (a multiple of 8): a chunk's rows and tokens stay in L1 (24 KiB).
const CHUNK: usize = 256;

/// `out[t][r] = rows[r] · xs[t]`, as `float_block::block` (the same values, bit for bit).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512dq")]
pub(crate) unsafe fn block(rows: &[&[u8]], xs: &[&[f32]], out: &mut [[f32; ROWS]; TOKENS]) {
    debug_assert!(!rows.is_empty() && rows.len() <= ROWS && xs.len() <= TOKENS);
    let n = xs.first().map_or(0, |x| x.len());
    debug_assert!(rows.iter().all(|r| r.len() == 4 * n) && xs.iter().all(|x| x.len() == n));
    let n8 = n / 8 * 8;
    // a missing row repeats the last one (its results are dropped)
    let row = |r: usize| rows[r.min(rows.len() - 1)].as_ptr() as *const f32;
    let pairs = rows.len().div_ceil(2);
    let mut acc = [[_mm512_setzero_ps(); TOKENS]; PAIRS];
    for k0 in (0..n8).step_by(CHUNK) {
        let k1 = (k0 + CHUNK).min(n8);
        for p in (0..pairs).step_by(2) {
            let q = (p + 1).min(pairs - 1);
            let w = [row(2 * p), row(2 * p + 1), row(2 * q), row(2 * q + 1)];
            let (a0, a1) = acc.split_at_mut(p + 1);
            // an odd last pair runs as its own two (the second's results are dropped)
            let mut spare = [_mm512_setzero_ps(); TOKENS];
            let acc1 = if q > p { &mut a1[0] } else { &mut spare };
            let mut t = 0;
            while t < xs.len() {
                let take = (xs.len() - t).min(8);
                let (x, c0, c1) = (&xs[t..t + take], &mut a0[p][t..t + take], &mut acc1[t..t + take]);
                match take {
                    8 => micro::<8>(w, x, k0, k1, c0, c1),
                    7 => micro::<7>(w, x, k0, k1, c0, c1),
                    6 => micro::<6>(w, x, k0, k1, c0, c1),
                    5 => micro::<5>(w, x, k0, k1, c0, c1),
                    4 => micro::<4>(w, x, k0, k1, c0, c1),
                    3 => micro::<3>(w, x, k0, k1, c0, c1),
                    2 => micro::<2>(w, x, k0, k1, c0, c1),
                    _ => micro::<1>(w, x, k0, k1, c0, c1),
                }
                t += take;
            }
        }
    }
    for (r, w) in rows.iter().enumerate() {
        let w = w.as_ptr() as *const f32;
        for (t, x) in xs.iter().enumerate() {
            let v = acc[r / 2][t];
            let half = if r % 2 == 0 {
                _mm512_castps512_ps256(v)
            } else {
                _mm512_extractf32x8_ps::<1>(v)
            };
            let mut s = hsum(half);
            for j in n8..n {
                s += w.add(j).read_unaligned() * x[j];
            }
            out[t][r] = s;
        }
    }
}

/// Row pairs (`w[0]`, `w[1]`) and (`w[2]`, `w[3]`) against `T` tokens over columns `k0..k1`.
#[inline(always)]
unsafe fn micro<const T: usize>(
    w: [*const f32; 4],
    xs: &[&[f32]],
    k0: usize,
    k1: usize,
    acc0: &mut [__m512],
    acc1: &mut [__m512],
) {
    let x: [*const f32; T] = std::array::from_fn(|t| xs.get_unchecked(t).as_ptr());
    let mut c0: [__m512; T] = std::array::from_fn(|t| *acc0.get_unchecked(t));
    let mut c1: [__m512; T] = std::array::from_fn(|t| *acc1.get_unchecked(t));
    let mut i = k0;
    while i < k1 {
        let wa = pair(w[0], w[1], i);
        let wb = pair(w[2], w[3], i);
        for t in 0..T {
            let xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x[t].add(i)));
            c0[t] = _mm512_fmadd_ps(wa, xv, c0[t]);
            c1[t] = _mm512_fmadd_ps(wb, xv, c1[t]);
        }
        i += 8;
    }
    for t in 0..T {
        *acc0.get_unchecked_mut(t) = c0[t];
        *acc1.get_unchecked_mut(t) = c1[t];
    }
}

/// Columns `i..i + 8` of rows `a` (lanes 0-7) and `b` (lanes 8-15).
#[inline(always)]
unsafe fn pair(a: *const f32, b: *const f32, i: usize) -> __m512 {
    let lo = _mm512_castps256_ps512(_mm256_loadu_ps(a.add(i)));
    _mm512_insertf32x8::<1>(lo, _mm256_loadu_ps(b.add(i)))
}
