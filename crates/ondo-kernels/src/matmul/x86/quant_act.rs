//! Activation quantization for the integer kernels: the arithmetic of `act.rs`, 8 lanes at a time.

use super::*;

// ---- activation quantization (same arithmetic as act.rs, 8 lanes at a time) ----

/// Largest |x| over a slice whose length is a multiple of 8.
#[inline(always)]
unsafe fn absmax(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for c in x.chunks_exact(8) {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
    }
    let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// `round_ties_even(x[8k..8k + 8] · id)` as i32 (a function, not a closure: see `interleave256::bcast4`).
#[inline(always)]
unsafe fn scaled8(x: *const f32, k: usize, id: __m256) -> __m256i {
    _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(8 * k)), id))
}

/// `q = round_ties_even(x · id)` for 32 values, returning Σq.
#[inline(always)]
unsafe fn quant32(x: *const f32, id: f32, q: *mut i8) -> i32 {
    let id = _mm256_set1_ps(id);
    let (a, b, c, d) = (
        scaled8(x, 0, id),
        scaled8(x, 1, id),
        scaled8(x, 2, id),
        scaled8(x, 3, id),
    );
    // pack to bytes: packs work per 128-bit lane, so fix the order with a permute
    let ab = _mm256_packs_epi32(a, b);
    let cd = _mm256_packs_epi32(c, d);
    let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(q as *mut __m256i, bytes);
    hsum_i32(_mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, d)))
}

/// Q8 activations of one row: per 32 values `d`, `s = d·Σq`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for (i, c) in x.chunks_exact(32).enumerate() {
        let di = absmax(c) / 127.0;
        let id = if di != 0.0 { 1.0 / di } else { 0.0 };
        let sum = quant32(c.as_ptr(), id, qs.as_mut_ptr().add(32 * i));
        d[i] = di;
        s[i] = di * sum as f32;
    }
}

/// Q8K activations of one row: per 256 values `d`, and Σq per 16.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_q8k(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
    for (i, c) in x.chunks_exact(256).enumerate() {
        let di = absmax(c) / 127.0;
        let id = if di != 0.0 { 1.0 / di } else { 0.0 };
        for j in 0..16 {
            let sum = quant32_half(c.as_ptr().add(16 * j), id, qs.as_mut_ptr().add(256 * i + 16 * j));
            bsums[16 * i + j] = sum as i16;
        }
        d[i] = di;
    }
}

/// `quant32` for 16 values.
#[inline(always)]
unsafe fn quant32_half(x: *const f32, id: f32, q: *mut i8) -> i32 {
    let id = _mm256_set1_ps(id);
    let a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    let b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(8)), id));
    let ab = _mm256_packs_epi32(a, b); // lanes: a0-3 b0-3 | a4-7 b4-7
    let ab = _mm256_permute4x64_epi64(ab, 0b11_01_10_00); // a0-3 a4-7 b0-3 b4-7
    let bytes = _mm_packs_epi16(_mm256_castsi256_si128(ab), _mm256_extracti128_si256(ab, 1));
    _mm_storeu_si128(q as *mut __m128i, bytes);
    hsum_i32(_mm256_add_epi32(a, b))
}
