//! x86-64 row · activation dot products.
//!
//! Each kernel body is written once, `#[inline(always)]`, generic over `VNNI`, and instantiated
//! in two entry points compiled with different target features: AVX2+FMA+F16C, and the same
//! plus AVX-512 F/BW/VL/VNNI (where `vpdpbusd` replaces `vpmaddubsw`+`vpmaddwd`, and
//! `vpmovm2b` expands Q5 high bits). `dispatch` picks them at run time.

use super::act::ActRow;
use crate::DType;
use std::arch::x86_64::*;

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
    let bits = (p as *const u16).read_unaligned();
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
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

/// The 32 bits of `bits` as 32 bytes of 0x10 (bit set) or 0.
#[inline(always)]
unsafe fn bits_to_0x10<const VNNI: bool>(bits: u32) -> __m256i {
    let ones = if VNNI {
        _mm256_movm_epi8(bits)
    } else {
        // byte j takes source byte j/8, then tests bit j%8 by or-ing every other bit in.
        let spread = _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
        let others = _mm256_set1_epi64x(0x7FBF_DFEF_F7FB_FDFEu64 as i64);
        _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi8(-1))
    };
    _mm256_and_si256(ones, _mm256_set1_epi8(0x10))
}

/// Sums of 4 adjacent u8 × i8 products as 8 i32 (u ≤ 128 keeps the AVX2 form exact).
#[inline(always)]
unsafe fn dot_u8i8<const VNNI: bool>(u: __m256i, s: __m256i) -> __m256i {
    if VNNI {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
}

// ---- 32-value formats against Q8 activations ----
//
// (Plain `#[inline(always)]` functions and traits rather than closures: a closure is compiled
// without the entry point's target features when LLVM declines to inline it.)

/// What differs between the 32-value formats: where the 32 unsigned weights come from, and
/// the per-block factor of the activation sum (`-8d`, `-16d`, `+m`, or none).
trait Block32 {
    const BYTES: usize;
    unsafe fn quants<const V: bool>(b: *const u8) -> __m256i;
    unsafe fn offset(b: *const u8, d: f32) -> f32;
}

struct Q4_0;
struct Q4_1;
struct Q5_0;
struct Q5_1;

impl Block32 for Q4_0 {
    const BYTES: usize = 18;
    #[inline(always)]
    unsafe fn quants<const V: bool>(b: *const u8) -> __m256i {
        nibbles32(b.add(2))
    }
    #[inline(always)]
    unsafe fn offset(_: *const u8, d: f32) -> f32 {
        -8.0 * d
    }
}

impl Block32 for Q4_1 {
    const BYTES: usize = 20;
    #[inline(always)]
    unsafe fn quants<const V: bool>(b: *const u8) -> __m256i {
        nibbles32(b.add(4))
    }
    #[inline(always)]
    unsafe fn offset(b: *const u8, _: f32) -> f32 {
        f16(b.add(2))
    }
}

impl Block32 for Q5_0 {
    const BYTES: usize = 22;
    #[inline(always)]
    unsafe fn quants<const V: bool>(b: *const u8) -> __m256i {
        let qh = (b.add(2) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles32(b.add(6)), bits_to_0x10::<V>(qh))
    }
    #[inline(always)]
    unsafe fn offset(_: *const u8, d: f32) -> f32 {
        -16.0 * d
    }
}

impl Block32 for Q5_1 {
    const BYTES: usize = 24;
    #[inline(always)]
    unsafe fn quants<const V: bool>(b: *const u8) -> __m256i {
        let qh = (b.add(4) as *const u32).read_unaligned();
        _mm256_or_si256(nibbles32(b.add(8)), bits_to_0x10::<V>(qh))
    }
    #[inline(always)]
    unsafe fn offset(b: *const u8, _: f32) -> f32 {
        f16(b.add(2))
    }
}

/// One block `i`: `acc += d_w d_a · Σqa` (8 lanes), `off += offset · s_a`.
#[inline(always)]
unsafe fn block32<const V: bool, B: Block32>(
    w: &[u8],
    a: &ActRow,
    i: usize,
    acc: &mut __m256,
    off: &mut f32,
) {
    let b = w.as_ptr().add(i * B::BYTES);
    let d = f16(b);
    let x = load(a.qs.as_ptr().add(32 * i) as *const u8);
    let p = dot_u8i8::<V>(B::quants::<V>(b), x);
    *acc = _mm256_fmadd_ps(
        _mm256_set1_ps(d * *a.d.get_unchecked(i)),
        _mm256_cvtepi32_ps(p),
        *acc,
    );
    *off += B::offset(b, d) * *a.s.get_unchecked(i);
}

/// `Σ_blocks d_w d_a Σqa + offset · s_a`, two blocks per step on independent chains.
#[inline(always)]
unsafe fn dot32<const V: bool, B: Block32>(w: &[u8], a: &ActRow) -> f32 {
    let nb = w.len() / B::BYTES;
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut off0, mut off1) = (0f32, 0f32);
    let mut i = 0;
    while i + 2 <= nb {
        block32::<V, B>(w, a, i, &mut acc0, &mut off0);
        block32::<V, B>(w, a, i + 1, &mut acc1, &mut off1);
        i += 2;
    }
    if i < nb {
        block32::<V, B>(w, a, i, &mut acc0, &mut off0);
    }
    hsum(_mm256_add_ps(acc0, acc1)) + off0 + off1
}

