//! Tensor names. ondo's canonical names are GGUF's (`blk.0.attn_q.weight`); this table maps them
//! to Hugging Face names, so one model implementation serves both formats.

use crate::config::Arch;

/// Per-layer tensors: (GGUF suffix, HF suffix under `model.layers.N.`).
const LAYER: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
    ("post_ffw_norm", "post_feedforward_layernorm"),
];

/// Whole-model tensors.
const GLOBAL: &[(&str, &str)] = &[
    ("token_embd", "model.embed_tokens"),
    ("output_norm", "model.norm"),
    ("output", "lm_head"),
];

/// The HF name of a canonical tensor name, for `arch`.
pub fn hf_name(arch: Arch, canonical: &str) -> String {
    let (stem, kind) = canonical.rsplit_once('.').unwrap_or((canonical, ""));
    let mapped = match stem
        .strip_prefix("blk.")
        .and_then(|rest| rest.split_once('.'))
    {
        Some((layer, part)) => {
            let hf = layer_part(arch, part).unwrap_or(part);
            format!("model.layers.{layer}.{hf}")
        }
        None => GLOBAL
            .iter()
            .find(|(g, _)| *g == stem)
            .map_or(stem.to_string(), |(_, h)| h.to_string()),
    };
    if kind.is_empty() {
        mapped
    } else {
        format!("{mapped}.{kind}")
    }
}

/// The norm HF calls `post_attention_layernorm` is Llama's pre-MLP norm but Gemma's
/// post-attention norm.
fn layer_part(arch: Arch, part: &str) -> Option<&'static str> {
    match (arch, part) {
        (Arch::Gemma3, "ffn_norm") => Some("pre_feedforward_layernorm"),
        (Arch::Gemma3, "post_attention_norm") => Some("post_attention_layernorm"),
        (_, "ffn_norm") => Some("post_attention_layernorm"),
        _ => LAYER.iter().find(|(g, _)| *g == part).map(|(_, h)| *h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_llama_and_gemma_names() {
        assert_eq!(
            hf_name(Arch::Llama, "blk.3.attn_q.weight"),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name(Arch::Llama, "blk.0.attn_k.bias"),
            "model.layers.0.self_attn.k_proj.bias"
        );
        assert_eq!(
            hf_name(Arch::Llama, "blk.1.ffn_norm.weight"),
            "model.layers.1.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name(Arch::Gemma3, "blk.1.ffn_norm.weight"),
            "model.layers.1.pre_feedforward_layernorm.weight"
        );
        assert_eq!(
            hf_name(Arch::Gemma3, "blk.1.post_attention_norm.weight"),
            "model.layers.1.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name(Arch::Llama, "token_embd.weight"),
            "model.embed_tokens.weight"
        );
        assert_eq!(hf_name(Arch::Llama, "output.weight"), "lm_head.weight");
    }
}
