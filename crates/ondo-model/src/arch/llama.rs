//! Llama and its plain relatives: Llama 2/3/3.x, SmolLM, TinyLlama, Mistral, Qwen2/2.5.
//! Pre-norm decoder, RMSNorm, SwiGLU MLP, rope (neox layout in HF files, interleaved in llama.cpp's
//! GGUF conversion), optional q/k/v/o and MLP biases, optional tied output head.

use super::{load_decoder, LayerSpec};
use crate::blocks::Decoder;
use crate::config::Hparams;
use crate::store::Tensors;
use crate::Error;

pub fn build(hp: Hparams, t: &Tensors) -> Result<Decoder, Error> {
    load_decoder(
        hp,
        t,
        &LayerSpec {
            norm_offset: 0.0,
            qk_norm: false,
            sandwich_norms: false,
        },
    )
}
