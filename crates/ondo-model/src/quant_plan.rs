//! Quantization schemes by llama.cpp's names (`q4_k_m`, `q8_0`, ...) and which block format each
//! tensor of a model gets under one: the `_S`/`_M`/`_L` mixtures give the value projections,
//! the MLP down projections and the output head more bits, as llama.cpp's quantizer does
//! (its rules learned from `llama_tensor_get_type`; the constants are its file-type ids).
//!
//! One [`QuantPlan`] serves both quantize-at-load (`LoadQuant`) and `ondo quantize`'s GGUF export.

use crate::Error;
use ondo_kernels::DType;

/// A whole-model quantization scheme (llama.cpp's `llama_ftype`).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
}

/// (name, scheme, GGUF `general.file_type`)
const SCHEMES: &[(&str, Scheme, u32)] = &[
    ("f32", Scheme::F32, 0),
    ("f16", Scheme::F16, 1),
    ("bf16", Scheme::BF16, 32),
    ("q4_0", Scheme::Q4_0, 2),
    ("q4_1", Scheme::Q4_1, 3),
    ("q5_0", Scheme::Q5_0, 8),
    ("q5_1", Scheme::Q5_1, 9),
    ("q8_0", Scheme::Q8_0, 7),
    ("q2_k", Scheme::Q2_K, 10),
    ("q3_k_s", Scheme::Q3_K_S, 11),
    ("q3_k_m", Scheme::Q3_K_M, 12),
    ("q3_k_l", Scheme::Q3_K_L, 13),
    ("q4_k_s", Scheme::Q4_K_S, 14),
    ("q4_k_m", Scheme::Q4_K_M, 15),
    ("q5_k_s", Scheme::Q5_K_S, 16),
    ("q5_k_m", Scheme::Q5_K_M, 17),
    ("q6_k", Scheme::Q6_K, 18),
];

impl Scheme {
    /// A scheme by name, case-insensitive (`q4_k_m`, `Q8_0`; `q4_k` = `q4_k_m`, `q3_k` = `q3_k_m`,
    /// `q5_k` = `q5_k_m` as in llama-quantize).
    pub fn parse(name: &str) -> Result<Scheme, Error> {
        let lower = name.to_ascii_lowercase();
        let canonical = match lower.as_str() {
            "q3_k" => "q3_k_m",
            "q4_k" => "q4_k_m",
            "q5_k" => "q5_k_m",
            other => other,
        };
        SCHEMES
            .iter()
            .find(|(n, _, _)| *n == canonical)
            .map(|(_, s, _)| *s)
            .ok_or_else(|| Error::UnknownQuantType {
                name: name.to_string(),
                supported: Scheme::names().join(", "),
            })
    }

    /// Every scheme name, for errors and help.
    pub fn names() -> Vec<&'static str> {
        SCHEMES.iter().map(|(n, _, _)| *n).collect()
    }

    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// GGUF `general.file_type` (llama.cpp's `llama_ftype`).
    pub fn file_type(self) -> u32 {
        self.entry().2
    }

    fn entry(self) -> &'static (&'static str, Scheme, u32) {
        SCHEMES
            .iter()
            .find(|(_, s, _)| *s == self)
            .unwrap_or_else(|| unreachable!("every scheme is listed"))
    }

    /// The format of the tensors no rule singles out.
    pub fn base(self) -> DType {
        use Scheme::*;
        match self {
            F32 => DType::F32,
            F16 => DType::F16,
            BF16 => DType::BF16,
            Q4_0 => DType::Q4_0,
            Q4_1 => DType::Q4_1,
            Q5_0 => DType::Q5_0,
            Q5_1 => DType::Q5_1,
            Q8_0 => DType::Q8_0,
            Q2_K => DType::Q2_K,
            Q3_K_S | Q3_K_M | Q3_K_L => DType::Q3_K,
            Q4_K_S | Q4_K_M => DType::Q4_K,
            Q5_K_S | Q5_K_M => DType::Q5_K,
            Q6_K => DType::Q6_K,
        }
    }

    fn is_float(self) -> bool {
        !self.base().is_quantized()
    }
}

