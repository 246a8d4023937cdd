//! The ggml tensor types, in one table: each type id with its name and block layout (values
//! per block, bytes per block). The types ondo-kernels computes come from its `DType`; the
//! others are listed here so their tensors can still be named and bounds-checked.

use ondo_kernels::DType;

/// A ggml tensor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    /// Values per block (1 for plain types).
    pub block_size: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

const fn ty(id: u32, name: &'static str, block_size: u64, block_bytes: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        block_bytes,
    }
}

/// The ggml types ondo-kernels does not compute (ids as in ggml.h).
const OTHERS: [GgmlType; 17] = [
    ty(16, "IQ2_XXS", 256, 66),
    ty(17, "IQ2_XS", 256, 74),
    ty(18, "IQ3_XXS", 256, 98),
    ty(19, "IQ1_S", 256, 50),
    ty(20, "IQ4_NL", 32, 18),
    ty(21, "IQ3_S", 256, 110),
    ty(22, "IQ2_S", 256, 82),
    ty(23, "IQ4_XS", 256, 136),
    ty(24, "I8", 1, 1),
    ty(25, "I16", 1, 2),
    ty(26, "I32", 1, 4),
    ty(27, "I64", 1, 8),
    ty(28, "F64", 1, 8),
    ty(29, "IQ1_M", 256, 56),
    ty(34, "TQ1_0", 256, 54),
    ty(35, "TQ2_0", 256, 66),
    ty(39, "MXFP4", 32, 17),
];

/// The type with ggml id `id`, when ggml has one ondo knows the layout of.
pub fn ggml_type(id: u32) -> Option<GgmlType> {
    if let Some(d) = DType::from_ggml_id(id) {
        return Some(ty(id, d.name(), d.block_size() as u64, d.block_bytes() as u64));
    }
    OTHERS.iter().find(|t| t.id == id).copied()
}

/// The ggml name of a type id, for messages ("unknown" when ggml has none).
pub fn ggml_type_name(id: u32) -> &'static str {
    ggml_type(id).map_or("unknown", |t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layouts_match_ondo_kernels_and_ggml() {
        let layout = |id| ggml_type(id).map(|t| (t.block_size, t.block_bytes));
        assert_eq!(layout(0), Some((1, 4)));
        assert_eq!(layout(12), Some((256, 144)));
        assert_eq!(layout(23), Some((256, 136)));
        assert_eq!(layout(4), None); // removed Q4_2
        assert_eq!(ggml_type_name(20), "IQ4_NL");
        assert_eq!(ggml_type_name(12), "Q4_K");
        assert_eq!(ggml_type_name(4), "unknown");
    }

    #[test]
    fn every_id_appears_once() {
        let mut ids: Vec<u32> = OTHERS.iter().map(|t| t.id).collect();
        ids.extend((0..64).filter(|&id| DType::from_ggml_id(id).is_some()));
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "a ggml id is both computed and listed");
    }
}
