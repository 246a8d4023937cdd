//! Interleaved tiles back to plain blocks: the exact inverse of `interleave`'s layouts, so a
//! weight held only as tiles (`Weight::for_matmul`) still gives its file's bytes for row
//! lookups (embeddings), for whole-matrix reads (tests, exports) and for the kernels of an
//! instruction set that reads the plain formats.
//!
//! Every tile field is either a plain field copied (`d`, `dmin`, `m` as f16 bytes; Q6_K's
//! scales) or the plain values rearranged (nibbles, fifth bits, Q6_K's top two bits, Q4_K/Q5_K's
//! 6-bit scales and mins as bytes), so reading them back and packing them with the formats'
//! own packers (`quant::kquants::pack_*`) gives the plain block bit for bit.

use super::interleave::{k4_sub_bytes, parts32, K4_DMIN, K4_M, K4_SC, K4_SUBS, Q6_K_SC, Q6_K_SUB, Q6_K_SUBS};
use crate::quant::f16_at;
use crate::quant::kquants::{pack_q4_k, pack_q5_k, pack_q6_k};
use crate::DType;

/// Bytes of the largest plain block of a format with tiles (Q6_K's 210), for stack buffers.
pub(crate) const MAX_BLOCK: usize = 256;

/// Row `r` (of the tile's sixteen) as one plain `dtype` block, written to `block`.
pub(crate) fn plain_block(dtype: DType, tile: &[u8], r: usize, block: &mut [u8]) {
    match dtype {
        DType::Q4_K | DType::Q5_K => k4_block(dtype, tile, r, block),
        DType::Q6_K => q6_k_block(tile, r, block),
        _ => block32(dtype, tile, r, block),
    }
}

fn k4_block(dtype: DType, tile: &[u8], r: usize, block: &mut [u8]) {
    let five = dtype == DType::Q5_K;
    let sub_bytes = k4_sub_bytes(five);
    let ls: [u8; 8] = std::array::from_fn(|j| tile[K4_SC + 16 * j + r]);
    let lm: [u8; 8] = std::array::from_fn(|j| tile[K4_M + 16 * j + r]);
    let q: [u8; 256] = std::array::from_fn(|c| {
        let sub = &tile[K4_SUBS + sub_bytes * (c / 32)..][..sub_bytes];
        let high = if five { fifth_bit(&sub[256..], r, c % 32) } else { 0 };
        nibble(sub, r, c % 32) | high << 4
    });
    let (d, dmin) = (f16_at(&tile[2 * r..]), f16_at(&tile[K4_DMIN + 2 * r..]));
    let pack = if five { pack_q5_k } else { pack_q4_k };
    pack(d, dmin, &ls, &lm, &q, block);
}

fn q6_k_block(tile: &[u8], r: usize, block: &mut [u8]) {
    let sc: [i8; 16] = std::array::from_fn(|k| tile[Q6_K_SC + 32 * (k / 2) + 2 * r + k % 2] as i8);
    let q: [u8; 256] = std::array::from_fn(|c| {
        let (j, h, s, i) = (c / 32, c % 32 / 16, c % 16 / 4, c % 4);
        let sub = &tile[Q6_K_SUBS + Q6_K_SUB * j..][..Q6_K_SUB];
        let hi = (sub[256 + 64 * h + 4 * r + i] >> (2 * s)) & 3;
        nibble(sub, r, c % 32) | hi << 4
    });
    pack_q6_k(f16_at(&tile[2 * r..]), &sc, &q, block);
}

/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: `d` (and `m`) copied, the values back in block order.
fn block32(dtype: DType, tile: &[u8], r: usize, block: &mut [u8]) {
    let p = parts32(dtype);
    block[..2].copy_from_slice(&tile[2 * r..2 * r + 2]);
    if dtype == DType::Q8_0 {
        for (c, v) in block[2..34].iter_mut().enumerate() {
            *v = tile[p.qs + 64 * (c / 4) + 4 * r + c % 4] ^ 0x80;
        }
        return;
    }
    let mut at = 2;
    if let Some(m) = p.m {
        block[2..4].copy_from_slice(&tile[m + 2 * r..m + 2 * r + 2]);
        at = 4;
    }
    let q: [u8; 32] = std::array::from_fn(|c| nibble(&tile[p.qs..], r, c));
    if let Some(qh) = p.qh {
        let bits = (0..32).fold(0u32, |acc, c| acc | (fifth_bit(&tile[qh..], r, c) as u32) << c);
        block[at..at + 4].copy_from_slice(&bits.to_le_bytes());
        at += 4;
    }
    for c in 0..16 {
        block[at + c] = q[c] | q[c + 16] << 4;
    }
}

/// Bit 4 of value `c` (< 32) of row `r`, from `interleave`'s fifth-bit masks.
pub(crate) fn fifth_bit(masks: &[u8], r: usize, c: usize) -> u8 {
    let bit = 4 * r + c % 4;
    (masks[8 * (c / 4) + bit / 8] >> (bit % 8)) & 1
}

/// Value `col` (< 32) of row `r` in a nibble area (low four bits only).
pub(crate) fn nibble(qs: &[u8], r: usize, col: usize) -> u8 {
    let byte = qs[64 * (col / 8) + 4 * r + col % 4];
    if col % 8 < 4 {
        byte & 0xF
    } else {
        byte >> 4
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::Rng;
    use crate::{DType, Weight};

    /// Every row of every interleaved format reads back as the bytes it was made from, and
    /// dequantizes to the same values, on tiled rows and on the plain rows past them.
    #[test]
    fn tiles_give_back_the_plain_bytes() {
        let mut rng = Rng::new(23);
        for dtype in DType::ALL
            .into_iter()
            .filter(|d| super::super::interleave::interleaves(*d))
        {
            let (rows, cols) = (37, 3 * dtype.block_size()); // two groups and five plain rows
            let plain = Weight::quantize(dtype, &rng.normals(rows * cols), rows, cols).unwrap();
            let tiled = plain.clone().interleaved();
            assert!(tiled.is_interleaved(), "{dtype}");
            let tiles = tiled.tiles().unwrap().0.len();
            assert_eq!(
                tiled.held_bytes(),
                tiles + 5 * plain.row_bytes(),
                "{dtype}: plain rows kept"
            );
            assert!(*tiled.bytes() == *plain.bytes(), "{dtype}: the whole matrix");
            let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
            for r in 0..rows {
                assert!(*tiled.row(r) == *plain.row(r), "{dtype} row {r}");
                tiled.dequantize_row(r, &mut a);
                plain.dequantize_row(r, &mut b);
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{dtype} row {r}"
                );
            }
        }
    }
}
