//! K-quant row kernels on 256-bit registers (Q4_K/Q5_K, Q6_K, Q2_K/Q3_K against Q8K activations),
//! generic over the build `V` like every body in `x86.rs` (AVX-512 takes `kquant512`'s Q6_K).

// Index loops over token and lane counts read more plainly than iterator chains here.
#![allow(clippy::needless_range_loop)]

use super::*;

// ---- K-quants against Q8K activations ----

/// u8 × i8 products summed in pairs, times an i16 scale per 16-bit lane, as 8 i32.
#[inline(always)]
unsafe fn scaled_dot(u: __m256i, s: __m256i, scale: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale)
}

/// The `vpshufb` pattern that copies i16 lane `k` to every i16 lane of its 128-bit half.
#[inline(always)]
unsafe fn i16_lane(k: usize) -> __m256i {
    _mm256_set1_epi16((((2 * k + 1) << 8) | (2 * k)) as i16)
}

/// Q4_K's 12 scale bytes → (8 scales, 8 mins) as little-endian u64s of bytes.
#[inline(always)]
unsafe fn q4_k_scales(p: *const u8) -> (u64, u64) {
    let w0 = (p as *const u32).read_unaligned();
    let w1 = (p.add(4) as *const u32).read_unaligned();
    let w2 = (p.add(8) as *const u32).read_unaligned();
    let sc_lo = w0 & 0x3F3F_3F3F;
    let sc_hi = (w2 & 0x0F0F_0F0F) | (((w0 >> 6) & 0x0303_0303) << 4);
    let m_lo = w1 & 0x3F3F_3F3F;
    let m_hi = ((w2 >> 4) & 0x0F0F_0F0F) | (((w1 >> 6) & 0x0303_0303) << 4);
    (sc_lo as u64 | (sc_hi as u64) << 32, m_lo as u64 | (m_hi as u64) << 32)
}

/// Q4_K, and Q5_K when `FIVE` (a fifth bit per value from `qh`, bits 2j and 2j+1 for chunk j).
#[inline(always)]
unsafe fn q45_k<const V: u8, const T: usize, const FIVE: bool>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let (bb, qs_at) = if FIVE { (176, 48) } else { (144, 16) };
    let nb = w.len() / bb;
    let (mut acc, mut accm) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
    let m4 = _mm256_set1_epi8(0x0F);
    for i in 0..nb {
        let b = w.as_ptr().add(i * bb);
        stream_ahead(b, bb);
        let (dw, dminw) = (f16(b), f16(b.add(2)));
        let (sc, mn) = q4_k_scales(b.add(4));
        // the eight scales as i16 in both 128-bit lanes; each chunk picks its two with a shuffle
        let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc as i64)));
        // each min twice, as i16: a madd with the 16 bsums gives m_j · (Σ a over sub-block j)
        let mn = _mm_cvtsi64_si128(mn as i64);
        let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn));
        let mut qh = if FIVE { load(b.add(16)) } else { _mm256_setzero_si256() };
        let mut sumi = [_mm256_setzero_si256(); T];
        for j in 0..4 {
            let bytes = load(b.add(qs_at + 32 * j));
            let mut lo = _mm256_and_si256(bytes, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
            if FIVE {
                // qh is shifted right by 2 per chunk: its bits 0 and 1 belong to chunk j
                let h = qh;
                qh = _mm256_srli_epi16(qh, 2);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(1)), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(2)), 3));
            }
            let s_lo = _mm256_shuffle_epi8(sc16, i16_lane(2 * j));
            let s_hi = _mm256_shuffle_epi8(sc16, i16_lane(2 * j + 1));
            for t in 0..T {
                let x = a.get_unchecked(t).qs.as_ptr().add(256 * i + 64 * j) as *const u8;
                let p0 = scaled_dot(lo, load(x), s_lo);
                let p1 = scaled_dot(hi, load(x.add(32)), s_hi);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
            }
        }
        for t in 0..T {
            let a = a.get_unchecked(t);
            let ad = *a.d.get_unchecked(i);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ad), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * i) as *const __m256i);
            let m = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bs));
            accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dminw * ad), m, accm[t]);
        }
    }
    for t in 0..T {
        out[t] = hsum(_mm256_sub_ps(acc[t], accm[t]));
    }
}