/// The role of a tensor in the mixture rules, from its canonical (GGUF) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Output,
    TokenEmbd,
    AttnV(usize),
    AttnQkv,
    AttnOutput,
    FfnDown(usize),
    Other,
}

/// Which format each tensor of one model gets under a scheme.
#[derive(Debug, Clone)]
pub struct QuantPlan {
    pub scheme: Scheme,
    layers: usize,
    /// No separate `output.weight`: the embeddings are the head and get its format.
    tied: bool,
    /// Query heads per KV head.
    gqa: usize,
}

impl QuantPlan {
    pub fn new(scheme: Scheme, hp: &crate::Hparams, tied: bool) -> QuantPlan {
        QuantPlan {
            scheme,
            layers: hp.num_hidden_layers.max(1),
            tied,
            gqa: hp.num_attention_heads / hp.num_key_value_heads.max(1),
        }
    }

    /// Whether a tensor is quantized at all: 2-D weights only (norms, biases and rope factors
    /// stay as they are).
    pub fn quantizes(name: &str, shape: &[usize]) -> bool {
        shape.len() == 2 && name.ends_with(".weight") && !name.contains("_norm") && !name.starts_with("rope_")
    }

    /// The format of tensor `name` (canonical) of `shape` (`[rows, cols]`), or None when it stays
    /// in its stored format.
    pub fn dtype_for(&self, name: &str, shape: &[usize]) -> Option<DType> {
        if !QuantPlan::quantizes(name, shape) {
            return None;
        }
        let wanted = self.rule(self.role(name));
        Some(fit(wanted, shape[1]))
    }

