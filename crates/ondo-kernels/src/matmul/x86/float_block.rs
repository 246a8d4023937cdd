//! Float weights against several tokens: a block of up to `ROWS` f32 rows × `TOKENS` tokens.
//!
//! The accumulators of the whole block (one 8-lane vector per row and token, 4 KiB) stay in L1
//! while the columns go by in chunks of `CHUNK`: a chunk's rows (8 × 1 KiB) and tokens (16 ×
//! 1 KiB) are read from L1 by every micro tile, where whole rows (57 KiB each at 14336 columns)
//! streamed from L2 once per pair of rows. A micro tile is two rows × four tokens (eight
//! accumulators; six loads per eight FMAs, all from L1).
//!
//! Order (batch invariance): each (row, token) sums eight values per step into its one
//! accumulator, columns in increasing order, then its lane sum (`hsum`) and the scalar tail —
//! exactly what the batch-1 float kernels do, so a token's result never depends on the batch.

use super::hsum;
use crate::DType;
use std::arch::x86_64::*;

/// Rows and tokens per block.
pub(crate) const ROWS: usize = 8;
pub(crate) const TOKENS: usize = 16;
/// Columns per chunk (a multiple of 8).
const CHUNK: usize = 256;

/// `out[t][r] = rows[r] · xs[t]` for `rows.len() ≤ ROWS` rows of f32 bytes (any alignment) and
/// `xs.len() ≤ TOKENS` tokens, all of one length in values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn block(rows: &[&[u8]], xs: &[&[f32]], out: &mut [[f32; ROWS]; TOKENS]) {
    debug_assert!(rows.len() <= ROWS && xs.len() <= TOKENS);
    let n = xs.first().map_or(0, |x| x.len());
    debug_assert!(rows.iter().all(|r| r.len() == 4 * n) && xs.iter().all(|x| x.len() == n));
    let n8 = n / 8 * 8;
    let mut acc = [[_mm256_setzero_ps(); TOKENS]; ROWS];
    // a missing row repeats the last one (its results are dropped)
    let row = |r: usize| rows[r.min(rows.len() - 1)].as_ptr() as *const f32;
    for k0 in (0..n8).step_by(CHUNK) {
        let k1 = (k0 + CHUNK).min(n8);
        for r in (0..rows.len()).step_by(4) {
            let w = [row(r), row(r + 1), row(r + 2), row(r + 3)];
            let mut spare = [[_mm256_setzero_ps(); TOKENS]; 4];
            let quad = if r + 4 <= ROWS {
                &mut acc[r..r + 4]
            } else {
                &mut spare[..]
            };
            let mut t = 0;
            while t < xs.len() {
                let take = (xs.len() - t).min(3);
                let x = &xs[t..t + take];
                match take {
                    3 => micro::<3>(w, x, k0, k1, quad, t),
                    2 => micro::<2>(w, x, k0, k1, quad, t),
                    _ => micro::<1>(w, x, k0, k1, quad, t),
                }
                t += take;
            }
        }
    }
    for (r, row) in rows.iter().enumerate() {
        for (t, x) in xs.iter().enumerate() {
            let mut s = hsum(acc[r][t]);
            for j in n8..n {
                s += (row.as_ptr() as *const f32).add(j).read_unaligned() * x[j];
            }
            out[t][r] = s;
        }
    }
}

/// Rows `w` against tokens `xs` (`acc[r][t0 + t]`) over columns `k0..k1`.
#[inline(always)]
unsafe fn micro<const T: usize>(
    w: [*const f32; 4],
    xs: &[&[f32]],
    k0: usize,
    k1: usize,
    acc: &mut [[__m256; TOKENS]],
    t0: usize,
) {
    let x: [*const f32; T] = std::array::from_fn(|t| xs.get_unchecked(t).as_ptr());
    let mut c: [[__m256; T]; 4] = std::array::from_fn(|r| std::array::from_fn(|t| acc[r][t0 + t]));
    let mut i = k0;
    while i < k1 {
        let wv: [__m256; 4] = std::array::from_fn(|r| _mm256_loadu_ps(w[r].add(i)));
        for t in 0..T {
            let xv = _mm256_loadu_ps(x[t].add(i));
            for r in 0..4 {
                c[r][t] = _mm256_fmadd_ps(wv[r], xv, c[r][t]);
            }
        }
        i += 8;
    }
    for r in 0..4 {
        for t in 0..T {
            acc[r][t0 + t] = c[r][t];
        }
    }
}

/// A row of f16 or bf16 (`dtype`) as f32 values (F16C / a shift; the same values as
/// `quant::dequantize_row`). Other formats go through `dequantize_row`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn to_f32(dtype: DType, src: &[u8], dst: &mut [f32]) {
    let n = dst.len().min(src.len() / 2);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    match dtype {
        DType::F16 => {
            while i + 8 <= n {
                let h = _mm_loadu_si128(s.add(2 * i) as *const __m128i);
                _mm256_storeu_ps(d.add(i), _mm256_cvtph_ps(h));
                i += 8;
            }
        }
        DType::BF16 => {
            while i + 8 <= n {
                let h = _mm_loadu_si128(s.add(2 * i) as *const __m128i);
                _mm256_storeu_ps(
                    d.add(i),
                    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)),
                );
                i += 8;
            }
        }
        _ => return crate::quant::dequantize_row(dtype, src, dst),
    }
    crate::quant::dequantize_row(dtype, &src[2 * i..2 * n], &mut dst[i..n]);
}
