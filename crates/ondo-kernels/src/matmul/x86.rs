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
//! Order: helpers, 32-value formats (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0), entry points. The K-quant bodies
//! are in `x86/kquant256.rs` (and `kquant512.rs`), the float ones in `x86/floats.rs`, activation
//! quantization in `x86/quant_act.rs`.

// Index loops over token and lane counts read more plainly than iterator chains here.
#![allow(clippy::needless_range_loop)]

use super::act::ActRow;
pub(crate) use super::table::{Ahead, TileAhead};
use crate::DType;
use std::arch::x86_64::*;

/// The kernel builds (the `V` parameter of the kernel bodies).
pub(crate) const AVX2: u8 = 0;
pub(crate) const AVX_VNNI: u8 = 1;
pub(crate) const AVX512: u8 = 2;

mod float_block;
mod float_block512;
mod interleave256;
mod interleave512;
mod kquant256;
mod kquant512;
mod packed256;
mod packed512;
mod quant_act;
mod tables;
pub(crate) use interleave256::group_dot as group_dot_avx2;
pub(crate) use interleave512::group_dot;
use kquant256::{q2_k, q3_k, q4_k, q5_k, q6_k};
pub(crate) use quant_act::{quantize_q8, quantize_q8k};
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

/// How far ahead of the block being read the AVX2 K-quant row kernels ask for the weights
/// (bytes). (The 32-value formats measured no faster with it: the hardware keeps up there.)
const STREAM_AHEAD: usize = 1536;

/// Asks for the `len` bytes `STREAM_AHEAD` past block `b` (the rows of a call are consecutive,
/// so this runs on into the next row; a prefetch never faults). Without it an Intel Xeon core
/// read Q4_K at 6.9 GB/s of its 14.4 at batch 1, waiting on each block's first load.
#[inline(always)]
pub(super) unsafe fn stream_ahead(b: *const u8, len: usize) {
    for off in (0..len).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(STREAM_AHEAD + off) as *const i8);
    }
}

/// Asks for `ahead`'s share of the next group's tile at byte `at` (into L1, or L2: `to_l2`).
#[inline(always)]
pub(crate) unsafe fn prefetch_tile(ahead: TileAhead, at: usize) {
    if !ahead.to_l2 {
        return prefetch(ahead.ptr, at + ahead.from, ahead.len);
    }
    if !ahead.ptr.is_null() {
        for off in (at + ahead.from..at + ahead.from + ahead.len).step_by(64) {
            _mm_prefetch::<_MM_HINT_T1>(ahead.ptr.wrapping_add(off) as *const i8);
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

// (declared after `entry!`, which its entry points use)
mod floats;
use floats::{bf16_avx2, bf16_vnni, f16_avx2, f16_vnni, f32_avx2, f32_vnni};

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
