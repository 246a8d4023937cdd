//! The packed K-quant kernel on AVX2 (see `matmul::packed`): the layout of `packed512.rs`, eight
//! rows in the lanes of 256-bit vectors, without VNNI.
//!
//! Per pair of four-column groups and token: two `vpmaddubsw` (u8 weights × broadcast i8
//! activations → i16 pairs), one `vpaddw` of the two, and one `vpmaddwd` against the sub-block
//! scale (both i16 halves of a lane hold its row's scale), so the scale costs nothing extra and
//! no per-sub-block accumulator is needed. Bounds: a K-quant `q` is at most 63 and an activation
//! at least −128, so a `vpmaddubsw` pair is within ±16128 and the sum of two within ±32256: no
//! i16 saturation for any packed format. Mins are `vpmaddwd` of the lane's two 16-value-half
//! mins against two activation sums, folded into the float accumulator before the values.
//! Four tokens per tile: 4 float + 4 integer accumulators and six temporaries fit the 16
//! registers.
//!
//! The AVX-VNNI build (`packed_dot_vnni`, VEX `vpdpbusd` on 256-bit registers) sums each
//! sub-block with one `vpdpbusd` per four columns, as `packed512.rs` does, and applies the scale
//! with one `vpmulld` per sub-block (four more accumulators: 15 registers).

use super::super::packed::{Packed, LANES};
use super::ActRow;
use std::arch::x86_64::*;

/// `out[t][lane] = row_lane · a[t]` for every lane of `p` and any number of tokens, in tiles of
/// 4, then what is left.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn packed_dot(p: &Packed, sbs: usize, a: &[ActRow], out: &mut [[f32; LANES]]) {
    tiles::<false>(p, sbs, a, out)
}

/// `packed_dot` with AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(crate) unsafe fn packed_dot_vnni(p: &Packed, sbs: usize, a: &[ActRow], out: &mut [[f32; LANES]]) {
    tiles::<true>(p, sbs, a, out)
}

#[inline(always)]
unsafe fn tiles<const VNNI: bool>(p: &Packed, sbs: usize, a: &[ActRow], out: &mut [[f32; LANES]]) {
    let mut t0 = 0;
    while t0 < a.len() {
        let take = (a.len() - t0).min(4);
        let (a, out) = (&a[t0..t0 + take], &mut out[t0..t0 + take]);
        match (sbs, take) {
            (32, 4) => tile::<VNNI, 4, 32>(p, a, out),
            (32, 3) => tile::<VNNI, 3, 32>(p, a, out),
            (32, 2) => tile::<VNNI, 2, 32>(p, a, out),
            (32, _) => tile::<VNNI, 1, 32>(p, a, out),
            (_, 4) => tile::<VNNI, 4, 16>(p, a, out),
            (_, 3) => tile::<VNNI, 3, 16>(p, a, out),
            (_, 2) => tile::<VNNI, 2, 16>(p, a, out),
            (_, _) => tile::<VNNI, 1, 16>(p, a, out),
        }
        t0 += take;
    }
}

#[inline(always)]
unsafe fn tile<const VNNI: bool, const T: usize, const SB: usize>(p: &Packed, a: &[ActRow], out: &mut [[f32; LANES]]) {
    let per = 256 / SB;
    let mut accf = [_mm256_setzero_ps(); T];
    let q = p.q.as_ptr();
    for i in 0..p.blocks {
        let d = _mm256_loadu_ps(p.d.as_ptr().add(i * LANES));
        let dmin = _mm256_loadu_ps(p.dmin.as_ptr().add(i * LANES));
        // mins first: Σ_k (m_2k · bsum_2k + m_2k+1 · bsum_2k+1), then accf −= dmin · ad · that
        let mut sum = [_mm256_setzero_si256(); T];
        for k in 0..8 {
            let m = _mm256_loadu_si256(p.m16.as_ptr().add((i * 8 + k) * LANES) as *const __m256i);
            for t in 0..T {
                let bs = a.get_unchecked(t).bsums.as_ptr().add(16 * i + 2 * k) as *const i32;
                let pair = _mm256_set1_epi32(bs.read_unaligned());
                sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(m, pair));
            }
        }
        for t in 0..T {
            let ad = _mm256_set1_ps(*a.get_unchecked(t).d.get_unchecked(i));
            accf[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(dmin, ad), accf[t]);
            sum[t] = _mm256_setzero_si256();
        }
        // values: Σ_j sc_j · Σ_c q_c · x_c
        for j in 0..per {
            let col = 256 * i + SB * j;
            if VNNI {
                let sc = _mm256_loadu_si256(p.sc.as_ptr().add((i * per + j) * LANES) as *const __m256i);
                let mut acc = [_mm256_setzero_si256(); T];
                for g in 0..SB / 4 {
                    let qv = _mm256_loadu_si256(q.add((col + 4 * g) * LANES) as *const __m256i);
                    for t in 0..T {
                        let x = a.get_unchecked(t).qs.as_ptr().add(col + 4 * g) as *const i32;
                        acc[t] = _mm256_dpbusd_avx_epi32(acc[t], qv, _mm256_set1_epi32(x.read_unaligned()));
                    }
                }
                for t in 0..T {
                    sum[t] = _mm256_add_epi32(sum[t], _mm256_mullo_epi32(acc[t], sc));
                }
                continue;
            }
            // eight columns per step
            let sc = _mm256_loadu_si256(p.sc16.as_ptr().add((i * per + j) * LANES) as *const __m256i);
            for g in (0..SB / 4).step_by(2) {
                let q0 = _mm256_loadu_si256(q.add((col + 4 * g) * LANES) as *const __m256i);
                let q1 = _mm256_loadu_si256(q.add((col + 4 * g + 4) * LANES) as *const __m256i);
                for t in 0..T {
                    let x = a.get_unchecked(t).qs.as_ptr().add(col + 4 * g) as *const i32;
                    let x0 = _mm256_set1_epi32(x.read_unaligned());
                    let x1 = _mm256_set1_epi32(x.add(1).read_unaligned());
                    let s = _mm256_add_epi16(_mm256_maddubs_epi16(q0, x0), _mm256_maddubs_epi16(q1, x1));
                    sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(s, sc));
                }
            }
        }
        for t in 0..T {
            let ad = _mm256_set1_ps(*a.get_unchecked(t).d.get_unchecked(i));
            accf[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(d, ad), accf[t]);
        }
    }
    for t in 0..T {
        _mm256_storeu_ps(out[t].as_mut_ptr(), accf[t]);
    }
}
