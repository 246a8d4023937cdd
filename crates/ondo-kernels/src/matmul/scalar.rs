//! Portable row · activation dot products: the reference every SIMD kernel is tested against,
//! and the path `ONDO_FORCE_SCALAR=1` selects.
//!
//! Integer kernels compute, per block, `d_w · d_a · Σ q_w q_a` plus the offset term from the
//! activation sums, exactly the arithmetic the SIMD kernels do (only summation order differs).

// Index loops over token and lane counts read more plainly than iterator chains here.
#![allow(clippy::needless_range_loop)]

use super::act::{ActRow, Quantizers};
use super::table::{self, Dot, Kernels};
use crate::quant::{f16_at, kquants::q3_k_scales, kquants::scale_min_k4};
use crate::{DType, Isa};

/// The scalar table: a row kernel for every format (the integer formats against 8-bit
/// activations, everything else dequantized), nothing packed, interleaved or blocked.
pub(crate) static KERNELS: Kernels = Kernels {
    isa: Isa::Scalar,
    dot: kernel,
    quantize: Quantizers::PORTABLE,
    packed: None,
    group: None,
    interleaves: table::none,
    float: None,
};

/// A multi-token kernel from a one-token function.
macro_rules! scalar_kernel {
    ($name:ident, $f:path) => {
        unsafe fn $name(dtype: DType, w: &[u8], row_bytes: usize, a: &[ActRow], out: *mut f32, stride: usize) {
            for (r, row) in w.chunks_exact(row_bytes).enumerate() {
                for (t, a) in a.iter().enumerate() {
                    *out.add(t * stride + r) = $f(dtype, row, a);
                }
            }
        }
    };
}
scalar_kernel!(k_dequant, dot_dequant);
scalar_kernel!(k_q4_0, dot_q4_0);
scalar_kernel!(k_q4_1, dot_q4_1);
scalar_kernel!(k_q5_0, dot_q5_0);
scalar_kernel!(k_q5_1, dot_q5_1);
scalar_kernel!(k_q8_0, dot_q8_0);
scalar_kernel!(k_q4_k, dot_q4_k);
scalar_kernel!(k_q5_k, dot_q5_k);
scalar_kernel!(k_q2_k, dot_q2_k);
scalar_kernel!(k_q3_k, dot_q3_k);
scalar_kernel!(k_q6_k, dot_q6_k);

/// The scalar kernel of `dtype`: integer dots for the formats with 8-bit activations, the
/// dequantizing one for float formats; other formats (Q8_1, Q8_K) go through f32 rows.
fn kernel(dtype: DType) -> Option<Dot> {
    Some(match dtype {
        DType::Q4_0 => k_q4_0,
        DType::Q4_1 => k_q4_1,
        DType::Q5_0 => k_q5_0,
        DType::Q5_1 => k_q5_1,
        DType::Q8_0 => k_q8_0,
        DType::Q4_K => k_q4_k,
        DType::Q5_K => k_q5_k,
        DType::Q2_K => k_q2_k,
        DType::Q3_K => k_q3_k,
        DType::Q6_K => k_q6_k,
        DType::F32 | DType::F16 | DType::BF16 => k_dequant,
        _ => return None,
    })
}

/// The dequantizing kernel (the f32 kernel of rows made f32 when an ISA has none).
pub(crate) const DEQUANT: Dot = k_dequant;

/// Any format: dequantize block by block (the quant reference) and dot with f32 activations.
pub(crate) fn dot_dequant(dtype: DType, w: &[u8], a: &ActRow) -> f32 {
    let (bs, bb) = (dtype.block_size(), dtype.block_bytes());
    let per = (256 / bs).max(1); // blocks per 256-value chunk
    let mut buf = [0f32; 256];
    let mut sum = 0f32;
    for (wc, xc) in w.chunks(per * bb).zip(a.f.chunks(per * bs)) {
        let y = &mut buf[..xc.len()];
        crate::quant::dequantize_row(dtype, wc, y);
        sum += y.iter().zip(xc).map(|(p, q)| p * q).sum::<f32>();
    }
    sum
}

fn isum(w: impl Iterator<Item = i32>, a: &[i8]) -> i32 {
    w.zip(a).map(|(w, a)| w * *a as i32).sum()
}

/// 32 nibbles of a 4-bit block in value order.
fn nibbles(qs: &[u8]) -> impl Iterator<Item = i32> + '_ {
    qs.iter()
        .map(|b| (b & 0xF) as i32)
        .chain(qs.iter().map(|b| (b >> 4) as i32))
}

/// 32 five-bit values of a Q5 block in value order.
fn fives<'a>(qh: &'a [u8], qs: &'a [u8]) -> impl Iterator<Item = i32> + 'a {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    nibbles(qs)
        .enumerate()
        .map(move |(j, v)| v | ((((h >> j) & 1) as i32) << 4))
}

pub(crate) fn dot_q4_0(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(18).enumerate() {
        let d = f16_at(b);
        let s = isum(nibbles(&b[2..18]), &a.qs[32 * i..]);
        sum += d * a.d[i] * s as f32 - 8.0 * d * a.s[i];
    }
    sum
}

pub(crate) fn dot_q4_1(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(20).enumerate() {
        let (d, m) = (f16_at(b), f16_at(&b[2..]));
        let s = isum(nibbles(&b[4..20]), &a.qs[32 * i..]);
        sum += d * a.d[i] * s as f32 + m * a.s[i];
    }
    sum
}

pub(crate) fn dot_q5_0(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(22).enumerate() {
        let d = f16_at(b);
        let s = isum(fives(&b[2..6], &b[6..22]), &a.qs[32 * i..]);
        sum += d * a.d[i] * s as f32 - 16.0 * d * a.s[i];
    }
    sum
}

