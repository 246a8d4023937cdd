//! The architecture registry: one file per architecture, one line each in `REGISTRY`.

mod gemma3;
mod llama;

use crate::blocks::{Decoder, Layer, Linear};
use crate::config::{Arch, Hparams};
use crate::store::Tensors;
use crate::{Error, Model};

/// Builds a model of one architecture from its tensors.
type Build = fn(Hparams, &Tensors) -> Result<Decoder, Error>;

/// Every architecture ondo runs. A test walks this list.
pub const REGISTRY: &[(Arch, Build)] =
    &[(Arch::Llama, llama::build), (Arch::Gemma3, gemma3::build)];

/// Build the model `hp.arch` names.
pub fn build(hp: Hparams, tensors: &Tensors) -> Result<Box<dyn Model>, Error> {
    let arch = hp.arch;
    let (_, build) = REGISTRY
        .iter()
        .find(|(a, _)| *a == arch)
        .expect("every Arch is registered");
    Ok(Box::new(build(hp, tensors)?))
}

/// Which optional tensors a layer has, and how its norm weights are stored.
pub(crate) struct LayerSpec {
    /// Added to every norm weight at load (HF Gemma stores `w` and computes `x * (1 + w)`).
    pub norm_offset: f32,
    pub qk_norm: bool,
    pub sandwich_norms: bool,
}

/// The shared decoder skeleton: embeddings, `num_hidden_layers` layers, final norm, head.
pub(crate) fn load_decoder(hp: Hparams, t: &Tensors, spec: &LayerSpec) -> Result<Decoder, Error> {
    // tied to the output head: the matmul reads it too
    let embed = if t.has("output.weight") || !hp.tie_word_embeddings {
        t.matrix("token_embd.weight", hp.vocab_size, hp.hidden_size)?
    } else {
        t.linear("token_embd.weight", hp.vocab_size, hp.hidden_size)?
    };
    let layers = (0..hp.num_hidden_layers)
        .map(|i| load_layer(&hp, t, i, spec))
        .collect::<Result<_, _>>()?;
    let output_norm = norm(t, "output_norm.weight", hp.hidden_size, spec)?;
    let output = if t.has("output.weight") || !hp.tie_word_embeddings {
        Some(t.linear("output.weight", hp.vocab_size, hp.hidden_size)?)
    } else {
        None
    };
    let inv_freq = hp.rope.inv_freq();
    let inv_freq_local = hp
        .rope_local
        .map_or_else(|| inv_freq.clone(), |r| r.inv_freq());
    Ok(Decoder {
        hp,
        embed,
        layers,
        output_norm,
        output,
        inv_freq,
        inv_freq_local,
    })
}

fn load_layer(hp: &Hparams, t: &Tensors, i: usize, spec: &LayerSpec) -> Result<Layer, Error> {
    let (h, qd, kvd, hd, inter) = (
        hp.hidden_size,
        hp.q_dim(),
        hp.kv_dim(),
        hp.head_dim,
        hp.intermediate_size,
    );
    let p = |part: &str| format!("blk.{i}.{part}");
    let opt_norm = |part: &str, len: usize, present: bool| -> Result<Option<Vec<f32>>, Error> {
        if present {
            norm(t, &p(part), len, spec).map(Some)
        } else {
            Ok(None)
        }
    };
    Ok(Layer {
        attn_norm: norm(t, &p("attn_norm.weight"), h, spec)?,
        q: linear(t, &p("attn_q"), qd, h)?,
        k: linear(t, &p("attn_k"), kvd, h)?,
        v: linear(t, &p("attn_v"), kvd, h)?,
        o: linear(t, &p("attn_output"), h, qd)?,
        q_norm: opt_norm("attn_q_norm.weight", hd, spec.qk_norm)?,
        k_norm: opt_norm("attn_k_norm.weight", hd, spec.qk_norm)?,
        post_attn_norm: opt_norm("post_attention_norm.weight", h, spec.sandwich_norms)?,
        ffn_norm: norm(t, &p("ffn_norm.weight"), h, spec)?,
        gate: linear(t, &p("ffn_gate"), inter, h)?,
        up: linear(t, &p("ffn_up"), inter, h)?,
        down: linear(t, &p("ffn_down"), h, inter)?,
        post_ffn_norm: opt_norm("post_ffw_norm.weight", h, spec.sandwich_norms)?,
    })
}

/// A weight `[rows, cols]` and its bias when the file has one.
fn linear(t: &Tensors, stem: &str, rows: usize, cols: usize) -> Result<Linear, Error> {
    Ok(Linear {
        weight: t.linear(&format!("{stem}.weight"), rows, cols)?,
        bias: t.opt_vector(&format!("{stem}.bias"), rows)?,
    })
}

fn norm(t: &Tensors, name: &str, len: usize, spec: &LayerSpec) -> Result<Vec<f32>, Error> {
    let mut w = t.vector(name, len)?;
    if spec.norm_offset != 0.0 {
        w.iter_mut().for_each(|v| *v += spec.norm_offset);
    }
    Ok(w)
}
