//! From what a user types to a model, its tokenizer and its stop tokens: a model folder, a
//! `.gguf` file, or a hub id resolved in the HF cache (downloaded unless offline).

use crate::EngineError;
use ondo_hub::{self as hub, HubOptions};
use ondo_model::gguf::{GgufError, GgufFile};
use ondo_model::load::{is_gguf, load_gguf_with, load_hf_with, read_json, ModelFiles, QuantizeAtLoad};
use ondo_model::{KvDtype, Model};
use ondo_text::gguf_vocab::*;
use ondo_text::{ChatTemplate, GgufVocab, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A model ready to run, with everything read from its files.
pub struct Loaded {
    pub model: Box<dyn Model>,
    /// Tokenizer, chat template, stop tokens, generation_config.json.
    pub text: TextSide,
    /// The KV cache type this format runs with by default: f32 for HF folders (exact parity
    /// with transformers), f16 for GGUF files (as llama.cpp).
    pub kv_dtype: KvDtype,
    pub path: PathBuf,
}

/// An existing path as given, else a hub id in the HF cache (downloaded when online).
pub fn resolve(model: &str, offline: bool) -> Result<PathBuf, EngineError> {
    let path = PathBuf::from(model);
    if path.exists() {
        return Ok(path);
    }
    if !hub::is_hub_id(model) {
        return Err(EngineError::Load(format!(
            "{model}: no such file or folder, and not a hub id (org/name)"
        )));
    }
    let mut opts = HubOptions::from_env();
    opts.offline |= offline;
    hub::resolve_model(model, &opts).map_err(|e| EngineError::Load(e.to_string()))
}

/// The text side of a model, read without its weights: tokenizer, chat template, stop tokens.
pub struct TextSide {
    pub tokenizer: Tokenizer,
    pub chat_template: Option<ChatTemplate>,
    /// Tokens that end a sequence.
    pub eos_ids: Vec<u32>,
    /// generation_config.json, when the model has one.
    pub generation_config: Option<Value>,
}

/// Where a model's files are: one GGUF file, or an HF folder.
enum Source {
    Gguf(PathBuf),
    Hf(PathBuf),
}

/// A `.gguf` file, a folder holding one `.gguf` and no config.json (a GGUF-only hub snapshot), or
/// an HF folder.
fn locate(path: &Path) -> Source {
    if is_gguf(path) {
        return Source::Gguf(path.to_path_buf());
    }
    match single_gguf(path) {
        Some(file) if !path.join("config.json").exists() => Source::Gguf(file),
        _ => Source::Hf(path.to_path_buf()),
    }
}

/// Load the model at `path` (a folder in HF layout or a GGUF file).
pub fn load_path(path: &Path) -> Result<Loaded, EngineError> {
    load_path_with(path, None)
}

/// `load_path`, quantizing the weights as they load when `quant` is given (`--quantize`).
pub fn load_path_with(path: &Path, quant: Option<&QuantizeAtLoad>) -> Result<Loaded, EngineError> {
    match locate(path) {
        Source::Gguf(file) => {
            let g = open_gguf(&file)?;
            let text = text_from_gguf(&g)?;
            Ok(Loaded {
                model: load_gguf_with(&g, quant)?,
                text,
                kv_dtype: KvDtype::F16,
                path: file,
            })
        }
        Source::Hf(dir) => {
            let files = ModelFiles::locate(&dir)?;
            let model = load_hf_with(&files, quant)?;
            let text = text_from_hf(&dir)?;
            Ok(Loaded {
                model,
                text,
                kv_dtype: KvDtype::F32,
                path: dir,
            })
        }
    }
}

/// Only the text side of the model at `path` (works on vocabulary-only GGUFs and on folders
/// without weights).
pub fn load_text(path: &Path) -> Result<TextSide, EngineError> {
    match locate(path) {
        Source::Gguf(file) => text_from_gguf(&open_gguf(&file)?),
        Source::Hf(dir) => text_from_hf(&dir),
    }
}

fn open_gguf(path: &Path) -> Result<GgufFile, EngineError> {
    Ok(GgufFile::open(path).map_err(ondo_model::Error::from)?)
}

/// The only `.gguf` file in a folder.
fn single_gguf(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_gguf(p));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// tokenizer.json (+ tokenizer_config.json), generation_config.json, the chat template.
fn text_from_hf(dir: &Path) -> Result<TextSide, EngineError> {
    let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    let tokenizer_json = file("tokenizer.json").ok_or_else(|| EngineError::NoTokenizer(dir.display().to_string()))?;
    let tokenizer = Tokenizer::from_files(&tokenizer_json, file("tokenizer_config.json").as_deref())?;
    let generation_config = file("generation_config.json").as_deref().map(read_json).transpose()?;
    let config = file("config.json").as_deref().map(read_json).transpose()?;
    let listed = listed_eos(generation_config.as_ref().or(config.as_ref()).unwrap_or(&Value::Null));
    let eos_ids = merge_ids(tokenizer.eos_token_id().into_iter().chain(listed));
    let chat_template = hf_chat_template(file("chat_template.jinja").as_deref(), &tokenizer)?;
    Ok(TextSide {
        tokenizer,
        chat_template,
        eos_ids,
        generation_config,
    })
}

/// chat_template.jinja when present (transformers >= 4.43 saves it there), else the
/// tokenizer_config.json `chat_template`.
fn hf_chat_template(jinja: Option<&Path>, tokenizer: &Tokenizer) -> Result<Option<ChatTemplate>, EngineError> {
    let null = Value::Null;
    let config = tokenizer.config().unwrap_or(&null);
    let Some(file) = jinja else {
        return Ok(ChatTemplate::from_tokenizer_config(config, None)?);
    };
    let content = |key: &str| match config.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => v.get("content").and_then(Value::as_str).map(str::to_string),
        None => None,
    };
    Ok(Some(ChatTemplate::from_file(
        file,
        content("bos_token").as_deref(),
        content("eos_token").as_deref(),
    )?))
}

