//! `Hparams`: everything the forward pass needs to know about a model's shape and variant,
//! read from an HF config.json (here) or GGUF metadata (in `gguf_config`).
//!
//! Field names follow HF's config names. Differences between architectures are fields here
//! (norm offsets, activation, biases, rope variant, sliding window), never copied code.

use crate::Error;
use serde_json::Value;
use std::path::Path;

/// The architectures ondo runs. Each has a file in `arch/` and one line in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3/3.x, SmolLM, TinyLlama, Mistral, Qwen2/2.5: one decoder, differing only in hparams.
    Llama,
    /// Gemma 3 (text): q/k norms, sandwich norms, sliding-window local layers, GeGLU, scaled embeddings.
    Gemma3,
}

/// How rope angles are stretched for long contexts (`rope_scaling` / `rope_parameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
    /// Exact GELU (`gelu`: x·Φ(x) with erf).
    Gelu,
}

/// Rope parameters of one kind of layer.
#[derive(Debug, Clone, Copy, PartialEq)]
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
        let d = self.rot_dim;
        let base: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / self.theta.powf((2 * i) as f32 / d as f32))
            .collect();
        match self.scaling {
            RopeScaling::None => base,
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
    pub rms_norm_eps: f32,
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
}

/// Reads typed fields from a JSON config, naming the file and field in every error.
pub(crate) struct Fields<'a> {
    pub path: &'a Path,
    pub json: &'a Value,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }
    pub fn usize(&self, key: &str) -> Result<usize, Error> {
        self.opt_usize(key)?
            .ok_or_else(|| Error::config(self.path, key, "is missing"))
    }
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                Error::config(
                    self.path,
                    key,
                    format!("expected a non-negative integer, got {v}"),
                )
            }),
        }
    }
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(|n| Some(n as f32)).ok_or_else(|| {
                Error::config(self.path, key, format!("expected a number, got {v}"))
            }),
        }
    }
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                Error::config(self.path, key, format!("expected true or false, got {v}"))
            }),
        }
    }
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                Error::config(self.path, key, format!("expected a string, got {v}"))
            }),
        }
    }
    /// An id or a list of ids (`eos_token_id`).
    pub fn ids(&self, key: &str) -> Result<Vec<u32>, Error> {
        let bad = |v: &Value| {
            Error::config(
                self.path,
                key,
                format!("expected a token id or a list of ids, got {v}"),
            )
        };
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as u32).ok_or_else(|| bad(v)))
                .collect(),
            Some(v) => Ok(vec![v.as_u64().ok_or_else(|| bad(v))? as u32]),
        }
    }
}

/// The architectures config.json may name, and what ondo runs them as.
const HF_ARCHS: &[(&str, Arch)] = &[
    ("LlamaForCausalLM", Arch::Llama),
    ("MistralForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Llama),
    ("Gemma3ForCausalLM", Arch::Gemma3),
];

/// `Hparams` from a parsed HF config.json.
pub fn hparams_from_hf(path: &Path, json: &Value) -> Result<Hparams, Error> {
    let json = json.get("text_config").unwrap_or(json);
    let f = Fields { path, json };
    let arch_name = hf_arch_name(&f)?;
    let arch = HF_ARCHS
        .iter()
        .find(|(n, _)| *n == arch_name)
        .map(|(_, a)| *a)
        .ok_or_else(|| Error::UnknownArch {
            path: path.to_path_buf(),
            name: arch_name.clone(),
            supported: HF_ARCHS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let hidden_size = f.usize("hidden_size")?;
    let num_attention_heads = f.usize("num_attention_heads")?;
    let num_key_value_heads = f
        .opt_usize("num_key_value_heads")?
        .unwrap_or(num_attention_heads);
    let head_dim = f
        .opt_usize("head_dim")?
        .unwrap_or(hidden_size / num_attention_heads.max(1));
    let num_hidden_layers = f.usize("num_hidden_layers")?;
    check_nonzero(
        path,
        &[
            ("hidden_size", hidden_size),
            ("num_attention_heads", num_attention_heads),
            ("head_dim", head_dim),
        ],
    )?;
    if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
        return Err(Error::config(
            path,
            "num_key_value_heads",
            format!(
                "{num_key_value_heads} does not divide num_attention_heads {num_attention_heads}"
            ),
        ));
    }
    let is_gemma = arch == Arch::Gemma3;
    let rot_dim = (head_dim as f32 * f.opt_f32("partial_rotary_factor")?.unwrap_or(1.0)) as usize;
    let style = ondo_kernels::ops::RopeStyle::Neox;
    let (theta, scaling) = rope_params(
        &f,
        if is_gemma {
            Some("full_attention")
        } else {
            None
        },
    )?;
    let rope = Rope {
        theta,
        scaling,
        rot_dim,
        style,
    };
    let rope_local = if is_gemma {
        Some(gemma_local_rope(&f, rope)?)
    } else {
        None
    };
    let sliding_window = f.opt_usize("sliding_window")?;
    let sliding_layers = sliding_layers(&f, num_hidden_layers, is_gemma, sliding_window)?;
    let hidden_act = activation(&f)?;
    let attn_scale = 1.0
        / f.opt_f32("query_pre_attn_scalar")?
            .unwrap_or(head_dim as f32)
            .sqrt();
    Ok(Hparams {
        arch,
        arch_name,
        vocab_size: f.usize("vocab_size")?,
        hidden_size,
        intermediate_size: f.usize("intermediate_size")?,
        num_hidden_layers,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        rms_norm_eps: f.opt_f32("rms_norm_eps")?.unwrap_or(1e-6),
        max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(2048),
        tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(is_gemma),
        hidden_act,
        rope,
        rope_local,
        sliding_window,
        sliding_layers,
        attn_scale,
        attn_logit_softcapping: f.opt_f32("attn_logit_softcapping")?,
        final_logit_softcapping: f.opt_f32("final_logit_softcapping")?,
        embed_scale: is_gemma.then(|| (hidden_size as f32).sqrt()),
        bos_token_id: f.ids("bos_token_id")?.first().copied(),
        eos_token_ids: f.ids("eos_token_id")?,
    })
}

fn check_nonzero(path: &Path, fields: &[(&str, usize)]) -> Result<(), Error> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::config(path, name, "must be greater than 0")),
        None => Ok(()),
    }
}

