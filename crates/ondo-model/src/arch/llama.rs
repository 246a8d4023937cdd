//! Llama and its plain relatives: Llama 2/3/3.x, SmolLM, TinyLlama, Mistral, Qwen2/2.5.
//! Pre-norm decoder, RMSNorm, SwiGLU MLP, rope (neox layout in HF files, interleaved in llama.cpp's
//! GGUF conversion of llama and mistral), optional q/k/v/o and MLP biases, optional tied head.
//! Everything it has is the shared default, so its fix-ups change nothing.

use super::{ArchSpec, LayerSpec};
use crate::config::{Fields, Hparams};
use crate::gguf_model::Keys;
use crate::names::{Names, LLAMA_GLOBAL, LLAMA_LAYER};
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "llama",
    hf_archs: &[
        ("LlamaForCausalLM", "llama"),
        ("MistralForCausalLM", "mistral"),
        ("Qwen2ForCausalLM", "qwen2"),
    ],
    // llama.cpp's converter permutes llama/mistral q/k rows so rope pairs are interleaved.
    gguf_archs: &[
        ("llama", RopeStyle::Interleaved),
        ("mistral", RopeStyle::Interleaved),
        ("qwen2", RopeStyle::Neox),
    ],
    names: &Names {
        layer_prefix: "model.layers.",
        layer: LLAMA_LAYER,
        global: LLAMA_GLOBAL,
        optional_prefix: None,
    },
    gguf_export: &[
        ("LlamaForCausalLM", "llama"),
        ("MistralForCausalLM", "llama"),
        ("Qwen2ForCausalLM", "qwen2"),
    ],
    hf_keys: &[],
    hf_fixup,
    gguf_fixup,
    layer: |_, _| LayerSpec::PLAIN,
    fixtures: &["llama-gqa", "llama-bias-headdim", "mistral", "qwen2"],
};

fn hf_fixup(_: &Fields, _: &mut Hparams) -> Result<(), Error> {
    Ok(())
}

fn gguf_fixup(_: &Keys, _: &mut Hparams) -> Result<(), Error> {
    Ok(())
}
