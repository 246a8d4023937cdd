//! Gemma 3 (text): Llama's skeleton plus per-head q/k RMSNorm, norms around both attention and
//! MLP outputs ("sandwich"), GeGLU (tanh), embeddings scaled by sqrt(hidden_size), local
//! sliding-window layers with their own rope base, and norm weights stored as `w` for `x * (1 + w)`
//! in HF files (llama.cpp's GGUF conversion already adds the 1).

use super::{load_decoder, LayerSpec};
use crate::blocks::Decoder;
use crate::config::Hparams;
use crate::store::{Format, Tensors};
use crate::Error;

pub fn build(hp: Hparams, t: &Tensors) -> Result<Decoder, Error> {
    let norm_offset = if t.format == Format::Hf { 1.0 } else { 0.0 };
    load_decoder(
        hp,
        t,
        &LayerSpec {
            norm_offset,
            qk_norm: true,
            sandwich_norms: true,
        },
    )
}
