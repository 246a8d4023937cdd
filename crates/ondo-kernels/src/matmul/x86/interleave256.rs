//! The interleaved-weight kernels (`matmul::interleave`) of the 32-value formats for AVX2 CPUs
//! without AVX-512 (most laptops): each 64-byte vector of a tile is two 256-bit halves, rows 0..8
//! and rows 8..16, so a group is read as two 8-row halves (the second from cache). `vpdpbusd`
//! becomes `vpmaddubsw` + `vpmaddwd` (exact: weights are at most 31, except Q8_0, whose bytes go
//! back to signed and move their sign onto the activations, so its offset is not needed).
//! (K-quant tiles measured no faster than the plain AVX2 K-quant kernels: see `tables`.)

use super::super::interleave::{parts32, Parts32};
use super::{bits_to_0x10, prefetch_tile, ActRow, Ahead, AVX2};
use crate::DType;
use std::arch::x86_64::*;

/// `*out.add(t · stride + r) = row_r · a[t]` for the sixteen rows of one group (as
/// `interleave512::group_dot`; `ahead` as there, but see `first`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn group_dot(dtype: DType, tiles: &[u8], a: &[ActRow], out: *mut f32, stride: usize, ahead: Ahead) {
    // The first call of a group asks for all of the next one, in its first half: these kernels
    // are compute bound, and sharing the prefetch out over the calls measured no faster here.
    let first = if ahead.part == 0 { ahead.whole() } else { Ahead::NONE };
    let ahead_of = |h: usize| if h == 0 { first } else { Ahead::NONE };
    macro_rules! by_tokens {
        ($f:ident, $h:expr $(, $p:expr)*) => {
            match a.len() {
                1 => $f::<1>(tiles, a, out.add(8 * $h), stride, ahead_of($h), $h $(, $p)*),
                2 => $f::<2>(tiles, a, out.add(8 * $h), stride, ahead_of($h), $h $(, $p)*),
                3 => $f::<3>(tiles, a, out.add(8 * $h), stride, ahead_of($h), $h $(, $p)*),
                _ => $f::<4>(tiles, a, out.add(8 * $h), stride, ahead_of($h), $h $(, $p)*),
            }
        };
    }
    for h in 0..2 {
        match dtype {
            DType::Q4_0 => by_tokens!(half32, h, parts32(dtype), -8.0),
            DType::Q5_0 => by_tokens!(half32, h, parts32(dtype), -16.0),
            DType::Q8_0 => by_tokens!(half32, h, parts32(dtype), 0.0),
            DType::Q4_1 | DType::Q5_1 => by_tokens!(half32, h, parts32(dtype), 0.0),
            _ => unreachable!("AVX2 does not read {dtype} interleaved"),
        }
    }
}

/// Sums of four adjacent `u8 × i8` products per i32 lane.
#[inline(always)]
unsafe fn dot4(u: __m256i, x: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1))
}

/// `Σ_k dot4(q[k], x[k])` over `ks`, with `x[k]` the four activation bytes at `x + 4k`.
#[inline(always)]
unsafe fn dot8(q: &[__m256i; 8], x: *const u8, ks: std::ops::Range<usize>) -> __m256i {
    let (mut s0, mut s1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    for k in ks.step_by(2) {
        s0 = _mm256_add_epi32(s0, dot4(q[k], bcast4(x, k)));
        s1 = _mm256_add_epi32(s1, dot4(q[k + 1], bcast4(x, k + 1)));
    }
    _mm256_add_epi32(s0, s1)
}

/// The four activation bytes at `x + 4k` in every i32 lane. (Helpers that return vectors are
/// functions, never closures: a closure LLVM declines to inline is compiled without AVX2.)
#[inline(always)]
unsafe fn bcast4(x: *const u8, k: usize) -> __m256i {
    _mm256_set1_epi32((x.add(4 * k) as *const i32).read_unaligned())
}

/// Half `h` of a 256-byte nibble area as eight vectors of columns `4k..4k+4`.
#[inline(always)]
unsafe fn nibbles(qs: *const u8, h: usize) -> [__m256i; 8] {
    let low = _mm256_set1_epi8(0x0F);
    let mut q = [_mm256_setzero_si256(); 8];
    for c in 0..4 {
        let v = _mm256_loadu_si256(qs.add(64 * c + 32 * h) as *const __m256i);
        q[2 * c] = _mm256_and_si256(v, low);
        q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    }
    q
}

/// Adds 16 where half `h` of the eight u64 `masks` has a bit set.
#[inline(always)]
unsafe fn add_fifth_bits(q: &mut [__m256i; 8], masks: *const u8, h: usize) {
    for (k, q) in q.iter_mut().enumerate() {
        let bits = (masks.add(8 * k + 4 * h) as *const u32).read_unaligned();
        *q = _mm256_or_si256(*q, bits_to_0x10::<AVX2>(bits));
    }
}

/// Eight f16 at `p` (half `h` of sixteen) as f32.
#[inline(always)]
unsafe fn f16x8(p: *const u8, h: usize) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * h) as *const __m128i))
}

