//! GPT-NeoX (Pythia, polyglot-ko): partial rotary (`rotary_pct`, NeoX pairs over the first
//! dims of each head), parallel residual (`use_parallel_residual`: attention and MLP both read
//! the layer input), LayerNorm with bias, a plain MLP with exact GELU, biases on every linear,
//! an untied head (`embed_out` in hub files, `lm_head` as transformers 5 saves it). HF stores `query_key_value` interleaved per head
//! (`[heads, 3, head_dim]` rows); llama.cpp's GGUF conversion reorders it to q, k, v.

use super::{ArchSpec, LayerSpec, QkvLayout};
use crate::config::{Activation, Fields, Hparams, MlpKind, NormKind, Residual};
use crate::gguf_model::Keys;
use crate::names::Names;
use crate::store::Format;
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "gptneox",
    hf_archs: &[("GPTNeoXForCausalLM", "gpt_neox")],
    gguf_archs: &[("gptneox", RopeStyle::Neox)],
    names: &Names {
        layer_prefix: "gpt_neox.layers.",
        layer: &[
            ("attn_norm", "input_layernorm"),
            ("attn_qkv", "attention.query_key_value"),
            ("attn_output", "attention.dense"),
            ("ffn_norm", "post_attention_layernorm"),
            ("ffn_up", "mlp.dense_h_to_4h"),
            ("ffn_down", "mlp.dense_4h_to_h"),
        ],
        global: &[
            ("token_embd", "gpt_neox.embed_in"),
            ("output_norm", "gpt_neox.final_layer_norm"),
            ("output", "embed_out"),
            ("output", "lm_head"),
        ],
        optional_prefix: None,
    },
    gguf_export: &[],
    hf_keys: &[
        ("rms_norm_eps", "layer_norm_eps"),
        ("partial_rotary_factor", "rotary_pct"),
        ("rope_theta", "rotary_emb_base"),
    ],
    hf_fixup,
    gguf_fixup,
    layer: |_, format| LayerSpec {
        qkv: match format {
            Format::Hf => QkvLayout::FusedPerHead,
            Format::Gguf => QkvLayout::Fused,
        },
        ..LayerSpec::PLAIN
    },
    fixtures: &["gptneox"],
};

fn common(hp: &mut Hparams) {
    hp.norm = NormKind::Layer;
    hp.mlp = MlpKind::Plain;
}

fn hf_fixup(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    common(hp);
    hp.norm_eps = f.opt_f32("rms_norm_eps")?.unwrap_or(1e-5);
    // transformers 5 may keep the rotary fraction inside rope_parameters
    if let Some(p) = f.get("rope_parameters") {
        if let Some(frac) = f.sub(p).opt_f32("partial_rotary_factor")? {
            hp.rope.rot_dim = (hp.head_dim as f32 * frac) as usize;
        }
    }
    if f.opt_bool("use_parallel_residual")?.unwrap_or(true) {
        hp.residual = Residual::Parallel;
    }
    if f.opt_str("hidden_act")?.is_none() {
        hp.hidden_act = Activation::Gelu;
    }
    Ok(())
}

fn gguf_fixup(k: &Keys, hp: &mut Hparams) -> Result<(), Error> {
    common(hp);
    hp.hidden_act = Activation::Gelu;
    if k.opt_bool("use_parallel_residual")?.unwrap_or(true) {
        hp.residual = Residual::Parallel;
    }
    Ok(())
}