    fn role(&self, name: &str) -> Role {
        let layer = || {
            name.strip_prefix("blk.")
                .and_then(|r| r.split('.').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        match name.rsplit_once('.').map_or(name, |(stem, _)| stem) {
            "output" => Role::Output,
            "token_embd" if self.tied => Role::Output,
            "token_embd" => Role::TokenEmbd,
            s if s.ends_with(".attn_v") => Role::AttnV(layer()),
            s if s.ends_with(".attn_qkv") => Role::AttnQkv,
            s if s.ends_with(".attn_output") => Role::AttnOutput,
            s if s.ends_with(".ffn_down") => Role::FfnDown(layer()),
            _ => Role::Other,
        }
    }

    /// llama.cpp's choice for one role, before the block-size fallback.
    fn rule(&self, role: Role) -> DType {
        use Scheme::*;
        let (s, base, n) = (self.scheme, self.scheme.base(), self.layers);
        if s.is_float() {
            return base;
        }
        // past the first test, i >= n / 8
        let more_bits = |i: usize| i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        match role {
            Role::Output if s == Q8_0 => DType::Q8_0,
            Role::Output => DType::Q6_K,
            Role::TokenEmbd | Role::Other => base,
            Role::AttnV(i) => match s {
                Q2_K if self.gqa >= 4 => DType::Q4_K,
                Q2_K | Q3_K_S => DType::Q3_K,
                Q3_K_M if i < 2 => DType::Q5_K,
                Q3_K_M => DType::Q4_K,
                Q3_K_L => DType::Q5_K,
                Q4_K_M | Q5_K_M if more_bits(i) => DType::Q6_K,
                Q4_K_S if i < 4 => DType::Q5_K,
                _ => base,
            },
            Role::FfnDown(i) => match s {
                Q2_K => DType::Q3_K,
                Q3_K_M if i < n / 16 => DType::Q5_K,
                Q3_K_M => DType::Q4_K,
                Q3_K_L => DType::Q5_K,
                Q4_K_M | Q5_K_M if more_bits(i) => DType::Q6_K,
                Q4_K_S if i < n / 8 => DType::Q5_K,
                _ => base,
            },
            Role::AttnOutput => match s {
                Q2_K => DType::Q3_K,
                Q3_K_M => DType::Q4_K,
                Q3_K_L => DType::Q5_K,
                _ => base,
            },
            Role::AttnQkv => match s {
                Q3_K_M | Q3_K_L => DType::Q4_K,
                Q4_K_M => DType::Q5_K,
                Q5_K_M => DType::Q6_K,
                _ => base,
            },
        }
    }
}

/// `wanted`, or what llama.cpp falls back to when a row of `cols` values is not a whole number
/// of its blocks: the K-quants to a 32-value format of about the same size, and F16 when even
/// that does not fit.
fn fit(wanted: DType, cols: usize) -> DType {
    let fits = |d: DType| cols.is_multiple_of(d.block_size());
    if fits(wanted) {
        return wanted;
    }
    let fallback = match wanted {
        DType::Q2_K | DType::Q3_K => DType::Q4_0,
        DType::Q4_K => DType::Q5_0,
        DType::Q5_K => DType::Q5_1,
        DType::Q6_K => DType::Q8_0,
        _ => DType::F16,
    };
    if fits(fallback) {
        fallback
    } else {
        DType::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(scheme: Scheme, layers: usize, tied: bool) -> QuantPlan {
        QuantPlan {
            scheme,
            layers,
            tied,
            gqa: 3,
        }
    }

    #[test]
    fn q4_k_m_gives_value_and_down_projections_more_bits_in_llama_cpp_layers() {
        let p = plan(Scheme::Q4_K_M, 28, false);
        let v = |i: usize| p.dtype_for(&format!("blk.{i}.attn_v.weight"), &[256, 1536]).unwrap();
        // 28 layers: the first 3, the last 4 and every third between get Q6_K
        let six: Vec<usize> = (0..28).filter(|&i| v(i) == DType::Q6_K).collect();
        assert_eq!(six, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
        assert_eq!(v(3), DType::Q4_K);
        assert_eq!(p.dtype_for("blk.3.attn_q.weight", &[1536, 1536]), Some(DType::Q4_K));
        assert_eq!(p.dtype_for("output.weight", &[1000, 1536]), Some(DType::Q6_K));
        assert_eq!(p.dtype_for("token_embd.weight", &[1000, 1536]), Some(DType::Q4_K));
        assert_eq!(p.dtype_for("blk.0.attn_norm.weight", &[1536]), None);
    }

    #[test]
    fn rows_that_are_not_whole_blocks_fall_back_like_llama_cpp() {
        let p = plan(Scheme::Q4_K_M, 30, true);
        // SmolLM2: hidden 576 is not a multiple of 256
        assert_eq!(p.dtype_for("blk.3.attn_q.weight", &[576, 576]), Some(DType::Q5_0));
        assert_eq!(p.dtype_for("blk.0.attn_v.weight", &[192, 576]), Some(DType::Q8_0));
        assert_eq!(p.dtype_for("token_embd.weight", &[49152, 576]), Some(DType::Q8_0));
        assert_eq!(p.dtype_for("blk.3.ffn_down.weight", &[576, 1536]), Some(DType::Q4_K));
        assert_eq!(p.dtype_for("blk.3.attn_q.weight", &[48, 48]), Some(DType::F16));
    }

    #[test]
    fn names_parse_and_unknown_ones_are_refused_with_the_list() {
        assert_eq!(Scheme::parse("Q4_K_M").unwrap(), Scheme::Q4_K_M);
        assert_eq!(Scheme::parse("q4_k").unwrap(), Scheme::Q4_K_M);
        assert_eq!(Scheme::parse("q8_0").unwrap().file_type(), 7);
        let e = Scheme::parse("q7_k").unwrap_err().to_string();
        assert!(e.contains("q7_k") && e.contains("q4_k_m"), "{e}");
    }
}
