//! `Hparams`: everything the forward pass needs to know about a model's shape and variant.
//! Read from an HF config.json by `hf_config` and from GGUF metadata by `gguf_model`; each
//! architecture's file (`arch/`) adds its own key aliases and fix-ups.
//!
//! Field names follow HF's config names. Differences between architectures are fields here
//! (norm kind, MLP kind, residual wiring, positions, activation, biases, rope variant, sliding
//! window, softcaps), never copied code.

use crate::arch::ArchSpec;
use crate::Error;
use std::path::Path;

pub use crate::hf_config::hparams_from_hf;
pub(crate) use crate::hf_config::Fields;

/// The architecture a model runs as: its spec in the registry.
pub type Arch = &'static ArchSpec;

/// How rope angles are stretched for long contexts (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    Linear {
        factor: f32,
    },
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_max_position_embeddings: f32,
    },
    /// Phi-3's `longrope`: a divisor per rotary pair, `short` while a sequence is within
    /// `original_max_position_embeddings` positions and `long` once it is past them (decided per
    /// step from the sequence's known length, `Batch::lens`: a prompt's whole length, as
    /// transformers decides for one pass over it), and cos/sin scaled by `attention_factor`.
    /// A position's keys then depend on the prompt's length, so the engine turns prefix caching
    /// off for such models.
    LongRope {
        short: Vec<f32>,
        long: Vec<f32>,
        original_max_position_embeddings: usize,
        attention_factor: f32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, GPT-2's `gelu_new`).
    GeluTanh,
    /// Exact GELU (`gelu`: x·Φ(x) with erf).
    Gelu,
}

/// Which normalization every norm of the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `x / rms(x) · w`
    Rms,
    /// `(x - mean) / std · w + b` (bias optional)
    Layer,
}

/// The MLP's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpKind {
    /// `down(act(gate(x)) · up(x))` (SwiGLU, GeGLU)
    Gated,
    /// `down(act(up(x)))` (GPT-2, GPT-NeoX)
    Plain,
}

/// How a layer's two blocks feed the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    /// `x += attn(n1(x)); x += mlp(n2(x))`
    Sequential,
    /// `x += attn(n1(x)) + mlp(n2(x))`, both from the same `x` (GPT-NeoX `use_parallel_residual`)
    Parallel,
}

/// How positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// Rotary embeddings on q and k (`Hparams::rope`).
    Rope,
    /// A learned `[max_positions, hidden]` table added to the embeddings (GPT-2's `wpe`).
    Learned,
}

/// Rope parameters of one kind of layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    pub theta: f32,
    pub scaling: RopeScaling,
    /// Rotated dims per head (head_dim unless partial rotary).
    pub rot_dim: usize,
    pub style: ondo_kernels::ops::RopeStyle,
}

impl Rope {
    /// Angle per position for each rotary pair: `[rot_dim / 2]`.
    pub fn inv_freq(&self) -> Vec<f32> {
        match &self.scaling {
            RopeScaling::LongRope { short, .. } => self.divided(short),
            _ => self.inv_freq_scaled(),
        }
    }

    /// Long-context angles, the position count past which they apply, and the cos/sin scale
    /// (longrope only).
    pub fn long(&self) -> Option<(Vec<f32>, usize)> {
        match &self.scaling {
            RopeScaling::LongRope {
                long,
                original_max_position_embeddings,
                ..
            } => Some((self.divided(long), *original_max_position_embeddings)),
            _ => None,
        }
    }

    /// The factor cos and sin are multiplied by (1 unless longrope).
    pub fn attention_factor(&self) -> f32 {
        match &self.scaling {
            RopeScaling::LongRope { attention_factor, .. } => *attention_factor,
            _ => 1.0,
        }
    }

    fn divided(&self, factors: &[f32]) -> Vec<f32> {
        let d = self.rot_dim;
        (0..d / 2)
            .map(|i| 1.0 / (factors[i] * self.theta.powf((2 * i) as f32 / d as f32)))
            .collect()
    }

    fn inv_freq_scaled(&self) -> Vec<f32> {
        let d = self.rot_dim;
        let base: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / self.theta.powf((2 * i) as f32 / d as f32))
            .collect();
        match self.scaling {
            RopeScaling::None | RopeScaling::LongRope { .. } => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let low_wavelen = original_max_position_embeddings / low_freq_factor;
                let high_wavelen = original_max_position_embeddings / high_freq_factor;
                let scale = |f: f32| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen > low_wavelen {
                        f / factor
                    } else if wavelen < high_wavelen {
                        f
                    } else {
                        let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                };
                base.into_iter().map(scale).collect()
            }
        }
    }
}

