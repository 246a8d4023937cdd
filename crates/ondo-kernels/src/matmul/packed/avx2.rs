//! `Packed::pack` on 256-bit registers for Q4_K, Q5_K and Q6_K: the values 32 per load (shift
//! and mask), the scales of all eight rows at once (Q4_K/Q5_K: `scale_min_k4` lane-wise on the
//! rows' scale words; Q6_K: a byte transpose of the rows' 16 scales), the sixteen f16 factors in
//! two `vcvtph2ps`, then eight 8 × 8 word transposes of the values. Unpacking eight rows is paid
//! once per row block and call, so at 16 tokens it was 40% of an AVX2 batched K-quant product
//! when done a value and a scale at a time.
//!
//! Everything here writes exactly what the scalar `unpack_into` + `put_scales` write (tested
//! field by field in `packed::tests`).

use super::{Packed, LANES};
use crate::DType;
use std::arch::x86_64::*;

/// Whether `pack_block` takes `dtype`.
pub(super) fn packs(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_K | DType::Q5_K | DType::Q6_K)
}

/// Block `i` of `rows` (at most `LANES`, each holding at least `i + 1` blocks) into `p`, whose
/// buffers `pack` has sized (and whose `fetch_ahead` asks for the blocks to come). `q` holds one value buffer per lane; lanes without a row must be
/// zero there (they stay zero: nothing writes them).
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn pack_block(p: &mut Packed, dtype: DType, rows: &[&[u8]], i: usize, q: &mut [[u8; 256]; LANES]) {
    debug_assert!(packs(dtype) && rows.len() <= LANES);
    let bb = dtype.block_bytes();
    // the rows' raw scale bytes (lanes without a row stay zero) and f16 factors (d of lanes
    // 0..8, then dmin)
    let (mut k4, mut q6, mut f) = ([[0u32; LANES]; 3], [_mm_setzero_si128(); LANES], [0u16; 2 * LANES]);
    for (lane, r) in rows.iter().enumerate() {
        let b = &r[i * bb..(i + 1) * bb];
        unpack_values_avx2(dtype, b, &mut q[lane]);
        if dtype == DType::Q6_K {
            assert!(b.len() >= 210);
            q6[lane] = _mm_loadu_si128(b.as_ptr().add(192) as *const __m128i);
            f[lane] = u16::from_le_bytes([b[208], b[209]]);
            f[LANES + lane] = f[lane];
        } else {
            for (k, w) in k4.iter_mut().enumerate() {
                w[lane] = u32::from_le_bytes([b[4 + 4 * k], b[5 + 4 * k], b[6 + 4 * k], b[7 + 4 * k]]);
            }
            f[lane] = u16::from_le_bytes([b[0], b[1]]);
            f[LANES + lane] = u16::from_le_bytes([b[2], b[3]]);
        }
    }
    transpose_words_avx2(q.each_ref(), &mut p.q[i * 256 * LANES..(i + 1) * 256 * LANES]);
    if dtype == DType::Q6_K {
        put_scales_q6(p, i, &q6);
    } else {
        put_scales_k4(p, i, &k4);
    }
    let d = _mm256_cvtph_ps(_mm_loadu_si128(f.as_ptr() as *const __m128i));
    let dmin = _mm256_cvtph_ps(_mm_loadu_si128(f.as_ptr().add(LANES) as *const __m128i));
    assert!((i + 1) * LANES <= p.d.len() && (i + 1) * LANES <= p.dmin.len());
    _mm256_storeu_ps(p.d.as_mut_ptr().add(i * LANES), d);
    _mm256_storeu_ps(p.dmin.as_mut_ptr().add(i * LANES), dmin);
}

/// Q4_K/Q5_K block `i`'s scales and mins from the three scale words of each lane's row:
/// `scale_min_k4` of all eight sub-blocks done lane-wise (lane = row), so each sub-block's
/// eight scales come out as one vector (byte `j % 4` of word `j / 4`).
#[target_feature(enable = "avx2")]
unsafe fn put_scales_k4(p: &mut Packed, i: usize, words: &[[u32; LANES]; 3]) {
    let [w0, w1, w2] = [0, 1, 2].map(|k| _mm256_loadu_si256(words[k].as_ptr() as *const __m256i));
    let scs = [and(w0, 0x3F3F_3F3F), _mm256_or_si256(and(w2, 0x0F0F_0F0F), top2(w0))];
    let ms = [
        and(w1, 0x3F3F_3F3F),
        _mm256_or_si256(and(_mm256_srli_epi32(w2, 4), 0x0F0F_0F0F), top2(w1)),
    ];
    for j in 0..8 {
        let shift = _mm_cvtsi32_si128(8 * (j as i32 % 4));
        let (s, m) = (
            and(_mm256_srl_epi32(scs[j / 4], shift), 0xFF),
            and(_mm256_srl_epi32(ms[j / 4], shift), 0xFF),
        );
        store8(&mut p.sc, (i * 8 + j) * LANES, s);
        store8(&mut p.sc16, (i * 8 + j) * LANES, both(s, s));
        // 16-value halves 2j and 2j + 1 both lie in sub-block j
        store8(&mut p.m16, (i * 8 + j) * LANES, both(m, m));
    }
}

