//! GPT-2: learned absolute positions (`wpe`), LayerNorm with bias, a plain MLP with `gelu_new`
//! (the tanh GELU), biases on every linear, fused `c_attn` (q, k, v rows in order), tied head.
//! HF files store the Conv1D matrices `[in, out]`: they are transposed once at load (llama.cpp's
//! GGUF conversion already stores them `[out, in]`). Old checkpoints name tensors without the
//! `transformer.` prefix and carry `attn.bias` / `attn.masked_bias` mask buffers, which are never
//! read. `scale_attn_by_inverse_layer_idx` is refused; `reorder_and_upcast_attn` only changes
//! half-precision rounding, and ondo's attention is f32 anyway.

use super::{ArchSpec, LayerSpec, QkvLayout};
use crate::config::{Activation, Fields, Hparams, MlpKind, NormKind, Positions};
use crate::gguf_model::Keys;
use crate::names::Names;
use crate::store::Format;
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "gpt2",
    hf_archs: &[("GPT2LMHeadModel", "gpt2")],
    gguf_archs: &[("gpt2", RopeStyle::Neox)],
    names: &Names {
        layer_prefix: "transformer.h.",
        layer: &[
            ("attn_norm", "ln_1"),
            ("attn_qkv", "attn.c_attn"),
            ("attn_output", "attn.c_proj"),
            ("ffn_norm", "ln_2"),
            ("ffn_up", "mlp.c_fc"),
            ("ffn_down", "mlp.c_proj"),
        ],
        global: &[
            ("token_embd", "transformer.wte"),
            ("position_embd", "transformer.wpe"),
            ("output_norm", "transformer.ln_f"),
            ("output", "lm_head"),
        ],
        optional_prefix: Some("transformer."),
    },
    gguf_export: &[],
    hf_keys: &[
        ("hidden_size", "n_embd"),
        ("num_hidden_layers", "n_layer"),
        ("num_attention_heads", "n_head"),
        ("max_position_embeddings", "n_positions"),
        ("rms_norm_eps", "layer_norm_epsilon"),
        ("intermediate_size", "n_inner"),
        ("hidden_act", "activation_function"),
    ],
    hf_fixup,
    gguf_fixup,
    layer: |_, format| LayerSpec {
        qkv: QkvLayout::Fused,
        transposed: format == Format::Hf,
        ..LayerSpec::PLAIN
    },
    fixtures: &["gpt2"],
};

fn common(hp: &mut Hparams) {
    hp.norm = NormKind::Layer;
    hp.mlp = MlpKind::Plain;
    hp.positions = Positions::Learned;
}

fn hf_fixup(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    common(hp);
    if f.opt_usize("intermediate_size")?.is_none() {
        hp.intermediate_size = 4 * hp.hidden_size;
    }
    hp.norm_eps = f.opt_f32("rms_norm_eps")?.unwrap_or(1e-5);
    hp.tie_word_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
    if f.opt_str("hidden_act")?.is_none() {
        hp.hidden_act = Activation::GeluTanh;
    }
    if f.opt_bool("scale_attn_by_inverse_layer_idx")? == Some(true) {
        return Err(Error::config(
            f.path,
            "scale_attn_by_inverse_layer_idx",
            "true is not supported (scores divided by layer index + 1)",
        ));
    }
    if f.opt_bool("scale_attn_weights")? == Some(false) {
        hp.attn_scale = 1.0;
    }
    Ok(())
}

fn gguf_fixup(_: &Keys, hp: &mut Hparams) -> Result<(), Error> {
    common(hp);
    hp.hidden_act = Activation::GeluTanh;
    Ok(())
}
