//! x86-64 row · activation dot products, for 1 to 4 tokens at a time.
//!
//! A kernel unpacks each weight block once and dots it with `T` activation rows (`T` a const
//! generic, 1..=4), so batched matmuls reuse the unpacking and the weight loads. Each kernel
//! body is written once, `#[inline(always)]`, generic over the build `V` (`AVX2`, `AVX_VNNI`,
//! `AVX512`), and instantiated in three entry points compiled with different target features:
//! AVX2+FMA+F16C; the same plus AVX-VNNI (the VEX `vpdpbusd` of Alder Lake and later, Zen 4/5:
//! it replaces `vpmaddubsw`+`vpmaddwd`, nothing else changes); and AVX2 plus AVX-512
//! F/BW/VL/DQ/VNNI (where `vpdpbusd` replaces them too, `vpmovm2b` expands Q5 high bits, and the
//! 32-value formats take two blocks per 512-bit register). `tables` holds the three kernel tables;
//! `detect` says which builds this CPU can run.
//!
//! Order: helpers, 32-value formats (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0), K-quants (Q4_K/Q5_K, Q6_K,
//! Q2_K/Q3_K), float formats, activation quantization, the two-row f32 kernel, entry points.

// Index loops over token and lane counts read more plainly than iterator chains here.
#![allow(clippy::needless_range_loop)]

use super::act::ActRow;
use crate::DType;
use std::arch::x86_64::*;

/// The kernel builds (the `V` parameter of the kernel bodies).
pub(crate) const AVX2: u8 = 0;
pub(crate) const AVX_VNNI: u8 = 1;
pub(crate) const AVX512: u8 = 2;

mod float_block;
mod interleave256;
mod interleave512;
mod kquant512;
mod packed256;
mod packed512;
mod tables;
pub(crate) use interleave256::group_dot as group_dot_avx2;
pub(crate) use interleave512::group_dot;
pub(crate) use tables::{AVX2_KERNELS, AVX512_KERNELS, AVX_VNNI_KERNELS};

/// Asks for the cache lines of `ahead[at..at + len]` (nothing when `ahead` is null).
#[inline(always)]
pub(crate) unsafe fn prefetch(ahead: *const u8, at: usize, len: usize) {
    if !ahead.is_null() {
        for off in (at..at + len).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(off) as *const i8);
        }
    }
}

pub(crate) use packed256::{packed_dot as packed_dot_avx2, packed_dot_vnni as packed_dot_avx_vnni};
pub(crate) use packed512::packed_dot;

// ---- helpers (inlined into the feature-enabled entry points) ----

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    let x = _mm_add_ss(x, _mm_movehdup_ps(x));
    _mm_cvtss_f32(x)
}

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0b01_00_11_10));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0b10_11_00_01));
    _mm_cvtsi128_si32(x)
}

/// The f16 at `p`, as f32 (F16C).
#[inline(always)]
unsafe fn f16(p: *const u8) -> f32 {
    let bits = (p as *const i16).read_unaligned();
    // a broadcast writes the whole register: no false dependency on whatever held it before
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(bits)))
}

#[inline(always)]
unsafe fn load(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// 16 bytes of nibbles → 32 bytes: low nibbles in the low lane, high nibbles in the high lane
/// (the value order of the 32-value formats).
#[inline(always)]
unsafe fn nibbles32(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Two blocks' 16 bytes of nibbles (at `p0`, `p1`) → 64 bytes in value order, each 16 bytes loaded
/// into two 128-bit lanes and the second shifted: five instructions for 64 values.
#[inline(always)]
unsafe fn nibbles_pair(p0: *const u8, p1: *const u8) -> __m512i {
    let a = _mm256_broadcastsi128_si256(_mm_loadu_si128(p0 as *const __m128i));
    let b = _mm256_broadcastsi128_si256(_mm_loadu_si128(p1 as *const __m128i));
    let q = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    // i16 lanes 8..16 and 24..32 are the 128-bit lanes 1 and 3: the high nibbles
    let q = _mm512_mask_srli_epi16(q, 0xFF00_FF00, q, 4);
    _mm512_and_si512(q, _mm512_set1_epi8(0x0F))
}

/// The fifth bits of two Q5 blocks (`qh` words) as 64 bytes of 0x10 or 0.
#[inline(always)]
unsafe fn bits_pair_0x10(qh0: u32, qh1: u32) -> __m512i {
    let ones = _mm512_movm_epi8(qh0 as u64 | (qh1 as u64) << 32);
    _mm512_and_si512(ones, _mm512_set1_epi8(0x10))
}

/// The 32 bits of `bits` as 32 bytes of 0x10 (bit set) or 0.
#[inline(always)]
unsafe fn bits_to_0x10<const V: u8>(bits: u32) -> __m256i {
    let ones = if V == AVX512 {
        _mm256_movm_epi8(bits)
    } else {
        // byte j takes source byte j/8, then tests bit j%8 by or-ing every other bit in.
        let spread = _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303);
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
        let others = _mm256_set1_epi64x(0x7FBF_DFEF_F7FB_FDFEu64 as i64);
        _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi8(-1))
    };
    _mm256_and_si256(ones, _mm256_set1_epi8(0x10))
}

