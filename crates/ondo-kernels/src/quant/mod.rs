//! Quantized block formats, bit-compatible with ggml / GGUF.
//!
//! Every format stores `DType::block_size()` values in `DType::block_bytes()` bytes. This module
//! is the reference for them: `dequantize_row` follows ggml's `dequantize_row_*` operation for
//! operation (same float order, so results are bit-identical), and `quantize_row` makes blocks
//! from f32 values (ggml's reference rounding for the 32-value formats; for the 256-value
//! K-quants a weighted search of the sub-block scales for Q4_K/Q5_K/Q6_K, `kfit.rs`, and
//! round-to-nearest for Q2_K/Q3_K, in ggml's layouts).
//!
//! Layouts (little endian, `d`/`m` are f16 unless noted):
//! - 32 values: `Q4_0 {d, qs[16]}`, `Q4_1 {d, m, qs[16]}`, `Q5_0 {d, qh[4], qs[16]}`,
//!   `Q5_1 {d, m, qh[4], qs[16]}`, `Q8_0 {d, qs[32] i8}`, `Q8_1 {d, s, qs[32] i8}`
//! - 256 values: `Q2_K {scales[16], qs[64], d, dmin}`, `Q3_K {hmask[32], qs[64], scales[12], d}`,
//!   `Q4_K {d, dmin, scales[12], qs[128]}`, `Q5_K {d, dmin, scales[12], qh[32], qs[128]}`,
//!   `Q6_K {ql[128], qh[64], scales[16] i8, d}`, `Q8_K {d f32, qs[256] i8, bsums[16] i16}`

mod kfit;
pub(crate) mod kquants;
mod legacy;

use crate::{DType, Error};

/// An f16 stored at `b[0..2]`, as f32.
#[inline]
pub(crate) fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Write `v` as f16 at `b[0..2]`.
#[inline]
pub(crate) fn put_f16(b: &mut [u8], v: f32) {
    b[..2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
}

/// Dequantize whole blocks of `dtype` from `src` into `out` (the reference for every format).
/// Converts `min(out.len(), values in src)` values; `out.len()` should be a multiple of the block size.
pub fn dequantize_row(dtype: DType, src: &[u8], out: &mut [f32]) {
    let (bs, bb) = (dtype.block_size(), dtype.block_bytes());
    let each = |f: fn(&[u8], &mut [f32]), out: &mut [f32]| {
        for (b, y) in src.chunks_exact(bb).zip(out.chunks_exact_mut(bs)) {
            f(b, y)
        }
    };
    match dtype {
        DType::F32 => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::F16 => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16_at(b);
            }
        }
        DType::BF16 => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        DType::Q4_0 => each(legacy::dequant_q4_0, out),
        DType::Q4_1 => each(legacy::dequant_q4_1, out),
        DType::Q5_0 => each(legacy::dequant_q5_0, out),
        DType::Q5_1 => each(legacy::dequant_q5_1, out),
        DType::Q8_0 => each(legacy::dequant_q8_0, out),
        DType::Q8_1 => each(legacy::dequant_q8_1, out),
        DType::Q2_K => each(kquants::dequant_q2_k, out),
        DType::Q3_K => each(kquants::dequant_q3_k, out),
        DType::Q4_K => each(kquants::dequant_q4_k, out),
        DType::Q5_K => each(kquants::dequant_q5_k, out),
        DType::Q6_K => each(kquants::dequant_q6_k, out),
        DType::Q8_K => each(kquants::dequant_q8_k, out),
    }
}

/// Quantize `src` (a whole number of blocks) into `dtype` blocks in `out`
/// (`out.len() == dtype.row_bytes(src.len())`).
pub fn quantize_row(dtype: DType, src: &[f32], out: &mut [u8]) -> Result<(), Error> {
    let cols = src.len();
    let bytes = dtype.row_bytes(cols).ok_or(Error::Blocks {
        dtype,
        cols,
        block: dtype.block_size(),
    })?;
    if out.len() != bytes {
        return Err(Error::Size {
            dtype,
            rows: 1,
            cols,
            expected: bytes,
            got: out.len(),
        });
    }
    let (bs, bb) = (dtype.block_size(), dtype.block_bytes());
    let mut each = |f: fn(&[f32], &mut [u8])| {
        for (x, b) in src.chunks_exact(bs).zip(out.chunks_exact_mut(bb)) {
            f(x, b)
        }
    };
    match dtype {
        DType::F32 => each(|x, b| b.copy_from_slice(&x[0].to_le_bytes())),
        DType::F16 => each(|x, b| put_f16(b, x[0])),
        DType::BF16 => each(|x, b| b.copy_from_slice(&half::bf16::from_f32(x[0]).to_le_bytes())),
        DType::Q4_0 => each(legacy::quant_q4_0),
        DType::Q4_1 => each(legacy::quant_q4_1),
        DType::Q5_0 => each(legacy::quant_q5_0),
        DType::Q5_1 => each(legacy::quant_q5_1),
        DType::Q8_0 => each(legacy::quant_q8_0),
        DType::Q8_1 => each(legacy::quant_q8_1),
        DType::Q2_K => each(kquants::quant_q2_k),
        DType::Q3_K => each(kquants::quant_q3_k),
        DType::Q4_K => each(kquants::quant_q4_k),
        DType::Q5_K => each(kquants::quant_q5_k),
        DType::Q6_K => each(kquants::quant_q6_k),
        DType::Q8_K => each(kquants::quant_q8_k),
    }
    Ok(())
}

/// `quantize_row` with round-to-nearest sub-block scales for Q4_K, Q5_K and Q6_K instead of
/// their search (the baseline the search is measured against); other formats as `quantize_row`.
pub fn quantize_row_nearest(dtype: DType, src: &[f32], out: &mut [u8]) -> Result<(), Error> {
    if !matches!(dtype, DType::Q4_K | DType::Q5_K | DType::Q6_K) {
        return quantize_row(dtype, src, out);
    }
    quantize_row(dtype, src, out)?; // checks the sizes
    for (x, b) in src.chunks_exact(256).zip(out.chunks_exact_mut(dtype.block_bytes())) {
        kquants::quant_rtn(dtype, x, b);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