#[inline(always)]
pub(super) unsafe fn q4_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q45_k::<V, T, false>(w, a, out)
}

#[inline(always)]
pub(super) unsafe fn q5_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q45_k::<V, T, true>(w, a, out)
}

/// Q6_K's four 32-byte groups of 6-bit values (0..63) of one 128-value half.
#[inline(always)]
unsafe fn q6_k_half(ql: *const u8, qh: *const u8) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0F);
    let (l0, l1, h) = (load(ql), load(ql.add(32)), load(qh));
    let h0 = _mm256_and_si256(h, _mm256_set1_epi8(0x03));
    let h1 = _mm256_and_si256(h, _mm256_set1_epi8(0x0C));
    let h2 = _mm256_and_si256(h, _mm256_set1_epi8(0x30));
    let h3 = _mm256_and_si256(h, _mm256_set1_epi8(0xC0u8 as i8));
    [
        _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(h0, 4)),
        _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(h1, 2)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_srli_epi16(h3, 2)),
    ]
}

#[inline(always)]
pub(super) unsafe fn q6_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    if V == AVX512 {
        super::kquant512::q6_k::<T>(w, a, out)
    } else {
        q6_k_256::<T>(w, a, out)
    }
}

#[inline(always)]
unsafe fn q6_k_256<const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let nb = w.len() / 210;
    let mut acc = [_mm256_setzero_ps(); T];
    for i in 0..nb {
        let b = w.as_ptr().add(i * 210);
        stream_ahead(b, 210);
        let dw = f16(b.add(208));
        let sc8 = _mm_loadu_si128(b.add(192) as *const __m128i);
        let sc16 = _mm256_cvtepi8_epi16(sc8);
        let mut sumi = [_mm256_setzero_si256(); T];
        for n in 0..2 {
            let q = q6_k_half(b.add(64 * n), b.add(128 + 32 * n));
            // this half's 8 scales as i16 in both lanes; group k takes scale 2k (low lane) and
            // 2k+1 (high lane)
            let sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(if n == 0 { sc8 } else { _mm_srli_si128(sc8, 8) }));
            for (k, qk) in q.iter().enumerate() {
                let scale = pick_scales(sc, k);
                for t in 0..T {
                    let x = a.get_unchecked(t).qs.as_ptr().add(256 * i + 128 * n + 32 * k) as *const u8;
                    sumi[t] = _mm256_add_epi32(sumi[t], scaled_dot(*qk, load(x), scale));
                }
            }
        }
        for t in 0..T {
            let a = a.get_unchecked(t);
            let d = dw * *a.d.get_unchecked(i);
            // the -32 bias of the values: subtract 32 · Σ_j sc_j · (Σ a over sub-block j)
            let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * i) as *const __m256i);
            let bias = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
            let sumi = _mm256_sub_epi32(sumi[t], bias);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    for t in 0..T {
        out[t] = hsum(acc[t]);
    }
}

/// The i16 scale pattern for 32-value group `k` of a 128-value half: `sc` holds the half's 8
/// scales as i16 in both lanes; the result has scale 2k in the low lane, 2k+1 in the high lane.
#[inline(always)]
unsafe fn pick_scales(sc: __m256i, k: usize) -> __m256i {
    let lo = (((4 * k + 1) << 8) | (4 * k)) as i16;
    let hi = (((4 * k + 3) << 8) | (4 * k + 2)) as i16;
    _mm256_shuffle_epi8(sc, _mm256_setr_m128i(_mm_set1_epi16(lo), _mm_set1_epi16(hi)))
}

/// Half `n` (0 or 1) of sixteen i16 scales, in both 128-bit lanes.
#[inline(always)]
unsafe fn half_scales(s16: __m256i, n: usize) -> __m256i {
    if n == 0 {
        _mm256_permute2x128_si256(s16, s16, 0x00)
    } else {
        _mm256_permute2x128_si256(s16, s16, 0x11)
    }
}

