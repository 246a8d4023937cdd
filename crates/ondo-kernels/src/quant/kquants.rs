//! The 256-value "K" formats: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//!
//! A super-block of 256 values has one or two f16 super-scales (`d`, `dmin`) and per-sub-block
//! scales quantized against them (16 sub-blocks of 16, or 8 of 32 for Q4_K/Q5_K).
//! Dequantize mirrors ggml's `dequantize_row_*` exactly. Quantize fits each sub-block's scale
//! (and min) by a weighted search for Q4_K, Q5_K and Q6_K (`kfit.rs`), by round-to-nearest for
//! Q2_K and Q3_K; the sub-block scales are then rounded against the super-scales.

use super::kfit::{self, Sweep};
use super::{f16_at, put_f16};

// ---- shared helpers ----

/// Q4_K/Q5_K 6-bit (scale, min) of sub-block `j < 8` from the 12 packed bytes (ggml's
/// `get_scale_min_k4`).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Inverse of `scale_min_k4`: pack eight 6-bit scales and mins into 12 bytes.
pub(crate) fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8], q: &mut [u8]) {
    q[..12].fill(0);
    for j in 0..8 {
        if j < 4 {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            q[j - 4] |= (ls[j] >> 4) << 6;
            q[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// Q3_K's sixteen 6-bit scales (still biased by 32) from its 12 packed bytes.
pub(crate) fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let lo = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (lo | (hi << 4)) as i8;
    }
    out
}

// ---- dequantize (one super-block in, 256 f32 out) ----

pub(crate) fn dequant_q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, min) = (f16_at(&b[80..]), f16_at(&b[82..]));
    let mut is = 0;
    let mut out = 0;
    for n in 0..2 {
        let q = &qs[n * 32..];
        for j in 0..4 {
            let shift = 2 * j;
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * (sc & 0xF) as f32, min * (sc >> 4) as f32);
                for l in 0..16 {
                    y[out] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
        }
    }
}

pub(crate) fn dequant_q3_k(b: &[u8], y: &mut [f32]) {
    let (hm, qs) = (&b[0..32], &b[32..96]);
    let scales = q3_k_scales(&b[96..108]);
    let d_all = f16_at(&b[108..]);
    let mut is = 0;
    let mut out = 0;
    let mut m = 1u8;
    for n in 0..2 {
        let q = &qs[n * 32..];
        for j in 0..4 {
            let shift = 2 * j;
            for half in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                for l in 16 * half..16 * half + 16 {
                    let low = ((q[l] >> shift) & 3) as i32;
                    let hi = if hm[l] & m != 0 { 0 } else { 4 };
                    y[out] = dl * (low - hi) as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

pub(crate) fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, min) = (f16_at(b), f16_at(&b[2..]));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * j, scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let q = &qs[32 * j..32 * j + 32];
        let y = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

pub(crate) fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, min) = (f16_at(b), f16_at(&b[2..]));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for j in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * j, scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let q = &qs[32 * j..32 * j + 32];
        let y = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[l] = d1 * ((q[l] & 0xF) + h1) as f32 - m1;
            y[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

pub(crate) fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(&b[208..]);
    for n in 0..2 {
        let (ql, qh, sc) = (&ql[64 * n..], &qh[32 * n..], &sc[8 * n..]);
        let y = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

pub(crate) fn dequant_q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (y, q) in y.iter_mut().zip(&b[4..260]) {
        *y = d * (*q as i8) as f32;
    }
}

// ---- quantize (256 f32 in, one super-block out), round to nearest ----

fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

fn signed_absmax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m })
}

/// Asymmetric sub-block fit: `(scale, min)` with `x ≈ scale * q - min`, `q in 0..=levels`, min ≥ 0.
fn fit_asym(x: &[f32], levels: f32) -> (f32, f32) {
    let lo = x.iter().fold(0f32, |a, &v| a.min(v));
    let hi = x.iter().fold(lo, |a, &v| a.max(v));
    ((hi - lo) / levels, -lo)
}

/// Quantize `x` against `scale`/`min`: `q = round((x + min) / scale)` clamped to `0..=levels`.
fn quant_asym(x: &[f32], scale: f32, min: f32, levels: i32, q: &mut [u8]) {
    let id = inv(scale);
    for (q, v) in q.iter_mut().zip(x) {
        *q = (((v + min) * id).round() as i32).clamp(0, levels) as u8;
    }
}

/// Scales and mins of the sub-blocks as 6-bit (or 4-bit) integers against two super-scales.
fn super_scales(scales: &[f32], mins: &[f32], max_q: f32) -> (f32, f32, Vec<u8>, Vec<u8>) {
    let ms = scales.iter().fold(0f32, |a, &v| a.max(v));
    let mm = mins.iter().fold(0f32, |a, &v| a.max(v));
    let d = half::f16::from_f32(ms / max_q).to_f32();
    let dmin = half::f16::from_f32(mm / max_q).to_f32();
    let q = |v: f32, d: f32| ((v * inv(d)).round() as i32).clamp(0, max_q as i32) as u8;
    let ls = scales.iter().map(|&s| q(s, d)).collect();
    let lm = mins.iter().map(|&m| q(m, dmin)).collect();
    (d, dmin, ls, lm)
}