/// Sums of 4 adjacent u8 × i8 products as 8 i32 (u ≤ 128 keeps the AVX2 form exact).
#[inline(always)]
unsafe fn dot_u8i8<const V: u8>(u: __m256i, s: __m256i) -> __m256i {
    match V {
        AVX512 => _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s),
        AVX_VNNI => _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s),
        _ => _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)),
    }
}

// ---- 32-value formats against Q8 activations ----
//
// (Plain `#[inline(always)]` functions and traits rather than closures: a closure is compiled
// without the entry point's target features when LLVM declines to inline it.)

/// What differs between the 32-value formats: where the 32 weights come from (unsigned, or
/// signed for Q8_0), and the per-block factor of the activation sum (`-8d`, `-16d`, `+m`).
trait Block32 {
    const BYTES: usize;
    const SIGNED: bool = false;
    const OFFSET: bool = true;
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i;
    /// Blocks `b` and `b + BYTES` as one 512-bit vector (AVX-512 builds only).
    #[inline(always)]
    unsafe fn quants_pair(b: *const u8) -> __m512i {
        let (q0, q1) = (Self::quants::<AVX512>(b), Self::quants::<AVX512>(b.add(Self::BYTES)));
        _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1)
    }
    unsafe fn offset(b: *const u8, d: f32) -> f32;
    /// `offset` of the eight blocks from `b`, given their eight `d`.
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256;
}

struct Q4_0;
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q8_0;

impl Block32 for Q4_0 {
    #[inline(always)]
    unsafe fn quants_pair(b: *const u8) -> __m512i {
        nibbles_pair(b.add(2), b.add(Self::BYTES + 2))
    }
    #[inline(always)]
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256 {
        let _ = b;
        _mm256_mul_ps(d, _mm256_set1_ps(-8.0))
    }
    const BYTES: usize = 18;
    #[inline(always)]
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i {
        nibbles32(b.add(2))
    }
    #[inline(always)]
    unsafe fn offset(_: *const u8, d: f32) -> f32 {
        -8.0 * d
    }
}

impl Block32 for Q4_1 {
    #[inline(always)]
    unsafe fn quants_pair(b: *const u8) -> __m512i {
        nibbles_pair(b.add(4), b.add(Self::BYTES + 4))
    }
    #[inline(always)]
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256 {
        let _ = d;
        f16x8(b.add(2), Self::BYTES)
    }
    const BYTES: usize = 20;
    #[inline(always)]
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i {
        nibbles32(b.add(4))
    }
    #[inline(always)]
    unsafe fn offset(b: *const u8, _: f32) -> f32 {
        f16(b.add(2))
    }
}

impl Block32 for Q5_0 {
    #[inline(always)]
    unsafe fn quants_pair(b: *const u8) -> __m512i {
        let q = nibbles_pair(b.add(6), b.add(Self::BYTES + 6));
        let qh = |b: *const u8| (b.add(2) as *const u32).read_unaligned();
        _mm512_or_si512(q, bits_pair_0x10(qh(b), qh(b.add(Self::BYTES))))
    }
    #[inline(always)]
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256 {
        let _ = b;
        _mm256_mul_ps(d, _mm256_set1_ps(-16.0))
    }
    const BYTES: usize = 22;
    #[inline(always)]
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i {
        let qh = (b.add(2) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles32(b.add(6)), bits_to_0x10::<V>(qh))
    }
    #[inline(always)]
    unsafe fn offset(_: *const u8, d: f32) -> f32 {
        -16.0 * d
    }
}