#[inline(always)]
unsafe fn q4_0<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    dot32::<V, Q4_0>(w, a)
}
#[inline(always)]
unsafe fn q4_1<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    dot32::<V, Q4_1>(w, a)
}
#[inline(always)]
unsafe fn q5_0<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    dot32::<V, Q5_0>(w, a)
}
#[inline(always)]
unsafe fn q5_1<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    dot32::<V, Q5_1>(w, a)
}

#[inline(always)]
unsafe fn block_q8_0<const V: bool>(w: &[u8], a: &ActRow, i: usize, acc: &mut __m256) {
    let b = w.as_ptr().add(i * 34);
    let q = load(b.add(2));
    let x = load(a.qs.as_ptr().add(32 * i) as *const u8);
    let p = dot_u8i8::<V>(_mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
    let d = f16(b) * *a.d.get_unchecked(i);
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p), *acc);
}

#[inline(always)]
unsafe fn q8_0<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    let nb = w.len() / 34;
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 2 <= nb {
        block_q8_0::<V>(w, a, i, &mut acc0);
        block_q8_0::<V>(w, a, i + 1, &mut acc1);
        i += 2;
    }
    if i < nb {
        block_q8_0::<V>(w, a, i, &mut acc0);
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

// ---- K-quants against Q8K activations ----

/// u8 × i8 products summed in pairs, times an i16 scale per 16-bit lane, as 8 i32.
#[inline(always)]
unsafe fn scaled_dot(u: __m256i, s: __m256i, scale: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale)
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
    (
        sc_lo as u64 | (sc_hi as u64) << 32,
        m_lo as u64 | (m_hi as u64) << 32,
    )
}

#[inline(always)]
unsafe fn q4_k<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    let nb = w.len() / 144;
    let (mut acc, mut accm) = (_mm256_setzero_ps(), 0f32);
    let m4 = _mm256_set1_epi8(0x0F);
    for i in 0..nb {
        let b = w.as_ptr().add(i * 144);
        let ad = *a.d.get_unchecked(i);
        let (d, dmin) = (f16(b) * ad, f16(b.add(2)) * ad);
        let (sc, mn) = q4_k_scales(b.add(4));
        // Σ_j m_j · (Σ a over sub-block j), sub-block j = bsums 2j, 2j+1.
        let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * i) as *const __m256i);
        let pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        let mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(mn as i64));
        let mi = _mm_madd_epi16(mins, pairs);
        let mi = _mm_add_epi32(mi, _mm_shuffle_epi32(mi, 0b01_00_11_10));
        let mi = _mm_add_epi32(mi, _mm_shuffle_epi32(mi, 0b10_11_00_01));
        accm += dmin * _mm_cvtsi128_si32(mi) as f32;
        let mut sumi = _mm256_setzero_si256();
        let q = b.add(16);
        let x = a.qs.as_ptr().add(256 * i) as *const u8;
        for j in 0..4 {
            let bytes = load(q.add(32 * j));
            let lo = _mm256_and_si256(bytes, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
            let s_lo = _mm256_set1_epi16(((sc >> (16 * j)) & 0xFF) as i16);
            let s_hi = _mm256_set1_epi16(((sc >> (16 * j + 8)) & 0xFF) as i16);
            let p0 = scaled_dot(lo, load(x.add(64 * j)), s_lo);
            let p1 = scaled_dot(hi, load(x.add(64 * j + 32)), s_hi);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc) - accm
}

