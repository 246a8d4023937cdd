//! Float weights against several tokens: a panel of up to `ROWS` f32 rows × `TOKENS` tokens,
//! adding into the caller's 8-lane sums (`FloatAcc`; the caller walks the panels and finishes
//! the sums: `matmul::blocked`), and the converter that lays rows out as panels (`to_panel`).
//!
//! A panel holds its rows' columns interleaved, `[steps][ROWS][8]`: one step (eight columns of
//! every row, 256 bytes) is one stream of whole cache lines. The accumulators of the block (one
//! 8-lane vector per row and token, 4 KiB) stay in L1 while the columns go by in chunks of
//! `CHUNK`: a chunk's rows (8 KiB) and tokens (16 × 1 KiB) are read from L1 by every micro tile.
//! A micro tile is four rows × three tokens (twelve accumulators; seven loads per twelve FMAs).
//!
//! Order (batch invariance): each (row, token) sums eight values per step into its one
//! accumulator, columns in increasing order — what the batch-1 float kernels do.

use super::super::table::{FloatAcc, FloatEnds};
use super::hsum;
use crate::DType;
use std::arch::x86_64::*;

/// Rows and tokens per block.
pub(crate) const ROWS: usize = 8;
pub(crate) const TOKENS: usize = 16;
/// Columns per chunk (a multiple of 8).
const CHUNK: usize = 256;
/// Floats per panel step: eight columns of every row.
pub(crate) const STEP: usize = 8 * ROWS;

/// The columns of a block call (`w.len() / ROWS`), its shapes checked in debug builds.
#[inline(always)]
pub(crate) fn columns(w: &[f32], rows: usize, xs: &[&[f32]]) -> usize {
    let n = w.len() / ROWS;
    debug_assert!((1..=ROWS).contains(&rows) && xs.len() <= TOKENS);
    debug_assert!(n.is_multiple_of(8) && xs.iter().all(|x| x.len() == n));
    n
}

/// `acc[r][t] += row r · xs[t]` for the first `rows ≤ ROWS` rows of panel `w` and
/// `xs.len() ≤ TOKENS` tokens of `w.len() / ROWS` values each.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn block(w: &[f32], rows: usize, xs: &[&[f32]], sums: &mut FloatAcc, mut ends: FloatEnds<'_>) {
    let n = columns(w, rows, xs);
    let mut acc: [[__m256; TOKENS]; ROWS] = match ends.first {
        true => [[_mm256_setzero_ps(); TOKENS]; ROWS],
        false => std::array::from_fn(|r| std::array::from_fn(|t| _mm256_loadu_ps(sums.0[r][t].as_ptr()))),
    };
    for k0 in (0..n).step_by(CHUNK) {
        let k1 = (k0 + CHUNK).min(n);
        // rows past `rows` are whatever the panel holds there (their sums are dropped)
        for r in (0..rows).step_by(4) {
            let quad = &mut acc[r..r + 4];
            let mut t = 0;
            while t < xs.len() {
                // threes, and 4 left as two twos (a lone token does 4 FMAs per 5 loads)
                let take = match xs.len() - t {
                    4 => 2,
                    left => left.min(3),
                };
                let x = &xs[t..t + take];
                match take {
                    3 => micro::<3>(w.as_ptr().add(8 * r), x, k0, k1, quad, t),
                    2 => micro::<2>(w.as_ptr().add(8 * r), x, k0, k1, quad, t),
                    _ => micro::<1>(w.as_ptr().add(8 * r), x, k0, k1, quad, t),
                }
                t += take;
            }
        }
    }
    for (r, lanes) in acc.iter().enumerate().take(rows) {
        for (t, v) in lanes.iter().enumerate().take(xs.len()) {
            match &mut ends.last {
                Some(out) => out[t][r] = hsum(*v),
                None => _mm256_storeu_ps(sums.0[r][t].as_mut_ptr(), *v),
            }
        }
    }
}

/// Four rows of a panel (the first at `w`) against tokens `xs` (`acc[r][t0 + t]`) over columns
/// `k0..k1`.
#[inline(always)]
unsafe fn micro<const T: usize>(
    w: *const f32,
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
        let step = w.add(i * ROWS);
        let wv: [__m256; 4] = std::array::from_fn(|r| _mm256_loadu_ps(step.add(8 * r)));
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

/// Rows of f32, f16 or bf16 (`dtype`; at most `ROWS`, each a multiple of 8 values, all one
/// length) as f32 into a panel, a step at a time: values `8s..8s + 8` of row r to
/// `dst[STEP·s + 8r..]` (F16C / a shift; the values of `quant::dequantize_row`). Writing whole
/// steps keeps the stores sequential (row by row, with a stride, ran 16-token blocks 20% slower).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn to_panel(dtype: DType, rows: &[&[u8]], dst: &mut [f32]) {
    let elem = dtype.block_bytes();
    let steps = rows.first().map_or(0, |r| r.len() / (8 * elem));
    debug_assert!(rows.len() <= ROWS && rows.iter().all(|r| r.len() == 8 * elem * steps));
    debug_assert!(dst.len() >= STEP * steps);
    let d = dst.as_mut_ptr();
    // (no closures: one not inlined would lose this function's target features)
    macro_rules! steps {
        (|$row:ident, $s:ident| $load:expr) => {
            for $s in 0..steps {
                for (r, row) in rows.iter().enumerate() {
                    let $row = row.as_ptr();
                    _mm256_storeu_ps(d.add(STEP * $s + 8 * r), $load);
                }
            }
        };
    }
    match dtype {
        DType::F32 => steps!(|row, s| _mm256_loadu_ps(row.add(32 * s) as *const f32)),
        DType::F16 => steps!(|row, s| _mm256_cvtph_ps(_mm_loadu_si128(row.add(16 * s) as *const __m128i))),
        DType::BF16 => steps!(|row, s| {
            let h = _mm_loadu_si128(row.add(16 * s) as *const __m128i);
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
        }),
        _ => unreachable!("panels hold float formats"),
    }
}
