//! Kernels over interleaved weights (`matmul::interleave`): one row group (sixteen rows, one
//! i32 lane each) against 1..=4 tokens. Per tile the weights become eight byte vectors (four
//! columns of every row each), every vector meets its four activation bytes in one `vpdpbusd`,
//! and scales, mins and offsets apply lane-wise: no horizontal sums, no per-row work.

use super::super::interleave::{self as il, parts32, Parts32};
use super::{prefetch_tile, ActRow, Ahead};
use crate::DType;
use std::arch::x86_64::*;

/// `*out.add(t · stride + r) = row_r · a[t]` for the sixteen rows of one group: `tiles` is the
/// group's tiles, 1..=4 tokens. `ahead` is this call's share of the next group's tiles: as each
/// tile is read, its share of the same tile there is prefetched, so the next group comes from cache.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(crate) unsafe fn group_dot(dtype: DType, tiles: &[u8], a: &[ActRow], out: *mut f32, stride: usize, ahead: Ahead) {
    macro_rules! by_tokens {
        ($f:ident $(, $p:expr)*) => {
            match a.len() {
                1 => $f::<1>(tiles, a, out, stride, ahead $(, $p)*),
                2 => $f::<2>(tiles, a, out, stride, ahead $(, $p)*),
                3 => $f::<3>(tiles, a, out, stride, ahead $(, $p)*),
                _ => $f::<4>(tiles, a, out, stride, ahead $(, $p)*),
            }
        };
    }
    match dtype {
        DType::Q4_K => by_tokens!(group_k4, false),
        DType::Q5_K => by_tokens!(group_k4, true),
        DType::Q6_K => by_tokens!(group_q6_k),
        DType::Q4_0 => by_tokens!(group32, parts32(dtype), -8.0),
        DType::Q5_0 => by_tokens!(group32, parts32(dtype), -16.0),
        DType::Q8_0 => by_tokens!(group32, parts32(dtype), -128.0),
        DType::Q4_1 | DType::Q5_1 => by_tokens!(group32, parts32(dtype), 0.0),
        _ => unreachable!("{dtype} is not interleaved"),
    }
}

/// Sums of `vpdpbusd(q[k], x[k])` over `ks`, in two chains (one `vpdpbusd` waits on another
/// only every other step).
#[inline(always)]
unsafe fn dot8(q: &[__m512i; 8], x: *const u8, ks: std::ops::Range<usize>) -> __m512i {
    let (s0, s1) = dot8_halves(q, x, ks);
    _mm512_add_epi32(s0, s1)
}

/// [`dot8`]'s two chains apart: the even `k` and the odd `k`.
#[inline(always)]
unsafe fn dot8_halves(q: &[__m512i; 8], x: *const u8, ks: std::ops::Range<usize>) -> (__m512i, __m512i) {
    let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for k in ks.step_by(2) {
        s0 = _mm512_dpbusd_epi32(s0, q[k], bcast4(x, k));
        s1 = _mm512_dpbusd_epi32(s1, q[k + 1], bcast4(x, k + 1));
    }
    (s0, s1)
}

/// The four activation bytes at `x + 4k` in every i32 lane. (Helpers that return vectors are
/// functions, never closures: a closure LLVM declines to inline is compiled without AVX-512.)
#[inline(always)]
unsafe fn bcast4(x: *const u8, k: usize) -> __m512i {
    _mm512_set1_epi32((x.add(4 * k) as *const i32).read_unaligned())
}