/// Q6_K block `i`'s sixteen i8 scales of each lane's row (`rows[lane]`, 16 bytes), transposed
/// to [sub-block][lane] by byte, word and dword interleaves; the mins are `32 · sc`.
#[target_feature(enable = "avx2")]
unsafe fn put_scales_q6(p: &mut Packed, i: usize, rows: &[__m128i; LANES]) {
    // t[2k]: rows 2k, 2k + 1 of sub-blocks 0..8 as byte pairs; t[2k + 1]: of sub-blocks 8..16
    let mut t = [_mm_setzero_si128(); 8];
    for k in 0..4 {
        t[2 * k] = _mm_unpacklo_epi8(rows[2 * k], rows[2 * k + 1]);
        t[2 * k + 1] = _mm_unpackhi_epi8(rows[2 * k], rows[2 * k + 1]);
    }
    // u[4h + part]: rows 4h..4h + 4 of sub-blocks 4 part..4 part + 4, four bytes each
    let mut u = [_mm_setzero_si128(); 8];
    for h in 0..2 {
        for half in 0..2 {
            let (a, b) = (t[4 * h + half], t[4 * h + 2 + half]);
            u[4 * h + 2 * half] = _mm_unpacklo_epi16(a, b);
            u[4 * h + 2 * half + 1] = _mm_unpackhi_epi16(a, b);
        }
    }
    for part in 0..4 {
        // sub-blocks 4 part, 4 part + 1 (lo) and 4 part + 2, 4 part + 3 (hi): eight lanes each
        let pairs = [
            _mm_unpacklo_epi32(u[part], u[4 + part]),
            _mm_unpackhi_epi32(u[part], u[4 + part]),
        ];
        for (n, v) in pairs.into_iter().enumerate() {
            let j = 4 * part + 2 * n;
            let (a, b) = (_mm256_cvtepi8_epi32(v), _mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
            store8(&mut p.sc, (i * 16 + j) * LANES, a);
            store8(&mut p.sc, (i * 16 + j + 1) * LANES, b);
            store8(&mut p.sc16, (i * 16 + j) * LANES, both(a, a));
            store8(&mut p.sc16, (i * 16 + j + 1) * LANES, both(b, b));
            let pair = both(_mm256_slli_epi32(a, 5), _mm256_slli_epi32(b, 5));
            store8(&mut p.m16, (i * 8 + j / 2) * LANES, pair);
        }
    }
}

/// `unpack_values` of the formats that matter most (Q4_K, Q5_K, Q6_K) on 256-bit registers: 32
/// values per load, shift and mask. Returns false (writing nothing) for any other format.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn unpack_values_avx2(dtype: DType, b: &[u8], q: &mut [u8; 256]) -> bool {
    match dtype {
        DType::Q4_K | DType::Q5_K => {
            let five = dtype == DType::Q5_K;
            let (qh_at, qs_at) = if five { (16, 48) } else { (0, 16) };
            let h = if five { load32(b, qh_at) } else { _mm256_setzero_si256() };
            for j in 0..4 {
                let v = load32(b, qs_at + 32 * j);
                let (mut lo, mut hi) = (low(v, 0x0F), bits(v, 4, 0x0F));
                if five {
                    // bit 2j of qh byte l is value 64j + l's fifth bit, bit 2j + 1 value 64j + 32 + l's
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(bits(h, 2 * j as i32, 1), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(bits(h, 2 * j as i32 + 1, 1), 4));
                }
                store32(q, 64 * j, lo);
                store32(q, 64 * j + 32, hi);
            }
            true
        }
        DType::Q6_K => {
            for n in 0..2 {
                let (l0, l1, h) = (load32(b, 64 * n), load32(b, 64 * n + 32), load32(b, 128 + 32 * n));
                let base = 128 * n;
                store32(
                    q,
                    base,
                    _mm256_or_si256(low(l0, 0x0F), _mm256_slli_epi16(bits(h, 0, 3), 4)),
                );
                store32(
                    q,
                    base + 32,
                    _mm256_or_si256(low(l1, 0x0F), _mm256_slli_epi16(bits(h, 2, 3), 4)),
                );
                store32(
                    q,
                    base + 64,
                    _mm256_or_si256(bits(l0, 4, 0x0F), _mm256_slli_epi16(bits(h, 4, 3), 4)),
                );
                store32(
                    q,
                    base + 96,
                    _mm256_or_si256(bits(l1, 4, 0x0F), _mm256_slli_epi16(bits(h, 6, 3), 4)),
                );
            }
            true
        }
        _ => false,
    }
}

