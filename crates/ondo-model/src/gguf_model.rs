//! A GGUF file as a model: `Hparams` from its metadata (`general.architecture` and the
//! `{arch}.*` keys) and its tensors as a `TensorStore` under the canonical (GGUF) names.

use crate::config::{Activation, Arch, Hparams, Rope, RopeScaling};
use crate::gguf::{GgufError, GgufFile};
use crate::store::{TensorData, TensorStore};
use crate::Error;
use ondo_kernels::ops::RopeStyle;
use std::path::Path;

impl From<GgufError> for Error {
    fn from(e: GgufError) -> Error {
        Error::Gguf(Box::new(e))
    }
}

/// The architectures a GGUF may name, what ondo runs them as, and their rope layout.
const GGUF_ARCHS: &[(&str, Arch, RopeStyle)] = &[
    // llama.cpp's converter permutes llama q/k rows so rope pairs are interleaved.
    ("llama", Arch::Llama, RopeStyle::Interleaved),
    ("mistral", Arch::Llama, RopeStyle::Interleaved),
    ("qwen2", Arch::Llama, RopeStyle::Neox),
    ("gemma3", Arch::Gemma3, RopeStyle::Neox),
];

/// Reads `{arch}.{key}` metadata, naming the key in errors.
struct Keys<'a> {
    g: &'a GgufFile,
    arch: &'a str,
}

impl Keys<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }
    fn opt_usize(&self, k: &str) -> Result<Option<usize>, Error> {
        Ok(self.g.get_u64(&self.key(k))?.map(|v| v as usize))
    }
    fn usize(&self, k: &str) -> Result<usize, Error> {
        self.opt_usize(k)?
            .ok_or_else(|| Error::config(self.g.path(), &self.key(k), "is missing"))
    }
    fn opt_f32(&self, k: &str) -> Result<Option<f32>, Error> {
        Ok(self.g.get_f32(&self.key(k))?)
    }
}

/// `Hparams` of a GGUF model.
pub fn hparams_from_gguf(g: &GgufFile) -> Result<Hparams, Error> {
    let path = g.path();
    let name = g
        .get_str("general.architecture")?
        .ok_or_else(|| Error::config(path, "general.architecture", "is missing"))?;
    let &(_, arch, style) = GGUF_ARCHS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| Error::UnknownArch {
            path: path.to_path_buf(),
            name: name.to_string(),
            supported: GGUF_ARCHS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let k = Keys { g, arch: name };
    let hidden_size = k.usize("embedding_length")?;
    let heads = k.usize("attention.head_count")?;
    let kv_heads = k.opt_usize("attention.head_count_kv")?.unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(Error::config(
            path,
            &k.key("attention.head_count_kv"),
            format!("{kv_heads} does not divide head_count {heads}"),
        ));
    }
    let head_dim = k
        .opt_usize("attention.key_length")?
        .unwrap_or(hidden_size / heads);
    let layers = k.usize("block_count")?;
    let is_gemma = arch == Arch::Gemma3;
    let rope = Rope {
        theta: k.opt_f32("rope.freq_base")?.unwrap_or(10000.0),
        scaling: rope_scaling(&k)?,
        rot_dim: k.opt_usize("rope.dimension_count")?.unwrap_or(head_dim),
        style,
    };
    let sliding_window = k.opt_usize("attention.sliding_window")?;
    let vocab_size = match g.tensor("token_embd.weight") {
        Some(t) => t.rows_cols().0 as usize,
        None => g
            .get_str_array("tokenizer.ggml.tokens")?
            .map_or(0, |t| t.len()),
    };
    Ok(Hparams {
        arch,
        arch_name: name.to_string(),
        vocab_size,
        hidden_size,
        intermediate_size: k.usize("feed_forward_length")?,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        rms_norm_eps: k
            .opt_f32("attention.layer_norm_rms_epsilon")?
            .unwrap_or(1e-5),
        max_position_embeddings: k.opt_usize("context_length")?.unwrap_or(2048),
        tie_word_embeddings: g.tensor("output.weight").is_none(),
        hidden_act: if is_gemma {
            Activation::GeluTanh
        } else {
            Activation::Silu
        },
        rope,
        // llama.cpp runs Gemma 3's local layers with base 10000 (not stored in the file).
        rope_local: is_gemma.then_some(Rope {
            theta: 10000.0,
            scaling: RopeScaling::None,
            ..rope
        }),
        sliding_window,
        // Gemma 3: five local layers, then one global.
        sliding_layers: (0..layers)
            .map(|i| is_gemma && sliding_window.is_some() && (i + 1) % 6 != 0)
            .collect(),
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        attn_logit_softcapping: k.opt_f32("attn_logit_softcapping")?,
        final_logit_softcapping: k.opt_f32("final_logit_softcapping")?,
        embed_scale: is_gemma.then(|| (hidden_size as f32).sqrt()),
        bos_token_id: g.get_u32("tokenizer.ggml.bos_token_id")?,
        eos_token_ids: g
            .get_u32("tokenizer.ggml.eos_token_id")?
            .into_iter()
            .collect(),
    })
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
