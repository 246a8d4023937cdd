//! `ondo quantize SRC OUT.gguf --type T`: the glue between the model side
//! (`ondo_model::export`: tensors, `{arch}.*` keys, the streamed writer) and the text side
//! (`ondo_text::hf_vocab`: tokenizer.json as a GGUF vocabulary). An HF folder gets its
//! vocabulary, special ids, `add_bos`/`add_eos` and chat template written as `tokenizer.*`
//! keys; a GGUF source keeps its own.

use crate::load::{load_text, TextSide};
use crate::EngineError;
use ondo_model::export::{export_hf, gguf_arch_of, requantize_gguf, ExportOptions, ExportReport};
use ondo_model::gguf::{Array, GgufFile, Value};
use ondo_model::load::{is_gguf, read_hparams, ModelFiles};
use ondo_text::gguf_vocab::*;
use ondo_text::GgufVocab;
use std::path::Path;

/// Write `src` (an HF folder or a GGUF file) as a GGUF file at `out`.
pub fn quantize_model(src: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport, EngineError> {
    if out.exists() && same_file(src, out) {
        return Err(EngineError::Load(format!(
            "{}: the output would overwrite the source",
            out.display()
        )));
    }
    if is_gguf(src) {
        let g = GgufFile::open(src).map_err(ondo_model::Error::from)?;
        return Ok(requantize_gguf(&g, out, opts)?);
    }
    let files = ModelFiles::locate(src)?;
    let hp = read_hparams(&files)?;
    gguf_arch_of(&files)?;
    let text = load_text(src)?;
    let json = files
        .tokenizer_json
        .as_deref()
        .ok_or_else(|| EngineError::NoTokenizer(src.display().to_string()))?;
    let vocab = ondo_text::hf_vocab::vocab_from_hf(&text.tokenizer, json, hp.vocab_size)?;
    Ok(export_hf(&files, out, text_meta(&vocab, &text), opts)?)
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The `tokenizer.*` keys of a vocabulary and the model's chat template.
fn text_meta(v: &GgufVocab, text: &TextSide) -> Vec<(String, Value)> {
    let mut m: Vec<(String, Value)> = vec![
        (KEY_MODEL.into(), Value::String(v.model.clone())),
        (KEY_TOKENS.into(), Value::Array(Array::String(v.tokens.clone()))),
        (KEY_TOKEN_TYPE.into(), Value::Array(Array::I32(v.token_types.clone()))),
    ];
    if let Some(pre) = &v.pre {
        m.push((KEY_PRE.into(), Value::String(pre.clone())));
    }
    if !v.scores.is_empty() {
        m.push((KEY_SCORES.into(), Value::Array(Array::F32(v.scores.clone()))));
    }
    if !v.merges.is_empty() {
        m.push((KEY_MERGES.into(), Value::Array(Array::String(v.merges.clone()))));
    }
    let ids = [
        (KEY_BOS_ID, v.bos_id),
        (KEY_EOS_ID, v.eos_id),
        (KEY_UNK_ID, v.unk_id),
        (KEY_PAD_ID, v.pad_id),
    ];
    m.extend(
        ids.into_iter()
            .filter_map(|(k, id)| Some((k.to_string(), Value::U32(id?)))),
    );
    let flags = [
        (KEY_ADD_BOS, v.add_bos_token),
        (KEY_ADD_EOS, v.add_eos_token),
        (KEY_ADD_SPACE_PREFIX, v.add_space_prefix),
    ];
    m.extend(
        flags
            .into_iter()
            .filter_map(|(k, f)| Some((k.to_string(), Value::Bool(f?)))),
    );
    if let Some(t) = &text.chat_template {
        m.push((KEY_CHAT_TEMPLATE.into(), Value::String(t.source().to_string())));
    }
    m
}
