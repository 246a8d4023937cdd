//! The packed K-quant kernel (see `matmul::packed`): eight rows in the lanes of 256-bit vectors,
//! `vpdpbusd` of four columns of all rows against four broadcast activation bytes, sub-block
//! scales and mins applied lane-wise once per sub-block. Needs AVX-512 VL + VNNI (for `vpdpbusd`
//! on 256-bit registers and the 32 vector registers the token tile uses).

use super::super::packed::{Packed, LANES};
use super::ActRow;
use std::arch::x86_64::*;

/// `out[t][lane] = row_lane · a[t]` for every lane of `p` and 1..=`packed::TOKENS` tokens, in tiles of
/// 8, 4, then what is left.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(crate) unsafe fn packed_dot(p: &Packed, sbs: usize, a: &[ActRow], out: &mut [[f32; LANES]]) {
    let mut t0 = 0;
    while t0 < a.len() {
        let take = match a.len() - t0 {
            k if k >= 8 => 8,
            k if k >= 4 => 4,
            k => k,
        };
        let (a, out) = (&a[t0..t0 + take], &mut out[t0..t0 + take]);
        match (sbs, take) {
            (32, 8) => tile::<8, 32>(p, a, out),
            (32, 4) => tile::<4, 32>(p, a, out),
            (32, 3) => tile::<3, 32>(p, a, out),
            (32, 2) => tile::<2, 32>(p, a, out),
            (32, _) => tile::<1, 32>(p, a, out),
            (_, 8) => tile::<8, 16>(p, a, out),
            (_, 4) => tile::<4, 16>(p, a, out),
            (_, 3) => tile::<3, 16>(p, a, out),
            (_, 2) => tile::<2, 16>(p, a, out),
            (_, _) => tile::<1, 16>(p, a, out),
        }
        t0 += take;
    }
}

#[inline(always)]
unsafe fn tile<const T: usize, const SB: usize>(p: &Packed, a: &[ActRow], out: &mut [[f32; LANES]]) {
    let per = 256 / SB;
    let mut accf = [_mm256_setzero_ps(); T];
    let q = p.q.as_ptr();
    for i in 0..p.blocks {
        let (mut sumi, mut summ) = ([_mm256_setzero_si256(); T], [_mm256_setzero_si256(); T]);
        for j in 0..per {
            let col = 256 * i + SB * j;
            let mut acc = [_mm256_setzero_si256(); T];
            for g in 0..SB / 4 {
                // four columns of all eight rows
                let qv = _mm256_loadu_si256(q.add((col + 4 * g) * LANES) as *const __m256i);
                for t in 0..T {
                    let x = a.get_unchecked(t).qs.as_ptr().add(col + 4 * g) as *const i32;
                    let xv = _mm256_set1_epi32(x.read_unaligned());
                    acc[t] = _mm256_dpbusd_epi32(acc[t], qv, xv);
                }
            }
            let k = (i * per + j) * LANES;
            let sc = _mm256_loadu_si256(p.sc.as_ptr().add(k) as *const __m256i);
            for t in 0..T {
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(acc[t], sc));
            }
        }
        // Σ_j m_j · (Σ a over sub-block j), two 16-value halves per vpdpwssd
        for k in 0..8 {
            let m = _mm256_loadu_si256(p.m16.as_ptr().add((i * 8 + k) * LANES) as *const __m256i);
            for t in 0..T {
                let bs = a.get_unchecked(t).bsums.as_ptr().add(16 * i + 2 * k) as *const i32;
                let pair = _mm256_set1_epi32(bs.read_unaligned());
                summ[t] = _mm256_dpwssd_epi32(summ[t], m, pair);
            }
        }
        let d = _mm256_loadu_ps(p.d.as_ptr().add(i * LANES));
        let dmin = _mm256_loadu_ps(p.dmin.as_ptr().add(i * LANES));
        for t in 0..T {
            let ad = _mm256_set1_ps(*a.get_unchecked(t).d.get_unchecked(i));
            let mins = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(summ[t]));
            let v = _mm256_fmsub_ps(d, _mm256_cvtepi32_ps(sumi[t]), mins);
            accf[t] = _mm256_fmadd_ps(v, ad, accf[t]);
        }
    }
    for t in 0..T {
        _mm256_storeu_ps(out[t].as_mut_ptr(), accf[t]);
    }
}