impl Block32 for Q5_1 {
    #[inline(always)]
    unsafe fn quants_pair(b: *const u8) -> __m512i {
        let q = nibbles_pair(b.add(8), b.add(Self::BYTES + 8));
        let qh = |b: *const u8| (b.add(4) as *const u32).read_unaligned();
        _mm512_or_si512(q, bits_pair_0x10(qh(b), qh(b.add(Self::BYTES))))
    }
    #[inline(always)]
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256 {
        let _ = d;
        f16x8(b.add(2), Self::BYTES)
    }
    const BYTES: usize = 24;
    #[inline(always)]
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i {
        let qh = (b.add(4) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles32(b.add(8)), bits_to_0x10::<V>(qh))
    }
    #[inline(always)]
    unsafe fn offset(b: *const u8, _: f32) -> f32 {
        f16(b.add(2))
    }
}

impl Block32 for Q8_0 {
    #[inline(always)]
    unsafe fn offset8(b: *const u8, d: __m256) -> __m256 {
        let _ = (b, d);
        _mm256_setzero_ps()
    }
    const BYTES: usize = 34;
    const SIGNED: bool = true;
    const OFFSET: bool = false;
    #[inline(always)]
    unsafe fn quants<const V: u8>(b: *const u8) -> __m256i {
        load(b.add(2))
    }
    #[inline(always)]
    unsafe fn offset(_: *const u8, _: f32) -> f32 {
        0.0
    }
}

/// Eight f16 fields at `p + k·stride` (k < 8) as eight f32. (`vpgatherdd` + `vpmovdw` instead
/// measured 20-25% slower on Zen 4.)
#[inline(always)]
unsafe fn f16x8(p: *const u8, stride: usize) -> __m256 {
    let h = |k: usize| (p.add(k * stride) as *const i16).read_unaligned();
    _mm256_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), h(4), h(5), h(6), h(7)))
}

/// The unsigned weights of block `b` dotted with 32 activations at `x` (8 lanes of i32).
#[inline(always)]
unsafe fn block_dot<const V: u8, B: Block32>(q: __m256i, x: *const u8) -> __m256i {
    if B::SIGNED {
        dot_u8i8::<V>(_mm256_abs_epi8(q), _mm256_sign_epi8(load(x), q))
    } else {
        dot_u8i8::<V>(q, load(x))
    }
}

/// Blocks `8g..8g+8` against `T` tokens. Scales are converted eight at a time and the products
/// `d_w·d_a` stored, so each block only loads its broadcast; the offset term is one FMA per
/// token for all eight blocks.
#[inline(always)]
unsafe fn group32<const V: u8, B: Block32, const T: usize>(
    w: &[u8],
    a: &[ActRow],
    g: usize,
    acc: &mut [[__m256; 2]; T],
    off: &mut [__m256; T],
) {
    let b0 = w.as_ptr().add(8 * g * B::BYTES);
    let dw = f16x8(b0, B::BYTES);
    let mut dd = [[0f32; 8]; T];
    for t in 0..T {
        let a = a.get_unchecked(t);
        _mm256_storeu_ps(
            dd[t].as_mut_ptr(),
            _mm256_mul_ps(dw, _mm256_loadu_ps(a.d.as_ptr().add(8 * g))),
        );
        if B::OFFSET {
            let o = B::offset8(b0, dw);
            off[t] = _mm256_fmadd_ps(o, _mm256_loadu_ps(a.s.as_ptr().add(8 * g)), off[t]);
        }
    }
    for k in 0..8 {
        let q = B::quants::<V>(b0.add(k * B::BYTES));
        for t in 0..T {
            let x = a.get_unchecked(t).qs.as_ptr().add(32 * (8 * g + k)) as *const u8;
            let p = _mm256_cvtepi32_ps(block_dot::<V, B>(q, x));
            acc[t][k % 2] = _mm256_fmadd_ps(_mm256_broadcast_ss(&dd[t][k]), p, acc[t][k % 2]);
        }
    }
}