/// A 256-byte nibble area (see `interleave`) as eight vectors of columns `4k..4k+4`.
#[inline(always)]
unsafe fn nibbles(qs: *const u8) -> [__m512i; 8] {
    let low = _mm512_set1_epi8(0x0F);
    let mut q = [_mm512_setzero_si512(); 8];
    for c in 0..4 {
        let v = _mm512_loadu_si512(qs.add(64 * c) as *const _);
        q[2 * c] = _mm512_and_si512(v, low);
        q[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
    q
}

/// Sixteen f16 at `p` as f32.
#[inline(always)]
unsafe fn f16x16(p: *const u8) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
}

/// Stores each token's sixteen sums.
#[inline(always)]
unsafe fn store<const T: usize>(acc: &[__m512; T], out: *mut f32, stride: usize) {
    for t in 0..T {
        _mm512_storeu_ps(out.add(t * stride), acc[t]);
    }
}

// ---- 32-value formats ----

/// The eight byte vectors of a 32-value tile.
#[inline(always)]
unsafe fn quants32(tile: *const u8, p: Parts32) -> [__m512i; 8] {
    if p.bytes == parts32(DType::Q8_0).bytes {
        let mut q = [_mm512_setzero_si512(); 8];
        for (k, q) in q.iter_mut().enumerate() {
            *q = _mm512_loadu_si512(tile.add(p.qs + 64 * k) as *const _);
        }
        return q;
    }
    let mut q = nibbles(tile.add(p.qs));
    if let Some(qh) = p.qh {
        add_fifth_bits(&mut q, tile.add(qh));
    }
    q
}

/// Adds 16 to the bytes whose bit is set in the eight u64 `masks` (bit 4 of 5-bit values).
#[inline(always)]
unsafe fn add_fifth_bits(q: &mut [__m512i; 8], masks: *const u8) {
    let high = _mm512_set1_epi8(0x10);
    for (k, q) in q.iter_mut().enumerate() {
        let bits = (masks.add(8 * k) as *const u64).read_unaligned();
        *q = _mm512_mask_add_epi8(*q, bits, *q, high);
    }
}

/// Σ over the group's tiles of `d_w · (d_x · Σ q·x + offset · s_x)`, or for the formats with
/// a min `d_w · d_x · Σ q·x + m · s_x` (`s_x = d_x · Σx`; `offset` is what the stored values
/// are above the true ones, negated: −8 for Q4_0).
#[inline(always)]
unsafe fn group32<const T: usize>(
    tiles: &[u8],
    a: &[ActRow],
    out: *mut f32,
    stride: usize,
    ahead: Ahead,
    p: Parts32,
    offset: f32,
) {
    let mut acc = [_mm512_setzero_ps(); T];
    let ahead = ahead.tiles(p.bytes);
    for b in 0..tiles.len() / p.bytes {
        let tile = tiles.as_ptr().add(b * p.bytes);
        prefetch_tile(ahead, b * p.bytes);
        let q = quants32(tile, p);
        let dw = f16x16(tile);
        for t in 0..T {
            let a = a.get_unchecked(t);
            let s = _mm512_cvtepi32_ps(dot8(&q, a.qs.as_ptr().add(32 * b) as *const u8, 0..8));
            let (dx, sx) = (*a.d.get_unchecked(b), *a.s.get_unchecked(b));
            acc[t] = match p.m {
                Some(m) => {
                    let acc = _mm512_fmadd_ps(dw, _mm512_mul_ps(s, _mm512_set1_ps(dx)), acc[t]);
                    _mm512_fmadd_ps(f16x16(tile.add(m)), _mm512_set1_ps(sx), acc)
                }
                None => {
                    let v = _mm512_fmadd_ps(s, _mm512_set1_ps(dx), _mm512_set1_ps(offset * sx));
                    _mm512_fmadd_ps(dw, v, acc[t])
                }
            };
        }
    }
    store(&acc, out, stride);
}

// ---- K-quants ----

/// Q4_K (and Q5_K when `five`): per sub-block `j`, `Σ_j sc_j · Σ q·x` and the mins
/// `Σ_j m_j · Σx` in integers, then `d · sums − dmin · mins` per block.
#[inline(always)]
unsafe fn group_k4<const T: usize>(tiles: &[u8], a: &[ActRow], out: *mut f32, stride: usize, ahead: Ahead, five: bool) {
    let sub_bytes = il::k4_sub_bytes(five);
    let tile_bytes = il::K4_SUBS + 8 * sub_bytes;
    let mut acc = [_mm512_setzero_ps(); T];
    let ahead = ahead.tiles(tile_bytes);
    for b in 0..tiles.len() / tile_bytes {
        let tile = tiles.as_ptr().add(b * tile_bytes);
        prefetch_tile(ahead, b * tile_bytes);
        let (mut sumi, mut summ) = ([_mm512_setzero_si512(); T], [_mm512_setzero_si512(); T]);
        for j in 0..8 {
            let sub = tile.add(il::K4_SUBS + sub_bytes * j);
            let mut q = nibbles(sub);
            if five {
                add_fifth_bits(&mut q, sub.add(256));
            }
            let sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(tile.add(il::K4_SC + 16 * j) as *const __m128i));
            let m = _mm512_cvtepu8_epi32(_mm_loadu_si128(tile.add(il::K4_M + 16 * j) as *const __m128i));
            let m2 = _mm512_or_si512(m, _mm512_slli_epi32(m, 16)); // (m, m) as two i16
            for t in 0..T {
                let a = a.get_unchecked(t);
                let x = a.qs.as_ptr().add(256 * b + 32 * j) as *const u8;
                if five {
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(dot8(&q, x, 0..8), sc));
                } else {
                    // Each chain sums 16 values of 4 bits: |Σ q·x| ≤ 16 · 15 · 128 < 2^15, so the
                    // i32 is its own low i16 (and the high i16 its sign), and `vpdpwssd` with sc
                    // (high i16 zero) adds sc · Σ exactly: one µop where `vpmulld` + `vpaddd`
                    // are three on Intel's cores.
                    let (s0, s1) = dot8_halves(&q, x, 0..8);
                    sumi[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(sumi[t], s0, sc), s1, sc);
                }
                let bs = (a.bsums.as_ptr().add(16 * b + 2 * j) as *const i32).read_unaligned();
                summ[t] = _mm512_dpwssd_epi32(summ[t], m2, _mm512_set1_epi32(bs));
            }
        }
        let (d, dmin) = (f16x16(tile), f16x16(tile.add(il::K4_DMIN)));
        for t in 0..T {
            let mins = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summ[t]));
            let v = _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(sumi[t]), mins);
            let dx = _mm512_set1_ps(*a.get_unchecked(t).d.get_unchecked(b));
            acc[t] = _mm512_fmadd_ps(v, dx, acc[t]);
        }
    }
    store(&acc, out, stride);
}