fn hf_arch_name(f: &Fields) -> Result<String, Error> {
    if let Some(list) = f.get("architectures") {
        let first = list
            .as_array()
            .and_then(|a| a.first())
            .and_then(|v| v.as_str());
        return first.map(str::to_string).ok_or_else(|| {
            Error::config(
                f.path,
                "architectures",
                format!("expected a list of names, got {list}"),
            )
        });
    }
    let model_type = f.opt_str("model_type")?.ok_or_else(|| {
        Error::config(f.path, "architectures", "is missing (and so is model_type)")
    })?;
    Ok(match model_type {
        "llama" => "LlamaForCausalLM",
        "mistral" => "MistralForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "gemma3_text" => "Gemma3ForCausalLM",
        other => other,
    }
    .to_string())
}

fn activation(f: &Fields) -> Result<Activation, Error> {
    let name = f
        .opt_str("hidden_act")?
        .or(f.opt_str("hidden_activation")?)
        .unwrap_or("silu");
    match name {
        "silu" | "swish" => Ok(Activation::Silu),
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Activation::GeluTanh),
        "gelu" => Ok(Activation::Gelu),
        other => Err(Error::config(
            f.path,
            "hidden_act",
            format!("unsupported activation `{other}`"),
        )),
    }
}

/// rope_theta and scaling, from transformers 4's `rope_theta` + `rope_scaling` or transformers 5's
/// `rope_parameters` (optionally one entry per layer type).
fn rope_params(f: &Fields, layer_type: Option<&str>) -> Result<(f32, RopeScaling), Error> {
    let params = f
        .get("rope_parameters")
        .map(|p| match layer_type.and_then(|t| p.get(t)) {
            Some(per_type) => per_type,
            None => p,
        });
    let scaling_json = params.or(f.get("rope_scaling"));
    let theta = params
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .map(|v| v as f32)
        .or(f.opt_f32("rope_theta")?)
        .unwrap_or(10000.0);
    let scaling = match scaling_json {
        None => RopeScaling::None,
        Some(s) => rope_scaling(f, s)?,
    };
    Ok((theta, scaling))
}

fn rope_scaling(f: &Fields, s: &Value) -> Result<RopeScaling, Error> {
    let sub = Fields {
        path: f.path,
        json: s,
    };
    let kind = sub
        .opt_str("rope_type")?
        .or(sub.opt_str("type")?)
        .unwrap_or("default");
    let factor = || sub.opt_f32("factor").map(|v| v.unwrap_or(1.0));
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: factor()? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: sub.opt_f32("low_freq_factor")?.unwrap_or(1.0),
            high_freq_factor: sub.opt_f32("high_freq_factor")?.unwrap_or(4.0),
            original_max_position_embeddings: sub
                .opt_usize("original_max_position_embeddings")?
                .unwrap_or(8192) as f32,
        }),
        other => Err(Error::config(
            f.path,
            "rope_scaling.rope_type",
            format!("unsupported rope type `{other}`"),
        )),
    }
}

fn gemma_local_rope(f: &Fields, global: Rope) -> Result<Rope, Error> {
    let (theta, scaling) = match f
        .get("rope_parameters")
        .and_then(|p| p.get("sliding_attention"))
    {
        Some(_) => rope_params(f, Some("sliding_attention"))?,
        None => (
            f.opt_f32("rope_local_base_freq")?.unwrap_or(10000.0),
            RopeScaling::None,
        ),
    };
    Ok(Rope {
        theta,
        scaling,
        ..global
    })
}

fn sliding_layers(
    f: &Fields,
    layers: usize,
    is_gemma: bool,
    window: Option<usize>,
) -> Result<Vec<bool>, Error> {
    if let Some(types) = f.get("layer_types").and_then(Value::as_array) {
        return Ok(types
            .iter()
            .map(|t| t.as_str() == Some("sliding_attention"))
            .collect());
    }
    if is_gemma {
        let pattern = f.opt_usize("sliding_window_pattern")?.unwrap_or(6).max(1);
        return Ok((0..layers).map(|i| (i + 1) % pattern != 0).collect());
    }
    // Mistral-style: every layer slides when a window is set.
    Ok(vec![
        window.is_some()
            && f.opt_bool("use_sliding_window")?.unwrap_or(true);
        layers
    ])
}