/// `group32` for the AVX-512 build: two blocks per 512-bit register, so every vector op covers
/// 64 weights (half the instructions per value).
#[inline(always)]
unsafe fn group32_512<B: Block32, const T: usize>(
    w: &[u8],
    a: &[ActRow],
    g: usize,
    acc: &mut [[__m512; 2]; T],
    off: &mut [__m256; T],
) {
    let b0 = w.as_ptr().add(8 * g * B::BYTES);
    let dw = f16x8(b0, B::BYTES);
    let mut dd = [_mm512_setzero_ps(); T];
    for t in 0..T {
        let a = a.get_unchecked(t);
        dd[t] = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(a.d.as_ptr().add(8 * g))));
        if B::OFFSET {
            let o = B::offset8(b0, dw);
            off[t] = _mm256_fmadd_ps(o, _mm256_loadu_ps(a.s.as_ptr().add(8 * g)), off[t]);
        }
    }
    for k in (0..8).step_by(2) {
        let q = B::quants_pair(b0.add(k * B::BYTES));
        // lanes 0..8 take scale k, lanes 8..16 scale k+1
        let pick = _mm512_set_epi32(
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32 + 1,
            k as i32,
            k as i32,
            k as i32,
            k as i32,
            k as i32,
            k as i32,
            k as i32,
            k as i32,
        );
        let u = if B::SIGNED { _mm512_abs_epi8(q) } else { q };
        for t in 0..T {
            let x = _mm512_loadu_si512(a.get_unchecked(t).qs.as_ptr().add(32 * (8 * g + k)) as *const _);
            // signed weights: move their sign onto the activations
            let x = if B::SIGNED {
                _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(q), _mm512_setzero_si512(), x)
            } else {
                x
            };
            let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x));
            let scale = _mm512_permutexvar_ps(pick, dd[t]);
            acc[t][k / 2 % 2] = _mm512_fmadd_ps(scale, p, acc[t][k / 2 % 2]);
        }
    }
}

/// Block `i` alone (the tail after whole groups of eight).
#[inline(always)]
unsafe fn block32<const V: u8, B: Block32, const T: usize>(
    w: &[u8],
    a: &[ActRow],
    i: usize,
    acc: &mut [[__m256; 2]; T],
    off: &mut [f32; T],
) {
    let b = w.as_ptr().add(i * B::BYTES);
    let d = f16(b);
    let q = B::quants::<V>(b);
    let o = B::offset(b, d);
    for t in 0..T {
        let a = a.get_unchecked(t);
        let p = _mm256_cvtepi32_ps(block_dot::<V, B>(q, a.qs.as_ptr().add(32 * i) as *const u8));
        acc[t][0] = _mm256_fmadd_ps(_mm256_set1_ps(d * *a.d.get_unchecked(i)), p, acc[t][0]);
        if B::OFFSET {
            off[t] += o * *a.s.get_unchecked(i);
        }
    }
}

/// `out[t] = Σ_blocks d_w d_a Σqa + offset · s_a`.
#[inline(always)]
unsafe fn dot32<const V: u8, B: Block32, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let nb = w.len() / B::BYTES;
    let mut acc = [[_mm256_setzero_ps(); 2]; T];
    let mut off = [_mm256_setzero_ps(); T];
    if V == AVX512 {
        let mut acc512 = [[_mm512_setzero_ps(); 2]; T];
        for g in 0..nb / 8 {
            group32_512::<B, T>(w, a, g, &mut acc512, &mut off);
        }
        for t in 0..T {
            let s = _mm512_add_ps(acc512[t][0], acc512[t][1]);
            let halves = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
            acc[t][0] = _mm256_add_ps(acc[t][0], halves);
        }
    } else {
        for g in 0..nb / 8 {
            group32::<V, B, T>(w, a, g, &mut acc, &mut off);
        }
    }
    let mut tail = [0f32; T];
    for i in nb / 8 * 8..nb {
        block32::<V, B, T>(w, a, i, &mut acc, &mut tail);
    }
    for t in 0..T {
        out[t] = hsum(_mm256_add_ps(acc[t][0], acc[t][1])) + hsum(off[t]) + tail[t];
    }
}

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
unsafe fn q4_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q45_k::<V, T, false>(w, a, out)
}

#[inline(always)]
unsafe fn q5_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
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
unsafe fn q6_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    if V == AVX512 {
        kquant512::q6_k::<T>(w, a, out)
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
unsafe fn q2_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q23_k::<V, T, false>(w, a, out)
}

#[inline(always)]
unsafe fn q3_k<const V: u8, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    q23_k::<V, T, true>(w, a, out)
}

// ---- float formats against f32 activations ----

/// A float weight format: 8 values at index `i` as f32, or one.
trait Floats {
    unsafe fn load8(p: *const u8, i: usize) -> __m256;
    unsafe fn one(p: *const u8, i: usize) -> f32;
}

