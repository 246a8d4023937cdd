//! Phi-3 (and Phi-3.5 mini): Llama's math with fused `qkv_proj` (q, k, v rows in order) and
//! fused `gate_up_proj` (gate rows first), `longrope` scaling (per-pair short/long divisors
//! switching once a sequence passes `original_max_position_embeddings`, cos/sin scaled by the
//! attention factor) and a sliding window on every layer when the config sets one. In llama.cpp's
//! GGUF the longrope divisors are the tensors `rope_factors_short` / `rope_factors_long`.

use super::{ArchSpec, LayerSpec, QkvLayout};
use crate::config::{Fields, Hparams, RopeScaling};
use crate::gguf_model::Keys;
use crate::names::{Names, LLAMA_GLOBAL};
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "phi3",
    hf_archs: &[("Phi3ForCausalLM", "phi3")],
    gguf_archs: &[("phi3", RopeStyle::Neox)],
    names: &Names {
        layer_prefix: "model.layers.",
        layer: &[
            ("attn_norm", "input_layernorm"),
            ("attn_qkv", "self_attn.qkv_proj"),
            ("attn_output", "self_attn.o_proj"),
            ("ffn_norm", "post_attention_layernorm"),
            ("ffn_up", "mlp.gate_up_proj"),
            ("ffn_down", "mlp.down_proj"),
        ],
        global: LLAMA_GLOBAL,
        optional_prefix: None,
    },
    gguf_export: &[],
    hf_keys: &[],
    hf_fixup,
    gguf_fixup,
    layer: |_, _| LayerSpec {
        qkv: QkvLayout::Fused,
        gate_up_fused: true,
        ..LayerSpec::PLAIN
    },
    fixtures: &["phi3"],
};

fn hf_fixup(_: &Fields, _: &mut Hparams) -> Result<(), Error> {
    Ok(())
}

fn gguf_fixup(k: &Keys, hp: &mut Hparams) -> Result<(), Error> {
    let factors = |name: &str| -> Result<Option<Vec<f32>>, Error> {
        match k.g.tensor(name) {
            None => Ok(None),
            Some(_) => Ok(Some(k.g.weight(name)?.to_f32())),
        }
    };
    let (short, long) = (
        factors("rope_factors_short.weight")?,
        factors("rope_factors_long.weight")?,
    );
    if let (Some(short), Some(long)) = (short, long) {
        let original = k
            .opt_usize("rope.scaling.original_context_length")?
            .unwrap_or(hp.max_position_embeddings);
        hp.rope.scaling = RopeScaling::LongRope {
            short,
            long,
            original_max_position_embeddings: original,
            attention_factor: k.opt_f32("rope.scaling.attn_factor")?.unwrap_or(1.0),
        };
    }
    if hp.sliding_window.is_some() {
        hp.sliding_layers = vec![true; hp.num_hidden_layers];
    }
    Ok(())
}
