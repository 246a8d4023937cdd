//! The 32-value formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Value `j < 16` of a 4/5-bit block lives in the low nibble of `qs[j]`, value `j + 16` in the
//! high nibble; the fifth bit of value `j` is bit `j` of the little-endian u32 `qh`.

use super::{f16_at, put_f16};

// ---- dequantize (one block in, 32 f32 out) ----

pub(crate) fn dequant_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = ((qs[j] & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

pub(crate) fn dequant_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b), f16_at(&b[2..]));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = (qs[j] & 0x0F) as f32 * d + m;
        y[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

fn qh_at(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn dequant_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b);
    let qh = qh_at(&b[2..]);
    let qs = &b[6..22];
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (((qs[j] & 0x0F) as u32 | h0) as i32 - 16) as f32 * d;
        y[j + 16] = (((qs[j] >> 4) as u32 | h1) as i32 - 16) as f32 * d;
    }
}

pub(crate) fn dequant_q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b), f16_at(&b[2..]));
    let qh = qh_at(&b[4..]);
    let qs = &b[8..24];
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = ((qs[j] & 0x0F) as u32 | h0) as f32 * d + m;
        y[j + 16] = ((qs[j] >> 4) as u32 | h1) as f32 * d + m;
    }
}

pub(crate) fn dequant_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b);
    for (y, q) in y.iter_mut().zip(&b[2..34]) {
        *y = *q as i8 as f32 * d;
    }
}

pub(crate) fn dequant_q8_1(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b);
    for (y, q) in y.iter_mut().zip(&b[4..36]) {
        *y = *q as i8 as f32 * d;
    }
}

// ---- quantize (32 f32 in, one block out), ggml's reference rounding ----

/// The value with the largest magnitude (keeping its sign), and that magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

fn inv(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

pub(crate) fn quant_q4_0(x: &[f32], b: &mut [u8]) {
    let (max, _) = signed_absmax(x);
    let d = max / -8.0;
    let id = inv(d);
    put_f16(b, d);
    for j in 0..16 {
        let q0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let q1 = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
        b[2 + j] = q0 | (q1 << 4);
    }
}

pub(crate) fn quant_q4_1(x: &[f32], b: &mut [u8]) {
    let (lo, hi) = min_max(x);
    let d = (hi - lo) / 15.0;
    let id = inv(d);
    put_f16(b, d);
    put_f16(&mut b[2..], lo);
    for j in 0..16 {
        let q0 = (((x[j] - lo) * id + 0.5) as i8).min(15) as u8;
        let q1 = (((x[j + 16] - lo) * id + 0.5) as i8).min(15) as u8;
        b[4 + j] = q0 | (q1 << 4);
    }
}

/// Pack 32 five-bit values into `qh` (4 bytes) and `qs` (16 bytes).
fn pack5(q: &[u8; 32], qh: &mut [u8], qs: &mut [u8]) {
    let mut h = 0u32;
    for j in 0..16 {
        qs[j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
        h |= ((q[j] as u32 >> 4) & 1) << j;
        h |= ((q[j + 16] as u32 >> 4) & 1) << (j + 16);
    }
    qh[..4].copy_from_slice(&h.to_le_bytes());
}

pub(crate) fn quant_q5_0(x: &[f32], b: &mut [u8]) {
    let (max, _) = signed_absmax(x);
    let d = max / -16.0;
    let id = inv(d);
    put_f16(b, d);
    let mut q = [0u8; 32];
    for (q, v) in q.iter_mut().zip(x) {
        *q = ((v * id + 16.5) as i8).min(31) as u8;
    }
    let (qh, qs) = b[2..].split_at_mut(4);
    pack5(&q, qh, qs);
}

pub(crate) fn quant_q5_1(x: &[f32], b: &mut [u8]) {
    let (lo, hi) = min_max(x);
    let d = (hi - lo) / 31.0;
    let id = inv(d);
    put_f16(b, d);
    put_f16(&mut b[2..], lo);
    let mut q = [0u8; 32];
    for (q, v) in q.iter_mut().zip(x) {
        *q = (((v - lo) * id + 0.5) as i8).min(31) as u8;
    }
    let (qh, qs) = b[4..].split_at_mut(4);
    pack5(&q, qh, qs);
}

pub(crate) fn quant_q8_0(x: &[f32], b: &mut [u8]) {
    let (_, amax) = signed_absmax(x);
    let d = amax / 127.0;
    let id = inv(d);
    put_f16(b, d);
    for (q, v) in b[2..34].iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
}

pub(crate) fn quant_q8_1(x: &[f32], b: &mut [u8]) {
    let (_, amax) = signed_absmax(x);
    let d = amax / 127.0;
    let id = inv(d);
    let mut sum = 0i32;
    for (q, v) in b[4..36].iter_mut().zip(x) {
        let qi = (v * id).round() as i8;
        sum += qi as i32;
        *q = qi as u8;
    }
    put_f16(b, d);
    put_f16(&mut b[2..], sum as f32 * d);
}
