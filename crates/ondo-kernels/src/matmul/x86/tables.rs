//! The three x86-64 kernel tables (`matmul::table`): AVX2, AVX2 with AVX-VNNI, and AVX-512 VNNI.
//! They differ in the build of each row kernel (`V`), the packed and interleaved kernels, and
//! which formats are read interleaved (K-quant tiles measured no faster than the plain AVX2
//! K-quant kernels, so the AVX2 builds read only the 32-value formats that way).

use super::super::act::Quantizers;
use super::super::interleave;
use super::super::table::{FloatBlock, FloatPanel, Kernels};
use super::*;
use crate::Isa;

/// AVX2 + FMA + F16C (every x86 table's quantizers and float kernels: they have no integer
/// products to gain from VNNI).
pub(crate) static AVX2_KERNELS: Kernels = Kernels {
    isa: Isa::Avx2,
    dot: |d| kernel(d, AVX2),
    quantize: QUANTIZERS,
    packed: Some(packed_dot_avx2),
    group: Some(group_dot_avx2),
    interleaves: interleaves_32,
    float: FLOAT,
};

/// AVX2 with the VEX `vpdpbusd` (Intel Alder Lake and later, AMD Zen 4 and later).
pub(crate) static AVX_VNNI_KERNELS: Kernels = Kernels {
    isa: Isa::AvxVnni,
    dot: |d| kernel(d, AVX_VNNI),
    quantize: QUANTIZERS,
    packed: Some(packed_dot_avx_vnni),
    group: Some(group_dot_avx2),
    interleaves: interleaves_32,
    float: FLOAT,
};

/// AVX2 plus AVX-512 F/BW/VL/DQ/VNNI: every interleaved format, including the K-quants.
pub(crate) static AVX512_KERNELS: Kernels = Kernels {
    isa: Isa::Avx512Vnni,
    dot: |d| kernel(d, AVX512),
    quantize: QUANTIZERS,
    packed: Some(packed_dot),
    group: Some(group_dot),
    interleaves: interleave::interleaves,
    float: FLOAT512,
};

/// The blocked float kernel and its panel converter (one build serves the AVX2 tables).
const FLOAT: Option<(FloatBlock, FloatPanel)> = Some((float_block::block, float_block::to_panel));
/// The same sums on 512-bit registers (two rows' accumulators in each), from the same panels.
const FLOAT512: Option<(FloatBlock, FloatPanel)> = Some((float_block512::block, float_block::to_panel));

const QUANTIZERS: Quantizers = Quantizers {
    q8: Some(quantize_q8),
    q8k: Some(quantize_q8k),
};

/// The interleaved formats the AVX2 group kernel reads: the 32-value ones. Its K-quant tile
/// kernels measured no faster than the plain ones (Q4_K 10% slower; the plain kernels fold the
/// sub-block scales into `vpmaddwd`), while Q4_0 gained 50% and Q8_0 30%.
fn interleaves_32(dtype: DType) -> bool {
    interleave::interleaves(dtype) && !matches!(dtype, DType::Q4_K | DType::Q5_K | DType::Q6_K)
}

/// The x86 kernel for `dtype` in build `v` (`AVX2`, `AVX_VNNI`, `AVX512`), if there is one. Float
/// formats have no integer products: AVX-VNNI takes their AVX2 build.
fn kernel(dtype: DType, v: u8) -> Option<DotN> {
    let pick = |a: DotN, b: DotN, c: DotN| Some([a, b, c][v as usize]);
    match dtype {
        DType::F32 => pick(f32_avx2, f32_avx2, f32_vnni),
        DType::F16 => pick(f16_avx2, f16_avx2, f16_vnni),
        DType::BF16 => pick(bf16_avx2, bf16_avx2, bf16_vnni),
        DType::Q4_0 => pick(q4_0_avx2, q4_0_avxvnni, q4_0_vnni),
        DType::Q4_1 => pick(q4_1_avx2, q4_1_avxvnni, q4_1_vnni),
        DType::Q5_0 => pick(q5_0_avx2, q5_0_avxvnni, q5_0_vnni),
        DType::Q5_1 => pick(q5_1_avx2, q5_1_avxvnni, q5_1_vnni),
        DType::Q8_0 => pick(q8_0_avx2, q8_0_avxvnni, q8_0_vnni),
        DType::Q4_K => pick(q4_k_avx2, q4_k_avxvnni, q4_k_vnni),
        DType::Q5_K => pick(q5_k_avx2, q5_k_avxvnni, q5_k_vnni),
        DType::Q6_K => pick(q6_k_avx2, q6_k_avxvnni, q6_k_vnni),
        DType::Q2_K => pick(q2_k_avx2, q2_k_avxvnni, q2_k_vnni),
        DType::Q3_K => pick(q3_k_avx2, q3_k_avxvnni, q3_k_vnni),
        _ => None,
    }
}