#[inline(always)]
unsafe fn q6_k<const V: bool>(w: &[u8], a: &ActRow) -> f32 {
    let nb = w.len() / 210;
    let (mut acc, mut accs) = (_mm256_setzero_ps(), 0f32);
    let m4 = _mm256_set1_epi8(0x0F);
    for i in 0..nb {
        let b = w.as_ptr().add(i * 210);
        let d = f16(b.add(208)) * *a.d.get_unchecked(i);
        let sc8 = _mm_loadu_si128(b.add(192) as *const __m128i);
        // 32 · Σ_j sc_j · (Σ a over the 16 values of sub-block j)
        let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * i) as *const __m256i);
        let corr = hsum_i32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs));
        accs += d * (32 * corr) as f32;
        let mut sumi = _mm256_setzero_si256();
        let x = a.qs.as_ptr().add(256 * i) as *const u8;
        for n in 0..2 {
            let (ql, qh) = (b.add(64 * n), b.add(128 + 32 * n));
            let (l0, l1, h) = (load(ql), load(ql.add(32)), load(qh));
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(l0, m4),
                    _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x03)), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(l1, m4),
                    _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0x0C)), 2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                    _mm256_and_si256(h, _mm256_set1_epi8(0x30)),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                    _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(0xC0u8 as i8)), 2),
                ),
            ];
            // this half's 8 scales as i16 in both lanes; lane k picks scale 2k (low) / 2k+1 (high)
            let sc16 = _mm_cvtepi8_epi16(if n == 0 { sc8 } else { _mm_srli_si128(sc8, 8) });
            let sc = _mm256_broadcastsi128_si256(sc16);
            for (k, qk) in q.iter().enumerate() {
                let lo = (((4 * k + 1) << 8) | (4 * k)) as i16;
                let hi = (((4 * k + 3) << 8) | (4 * k + 2)) as i16;
                let pick = _mm256_setr_m128i(_mm_set1_epi16(lo), _mm_set1_epi16(hi));
                let scale = _mm256_shuffle_epi8(sc, pick);
                sumi =
                    _mm256_add_epi32(sumi, scaled_dot(*qk, load(x.add(128 * n + 32 * k)), scale));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum(acc) - accs
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

/// `Σ w·x` over `x.len()` values, four accumulator chains.
#[inline(always)]
unsafe fn dot_f<F: Floats>(w: &[u8], a: &ActRow) -> f32 {
    let (p, x) = (w.as_ptr(), a.f);
    let (n, xp) = (x.len(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        acc[0] = _mm256_fmadd_ps(F::load8(p, i), _mm256_loadu_ps(xp.add(i)), acc[0]);
        acc[1] = _mm256_fmadd_ps(F::load8(p, i + 8), _mm256_loadu_ps(xp.add(i + 8)), acc[1]);
        acc[2] = _mm256_fmadd_ps(F::load8(p, i + 16), _mm256_loadu_ps(xp.add(i + 16)), acc[2]);
        acc[3] = _mm256_fmadd_ps(F::load8(p, i + 24), _mm256_loadu_ps(xp.add(i + 24)), acc[3]);
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(F::load8(p, i), _mm256_loadu_ps(xp.add(i)), acc[0]);
        i += 8;
    }
    let mut s = hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for j in i..n {
        s += F::one(p, j) * x[j];
    }
    s
}

// ---- entry points ----

/// A kernel: `Σ row(w) · a` for one weight row `w` (raw bytes of `dtype`).
pub(crate) type Dot = unsafe fn(DType, &[u8], &ActRow) -> f32;

macro_rules! entry {
    ($avx2:ident, $vnni:ident, $body:ident) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $avx2(_: DType, w: &[u8], a: &ActRow) -> f32 {
            $body::<false>(w, a)
        }
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        unsafe fn $vnni(_: DType, w: &[u8], a: &ActRow) -> f32 {
            $body::<true>(w, a)
        }
    };
}
entry!(q4_0_avx2, q4_0_vnni, q4_0);
entry!(q4_1_avx2, q4_1_vnni, q4_1);
entry!(q5_0_avx2, q5_0_vnni, q5_0);
entry!(q5_1_avx2, q5_1_vnni, q5_1);
entry!(q8_0_avx2, q8_0_vnni, q8_0);
entry!(q4_k_avx2, q4_k_vnni, q4_k);
entry!(q6_k_avx2, q6_k_vnni, q6_k);

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_avx2(_: DType, w: &[u8], a: &ActRow) -> f32 {
    dot_f::<F32s>(w, a)
}
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_avx2(_: DType, w: &[u8], a: &ActRow) -> f32 {
    dot_f::<F16s>(w, a)
}
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_avx2(_: DType, w: &[u8], a: &ActRow) -> f32 {
    dot_f::<Bf16s>(w, a)
}

/// The x86 kernel for `dtype`, if there is one; `vnni` selects the AVX-512 VNNI build.
pub(crate) fn kernel(dtype: DType, vnni: bool) -> Option<Dot> {
    let pick = |a: Dot, v: Dot| Some(if vnni { v } else { a });
    match dtype {
        DType::F32 => Some(f32_avx2),
        DType::F16 => Some(f16_avx2),
        DType::BF16 => Some(bf16_avx2),
        DType::Q4_0 => pick(q4_0_avx2, q4_0_vnni),
        DType::Q4_1 => pick(q4_1_avx2, q4_1_vnni),
        DType::Q5_0 => pick(q5_0_avx2, q5_0_vnni),
        DType::Q5_1 => pick(q5_1_avx2, q5_1_vnni),
        DType::Q8_0 => pick(q8_0_avx2, q8_0_vnni),
        DType::Q4_K => pick(q4_k_avx2, q4_k_vnni),
        DType::Q6_K => pick(q6_k_avx2, q6_k_vnni),
        _ => None,
    }
}

/// Whether this CPU runs the AVX2 kernels, and the VNNI ones.
pub(crate) fn detect() -> (bool, bool) {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    let vnni = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    (avx2, vnni)
}