struct F32s;
struct F16s;
struct Bf16s;

impl Floats for F32s {
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        _mm256_loadu_ps((p as *const f32).add(i))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        (p as *const f32).add(i).read_unaligned()
    }
}

impl Floats for F16s {
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * i) as *const __m128i))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        f16(p.add(2 * i))
    }
}

impl Floats for Bf16s {
    #[inline(always)]
    unsafe fn load8(p: *const u8, i: usize) -> __m256 {
        let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(2 * i) as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(h, 16))
    }
    #[inline(always)]
    unsafe fn one(p: *const u8, i: usize) -> f32 {
        f32::from_bits(((p.add(2 * i) as *const u16).read_unaligned() as u32) << 16)
    }
}

/// `out[t] = Σ w·x_t`: 8 values per step into one accumulator per token, then its lane sum and
/// the scalar tail. Every float kernel (`dot_f_rows4`, `float_block`) sums in exactly this order,
/// so a token's result does not depend on how many tokens or rows share the call (the batched
/// engine's outputs equal the same prompts run alone, bit for bit).
#[inline(always)]
unsafe fn dot_f<F: Floats, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    let p = w.as_ptr();
    let n = a[0].f.len();
    let xs: [*const f32; T] = std::array::from_fn(|t| a.get_unchecked(t).f.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    let mut i = 0;
    while i + 8 <= n {
        let wv = F::load8(p, i);
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xs[t].add(i)), acc[t]);
        }
        i += 8;
    }
    for t in 0..T {
        let mut s = hsum(acc[t]);
        for j in i..n {
            s += F::one(p, j) * *xs[t].add(j);
        }
        out[t] = s;
    }
}

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

/// `q = round_ties_even(x · id)` for 32 values, returning Σq.
#[inline(always)]
unsafe fn quant32(x: *const f32, id: f32, q: *mut i8) -> i32 {
    let id = _mm256_set1_ps(id);
    let i = |k: usize| _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x.add(8 * k)), id));
    let (a, b, c, d) = (i(0), i(1), i(2), i(3));
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

// ---- entry points ----

/// A kernel over consecutive rows: see `matmul::Dot`.
pub(crate) type DotN = unsafe fn(DType, &[u8], usize, &[ActRow], *mut f32, usize);

/// Instantiate `$body::<V, T>` for T = 1..=4 behind one entry point per build, each
/// looping over the rows it is given (the loop is expanded inside the feature-enabled function,
/// so the body inlines into it and its constants stay in registers across rows).
macro_rules! entry {
    ($avx2:ident, $avxvnni:ident, $vnni:ident, $call:ident [$($g:ty),*]) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $avx2(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            entry!(@T AVX2, w, rb, a, o, s, $call, $($g),*)
        }
        #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
        unsafe fn $avxvnni(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            entry!(@T AVX_VNNI, w, rb, a, o, s, $call, $($g),*)
        }
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
        unsafe fn $vnni(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            entry!(@T AVX512, w, rb, a, o, s, $call, $($g),*)
        }
    };
    (@T $v:expr, $w:ident, $rb:ident, $a:ident, $o:ident, $s:ident, $call:ident, $($g:ty),*) => {
        match $a.len() {
            1 => entry!(@rows 1, $v, $w, $rb, $a, $o, $s, $call, $($g),*),
            2 => entry!(@rows 2, $v, $w, $rb, $a, $o, $s, $call, $($g),*),
            3 => entry!(@rows 3, $v, $w, $rb, $a, $o, $s, $call, $($g),*),
            _ => entry!(@rows 4, $v, $w, $rb, $a, $o, $s, $call, $($g),*),
        }
    };
    (@rows $t:literal, $v:expr, $w:ident, $rb:ident, $a:ident, $o:ident, $s:ident, $call:ident,
     $($g:ty),*) => {
        for (r, row) in $w.chunks_exact($rb).enumerate() {
            let mut d = [0f32; $t];
            $call::<{ $v }, $($g,)* $t>(row, $a, &mut d);
            for t in 0..$t {
                *$o.add(t * $s + r) = d[t];
            }
        }
    };
}
entry!(q4_0_avx2, q4_0_avxvnni, q4_0_vnni, dot32[Q4_0]);
entry!(q4_1_avx2, q4_1_avxvnni, q4_1_vnni, dot32[Q4_1]);
entry!(q5_0_avx2, q5_0_avxvnni, q5_0_vnni, dot32[Q5_0]);
entry!(q5_1_avx2, q5_1_avxvnni, q5_1_vnni, dot32[Q5_1]);
entry!(q8_0_avx2, q8_0_avxvnni, q8_0_vnni, dot32[Q8_0]);
entry!(q4_k_avx2, q4_k_avxvnni, q4_k_vnni, q4_k []);
entry!(q5_k_avx2, q5_k_avxvnni, q5_k_vnni, q5_k []);
entry!(q6_k_avx2, q6_k_avxvnni, q6_k_vnni, q6_k []);
entry!(q2_k_avx2, q2_k_avxvnni, q2_k_vnni, q2_k []);
entry!(q3_k_avx2, q3_k_avxvnni, q3_k_vnni, q3_k []);