pub(crate) fn dot_q5_1(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(24).enumerate() {
        let (d, m) = (f16_at(b), f16_at(&b[2..]));
        let s = isum(fives(&b[4..8], &b[8..24]), &a.qs[32 * i..]);
        sum += d * a.d[i] * s as f32 + m * a.s[i];
    }
    sum
}

pub(crate) fn dot_q8_0(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(34).enumerate() {
        let s = isum(b[2..34].iter().map(|q| *q as i8 as i32), &a.qs[32 * i..]);
        sum += f16_at(b) * a.d[i] * s as f32;
    }
    sum
}

/// Q4_K: `d·Σ_j sc_j Σ q·a − dmin·Σ_j m_j Σ a` per super-block (a's Σ from bsums).
pub(crate) fn dot_q4_k(_: DType, w: &[u8], a: &ActRow) -> f32 {
    dot_q45_k(w, a, false)
}

/// Q5_K: as Q4_K with a fifth bit per value.
pub(crate) fn dot_q5_k(_: DType, w: &[u8], a: &ActRow) -> f32 {
    dot_q45_k(w, a, true)
}

fn dot_q45_k(w: &[u8], a: &ActRow, five: bool) -> f32 {
    let (bb, qs_at) = if five { (176, 48) } else { (144, 16) };
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(bb).enumerate() {
        let (d, dmin) = (f16_at(b) * a.d[i], f16_at(&b[2..]) * a.d[i]);
        let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[qs_at..bb]);
        let (aq, bsums) = (&a.qs[256 * i..], &a.bsums[16 * i..]);
        let (mut si, mut mi) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, scales);
            let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let vals = q.iter().enumerate().map(|(l, b)| {
                let v = if j % 2 == 0 { b & 0xF } else { b >> 4 } as i32;
                let h = if five { ((qh[l] >> j) & 1) as i32 } else { 0 };
                v | (h << 4)
            });
            si += sc as i32 * isum(vals, &aq[32 * j..]);
            mi += m as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32);
        }
        sum += d * si as f32 - dmin * mi as f32;
    }
    sum
}

/// Q6_K: `d·Σ_j sc_j (Σ q·a − 32 Σ a)` per super-block.
pub(crate) fn dot_q6_k(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(210).enumerate() {
        let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
        let (aq, bsums) = (&a.qs[256 * i..], &a.bsums[16 * i..]);
        let mut si = 0i32;
        for e16 in 0..16 {
            let mut s = 0i32;
            for e in 16 * e16..16 * e16 + 16 {
                let (n, r) = (e / 128, e % 128);
                let (k, l) = (r / 32, r % 32);
                let lo = ql[64 * n + l + 32 * (k % 2)] >> (4 * (k / 2)) & 0xF;
                let hi = (qh[32 * n + l] >> (2 * k)) & 3;
                s += (lo | (hi << 4)) as i32 * aq[e] as i32;
            }
            si += sc[e16] as i8 as i32 * (s - 32 * bsums[e16] as i32);
        }
        sum += f16_at(&b[208..]) * a.d[i] * si as f32;
    }
    sum
}

/// The 2-bit field of value `e` (0..256) in a Q2_K/Q3_K `qs[64]`.
fn two_bits(qs: &[u8], e: usize) -> i32 {
    let (n, r) = (e / 128, e % 128);
    ((qs[32 * n + r % 32] >> (2 * (r / 32))) & 3) as i32
}

/// Q2_K: `d·Σ_j sc_j Σ q·a − dmin·Σ_j m_j Σ a` over 16 sub-blocks of 16.
pub(crate) fn dot_q2_k(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(84).enumerate() {
        let (scales, qs) = (&b[0..16], &b[16..80]);
        let (d, dmin) = (f16_at(&b[80..]) * a.d[i], f16_at(&b[82..]) * a.d[i]);
        let (aq, bsums) = (&a.qs[256 * i..], &a.bsums[16 * i..]);
        let (mut si, mut mi) = (0i32, 0i32);
        for j in 0..16 {
            let s: i32 = (16 * j..16 * j + 16).map(|e| two_bits(qs, e) * aq[e] as i32).sum();
            si += (scales[j] & 0xF) as i32 * s;
            mi += (scales[j] >> 4) as i32 * bsums[j] as i32;
        }
        sum += d * si as f32 - dmin * mi as f32;
    }
    sum
}

/// Q3_K: `d·Σ_j s_j (Σ q·a − 4 Σ a)` with q = low 2 bits | high bit << 2.
pub(crate) fn dot_q3_k(_: DType, w: &[u8], a: &ActRow) -> f32 {
    let mut sum = 0f32;
    for (i, b) in w.chunks_exact(110).enumerate() {
        let (hm, qs) = (&b[0..32], &b[32..96]);
        let scales = q3_k_scales(&b[96..108]);
        let d = f16_at(&b[108..]) * a.d[i];
        let (aq, bsums) = (&a.qs[256 * i..], &a.bsums[16 * i..]);
        let mut si = 0i32;
        for j in 0..16 {
            let s: i32 = (16 * j..16 * j + 16)
                .map(|e| {
                    let (n, r) = (e / 128, e % 128);
                    let h = ((hm[r % 32] >> (4 * n + r / 32)) & 1) as i32;
                    (two_bits(qs, e) | (h << 2)) * aq[e] as i32
                })
                .sum();
            si += (scales[j] as i32 - 32) * (s - 4 * bsums[j] as i32);
        }
        sum += d * si as f32;
    }
    sum
}