pub(crate) fn quant_q2_k(x: &[f32], b: &mut [u8]) {
    let fits: Vec<(f32, f32)> = x.chunks_exact(16).map(|c| fit_asym(c, 3.0)).collect();
    let sc: Vec<f32> = fits.iter().map(|f| f.0).collect();
    let mn: Vec<f32> = fits.iter().map(|f| f.1).collect();
    let (d, dmin, ls, lm) = super_scales(&sc, &mn, 15.0);
    let mut q = [0u8; 256];
    for j in 0..16 {
        b[j] = ls[j] | (lm[j] << 4);
        let (s, m) = (d * ls[j] as f32, dmin * lm[j] as f32);
        quant_asym(&x[16 * j..16 * j + 16], s, m, 3, &mut q[16 * j..16 * j + 16]);
    }
    let qs = &mut b[16..80];
    qs.fill(0);
    for (e, &v) in q.iter().enumerate() {
        let (n, r) = (e / 128, e % 128);
        qs[n * 32 + r % 32] |= v << (2 * (r / 32));
    }
    put_f16(&mut b[80..], d);
    put_f16(&mut b[82..], dmin);
}

/// Symmetric sub-block scales (`x ≈ scale * q`, q down to `-qmax`; `fit` gives each sub-block's)
/// quantized to signed integers `l` in `-lmax..lmax` against one super-scale `d` (`scale ≈ d * l`).
fn sym_scales(x: &[f32], sub: usize, lmax: f32, fit: impl Fn(&[f32]) -> f32) -> (f32, Vec<i32>) {
    let scales: Vec<f32> = x.chunks_exact(sub).map(fit).collect();
    let big = signed_absmax(&scales);
    let iscale = if big != 0.0 { -lmax / big } else { 0.0 };
    let ls = scales
        .iter()
        .map(|&s| ((iscale * s).round() as i32).min(lmax as i32 - 1))
        .collect();
    (inv(iscale), ls)
}

/// The 256 values as unsigned levels `round(x / (d · ls_j)) + bias`, clamped to `0..2·bias`, with
/// one scale `ls_j` per 16 values (Q3_K: bias 4, Q6_K: bias 32).
fn sym_levels(x: &[f32], d: f32, ls: &[i32], bias: i32) -> [u8; 256] {
    let mut q = [0u8; 256];
    for j in 0..16 {
        let id = inv(d * ls[j] as f32);
        for l in 0..16 {
            let v = (x[16 * j + l] * id).round() as i32;
            q[16 * j + l] = (v.clamp(-bias, bias - 1) + bias) as u8;
        }
    }
    q
}

pub(crate) fn quant_q3_k(x: &[f32], b: &mut [u8]) {
    let (d, ls) = sym_scales(x, 16, 32.0, |c| signed_absmax(c) / -4.0);
    let d = half::f16::from_f32(d).to_f32();
    let q = sym_levels(x, d, &ls, 4);
    b[..110].fill(0);
    for (e, &v) in q.iter().enumerate() {
        let (n, r) = (e / 128, e % 128);
        let (j, l) = (r / 32, r % 32);
        b[32 + n * 32 + l] |= (v & 3) << (2 * j);
        b[l] |= ((v >> 2) & 1) << (n * 4 + j);
    }
    for (j, &l) in ls.iter().enumerate() {
        let s = (l + 32) as u8;
        if j < 8 {
            b[96 + j] |= s & 0xF;
        } else {
            b[96 + j - 8] |= (s & 0xF) << 4;
        }
        b[96 + 8 + j % 4] |= (s >> 4) << (2 * (j / 4));
    }
    put_f16(&mut b[108..], d);
}

/// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins; values `0..=levels`. Each
/// sub-block's fit is searched with `sweep`, or the plain range fit without one.
fn quant_k_asym(x: &[f32], levels: i32, sweep: Option<&Sweep>) -> (f32, f32, [u8; 8], [u8; 8], [u8; 256]) {
    let mut w = [0f32; 32];
    let fits: Vec<(f32, f32)> = x
        .chunks_exact(32)
        .map(|c| match sweep {
            Some(sweep) => {
                kfit::asym_weights(c, &mut w);
                kfit::fit_asym(c, &w, levels, sweep)
            }
            None => fit_asym(c, levels as f32),
        })
        .collect();
    let sc: Vec<f32> = fits.iter().map(|f| f.0).collect();
    let mn: Vec<f32> = fits.iter().map(|f| f.1).collect();
    let (d, dmin, ls, lm) = super_scales(&sc, &mn, 63.0);
    let mut q = [0u8; 256];
    for j in 0..8 {
        let (s, m) = (d * ls[j] as f32, dmin * lm[j] as f32);
        quant_asym(&x[32 * j..32 * j + 32], s, m, levels, &mut q[32 * j..32 * j + 32]);
    }
    let ls: [u8; 8] = ls.try_into().expect("8 scales");
    let lm: [u8; 8] = lm.try_into().expect("8 mins");
    (d, dmin, ls, lm, q)
}

