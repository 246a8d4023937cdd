//! Format tests: hand-built blocks, ggml test vectors, quantize → dequantize round trips.

use super::*;
use crate::testutil::Rng;

fn dq(dtype: DType, bytes: &[u8]) -> Vec<f32> {
    let n = bytes.len() / dtype.block_bytes() * dtype.block_size();
    let mut out = vec![0f32; n];
    dequantize_row(dtype, bytes, &mut out);
    out
}

const ONE: [u8; 2] = [0x00, 0x3C]; // f16 1.0
const HALF: [u8; 2] = [0x00, 0x38]; // f16 0.5

#[test]
fn q4_0_hand_block() {
    let mut b = ONE.to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = dq(DType::Q4_0, &b);
    for j in 0..16 {
        assert_eq!(y[j], j as f32 - 8.0);
        assert_eq!(y[j + 16], (15 - j) as f32 - 8.0);
    }
}

#[test]
fn q4_1_and_q5_1_hand_blocks() {
    let mut b = [HALF, ONE].concat();
    b.extend([0x21u8; 16]);
    let y = dq(DType::Q4_1, &b);
    assert_eq!(&y[..2], &[1.5, 1.5]);
    assert_eq!(y[16], 2.0);
    // Q5_1: qh bit 0 and bit 31 set: value 0 gets +16, value 31 gets +16.
    let mut b = [HALF, ONE].concat();
    b.extend(0x8000_0001u32.to_le_bytes());
    b.extend([0x21u8; 16]);
    let y = dq(DType::Q5_1, &b);
    assert_eq!(y[0], 17.0 * 0.5 + 1.0);
    assert_eq!(y[1], 1.5);
    assert_eq!(y[31], 18.0 * 0.5 + 1.0);
}

#[test]
fn q5_0_and_q8_0_hand_blocks() {
    let mut b = ONE.to_vec();
    b.extend(0x0001_0000u32.to_le_bytes()); // fifth bit of value 16
    b.extend([0xF0u8; 16]);
    let y = dq(DType::Q5_0, &b);
    assert_eq!(y[0], -16.0);
    assert_eq!(y[16], 31.0 - 16.0);
    assert_eq!(y[17], 15.0 - 16.0);
    let mut b = HALF.to_vec();
    b.extend((0..32).map(|j| (j as i8 - 16) as u8));
    let y = dq(DType::Q8_0, &b);
    assert_eq!(y[0], -8.0);
    assert_eq!(y[31], 7.5);
}

#[test]
fn q4_k_hand_block() {
    // d = 1, dmin = 0.5; sub-block 0: scale 2, min 4; sub-block 5: scale 33 (needs high bits), min 17.
    let mut b = [ONE, HALF].concat();
    let mut s = [0u8; 12];
    let (mut ls, mut lm) = ([1u8; 8], [0u8; 8]);
    (ls[0], lm[0], ls[5], lm[5]) = (2, 4, 33, 17);
    super::kquants::tests_pack(&ls, &lm, &mut s);
    for j in 0..8 {
        assert_eq!(super::kquants::scale_min_k4(j, &s), (ls[j], lm[j]));
    }
    b.extend(s);
    b.extend([0x3Au8; 128]);
    let y = dq(DType::Q4_K, &b);
    assert_eq!(y[0], 2.0 * 10.0 - 2.0); // low nibble 0xA
    assert_eq!(y[32], 1.0 * 3.0); // sub-block 1, high nibble 3, min 0
    assert_eq!(y[5 * 32], 33.0 * 3.0 - 8.5); // sub-block 5 is the high nibbles of chunk 2
}

#[test]
fn q8_k_hand_block() {
    let mut b = 0.25f32.to_le_bytes().to_vec();
    b.extend((0..256).map(|j| (j as u8).wrapping_sub(128)));
    b.extend([0u8; 32]);
    let y = dq(DType::Q8_K, &b);
    assert_eq!(y[0], -32.0);
    assert_eq!(y[255], 127.0 * 0.25);
}

/// Vectors made by `tests/data/make_vectors.py` with gguf-py's reference dequantizers:
/// `[u32 ggml id, u32 blocks, blocks bytes, values f32]*`.
#[test]
fn matches_ggml_vectors() {
    let data: &[u8] = include_bytes!("../../tests/data/dequant_vectors.bin");
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) as usize;
    let (mut o, mut seen) = (0, Vec::new());
    while o < data.len() {
        let dtype = DType::from_ggml_id(u32_at(o) as u32).expect("known id");
        let blocks = u32_at(o + 4);
        let nbytes = blocks * dtype.block_bytes();
        let src = &data[o + 8..o + 8 + nbytes];
        let n = blocks * dtype.block_size();
        let expect: Vec<f32> = data[o + 8 + nbytes..o + 8 + nbytes + 4 * n]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let got = dq(dtype, src);
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            let tol = 1e-6 * e.abs().max(1e-3);
            assert!((g - e).abs() <= tol, "{dtype} value {i}: got {g}, ggml {e}");
        }
        seen.push(dtype);
        o += 8 + nbytes + 4 * n;
    }
    assert_eq!(seen.len(), 10, "vectors for every format gguf-py knows: {seen:?}");
}

/// Relative RMS error of quantize → dequantize on gaussian-ish data, per format.
#[test]
fn round_trip_error_is_bounded() {
    let mut rng = Rng::new(7);
    let cols = 512;
    let x: Vec<f32> = (0..cols).map(|_| rng.normal()).collect();
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / cols as f32).sqrt();
    for dtype in DType::ALL {
        let bound = match dtype {
            DType::F32 => 0.0,
            DType::F16 | DType::BF16 => 0.005,
            DType::Q8_0 | DType::Q8_1 | DType::Q8_K => 0.01,
            DType::Q6_K => 0.03,
            DType::Q5_0 | DType::Q5_1 | DType::Q5_K => 0.06,
            DType::Q4_0 | DType::Q4_1 | DType::Q4_K => 0.12,
            DType::Q3_K => 0.25,
            DType::Q2_K => 0.5,
        };
        let mut q = vec![0u8; dtype.row_bytes(cols).unwrap()];
        quantize_row(dtype, &x, &mut q).unwrap();
        let y = dq(dtype, &q);
        let err = (x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / cols as f32).sqrt();
        assert!(
            err <= bound * rms,
            "{dtype}: relative rms error {} > {bound}",
            err / rms
        );
        // A bad layout would still pass a loose bound by luck rarely; also check the sign pattern.
        let agree = x
            .iter()
            .zip(&y)
            .filter(|(a, b)| a.abs() > 0.5 * rms && a.signum() == b.signum());
        let big = x.iter().filter(|a| a.abs() > 0.5 * rms).count();
        assert!(agree.count() as f32 >= 0.97 * big as f32, "{dtype}: signs disagree");
    }
}

#[test]
fn zero_blocks_quantize_to_zero() {
    for dtype in DType::ALL {
        let x = vec![0f32; 256];
        let mut q = vec![0u8; dtype.row_bytes(256).unwrap()];
        quantize_row(dtype, &x, &mut q).unwrap();
        assert!(dq(dtype, &q).iter().all(|v| *v == 0.0), "{dtype}");
    }
}

#[test]
fn quantize_rejects_bad_sizes() {
    let x = vec![0f32; 33];
    assert!(quantize_row(DType::Q4_0, &x, &mut [0u8; 36]).is_err());
    assert!(quantize_row(DType::Q4_0, &x[..32], &mut [0u8; 17]).is_err());
}
