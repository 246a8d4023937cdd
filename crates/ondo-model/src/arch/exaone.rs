//! EXAONE 3.5 (`ExaoneForCausalLM`): Llama's math (RMSNorm, SwiGLU, GQA, rope with the scaling
//! its config gives — llama3-style in the released models) under its own names: tensors
//! `transformer.h.N.attn.attention.{q,k,v,out}_proj`, `mlp.c_fc_0` (gate) / `c_fc_1` (up) /
//! `c_proj`, `ln_1` / `ln_2` / `ln_f`, `transformer.wte`; config keys `num_layers`,
//! `layer_norm_epsilon`, `activation_function`. Tied or untied head. llama.cpp's GGUF uses
//! Llama's tensor names and NeoX rope pairs (no q/k permutation).

use super::{ArchSpec, LayerSpec};
use crate::config::{Fields, Hparams};
use crate::gguf_model::Keys;
use crate::names::Names;
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "exaone",
    hf_archs: &[("ExaoneForCausalLM", "exaone")],
    gguf_archs: &[("exaone", RopeStyle::Neox)],
    names: &Names {
        layer_prefix: "transformer.h.",
        layer: &[
            ("attn_norm", "ln_1"),
            ("attn_q", "attn.attention.q_proj"),
            ("attn_k", "attn.attention.k_proj"),
            ("attn_v", "attn.attention.v_proj"),
            ("attn_output", "attn.attention.out_proj"),
            ("ffn_norm", "ln_2"),
            ("ffn_gate", "mlp.c_fc_0"),
            ("ffn_up", "mlp.c_fc_1"),
            ("ffn_down", "mlp.c_proj"),
        ],
        global: &[
            ("token_embd", "transformer.wte"),
            ("output_norm", "transformer.ln_f"),
            ("output", "lm_head"),
        ],
        optional_prefix: None,
    },
    gguf_export: &[],
    hf_keys: &[
        ("num_hidden_layers", "num_layers"),
        ("rms_norm_eps", "layer_norm_epsilon"),
        ("hidden_act", "activation_function"),
    ],
    hf_fixup,
    gguf_fixup,
    layer: |_, _| LayerSpec::PLAIN,
    fixtures: &["exaone"],
};

fn hf_fixup(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    hp.tie_word_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
    Ok(())
}

fn gguf_fixup(_: &Keys, _: &mut Hparams) -> Result<(), Error> {
    Ok(())
}
