//! A GGUF file as a model: `Hparams` from its metadata (`general.architecture` and the
//! `{arch}.*` keys, then the architecture's `gguf_fixup`) and its tensors as a `TensorStore`
//! under the canonical (GGUF) names.

use crate::arch;
use crate::config::{Activation, Hparams, MlpKind, NormKind, Positions, Residual, Rope, RopeScaling};
use crate::gguf::{GgufError, GgufFile};
use crate::store::{TensorData, TensorStore};
use crate::Error;
use std::path::Path;

impl From<GgufError> for Error {
    fn from(e: GgufError) -> Error {
        Error::Gguf(Box::new(e))
    }
}

/// Reads `{arch}.{key}` metadata, naming the key in errors.
pub(crate) struct Keys<'a> {
    pub g: &'a GgufFile,
    pub arch: &'a str,
}

impl Keys<'_> {
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }
    pub fn opt_usize(&self, k: &str) -> Result<Option<usize>, Error> {
        Ok(self.g.get_u64(&self.key(k))?.map(|v| v as usize))
    }
    pub fn usize(&self, k: &str) -> Result<usize, Error> {
        self.opt_usize(k)?
            .ok_or_else(|| Error::config(self.g.path(), &self.key(k), "is missing"))
    }
    pub fn opt_f32(&self, k: &str) -> Result<Option<f32>, Error> {
        Ok(self.g.get_f32(&self.key(k))?)
    }
    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>, Error> {
        Ok(self.g.get_bool(&self.key(k))?)
    }
}

/// `Hparams` of a GGUF model: the keys every architecture shares, then its spec's fix-up.
pub fn hparams_from_gguf(g: &GgufFile) -> Result<Hparams, Error> {
    let path = g.path();
    let name = g
        .get_str("general.architecture")?
        .ok_or_else(|| Error::config(path, "general.architecture", "is missing"))?;
    let (spec, style) = arch::by_gguf_name(name).ok_or_else(|| Error::UnknownArch {
        path: path.to_path_buf(),
        name: name.to_string(),
        supported: arch::gguf_names().join(", "),
    })?;
    let k = Keys { g, arch: name };
    let hidden_size = k.usize("embedding_length")?;
    let heads = k.usize("attention.head_count")?;
    let kv_heads = k.opt_usize("attention.head_count_kv")?.unwrap_or(heads);
    let head_dim = match k.opt_usize("attention.key_length")? {
        Some(d) => d,
        None if heads > 0 && hidden_size % heads != 0 => {
            return Err(Error::config(
                k.g.path(),
                &k.key("attention.head_count"),
                format!("{heads} does not divide embedding_length {hidden_size} (and there is no key_length)"),
            ))
        }
        None => hidden_size / heads.max(1),
    };
    let layers = crate::config::at_most_max(k.g.path(), &k.key("block_count"), k.usize("block_count")?)?;
    let rope = Rope {
        theta: k.opt_f32("rope.freq_base")?.unwrap_or(10000.0),
        scaling: rope_scaling(&k)?,
        rot_dim: k.opt_usize("rope.dimension_count")?.unwrap_or(head_dim),
        style,
    };
    let sliding_window = k.opt_usize("attention.sliding_window")?;
    let vocab_size = match g.tensor("token_embd.weight") {
        Some(t) => t.rows_cols().0 as usize,
        None => g.get_str_array("tokenizer.ggml.tokens")?.map_or(0, |t| t.len()),
    };
    let rms_eps = k.opt_f32("attention.layer_norm_rms_epsilon")?;
    let ln_eps = k.opt_f32("attention.layer_norm_epsilon")?;
    let mut hp = Hparams {
        arch: spec,
        arch_name: name.to_string(),
        vocab_size,
        hidden_size,
        intermediate_size: k.usize("feed_forward_length")?,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        norm_eps: rms_eps.or(ln_eps).unwrap_or(1e-5),
        norm: if rms_eps.is_none() && ln_eps.is_some() {
            NormKind::Layer
        } else {
            NormKind::Rms
        },
        mlp: MlpKind::Gated,
        residual: Residual::Sequential,
        positions: Positions::Rope,
        max_position_embeddings: k.opt_usize("context_length")?.unwrap_or(2048),
        tie_word_embeddings: g.tensor("output.weight").is_none(),
        hidden_act: Activation::Silu,
        rope,
        rope_local: None,
        sliding_window,
        sliding_layers: vec![false; layers],
        attn_scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
        attn_logit_softcapping: k.opt_f32("attn_logit_softcapping")?,
        final_logit_softcapping: k.opt_f32("final_logit_softcapping")?,
        embed_scale: None,
        bos_token_id: g.get_u32("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: g.get_u32("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
    };
    // llama.cpp stores llama3-style rope scaling as per-pair divisors of the angles
    if g.tensor("rope_freqs.weight").is_some() {
        let factors = g.weight("rope_freqs.weight")?.to_f32();
        hp.rope.scaling = RopeScaling::LongRope {
            short: factors.clone(),
            long: factors,
            original_max_position_embeddings: usize::MAX,
            attention_factor: 1.0,
        };
    }
    (spec.gguf_fixup)(&k, &mut hp)?;
    let gguf_key = |field: &str| match field {
        "hidden_size" => k.key("embedding_length"),
        "intermediate_size" => k.key("feed_forward_length"),
        "num_attention_heads" => k.key("attention.head_count"),
        "num_key_value_heads" => k.key("attention.head_count_kv"),
        "head_dim" => k.key("attention.key_length"),
        "num_hidden_layers" => k.key("block_count"),
        "rotary dimension" => k.key("rope.dimension_count"),
        "sliding_window" => k.key("attention.sliding_window"),
        "rms_norm_eps" => k.key("attention.layer_norm_rms_epsilon"),
        "vocab_size" => "token_embd.weight".to_string(),
        other => other.to_string(),
    };
    hp.validate(path, &gguf_key)?;
    Ok(hp)
}

fn rope_scaling(k: &Keys) -> Result<RopeScaling, Error> {
    let kind = k.g.get_str(&k.key("rope.scaling.type"))?;
    let factor = k.opt_f32("rope.scaling.factor")?.unwrap_or(1.0);
    match kind {
        None | Some("none") => Ok(RopeScaling::None),
        Some("linear") => Ok(RopeScaling::Linear { factor }),
        Some(other) => Err(Error::config(
            k.g.path(),
            &k.key("rope.scaling.type"),
            format!("unsupported rope scaling `{other}`"),
        )),
    }
}

impl TensorStore for GgufFile {
    fn path(&self) -> &Path {
        GgufFile::path(self)
    }

    fn get(&self, name: &str) -> Option<Result<TensorData, Error>> {
        let info = self.tensor(name)?;
        let data = || -> Result<TensorData, Error> {
            let weight = self.weight(name)?;
            let shape = info.dims.iter().rev().map(|&d| d as usize).collect();
            Ok(TensorData {
                dtype: weight.dtype(),
                shape,
                bytes: self.bytes(info)?,
            })
        };
        Some(data())
    }

    fn names(&self) -> Vec<String> {
        self.tensors().iter().map(|t| t.name.clone()).collect()
    }

    fn release(&self, name: &str) {
        self.release_tensor_pages(name);
    }
}