#[inline(always)]
unsafe fn store<const T: usize>(acc: &[__m256; T], out: *mut f32, stride: usize) {
    for t in 0..T {
        _mm256_storeu_ps(out.add(t * stride), acc[t]);
    }
}

/// `interleave512::group32` on rows `8h..8h+8`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the kernel's inputs, each used in its inner loop
unsafe fn half32<const T: usize>(
    tiles: &[u8],
    a: &[ActRow],
    out: *mut f32,
    stride: usize,
    ahead: Ahead,
    h: usize,
    p: Parts32,
    offset: f32,
) {
    let signed = p.bytes == parts32(DType::Q8_0).bytes;
    let mut acc = [_mm256_setzero_ps(); T];
    let ahead = ahead.tiles(p.bytes);
    for b in 0..tiles.len() / p.bytes {
        let tile = tiles.as_ptr().add(b * p.bytes);
        prefetch_tile(ahead, b * p.bytes);
        // (loops, not closures: a closure LLVM declines to inline is compiled without AVX2, and
        // that once made this Q8_0 path 3x slower after an unrelated change moved code around)
        let mut q = if signed {
            let mut q = [_mm256_setzero_si256(); 8];
            for (k, q) in q.iter_mut().enumerate() {
                let v = _mm256_loadu_si256(tile.add(p.qs + 64 * k + 32 * h) as *const __m256i);
                *q = _mm256_xor_si256(v, _mm256_set1_epi8(-128)); // back to i8
            }
            q
        } else {
            nibbles(tile.add(p.qs), h)
        };
        if let Some(qh) = p.qh {
            add_fifth_bits(&mut q, tile.add(qh), h);
        }
        let dw = f16x8(tile, h);
        for t in 0..T {
            let a = a.get_unchecked(t);
            let x = a.qs.as_ptr().add(32 * b) as *const u8;
            let s = if signed {
                // |q| against x with q's sign: exact in 16 bits (|q| ≤ 128)
                let mut s = _mm256_setzero_si256();
                for (k, q) in q.iter().enumerate() {
                    let prod = dot4(_mm256_abs_epi8(*q), _mm256_sign_epi8(bcast4(x, k), *q));
                    s = _mm256_add_epi32(s, prod);
                }
                s
            } else {
                dot8(&q, x, 0..8)
            };
            let s = _mm256_cvtepi32_ps(s);
            let (dx, sx) = (*a.d.get_unchecked(b), *a.s.get_unchecked(b));
            acc[t] = match p.m {
                Some(m) => {
                    let acc = _mm256_fmadd_ps(dw, _mm256_mul_ps(s, _mm256_set1_ps(dx)), acc[t]);
                    _mm256_fmadd_ps(f16x8(tile.add(m), h), _mm256_set1_ps(sx), acc)
                }
                None => {
                    let v = _mm256_fmadd_ps(s, _mm256_set1_ps(dx), _mm256_set1_ps(offset * sx));
                    _mm256_fmadd_ps(dw, v, acc[t])
                }
            };
        }
    }
    store(&acc, out, stride);
}