/// Q3_K's twelve scale bytes → sixteen 6-bit scales (still biased by 32), one per byte: low
/// nibbles from bytes 0..8 (scales 0..8) or their high nibbles (8..16), top two bits from bytes
/// 8..12 at bit 2·(j/4) of byte j%4.
#[inline(always)]
unsafe fn q3_k_scales(p: *const u8) -> __m128i {
    let a0 = (p as *const u32).read_unaligned();
    let a1 = (p.add(4) as *const u32).read_unaligned();
    let a2 = (p.add(8) as *const u32).read_unaligned();
    let (m4, m2) = (0x0F0F_0F0F, 0x0303_0303);
    let s0 = (a0 & m4) | ((a2 & m2) << 4);
    let s1 = (a1 & m4) | (((a2 >> 2) & m2) << 4);
    let s2 = ((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4);
    let s3 = ((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4);
    _mm_setr_epi32(s0 as i32, s1 as i32, s2 as i32, s3 as i32)
}

/// Q2_K (`THREE == false`: 4-bit scales and mins) and Q3_K (`THREE`: 6-bit signed scales and a
/// third bit from `hmask`) against Q8K activations. Values of group `k` of half `n` are bits
/// `2k..2k+2` of `qs[32n..32n+32]`.
#[inline(always)]
unsafe fn q23_k<const V: u8, const T: usize, const THREE: bool>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let bb = if THREE { 110 } else { 84 };
    let nb = w.len() / bb;
    let (mut acc, mut accm) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
    let m3 = _mm256_set1_epi8(3);
    for i in 0..nb {
        let b = w.as_ptr().add(i * bb);
        let (qs, dw, dminw, s16, m16, mut hm) = if THREE {
            let s8 = q3_k_scales(b.add(96));
            let s16 = _mm256_sub_epi16(_mm256_cvtepi8_epi16(s8), _mm256_set1_epi16(32));
            (b.add(32), f16(b.add(108)), 0.0, s16, _mm256_setzero_si256(), load(b))
        } else {
            let sm = _mm_loadu_si128(b as *const __m128i);
            let s16 = _mm256_cvtepu8_epi16(_mm_and_si128(sm, _mm_set1_epi8(0x0F)));
            let m16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), _mm_set1_epi8(0x0F)));
            (
                b.add(16),
                f16(b.add(80)),
                f16(b.add(82)),
                s16,
                m16,
                _mm256_setzero_si256(),
            )
        };
        let mut sumi = [_mm256_setzero_si256(); T];
        for n in 0..2 {
            let sc = half_scales(s16, n);
            let mut q = load(qs.add(32 * n));
            for k in 0..4 {
                let mut v = _mm256_and_si256(q, m3);
                if THREE {
                    // hmask bit 4n+k of each byte is the third bit
                    v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(hm, _mm256_set1_epi8(1)), 2));
                    hm = _mm256_srli_epi16(hm, 1);
                }
                q = _mm256_srli_epi16(q, 2);
                let scale = pick_scales(sc, k);
                for t in 0..T {
                    let x = a.get_unchecked(t).qs.as_ptr().add(256 * i + 128 * n + 32 * k) as *const u8;
                    sumi[t] = _mm256_add_epi32(sumi[t], scaled_dot(v, load(x), scale));
                }
            }
        }
        for t in 0..T {
            let a = a.get_unchecked(t);
            let ad = *a.d.get_unchecked(i);
            let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * i) as *const __m256i);
            let sumi = if THREE {
                // values are stored +4: subtract 4 · Σ_j s_j · (Σ a over sub-block j)
                _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(_mm256_madd_epi16(s16, bs), 2))
            } else {
                let m = _mm256_cvtepi32_ps(_mm256_madd_epi16(m16, bs));
                accm[t] = _mm256_fmadd_ps(_mm256_set1_ps(dminw * ad), m, accm[t]);
                sumi[t]
            };
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ad), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    for t in 0..T {
        out[t] = hsum(_mm256_sub_ps(acc[t], accm[t]));
    }
}

#[inline(always)]
pub(super) unsafe fn q2_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q23_k::<V, T, false>(w, a, out)
}

#[inline(always)]
pub(super) unsafe fn q3_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q23_k::<V, T, true>(w, a, out)
}