/// The vocabulary, its end-of-generation ids and `tokenizer.chat_template` of a GGUF.
pub fn text_from_gguf(g: &GgufFile) -> Result<TextSide, EngineError> {
    let vocab = vocab_from_gguf(g).map_err(ondo_model::Error::from)?;
    let tokenizer = Tokenizer::from_gguf_vocab(&vocab)?;
    // llama.cpp's end-of-generation set: eos, eot, eom and the named end-of-turn control tokens.
    let eos_ids = merge_ids(tokenizer.end_of_generation_ids().iter().copied());
    let token = |id: Option<u32>| id.and_then(|i| vocab.tokens.get(i as usize)).map(String::as_str);
    let chat_template = vocab
        .chat_template
        .as_deref()
        .map(|t| ChatTemplate::new(t, token(vocab.bos_id), token(vocab.eos_id)))
        .transpose()?;
    Ok(TextSide {
        tokenizer,
        chat_template,
        eos_ids,
        generation_config: None,
    })
}

/// The tokenizer fields of a GGUF's metadata.
pub fn vocab_from_gguf(g: &GgufFile) -> Result<GgufVocab, GgufError> {
    let string = |key| Ok::<_, GgufError>(g.get_str(key)?.map(str::to_string));
    let strings = |key| Ok::<_, GgufError>(g.get_str_array(key)?.map(<[String]>::to_vec).unwrap_or_default());
    // A token id; negative values (GGUF writers use -1 for "none") give None.
    let id = |key| Ok::<_, GgufError>(g.get_i64(key)?.and_then(|x| u32::try_from(x).ok()));
    Ok(GgufVocab {
        model: string(KEY_MODEL)?.unwrap_or_default(),
        pre: string(KEY_PRE)?,
        tokens: strings(KEY_TOKENS)?,
        scores: g.get_f32_array(KEY_SCORES)?.map(<[f32]>::to_vec).unwrap_or_default(),
        token_types: g
            .get_i32_array(KEY_TOKEN_TYPE)?
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        merges: strings(KEY_MERGES)?,
        bos_id: id(KEY_BOS_ID)?,
        eos_id: id(KEY_EOS_ID)?,
        unk_id: id(KEY_UNK_ID)?,
        pad_id: id(KEY_PAD_ID)?,
        eot_id: id(KEY_EOT_ID)?,
        eom_id: id(KEY_EOM_ID)?,
        add_bos_token: g.get_bool(KEY_ADD_BOS)?,
        add_eos_token: g.get_bool(KEY_ADD_EOS)?,
        add_space_prefix: g.get_bool(KEY_ADD_SPACE_PREFIX)?,
        chat_template: string(KEY_CHAT_TEMPLATE)?,
    })
}

/// `eos_token_id` of a config: one id or a list.
pub(crate) fn listed_eos(config: &Value) -> Vec<u32> {
    match config.get("eos_token_id") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_u64).map(|v| v as u32).collect(),
        Some(v) => v.as_u64().map(|v| v as u32).into_iter().collect(),
        None => vec![],
    }
}

/// Ids in first-seen order without repeats.
fn merge_ids(ids: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut out: Vec<u32> = vec![];
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}
