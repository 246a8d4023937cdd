//! Gemma 2: Gemma 3's skeleton without q/k norms or a separate local rope. Attention-logit and
//! final-logit softcaps, a sliding window on every other layer (layers 0, 2, 4, … slide),
//! `query_pre_attn_scalar`, GeGLU (tanh), `(1 + w)` RMSNorms before and after attention and MLP,
//! embeddings scaled by √hidden, tied head.

use super::gemma3::{gemma_common, gemma_layer, GEMMA_NAMES};
use super::{ArchSpec, LayerSpec};
use crate::config::{Activation, Fields, Hparams};
use crate::gguf_model::Keys;
use crate::hf_config::layer_types;
use crate::store::Format;
use crate::Error;
use ondo_kernels::ops::RopeStyle;

pub static SPEC: ArchSpec = ArchSpec {
    id: "gemma2",
    hf_archs: &[("Gemma2ForCausalLM", "gemma2")],
    gguf_archs: &[("gemma2", RopeStyle::Neox)],
    names: &GEMMA_NAMES,
    gguf_export: &[],
    hf_keys: &[],
    hf_fixup,
    gguf_fixup,
    layer,
    fixtures: &["gemma2"],
};

fn layer(hp: &Hparams, format: Format) -> LayerSpec {
    LayerSpec {
        qk_norm: false,
        ..gemma_layer(hp, format)
    }
}

/// Even layers slide when there is a window.
fn alternate(hp: &mut Hparams) {
    let window = hp.sliding_window.is_some();
    hp.sliding_layers = (0..hp.num_hidden_layers).map(|i| window && i % 2 == 0).collect();
}

fn hf_fixup(f: &Fields, hp: &mut Hparams) -> Result<(), Error> {
    gemma_common(f, hp)?;
    if layer_types(f)?.is_none() {
        alternate(hp);
    }
    Ok(())
}

fn gguf_fixup(_: &Keys, hp: &mut Hparams) -> Result<(), Error> {
    hp.hidden_act = Activation::GeluTanh;
    hp.embed_scale = Some((hp.hidden_size as f32).sqrt());
    alternate(hp);
    Ok(())
}
