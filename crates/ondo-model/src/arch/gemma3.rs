//! Gemma 3 (text): Llama's skeleton plus per-head q/k RMSNorm, norms around both attention and
//! MLP outputs ("sandwich"), GeGLU (tanh), embeddings scaled by sqrt(hidden_size), local
//! sliding-window layers with their own rope base, and norm weights stored as `w` for `x * (1 + w)`
//! in HF files (llama.cpp's GGUF conversion already adds the 1).

use super::{ArchSpec, LayerSpec};
use crate::config::{Activation, Fields, Hparams, Rope, RopeScaling};
use crate::gguf_model::Keys;
use crate::hf_config::{layer_types, rope_params};
use crate::names::{Names, LLAMA_GLOBAL};
use crate::store::Format;
use crate::Error;
use ondo_kernels::ops::RopeStyle;

/// Gemma's HF names (shared with Gemma 2): the norm HF calls `post_attention_layernorm` is the
/// post-attention norm, not Llama's pre-MLP norm.
pub(super) static GEMMA_NAMES: Names = Names {
    layer_prefix: "model.layers.",
    layer: &[
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("post_attention_norm", "post_attention_layernorm"),
        ("ffn_norm", "pre_feedforward_layernorm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
    ],
    global: LLAMA_GLOBAL,
    optional_prefix: None,
};

pub static SPEC: ArchSpec = ArchSpec {
    id: "gemma3",
    hf_archs: &[("Gemma3ForCausalLM", "gemma3_text")],
    gguf_archs: &[("gemma3", RopeStyle::Neox)],
    names: &GEMMA_NAMES,
    gguf_export: &[],
    hf_keys: &[],
    hf_fixup,
    gguf_fixup,
    layer: gemma_layer,
    fixtures: &["gemma3"],
};

/// HF Gemma norms compute `x * (1 + w)`; llama.cpp's conversion stores `1 + w`.
pub(super) fn gemma_layer(_: &Hparams, format: Format) -> LayerSpec {
    LayerSpec {
        norm_offset: if format == Format::Hf { 1.0 } else { 0.0 },
        qk_norm: true,
        sandwich_norms: true,
        ..LayerSpec::PLAIN
    }
}

/// Gemma's shared defaults: tied head, embeddings scaled by √hidden.
pub(super) fn gemma_common(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    hp.tie_word_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
    hp.embed_scale = Some((hp.hidden_size as f32).sqrt());
    Ok(())
}

fn hf_fixup(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    gemma_common(f, hp)?;
    let (theta, scaling) = rope_params(f, Some("full_attention"))?;
    hp.rope = Rope {
        theta,
        scaling,
        ..hp.rope.clone()
    };
    let (theta, scaling) = match f.get("rope_parameters").and_then(|p| p.get("sliding_attention")) {
        Some(_) => rope_params(f, Some("sliding_attention"))?,
        None => (f.opt_f32("rope_local_base_freq")?.unwrap_or(10000.0), RopeScaling::None),
    };
    hp.rope_local = Some(Rope {
        theta,
        scaling,
        ..hp.rope.clone()
    });
    // five local layers, then one global, unless the config says otherwise
    if layer_types(f)?.is_none() {
        let pattern = f.opt_usize("sliding_window_pattern")?.unwrap_or(6).max(1);
        hp.sliding_layers = (0..hp.num_hidden_layers)
            .map(|i| hp.sliding_window.is_some() && (i + 1) % pattern != 0)
            .collect();
    }
    Ok(())
}

fn gguf_fixup(_: &Keys, hp: &mut Hparams) -> Result<(), Error> {
    hp.hidden_act = Activation::GeluTanh;
    hp.embed_scale = Some((hp.hidden_size as f32).sqrt());
    // llama.cpp runs Gemma 3's local layers with base 10000 (not stored in the file), five
    // local layers then one global.
    hp.rope_local = Some(Rope {
        theta: 10000.0,
        scaling: RopeScaling::None,
        ..hp.rope.clone()
    });
    let window = hp.sliding_window.is_some();
    hp.sliding_layers = (0..hp.num_hidden_layers).map(|i| window && (i + 1) % 6 != 0).collect();
    Ok(())
}