/// Float rows against one token, four rows per pass: each activation load feeds four rows, so
/// `x` (f32, larger than L1 for wide rows) streams from L2 once per four rows, not once per row.
/// Returns how many rows it did (a multiple of four); `out[r]` for each.
#[inline(always)]
unsafe fn dot_f_rows4<F: Floats>(w: &[u8], row_bytes: usize, x: &[f32], out: *mut f32) -> usize {
    let (rows, n) = (w.len() / row_bytes, x.len());
    let mut r = 0;
    while r + 4 <= rows {
        let p: [*const u8; 4] = std::array::from_fn(|k| w.as_ptr().add((r + k) * row_bytes));
        // the next four rows, asked for now (narrow rows end before the hardware prefetcher
        // has ramped up: SmolLM2's 576-column bf16 rows ran at half the bandwidth without this)
        if r + 8 <= rows {
            prefetch(w.as_ptr().add((r + 4) * row_bytes), 0, 4 * row_bytes);
        }
        // the order of `dot_f`: one accumulator per row, 8 values per step
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 8 <= n {
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            for k in 0..4 {
                acc[k] = _mm256_fmadd_ps(F::load8(p[k], i), xv, acc[k]);
            }
            i += 8;
        }
        for k in 0..4 {
            let mut s = hsum(acc[k]);
            for j in i..n {
                s += F::one(p[k], j) * x[j];
            }
            *out.add(r + k) = s;
        }
        r += 4;
    }
    r
}

/// Entry points for a float format: one token goes four rows at a time (`dot_f_rows4`), more
/// tokens one row at a time against up to four tokens (`dot_f`). The same code serves both builds.
macro_rules! float_entry {
    ($avx2:ident, $vnni:ident, $f:ty) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $avx2(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            float_entry!(@body $f, w, rb, a, o, s)
        }
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
        unsafe fn $vnni(_: DType, w: &[u8], rb: usize, a: &[ActRow], o: *mut f32, s: usize) {
            float_entry!(@body $f, w, rb, a, o, s)
        }
    };
    (@body $f:ty, $w:ident, $rb:ident, $a:ident, $o:ident, $s:ident) => {{
        let done = if $a.len() == 1 { dot_f_rows4::<$f>($w, $rb, $a[0].f, $o) } else { 0 };
        let rest = &$w[done * $rb..];
        let o = $o.add(done);
        match $a.len() {
            1 => entry!(@rows 1, AVX2, rest, $rb, $a, o, $s, floats, $f),
            2 => entry!(@rows 2, AVX2, rest, $rb, $a, o, $s, floats, $f),
            3 => entry!(@rows 3, AVX2, rest, $rb, $a, o, $s, floats, $f),
            _ => entry!(@rows 4, AVX2, rest, $rb, $a, o, $s, floats, $f),
        }
    }};
}

/// `dot_f` in the shape `entry!` calls.
#[inline(always)]
unsafe fn floats<const V: u8, F: Floats, const T: usize>(w: &[u8], a: &[ActRow], out: &mut [f32]) {
    dot_f::<F, T>(w, a, out)
}
float_entry!(f32_avx2, f32_vnni, F32s);
float_entry!(f16_avx2, f16_vnni, F16s);
float_entry!(bf16_avx2, bf16_vnni, Bf16s);

/// Whether this CPU runs the AVX2 kernels, the AVX-VNNI ones, and the AVX-512 VNNI ones.
pub(crate) fn detect() -> (bool, bool, bool) {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
    let avx_vnni = avx2 && is_x86_feature_detected!("avxvnni");
    let vnni = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vnni");
    (avx2, avx_vnni, vnni)
}