/// `dst[(g · 8 + lane) · 4 ..][..4] = q[lane][4g..4g + 4]` for 64 words per lane: eight 8 × 8
/// transposes of 4-byte words (the AVX2 form of `transpose_words`).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn transpose_words_avx2(q: [&[u8; 256]; 8], dst: &mut [u8]) {
    assert!(dst.len() >= 8 * 256);
    for c in 0..8 {
        let r: [__m256i; 8] = std::array::from_fn(|l| _mm256_loadu_si256(q[l].as_ptr().add(32 * c) as *const __m256i));
        // 32-bit, 64-bit, then 128-bit interleaves
        let a: [__m256i; 8] = std::array::from_fn(|k| {
            let (x, y) = (r[2 * (k / 2)], r[2 * (k / 2) + 1]);
            if k % 2 == 0 {
                _mm256_unpacklo_epi32(x, y)
            } else {
                _mm256_unpackhi_epi32(x, y)
            }
        });
        // a0 = l0l1 words 0,1 | 4,5 ; a1 = words 2,3 | 6,7 ; a2, a3 the same for l2l3, ...
        let b: [__m256i; 8] = std::array::from_fn(|k| {
            let (pair, part) = (k / 4, k % 4);
            let (x, y) = (a[4 * pair + part % 2], a[4 * pair + 2 + part % 2]);
            if part < 2 {
                _mm256_unpacklo_epi64(x, y)
            } else {
                _mm256_unpackhi_epi64(x, y)
            }
        });
        // b[4p + 0] = lanes 4p..4p+4 of words 0 | 4, b[4p + 1] = words 2 | 6,
        // b[4p + 2] = words 1 | 5, b[4p + 3] = words 3 | 7
        for (word, part) in [(0, 0), (1, 2), (2, 1), (3, 3)] {
            let (lo, hi) = (b[part], b[4 + part]);
            let first = _mm256_permute2x128_si256(lo, hi, 0x20);
            let second = _mm256_permute2x128_si256(lo, hi, 0x31);
            let at = dst.as_mut_ptr().add(32 * (8 * c + word));
            _mm256_storeu_si256(at as *mut __m256i, first);
            _mm256_storeu_si256(at.add(32 * 4) as *mut __m256i, second);
        }
    }
}

/// 32 bytes of `b` from `at`.
#[inline(always)]
unsafe fn load32(b: &[u8], at: usize) -> __m256i {
    assert!(at + 32 <= b.len());
    _mm256_loadu_si256(b.as_ptr().add(at) as *const __m256i)
}

#[inline(always)]
unsafe fn store32(q: &mut [u8; 256], at: usize, v: __m256i) {
    assert!(at + 32 <= q.len());
    _mm256_storeu_si256(q.as_mut_ptr().add(at) as *mut __m256i, v)
}

/// Every byte of `v` and `mask`.
#[inline(always)]
unsafe fn low(v: __m256i, mask: i8) -> __m256i {
    _mm256_and_si256(v, _mm256_set1_epi8(mask))
}

/// Bits `shift..` of every byte, masked (an epi16 shift moves the other byte's bits only
/// into the bits the mask clears).
#[inline(always)]
unsafe fn bits(v: __m256i, shift: i32, mask: i8) -> __m256i {
    low(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), mask)
}

/// `lo` in the low and `hi` in the high i16 half of every lane.
#[inline(always)]
unsafe fn both(lo: __m256i, hi: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)),
        _mm256_slli_epi32(hi, 16),
    )
}

/// Eight lanes into `v[at..at + 8]`.
#[inline(always)]
unsafe fn store8(v: &mut [i32], at: usize, x: __m256i) {
    assert!(at + LANES <= v.len());
    _mm256_storeu_si256(v.as_mut_ptr().add(at) as *mut __m256i, x)
}

/// Every i32 lane of `v` and `mask`.
#[inline(always)]
unsafe fn and(v: __m256i, mask: u32) -> __m256i {
    _mm256_and_si256(v, _mm256_set1_epi32(mask as i32))
}

/// Bits 6 and 7 of every byte, moved to bits 4 and 5 (the high bits of a 6-bit K-quant scale).
#[inline(always)]
unsafe fn top2(w: __m256i) -> __m256i {
    _mm256_slli_epi32(and(_mm256_srli_epi32(w, 6), 0x0303_0303), 4)
}