pub(crate) fn quant_q4_k(x: &[f32], b: &mut [u8]) {
    let (d, dmin, ls, lm, q) = quant_k_asym(x, 15, Some(&kfit::Q4_K_SWEEP));
    pack_q4_k(d, dmin, &ls, &lm, &q, b);
}

pub(crate) fn quant_q5_k(x: &[f32], b: &mut [u8]) {
    let (d, dmin, ls, lm, q) = quant_k_asym(x, 31, Some(&kfit::Q5_K_SWEEP));
    pack_q5_k(d, dmin, &ls, &lm, &q, b);
}

pub(crate) fn quant_q6_k(x: &[f32], b: &mut [u8]) {
    quant_q6_k_with(x, b, |c| kfit::fit_sym(c, 32))
}

/// Q6_K with each sub-block's scale from `fit`.
fn quant_q6_k_with(x: &[f32], b: &mut [u8], fit: impl Fn(&[f32]) -> f32) {
    let (d, ls) = sym_scales(x, 16, 128.0, fit);
    let d = half::f16::from_f32(d).to_f32();
    let q = sym_levels(x, d, &ls, 32);
    let sc: [i8; 16] = std::array::from_fn(|j| ls[j] as i8);
    pack_q6_k(d, &sc, &q, b);
}

/// Round-to-nearest Q4_K, Q5_K or Q6_K: the searches' baseline.
pub(crate) fn quant_rtn(dtype: crate::DType, x: &[f32], b: &mut [u8]) {
    use crate::DType;
    match dtype {
        DType::Q4_K => {
            let (d, dmin, ls, lm, q) = quant_k_asym(x, 15, None);
            pack_q4_k(d, dmin, &ls, &lm, &q, b)
        }
        DType::Q5_K => {
            let (d, dmin, ls, lm, q) = quant_k_asym(x, 31, None);
            pack_q5_k(d, dmin, &ls, &lm, &q, b)
        }
        _ => quant_q6_k_with(x, b, |c| signed_absmax(c) / -32.0),
    }
}

/// A Q4_K block from its parts: super-scales, 6-bit sub-block scales and mins, 256 values
/// `0..=15` in order.
pub(crate) fn pack_q4_k(d: f32, dmin: f32, ls: &[u8; 8], lm: &[u8; 8], q: &[u8; 256], b: &mut [u8]) {
    put_f16(b, d);
    put_f16(&mut b[2..], dmin);
    pack_scale_min_k4(ls, lm, &mut b[4..16]);
    for j in 0..4 {
        for l in 0..32 {
            b[16 + 32 * j + l] = q[64 * j + l] | (q[64 * j + 32 + l] << 4);
        }
    }
}

/// A Q5_K block from its parts (values `0..=31`).
pub(crate) fn pack_q5_k(d: f32, dmin: f32, ls: &[u8; 8], lm: &[u8; 8], q: &[u8; 256], b: &mut [u8]) {
    put_f16(b, d);
    put_f16(&mut b[2..], dmin);
    pack_scale_min_k4(ls, lm, &mut b[4..16]);
    b[16..48].fill(0);
    for j in 0..4 {
        for l in 0..32 {
            let (q1, q2) = (q[64 * j + l], q[64 * j + 32 + l]);
            b[48 + 32 * j + l] = (q1 & 0xF) | ((q2 & 0xF) << 4);
            b[16 + l] |= ((q1 >> 4) << (2 * j)) | ((q2 >> 4) << (2 * j + 1));
        }
    }
}

/// A Q6_K block from its parts: super-scale, sixteen signed sub-block scales, 256 values
/// `0..=63` in order (the stored value plus 32).
pub(crate) fn pack_q6_k(d: f32, sc: &[i8; 16], q: &[u8; 256], b: &mut [u8]) {
    for (dst, s) in b[192..208].iter_mut().zip(sc) {
        *dst = *s as u8;
    }
    for n in 0..2 {
        for l in 0..32 {
            let e = |k: usize| q[128 * n + 32 * k + l];
            let (q1, q2, q3, q4) = (e(0), e(1), e(2), e(3));
            b[64 * n + l] = (q1 & 0xF) | ((q3 & 0xF) << 4);
            b[64 * n + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
            b[128 + 32 * n + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
    put_f16(&mut b[208..], d);
}

pub(crate) fn quant_q8_k(x: &[f32], b: &mut [u8]) {
    let amax = x.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inv(d);
    b[..4].copy_from_slice(&d.to_le_bytes());
    for (j, c) in x.chunks_exact(16).enumerate() {
        let mut sum = 0i32;
        for (l, v) in c.iter().enumerate() {
            let q = ((v * id).round() as i32).clamp(-127, 127);
            sum += q;
            b[4 + 16 * j + l] = q as i8 as u8;
        }
        b[260 + 2 * j..262 + 2 * j].copy_from_slice(&(sum as i16).to_le_bytes());
    }
}

#[cfg(test)]
pub(crate) use pack_scale_min_k4 as tests_pack;