/// Q6_K: values `q − 32` with a signed scale per 16: `Σ_k sc_k · (Σ q·x − 32 · Σx)`. A sum of
/// 16 six-bit products does not fit i16 (16 · 63 · 128 > 2^15), so the scale cannot ride a
/// `vpdpwssd` as in Q4_K; `vpmulld` (two µops on Intel's cores, on the port `vpdpbusd` needs)
/// cost Q6_K 30% of Q4_K's rate. Each 16-column sum is instead made f32 (exact: below 2^24) and
/// meets its scale in an FMA; `sc · Σ` is exact in f32 too (below 2^24), so the block's float sum
/// rounds only past 2^24. The bias `−32 · sc_k · Σx` stays an integer sum per token.
#[inline(always)]
unsafe fn group_q6_k<const T: usize>(tiles: &[u8], a: &[ActRow], out: *mut f32, stride: usize, ahead: Ahead) {
    let mut acc = [_mm512_setzero_ps(); T];
    let two = _mm512_set1_epi8(0x30);
    let ahead = ahead.tiles(il::Q6_K_BYTES);
    for b in 0..tiles.len() / il::Q6_K_BYTES {
        let tile = tiles.as_ptr().add(b * il::Q6_K_BYTES);
        prefetch_tile(ahead, b * il::Q6_K_BYTES);
        let (mut sumf, mut bias) = ([_mm512_setzero_ps(); T], [_mm512_setzero_si512(); T]);
        for j in 0..8 {
            let sub = tile.add(il::Q6_K_SUBS + il::Q6_K_SUB * j);
            let mut q = nibbles(sub);
            for h in 0..2 {
                let qh = _mm512_loadu_si512(sub.add(256 + 64 * h) as *const _);
                // bits 2s..2s+2 of each byte, moved to bits 4..6 (16-bit shifts: the mask drops
                // what crosses from the neighbouring byte)
                let at = [
                    _mm512_slli_epi16(qh, 4),
                    _mm512_slli_epi16(qh, 2),
                    qh,
                    _mm512_srli_epi16(qh, 2),
                ];
                for s in 0..4 {
                    // q | (at & 0x30)
                    q[4 * h + s] = _mm512_ternarylogic_epi32(q[4 * h + s], at[s], two, 0xF8);
                }
            }
            // (sc_2j, sc_2j+1) as two i16 per lane, and each alone as i32
            let pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256(tile.add(il::Q6_K_SC + 32 * j) as *const __m256i));
            let sc_lo = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16));
            let sc_hi = _mm512_cvtepi32_ps(_mm512_srai_epi32(pair, 16));
            // −32 · (sc_2j, sc_2j+1) (|sc| ≤ 128: fits i16), for the bias in the same sum
            let neg32 = _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(pair, 5));
            for t in 0..T {
                let a = a.get_unchecked(t);
                let x = a.qs.as_ptr().add(256 * b + 32 * j) as *const u8;
                sumf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot8(&q, x, 0..4)), sc_lo, sumf[t]);
                sumf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot8(&q, x, 4..8)), sc_hi, sumf[t]);
                let bs = (a.bsums.as_ptr().add(16 * b + 2 * j) as *const i32).read_unaligned();
                bias[t] = _mm512_dpwssd_epi32(bias[t], neg32, _mm512_set1_epi32(bs));
            }
        }
        let d = f16x16(tile);
        for t in 0..T {
            let total = _mm512_add_ps(sumf[t], _mm512_cvtepi32_ps(bias[t]));
            let dx = _mm512_set1_ps(*a.get_unchecked(t).d.get_unchecked(b));
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), total, acc[t]);
        }
    }
    store(&acc, out, stride);
}
