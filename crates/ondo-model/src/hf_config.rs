//! HF config.json → `Hparams`: the keys every architecture shares, read here once, then the
//! architecture's own aliases (`ArchSpec::hf_keys`: GPT-2's `n_embd` for `hidden_size`) and
//! fix-ups (`ArchSpec::hf_fixup`). Every error names the file and the field.

use crate::arch::{self, ArchSpec};
use crate::config::{Activation, Hparams, MlpKind, NormKind, Positions, Residual, Rope, RopeScaling};
use crate::Error;
use serde_json::Value;
use std::path::Path;

/// Reads typed fields from a JSON config, naming the file and field in every error. A key the
/// architecture spells differently is found through `aliases` (canonical name, its name).
pub(crate) struct Fields<'a> {
    pub path: &'a Path,
    pub json: &'a Value,
    pub aliases: &'a [(&'a str, &'a str)],
}

impl<'a> Fields<'a> {
    /// The value of `key` (or of its alias) and the name it was found under.
    fn lookup(&self, key: &'a str) -> (&'a str, Option<&'a Value>) {
        let direct = self.json.get(key).filter(|v| !v.is_null());
        if direct.is_some() {
            return (key, direct);
        }
        for &(canonical, alias) in self.aliases {
            if canonical == key {
                if let Some(v) = self.json.get(alias).filter(|v| !v.is_null()) {
                    return (alias, Some(v));
                }
            }
        }
        (key, None)
    }
    pub fn get(&self, key: &'a str) -> Option<&'a Value> {
        self.lookup(key).1
    }
    fn typed<T>(&self, key: &'a str, what: &str, conv: impl Fn(&'a Value) -> Option<T>) -> Result<Option<T>, Error> {
        match self.lookup(key) {
            (_, None) => Ok(None),
            (name, Some(v)) => conv(v)
                .map(Some)
                .ok_or_else(|| Error::config(self.path, name, format!("expected {what}, got {v}"))),
        }
    }
    pub fn usize(&self, key: &'a str) -> Result<usize, Error> {
        self.opt_usize(key)?
            .ok_or_else(|| Error::config(self.path, key, "is missing"))
    }
    pub fn opt_usize(&self, key: &'a str) -> Result<Option<usize>, Error> {
        self.typed(key, "a non-negative integer", |v| v.as_u64().map(|n| n as usize))
    }
    pub fn opt_f32(&self, key: &'a str) -> Result<Option<f32>, Error> {
        self.typed(key, "a number", |v| v.as_f64().map(|n| n as f32))
    }
    pub fn opt_bool(&self, key: &'a str) -> Result<Option<bool>, Error> {
        self.typed(key, "true or false", Value::as_bool)
    }
    pub fn opt_str(&self, key: &'a str) -> Result<Option<&'a str>, Error> {
        self.typed(key, "a string", Value::as_str)
    }
    /// An id or a list of ids (`eos_token_id`).
    pub fn ids(&self, key: &'a str) -> Result<Vec<u32>, Error> {
        let (name, v) = self.lookup(key);
        let bad = |v: &Value| {
            Error::config(
                self.path,
                name,
                format!("expected a token id or a list of ids, got {v}"),
            )
        };
        match v {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().map(|n| n as u32).ok_or_else(|| bad(v)))
                .collect(),
            Some(v) => Ok(vec![v.as_u64().ok_or_else(|| bad(v))? as u32]),
        }
    }
    /// The same file, reading a nested object (`rope_scaling`).
    pub fn sub(&self, json: &'a Value) -> Fields<'a> {
        Fields {
            path: self.path,
            json,
            aliases: &[],
        }
    }
}

/// `Hparams` from a parsed HF config.json.
pub fn hparams_from_hf(path: &Path, json: &Value) -> Result<Hparams, Error> {
    let json = json.get("text_config").unwrap_or(json);
    let plain = Fields {
        path,
        json,
        aliases: &[],
    };
    let (spec, arch_name) = find_arch(&plain)?;
    let f = Fields {
        path,
        json,
        aliases: spec.hf_keys,
    };
    let hidden_size = f.usize("hidden_size")?;
    let num_attention_heads = f.usize("num_attention_heads")?;
    let num_key_value_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
    let head_dim = match f.opt_usize("head_dim")? {
        Some(d) => d,
        None if num_attention_heads == 0 => 0,
        None if hidden_size % num_attention_heads != 0 => {
            return Err(Error::config(
                path,
                "num_attention_heads",
                format!("{num_attention_heads} does not divide hidden_size {hidden_size} (and there is no head_dim)"),
            ))
        }
        None => hidden_size / num_attention_heads,
    };
    let num_hidden_layers = crate::config::at_most_max(path, "num_hidden_layers", f.usize("num_hidden_layers")?)?;
    // in f64: f32 rounds large head dims up past themselves
    let rot_dim = match f.opt_f32("partial_rotary_factor")? {
        None => head_dim,
        Some(p) => (head_dim as f64 * p as f64) as usize,
    };
    let (theta, scaling) = rope_params(&f, None)?;
    let sliding_window = f.opt_usize("sliding_window")?;
    let sliding_layers = sliding_layers(&f, num_hidden_layers, sliding_window)?;
    let attn_scale = 1.0 / f.opt_f32("query_pre_attn_scalar")?.unwrap_or(head_dim as f32).sqrt();
    let mut hp = Hparams {
        arch: spec,
        arch_name,
        vocab_size: f.usize("vocab_size")?,
        hidden_size,
        intermediate_size: f.opt_usize("intermediate_size")?.unwrap_or(0),
        num_hidden_layers,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        norm_eps: f.opt_f32("rms_norm_eps")?.unwrap_or(1e-6),
        norm: NormKind::Rms,
        mlp: MlpKind::Gated,
        residual: Residual::Sequential,
        positions: Positions::Rope,
        max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(2048),
        tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        hidden_act: activation(&f)?,
        rope: Rope {
            theta,
            scaling,
            rot_dim,
            style: ondo_kernels::ops::RopeStyle::Neox,
        },
        rope_local: None,
        sliding_window,
        sliding_layers,
        attn_scale,
        attn_logit_softcapping: f.opt_f32("attn_logit_softcapping")?,
        final_logit_softcapping: f.opt_f32("final_logit_softcapping")?,
        embed_scale: None,
        bos_token_id: f.ids("bos_token_id")?.first().copied(),
        eos_token_ids: f.ids("eos_token_id")?,
    };
    (spec.hf_fixup)(&f, &mut hp)?;
    // config.json names the field as the architecture spells it (GPT-2's `n_embd`)
    hp.validate(path, &|k| f.lookup(k).0.to_string())?;
    Ok(hp)
}

/// The registry entry config.json names (`architectures[0]`, else `model_type`).
fn find_arch(f: &Fields) -> Result<(&'static ArchSpec, String), Error> {
    let unknown = |name: &str, supported: Vec<&str>| Error::UnknownArch {
        path: f.path.to_path_buf(),
        name: name.to_string(),
        supported: supported.join(", "),
    };
    if let Some(list) = f.get("architectures") {
        let first = list
            .as_array()
            .and_then(|a| a.first())
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::config(f.path, "architectures", format!("expected a list of names, got {list}")))?;
        let spec = arch::by_hf_name(first).ok_or_else(|| unknown(first, arch::hf_names()))?;
        return Ok((spec, first.to_string()));
    }
    let model_type = f
        .opt_str("model_type")?
        .ok_or_else(|| Error::config(f.path, "architectures", "is missing (and so is model_type)"))?;
    let (spec, name) = arch::by_model_type(model_type).ok_or_else(|| unknown(model_type, arch::model_types()))?;
    Ok((spec, name.to_string()))
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
pub(crate) fn rope_params(f: &Fields, layer_type: Option<&str>) -> Result<(f32, RopeScaling), Error> {
    let params = f
        .get("rope_parameters")
        .map(|p| match layer_type.and_then(|t| p.get(t)) {
            Some(per_type) => per_type,
            None => p,
        });
    let scaling_json = params.or(f.get("rope_scaling"));
    let theta = match params.and_then(|p| p.get("rope_theta")) {
        Some(v) => v.as_f64().map(|v| v as f32).ok_or_else(|| {
            Error::config(
                f.path,
                "rope_parameters.rope_theta",
                format!("expected a number, got {v}"),
            )
        })?,
        None => f.opt_f32("rope_theta")?.unwrap_or(10000.0),
    };
    let scaling = match scaling_json {
        None => RopeScaling::None,
        Some(s) => rope_scaling(f, s)?,
    };
    Ok((theta, scaling))
}

fn rope_scaling(f: &Fields, s: &Value) -> Result<RopeScaling, Error> {
    let sub = f.sub(s);
    let kind = sub.opt_str("rope_type")?.or(sub.opt_str("type")?).unwrap_or("default");
    let factor = || sub.opt_f32("factor").map(|v| v.unwrap_or(1.0));
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: factor()? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: sub.opt_f32("low_freq_factor")?.unwrap_or(1.0),
            high_freq_factor: sub.opt_f32("high_freq_factor")?.unwrap_or(4.0),
            original_max_position_embeddings: sub.opt_usize("original_max_position_embeddings")?.unwrap_or(8192) as f32,
        }),
        "longrope" => {
            let list = |key: &'static str| -> Result<Vec<f32>, Error> {
                let bad = || Error::config(f.path, key, "expected a list of numbers");
                sub.get(key)
                    .and_then(Value::as_array)
                    .ok_or_else(bad)?
                    .iter()
                    .map(|v| v.as_f64().map(|x| x as f32).ok_or_else(bad))
                    .collect()
            };
            let max = f.opt_usize("max_position_embeddings")?.unwrap_or(2048);
            let original = match sub.opt_usize("original_max_position_embeddings")? {
                Some(v) => v,
                None => f.usize("original_max_position_embeddings")?,
            };
            let factor = max as f32 / original as f32;
            let attention_factor = match sub.opt_f32("attention_factor")? {
                Some(a) => a,
                None if factor <= 1.0 => 1.0,
                None => (1.0 + factor.ln() / (original as f32).ln()).sqrt(),
            };
            Ok(RopeScaling::LongRope {
                short: list("short_factor")?,
                long: list("long_factor")?,
                original_max_position_embeddings: original,
                attention_factor,
            })
        }
        other => Err(Error::config(
            f.path,
            "rope_scaling.rope_type",
            format!("unsupported rope type `{other}`"),
        )),
    }
}

/// `layer_types` when given; otherwise every layer slides when a window is set (Mistral).
/// Architectures with a fixed pattern override this in their fix-up.
fn sliding_layers(f: &Fields, layers: usize, window: Option<usize>) -> Result<Vec<bool>, Error> {
    if let Some(types) = layer_types(f)? {
        return Ok(types);
    }
    Ok(vec![
        window.is_some()
            && f.opt_bool("use_sliding_window")?.unwrap_or(true);
        layers
    ])
}

/// `layer_types` as sliding (true) / full (false), when config.json has it.
pub(crate) fn layer_types(f: &Fields) -> Result<Option<Vec<bool>>, Error> {
    let Some(v) = f.get("layer_types") else {
        return Ok(None);
    };
    let bad = || Error::config(f.path, "layer_types", format!("expected a list of names, got {v}"));
    let items = v.as_array().ok_or_else(bad)?;
    items
        .iter()
        .map(|t| t.as_str().map(|s| s == "sliding_attention").ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
