//! Entry points of the cargo-fuzz targets (top-level `fuzz/`) and of the tests that replay their
//! corpora and crash inputs on stable (`tests/fuzz_replay.rs`). Each takes arbitrary bytes and
//! returns `Ok` or a clean `Err`: a panic, a hang or an unbounded allocation is a bug. Not an API.
//!
//! - [`gguf_file`]: a GGUF image, then everything a loader asks of it ([`use_gguf`]).
//! - [`safetensors_file`]: one safetensors file (header, tensor table, byte ranges).
//! - [`safetensors_index`]: `model.safetensors.index.json`.
//! - [`config_load`]: config.json → `Hparams` → a model built against a tiny real weight set
//!   ([`FakeWeights`], the `fixtures/tiny-models` folders) with every shape checked → one short
//!   forward pass.

use crate::config::hparams_from_hf;
use crate::gguf::{GgufError, GgufFile};
use crate::kv::{KvDtype, LogitsFor, SeqCache};
use crate::load::build_hf;
use crate::safetensors::{parse_index, tensors_of, SafetensorsStore};
use crate::{Error, Workspace};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Open a GGUF image held in memory and use all of it.
pub fn gguf_file(data: &[u8]) -> Result<usize, GgufError> {
    let f = GgufFile::from_vec("fuzz.gguf", data.to_vec())?;
    use_gguf(&f);
    Ok(f.tensors().len())
}

/// Every typed metadata read, and every tensor's bytes and values: nothing here may panic on
/// a file that opened.
pub fn use_gguf(f: &GgufFile) {
    for (key, value) in f.metadata() {
        let _ = (value.type_name(), f.get_u32(key), f.get_f32(key), f.get_str(key));
        let _ = (f.get_str_array(key), f.get_f32_array(key), f.get_i32_array(key));
    }
    for t in f.tensors() {
        let _ = f.bytes(t);
        if let Ok(w) = f.weight(&t.name) {
            let _ = w.to_f32();
        }
    }
}

/// Parse a safetensors file held in memory and read every tensor's bytes.
pub fn safetensors_file(data: &[u8]) -> Result<usize, Error> {
    let tensors = tensors_of(Path::new("fuzz.safetensors"), Arc::new(data.to_vec()))?;
    Ok(tensors.iter().map(|(_, t, _)| t.bytes.as_slice().len()).sum())
}

/// Parse a `model.safetensors.index.json`; returns the number of shard files it names.
pub fn safetensors_index(data: &[u8]) -> Result<usize, Error> {
    let index = Path::new("models/fuzz/model.safetensors.index.json");
    let text = std::str::from_utf8(data).map_err(|e| Error::Format {
        path: index.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(parse_index(index, text)?.0.len())
}

/// The tiny models' weights, each with its config.json, to build fuzzed configs against.
pub struct FakeWeights {
    models: Vec<(Value, SafetensorsStore)>,
}

impl FakeWeights {
    /// Every folder under `dir` with a config.json and safetensors weights.
    pub fn open(dir: &Path) -> Result<FakeWeights, Error> {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        folders.sort();
        let mut models = vec![];
        for folder in folders {
            let Ok(text) = std::fs::read_to_string(folder.join("config.json")) else {
                continue;
            };
            let Ok(store) = SafetensorsStore::open_dir(&folder) else {
                continue;
            };
            let config = serde_json::from_str(&text).map_err(|source| Error::Json { path: folder, source })?;
            models.push((config, store));
        }
        Ok(FakeWeights { models })
    }

    /// The weights whose config shares the most top-level values with `config`.
    fn closest(&self, config: &Value) -> Option<&SafetensorsStore> {
        let shared = |c: &Value| match (c.as_object(), config.as_object()) {
            (Some(a), Some(b)) => a.iter().filter(|(k, v)| b.get(*k) == Some(*v)).count(),
            _ => 0,
        };
        let best = self.models.iter().max_by_key(|(c, _)| shared(c))?;
        Some(&best.1)
    }
}

/// config.json bytes → `Hparams` → the model built against the closest fake weights → the
/// logits of three tokens.
pub fn config_load(config: &[u8], weights: &FakeWeights) -> Result<usize, Error> {
    let path = Path::new("config.json");
    let json: Value = serde_json::from_slice(config).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let hp = hparams_from_hf(path, &json)?;
    let Some(store) = weights.closest(&json) else {
        return Ok(0);
    };
    let model = build_hf(hp, store, None)?;
    let mut kv = SeqCache::new(model.hparams(), 8, KvDtype::F32);
    let mut ws = Workspace::new(model.hparams(), 4);
    let tokens: Vec<u32> = (0..3).map(|i| i % model.hparams().vocab_size as u32).collect();
    Ok(kv.forward(&*model, &tokens, &mut ws, LogitsFor::Last)?.len())
}
