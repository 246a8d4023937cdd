//! Tensor names. ondo's canonical names are GGUF's (`blk.0.attn_q.weight`); each architecture's
//! `Names` table (in its file under `arch/`) maps them to its Hugging Face names, so one model
//! implementation serves both formats.

/// One architecture's HF tensor names.
#[derive(Debug)]
pub struct Names {
    /// What comes before the layer number (`model.layers.`, `transformer.h.`).
    pub layer_prefix: &'static str,
    /// Per-layer tensors: (GGUF part, HF part under `{layer_prefix}N.`).
    pub layer: &'static [(&'static str, &'static str)],
    /// Whole-model tensors: (GGUF stem, HF stem).
    pub global: &'static [(&'static str, &'static str)],
    /// A prefix some checkpoints leave out (old GPT-2 files name `h.0.attn.c_attn.weight`, not
    /// `transformer.h.0.attn.c_attn.weight`).
    pub optional_prefix: Option<&'static str>,
}

/// Llama's layer parts, shared by the architectures that name tensors like it.
pub const LLAMA_LAYER: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// Llama's whole-model tensors.
pub const LLAMA_GLOBAL: &[(&str, &str)] = &[
    ("token_embd", "model.embed_tokens"),
    ("output_norm", "model.norm"),
    ("output", "lm_head"),
];

impl Names {
    /// The HF name of a canonical tensor name. Parts the table does not know keep their
    /// canonical spelling (a missing tensor then names itself as looked for).
    pub fn hf_name(&self, canonical: &str) -> String {
        let (stem, kind) = canonical.rsplit_once('.').unwrap_or((canonical, ""));
        let mapped = match stem.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) {
            Some((layer, part)) => {
                let hf = lookup(self.layer, part).unwrap_or(part);
                format!("{}{layer}.{hf}", self.layer_prefix)
            }
            None => lookup(self.global, stem).unwrap_or(stem).to_string(),
        };
        if kind.is_empty() {
            mapped
        } else {
            format!("{mapped}.{kind}")
        }
    }
}

impl Names {
    /// The names to try for a canonical name: the full HF name, then without the optional prefix.
    /// A whole-model stem listed more than once has several spellings, tried in order
    /// (GPT-NeoX's head is `embed_out` in hub files, `lm_head` as transformers 5 saves it).
    pub fn hf_candidates(&self, canonical: &str) -> Vec<String> {
        let (stem, kind) = canonical.rsplit_once('.').unwrap_or((canonical, ""));
        let mut names = vec![self.hf_name(canonical)];
        for (_, h) in self.global.iter().filter(|(g, _)| *g == stem).skip(1) {
            names.push(if kind.is_empty() {
                h.to_string()
            } else {
                format!("{h}.{kind}")
            });
        }
        let short: Vec<String> = names
            .iter()
            .filter_map(|n| self.optional_prefix.and_then(|p| n.strip_prefix(p)))
            .map(str::to_string)
            .collect();
        names.extend(short);
        names
    }
}

fn lookup(table: &'static [(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(g, _)| *g == key).map(|(_, h)| *h)
}

/// The HF name of a canonical tensor name for `arch`.
pub fn hf_name(arch: crate::config::Arch, canonical: &str) -> String {
    arch.names.hf_name(canonical)
}

#[cfg(test)]
mod tests {
    use crate::arch::by_hf_name;

    fn name(arch: &str, canonical: &str) -> String {
        super::hf_name(by_hf_name(arch).unwrap(), canonical)
    }

    #[test]
    fn maps_names_per_architecture() {
        let cases = [
            (
                "LlamaForCausalLM",
                "blk.3.attn_q.weight",
                "model.layers.3.self_attn.q_proj.weight",
            ),
            (
                "LlamaForCausalLM",
                "blk.0.attn_k.bias",
                "model.layers.0.self_attn.k_proj.bias",
            ),
            (
                "LlamaForCausalLM",
                "blk.1.ffn_norm.weight",
                "model.layers.1.post_attention_layernorm.weight",
            ),
            (
                "Gemma3ForCausalLM",
                "blk.1.ffn_norm.weight",
                "model.layers.1.pre_feedforward_layernorm.weight",
            ),
            (
                "Gemma3ForCausalLM",
                "blk.1.post_attention_norm.weight",
                "model.layers.1.post_attention_layernorm.weight",
            ),
            ("LlamaForCausalLM", "token_embd.weight", "model.embed_tokens.weight"),
            ("LlamaForCausalLM", "output.weight", "lm_head.weight"),
            (
                "GPT2LMHeadModel",
                "blk.2.attn_qkv.weight",
                "transformer.h.2.attn.c_attn.weight",
            ),
            ("GPT2LMHeadModel", "position_embd.weight", "transformer.wpe.weight"),
            (
                "GPTNeoXForCausalLM",
                "blk.0.attn_qkv.bias",
                "gpt_neox.layers.0.attention.query_key_value.bias",
            ),
            ("GPTNeoXForCausalLM", "output.weight", "embed_out.weight"),
        ];
        for (arch, canonical, hf) in cases {
            assert_eq!(name(arch, canonical), hf, "{arch} {canonical}");
        }
    }
}