/// The shape and variant of a model.
#[derive(Debug, Clone)]
pub struct Hparams {
    pub arch: Arch,
    /// The name the model calls itself (`architectures[0]` or `general.architecture`).
    pub arch_name: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    /// Epsilon of every norm (`rms_norm_eps`, `layer_norm_eps`, `layer_norm_epsilon`).
    pub norm_eps: f32,
    pub norm: NormKind,
    pub mlp: MlpKind,
    pub residual: Residual,
    pub positions: Positions,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub hidden_act: Activation,
    /// Rope of global (full-attention) layers.
    pub rope: Rope,
    /// Rope of sliding-window layers when it differs (Gemma 3's `rope_local_base_freq`).
    pub rope_local: Option<Rope>,
    /// Sliding window size and which layers use it (`layer_types`).
    pub sliding_window: Option<usize>,
    pub sliding_layers: Vec<bool>,
    /// Attention score scale (1/sqrt(head_dim) unless `query_pre_attn_scalar`).
    pub attn_scale: f32,
    pub attn_logit_softcapping: Option<f32>,
    pub final_logit_softcapping: Option<f32>,
    /// Multiply embeddings by this (Gemma: sqrt(hidden_size)).
    pub embed_scale: Option<f32>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// The largest vocabulary, width, head count or layer count a config may give (2^24).
pub const MAX_DIM: usize = 1 << 24;

/// `v` when it is at most `MAX_DIM` (for sizes read before `Hparams::validate` sees them, such as
/// the layer count that per-layer tables are built from).
pub(crate) fn at_most_max(path: &Path, key: &str, v: usize) -> Result<usize, Error> {
    if v > MAX_DIM {
        return Err(Error::config(
            path,
            key,
            format!("{v} is too large (at most {MAX_DIM})"),
        ));
    }
    Ok(v)
}

impl Hparams {
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }
    pub fn is_sliding(&self, layer: usize) -> bool {
        self.sliding_layers.get(layer).copied().unwrap_or(false)
    }

    /// The variant features worth showing (`ondo show`): softcaps, window pattern, rotary dims,
    /// parallel residual, norm and MLP kinds. Empty entries are left out.
    pub fn specials(&self) -> Vec<(&'static str, String)> {
        let mut s = vec![
            ("norm", format!("{:?}", self.norm)),
            ("mlp", format!("{:?} ({:?})", self.mlp, self.hidden_act)),
            ("residual", format!("{:?}", self.residual)),
        ];
        match self.positions {
            Positions::Learned => s.push(("positions", "learned".into())),
            Positions::Rope => s.push(("rotary_dims", format!("{} of {}", self.rope.rot_dim, self.head_dim))),
        }
        if let Some(w) = self.sliding_window {
            let pattern: String = self.sliding_layers.iter().map(|&b| if b { 'S' } else { 'F' }).collect();
            if self.sliding_layers.iter().any(|&b| b) {
                s.push(("sliding_window", format!("{w}, layers {pattern}")));
            }
        }
        if let Some(c) = self.attn_logit_softcapping {
            s.push(("attn_softcap", c.to_string()));
        }
        if let Some(c) = self.final_logit_softcapping {
            s.push(("final_softcap", c.to_string()));
        }
        s
    }

    /// Checks every value the forward pass relies on, so bad configs are errors, not panics.
    /// Every size is at most `MAX_DIM`.
    /// `key` spells a field the way the file does (config.json's name, or the GGUF key).
    pub(crate) fn validate(&self, path: &Path, key: &dyn Fn(&str) -> String) -> Result<(), Error> {
        let nonzero = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("head_dim", self.head_dim),
            ("num_hidden_layers", self.num_hidden_layers),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(Error::config(path, &key(name), "is missing or 0"));
        }
        // no real model comes near this; past it, sizes derived from them could overflow
        if let Some((name, v)) = nonzero.iter().find(|(_, v)| *v > MAX_DIM) {
            return Err(Error::config(
                path,
                &key(name),
                format!("{v} is too large (at most {MAX_DIM})"),
            ));
        }
        let (h, kv) = (self.num_attention_heads, self.num_key_value_heads);
        if kv == 0 || h % kv != 0 {
            return Err(Error::config(
                path,
                &key("num_key_value_heads"),
                format!("{kv} does not divide num_attention_heads {h}"),
            ));
        }
        if self.positions == Positions::Rope {
            for rope in std::iter::once(&self.rope).chain(self.rope_local.as_ref()) {
                if let RopeScaling::LongRope { short, long, .. } = &rope.scaling {
                    let want = rope.rot_dim / 2;
                    if short.len() != want || long.len() != want {
                        return Err(Error::config(
                            path,
                            "rope_scaling.short_factor",
                            format!(
                                "short/long factors have {}/{} values, expected {want} (rotary dims / 2)",
                                short.len(),
                                long.len()
                            ),
                        ));
                    }
                }
                if rope.rot_dim > self.head_dim || rope.rot_dim % 2 != 0 {
                    return Err(Error::config(
                        path,
                        &key("rotary dimension"),
                        format!("{} must be even and at most head_dim {}", rope.rot_dim, self.head_dim),
                    ));
                }
            }
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return Err(Error::config(
                path,
                &key("rms_norm_eps"),
                format!("{} must be a non-negative number", self.norm_eps),
            ));
        }
        if self.sliding_window == Some(0) {
            return Err(Error::config(path, "sliding_window", "must be greater than 0"));
        }
        Ok(())
    }
}
