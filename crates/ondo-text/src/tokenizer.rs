//! [`Tokenizer`]: text to token ids and back, from a tokenizer.json (+ tokenizer_config.json) or
//! from a GGUF vocabulary.
//!
//! - tokenizer.json goes to HF's `tokenizers` crate unchanged, so `encode(text, true)` equals
//!   transformers' `tokenizer(text)["input_ids"]` (its post-processor decides BOS/EOS).
//! - A GGUF "gpt2" vocabulary becomes a byte-level BPE `tokenizers::Tokenizer` with the
//!   pre-tokenizer its `tokenizer.ggml.pre` names; a GGUF "llama" vocabulary runs ondo's own
//!   SentencePiece merging ([`crate::spm`]), which follows llama.cpp's scores exactly.
//!   For both, BOS/EOS are added as llama.cpp adds them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::AddedToken;

use crate::error::{Error, Result};
use crate::gguf_vocab::{GgufVocab, TokenType};
use crate::pretok;
use crate::spm::Spm;

mod bytes;
mod post_check;
pub use bytes::SPECIAL_TOKEN_MARKER;

/// A tokenizer with its special tokens and (for tokenizer.json) its tokenizer_config.json.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    backend: Backend,
    specials: Specials,
    /// Add BOS/EOS here (GGUF vocabularies and overridden Llama tokenizers), not in a post-processor.
    add_bos: bool,
    add_eos: bool,
    config: Option<Value>,
}

#[derive(Debug, Clone)]
enum Backend {
    Hf(Box<HfBackend>),
    Spm(Box<Spm>),
}

/// A `tokenizers::Tokenizer`, plus a copy that leaves special-token text unparsed (made on first use).
#[derive(Debug, Clone)]
struct HfBackend {
    tok: tokenizers::Tokenizer,
    literal: OnceLock<tokenizers::Tokenizer>,
    vocab_size: usize,
}

#[derive(Debug, Clone, Default)]
struct Specials {
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    unk: Option<u32>,
    /// Ids that `skip_special_tokens` drops and `is_special` reports.
    ids: HashSet<u32>,
    /// Tokens that end generation (see [`Tokenizer::end_of_generation_ids`]).
    eog: Vec<u32>,
}

/// Control tokens llama.cpp treats as end of generation by their text, besides EOS/EOT/EOM.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
];

impl Tokenizer {
    /// Loads tokenizer.json and, when given, tokenizer_config.json (special-token names, and
    /// `add_bos_token`/`add_eos_token` for Llama/Gemma tokenizer classes, as transformers does).
    pub fn from_files(tokenizer_json: &Path, tokenizer_config_json: Option<&Path>) -> Result<Tokenizer> {
        let tok = parse_tokenizer_json(tokenizer_json, read_json(tokenizer_json)?)?;
        let config = tokenizer_config_json.map(read_json).transpose()?;
        Ok(Tokenizer::from_hf(tok, config))
    }

    /// A parsed tokenizer.json with its parsed tokenizer_config.json (see `from_files`).
    pub(crate) fn from_hf(mut tok: tokenizers::Tokenizer, config: Option<Value>) -> Tokenizer {
        let (add_bos, add_eos) = match config.as_ref().and_then(bos_eos_override) {
            Some(flags) => {
                tok.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
                flags
            }
            None => (false, false),
        };
        let specials = hf_specials(&tok, config.as_ref());
        let backend = Backend::Hf(Box::new(HfBackend::new(tok)));
        Tokenizer {
            backend,
            specials,
            add_bos,
            add_eos,
            config,
        }
    }

    /// Builds the tokenizer a GGUF file describes (see the module docs).
    pub fn from_gguf_vocab(v: &GgufVocab) -> Result<Tokenizer> {
        v.validate()?;
        let backend = match v.model.as_str() {
            "llama" => Backend::Spm(Box::new(Spm::new(v))),
            "gpt2" => Backend::Hf(Box::new(HfBackend::new(byte_level_bpe(v)?))),
            other => return Err(Error::UnsupportedModel(other.to_string())),
        };
        let specials = gguf_specials(v);
        let config = Some(gguf_config(v, &specials));
        let (add_bos, add_eos) = (v.resolved_add_bos(), v.resolved_add_eos());
        Ok(Tokenizer {
            backend,
            specials,
            add_bos,
            add_eos,
            config,
        })
    }

    /// Token ids of `text`; special-token text (e.g. "<|im_start|>") becomes special tokens.
    /// `add_special_tokens` adds BOS/EOS the way the tokenizer is configured to.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.encode_with(text, add_special_tokens, true)
    }

    /// As [`Tokenizer::encode`]; with `parse_special = false`, special-token text is plain text.
    pub fn encode_with(&self, text: &str, add_special_tokens: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = match &self.backend {
            Backend::Hf(hf) => hf.encode(text, add_special_tokens, parse_special)?,
            Backend::Spm(spm) => spm.encode(text, parse_special),
        };
        if add_special_tokens {
            self.add_bos_eos(&mut ids);
        }
        Ok(ids)
    }

    fn add_bos_eos(&self, ids: &mut Vec<u32>) {
        if let (true, Some(bos)) = (self.add_bos, self.specials.bos) {
            ids.insert(0, bos);
        }
        if let (true, Some(eos)) = (self.add_eos, self.specials.eos) {
            ids.push(eos);
        }
    }

    /// The text of `ids`; ids outside the vocabulary are skipped, as transformers does.
    /// With `clean_up_tokenization_spaces` set in tokenizer_config.json (GPT-2's), the spaces
    /// before punctuation and English contractions are removed, as transformers does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = match &self.backend {
            Backend::Hf(hf) => hf
                .tok
                .decode(ids, skip_special_tokens)
                .map_err(|e| Error::tokenizers("decode", e))?,
            Backend::Spm(spm) => spm.decode(ids, skip_special_tokens),
        };
        let clean_up = self
            .config
            .as_ref()
            .and_then(|c| c.get("clean_up_tokenization_spaces"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(if clean_up { clean_up_spaces(&text) } else { text })
    }

    /// The vocabulary entry of `id` (e.g. "Ġthe", "▁the", "<0x0A>").
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.backend {
            Backend::Hf(hf) => hf.tok.id_to_token(id),
            Backend::Spm(spm) => spm.id_to_token(id).map(str::to_string),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.backend {
            Backend::Hf(hf) => hf.tok.token_to_id(token),
            Backend::Spm(spm) => spm.token_to_id(token),
        }
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        match &self.backend {
            Backend::Hf(hf) => hf.vocab_size,
            Backend::Spm(spm) => spm.vocab_size(),
        }
    }

    pub fn bos_token_id(&self) -> Option<u32> {
        self.specials.bos
    }

    pub fn eos_token_id(&self) -> Option<u32> {
        self.specials.eos
    }

    pub fn pad_token_id(&self) -> Option<u32> {
        self.specials.pad
    }

    pub fn unk_token_id(&self) -> Option<u32> {
        self.specials.unk
    }

    /// Tokens that end generation: EOS; for a GGUF vocabulary also its EOT/EOM tokens and the
    /// control tokens llama.cpp recognises by name (`<|eot_id|>`, `<|im_end|>`, `<end_of_turn>`,
    /// ...). For tokenizer.json, add generation_config.json's `eos_token_id`s yourself.
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.specials.eog
    }

    /// Whether `id` is a special token (dropped by `skip_special_tokens`).
    pub fn is_special(&self, id: u32) -> bool {
        self.specials.ids.contains(&id)
    }

    /// tokenizer_config.json as parsed; for a GGUF vocabulary, an equivalent object with
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` and `chat_template` when known.
    pub fn config(&self) -> Option<&Value> {
        self.config.as_ref()
    }
}

impl HfBackend {
    fn new(tok: tokenizers::Tokenizer) -> HfBackend {
        let vocab_size = tok.get_vocab_size(true);
        HfBackend {
            tok,
            literal: OnceLock::new(),
            vocab_size,
        }
    }

    fn encode(&self, text: &str, add_special_tokens: bool, parse_special: bool) -> Result<Vec<u32>> {
        let tok = if parse_special { &self.tok } else { self.literal() };
        let enc = tok
            .encode_fast(text, add_special_tokens)
            .map_err(|e| Error::tokenizers("encode", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The same tokenizer with special added tokens treated as plain text.
    fn literal(&self) -> &tokenizers::Tokenizer {
        self.literal.get_or_init(|| {
            let mut tok = self.tok.clone();
            tok.set_encode_special_tokens(true);
            tok
        })
    }
}

/// A tokenizer.json already parsed as JSON (`path` names it in errors). Parsing the text
/// first is what keeps bad input an error: the `tokenizers` crate panics on a JSON syntax error
/// inside its `decoder` section when it reads the text itself (found by fuzzing), never when
/// it reads a JSON value.
pub(crate) fn parse_tokenizer_json(path: &Path, json: Value) -> Result<tokenizers::Tokenizer> {
    if let Some((field, problem)) = post_check::problem(&json) {
        return Err(Error::tokenizers(format!("{} {field}", path.display()), problem));
    }
    serde_json::from_value(json).map_err(|e| Error::tokenizers(path.display().to_string(), e))
}

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.into(),
        source,
    })
}

/// transformers' Llama/Gemma tokenizers rebuild their post-processor from `add_bos_token` /
/// `add_eos_token`; other classes keep tokenizer.json's. Returns the flags when they apply.
fn bos_eos_override(config: &Value) -> Option<(bool, bool)> {
    let class = config.get("tokenizer_class")?.as_str()?;
    let rebuilds = ["LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"]
        .iter()
        .any(|c| class.trim_end_matches("Fast") == *c);
    let bos = config.get("add_bos_token").and_then(Value::as_bool);
    let eos = config.get("add_eos_token").and_then(Value::as_bool);
    if !rebuilds || (bos.is_none() && eos.is_none()) {
        return None;
    }
    Some((bos.unwrap_or(true), eos.unwrap_or(false)))
}

/// A special-token entry of tokenizer_config.json: a string or an AddedToken dict.
fn token_name(config: &Value, key: &str) -> Option<String> {
    let v = config.get(key)?;
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
        .map(str::to_string)
}

fn hf_specials(tok: &tokenizers::Tokenizer, config: Option<&Value>) -> Specials {
    let id_of = |key: &str| {
        config
            .and_then(|c| token_name(c, key))
            .and_then(|t| tok.token_to_id(&t))
    };
    let mut ids: HashSet<u32> = tok
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| id)
        .collect();
    let (bos, eos, pad, unk) = (
        id_of("bos_token"),
        id_of("eos_token"),
        id_of("pad_token"),
        id_of("unk_token"),
    );
    ids.extend([bos, eos, pad, unk].into_iter().flatten());
    Specials {
        bos,
        eos,
        pad,
        unk,
        ids,
        eog: eos.into_iter().collect(),
    }
}

fn gguf_specials(v: &GgufVocab) -> Specials {
    let n = v.tokens.len() as u32;
    let ids = (0..n)
        .filter(|&id| matches!(v.token_type(id), TokenType::Control | TokenType::Unknown))
        .collect();
    let eos = v.checked_id(v.eos_id);
    let mut eog: Vec<u32> = [eos, v.checked_id(v.eot_id), v.checked_id(v.eom_id)]
        .into_iter()
        .flatten()
        .collect();
    let by_name = (0..n)
        .filter(|&id| v.token_type(id) == TokenType::Control && EOG_TEXTS.contains(&v.tokens[id as usize].as_str()));
    for id in by_name {
        if !eog.contains(&id) {
            eog.push(id);
        }
    }
    Specials {
        bos: v.checked_id(v.bos_id),
        eos,
        pad: v.checked_id(v.pad_id),
        unk: v.checked_id(v.unk_id),
        ids,
        eog,
    }
}

/// A tokenizer_config.json-like object for a GGUF vocabulary, for the chat-template module.
fn gguf_config(v: &GgufVocab, s: &Specials) -> Value {
    let mut map = serde_json::Map::new();
    let names = [
        ("bos_token", s.bos),
        ("eos_token", s.eos),
        ("unk_token", s.unk),
        ("pad_token", s.pad),
    ];
    for (key, id) in names {
        if let Some(token) = id.and_then(|i| v.tokens.get(i as usize)) {
            map.insert(key.to_string(), Value::String(token.clone()));
        }
    }
    if let Some(t) = &v.chat_template {
        map.insert("chat_template".to_string(), Value::String(t.clone()));
    }
    Value::Object(map)
}

/// A byte-level BPE `tokenizers::Tokenizer` from a GGUF "gpt2" vocabulary.
fn byte_level_bpe(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let pre = pretok::lookup(v.pre.as_deref())?;
    let vocab: tokenizers::models::bpe::Vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    let merges = parse_merges(&v.merges)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(|e| Error::tokenizers("BPE from GGUF vocabulary", e))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pretok::pre_tokenizer(pre)?));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    tok.add_special_tokens(&added_tokens(v, TokenType::Control, true));
    tok.add_tokens(&added_tokens(v, TokenType::UserDefined, false));
    Ok(tok)
}

fn parse_merges(merges: &[String]) -> Result<tokenizers::models::bpe::Merges> {
    let pair = |(i, m): (usize, &String)| match m.split_once(' ') {
        Some((a, b)) => Ok((a.to_string(), b.to_string())),
        None => Err(Error::vocab(
            "tokenizer.ggml.merges",
            format!("entry {i} ({m:?}) is not \"left right\""),
        )),
    };
    merges.iter().enumerate().map(pair).collect()
}

/// Tokens of one type as added tokens: control tokens special, user-defined ones not.
fn added_tokens(v: &GgufVocab, ty: TokenType, special: bool) -> Vec<AddedToken> {
    let n = v.tokens.len() as u32;
    (0..n)
        .filter(|&id| v.token_type(id) == ty && !v.tokens[id as usize].is_empty())
        .map(|id| AddedToken::from(v.tokens[id as usize].clone(), special).normalized(false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny tokenizer.json: words "a", "b", specials "<s>", "</s>", a post-processor adding "<s>".
    const TOKENIZER_JSON: &str = r#"{
        "version": "1.0",
        "added_tokens": [
            {"id": 2, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 3, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [2], "tokens": ["<s>"]}}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "<s>": 2, "</s>": 3}, "unk_token": "a"}
    }"#;

    fn load(config: Option<&str>) -> Tokenizer {
        let dir = std::env::temp_dir().join(format!(
            "ondo-text-tok-{}-{}",
            std::process::id(),
            config.map_or(0, str::len)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let json = dir.join("tokenizer.json");
        std::fs::write(&json, TOKENIZER_JSON).expect("write");
        let cfg = config.map(|c| {
            let path = dir.join("tokenizer_config.json");
            std::fs::write(&path, c).expect("write");
            path
        });
        let tok = Tokenizer::from_files(&json, cfg.as_deref()).expect("load");
        std::fs::remove_dir_all(&dir).ok();
        tok
    }

    #[test]
    fn post_processor_decides_special_tokens() {
        let tok = load(None);
        assert_eq!(tok.encode("a b", true).expect("encode"), [2, 0, 1]);
        assert_eq!(tok.encode("a b", false).expect("encode"), [0, 1]);
        assert_eq!(tok.encode("a </s>", false).expect("encode"), [0, 3]);
        assert!(tok.config().is_none() && tok.bos_token_id().is_none());
        assert!(tok.is_special(3) && !tok.is_special(1));
        assert_eq!(
            tok.decode(&[0, 99], false).expect("decode"),
            "a",
            "out-of-vocabulary ids are skipped"
        );
        assert_eq!(tok.vocab_size(), 4);
    }

    #[test]
    fn config_names_special_tokens_as_strings_or_dicts() {
        let tok = load(Some(
            r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "tokenizer_class": "GPT2Tokenizer", "add_eos_token": true}"#,
        ));
        assert_eq!((tok.bos_token_id(), tok.eos_token_id()), (Some(2), Some(3)));
        assert_eq!(tok.end_of_generation_ids(), [3]);
        // Not a Llama/Gemma class: tokenizer.json's post-processor stays in charge.
        assert_eq!(tok.encode("a", true).expect("encode"), [2, 0]);
        assert_eq!(tok.decode(&[2, 0, 3], true).expect("decode"), "a");
    }

    #[test]
    fn llama_class_flags_replace_the_post_processor() {
        let config = r#"{"bos_token": "<s>", "eos_token": "</s>", "tokenizer_class": "LlamaTokenizerFast", "add_bos_token": false, "add_eos_token": true}"#;
        assert_eq!(load(Some(config)).encode("a", true).expect("encode"), [0, 3]);
    }

    #[test]
    fn missing_or_bad_files_name_themselves() {
        let err = Tokenizer::from_files(Path::new("/no/such/tokenizer.json"), None).expect_err("missing");
        assert!(err.to_string().contains("/no/such/tokenizer.json"), "{err}");
    }

    #[test]
    fn gguf_vocab_errors() {
        let empty = GgufVocab {
            model: "llama".into(),
            ..Default::default()
        };
        assert!(matches!(Tokenizer::from_gguf_vocab(&empty), Err(Error::Vocab { .. })));
        let tokens = vec!["a".to_string()];
        let bert = GgufVocab {
            model: "bert".into(),
            tokens: tokens.clone(),
            ..Default::default()
        };
        assert!(matches!(
            Tokenizer::from_gguf_vocab(&bert),
            Err(Error::UnsupportedModel(_))
        ));
        let merges = vec!["ab".to_string()];
        let bad = GgufVocab {
            model: "gpt2".into(),
            tokens,
            merges,
            ..Default::default()
        };
        let err = Tokenizer::from_gguf_vocab(&bad).expect_err("bad merge");
        assert!(err.to_string().contains("tokenizer.ggml.merges"), "{err}");
    }

    #[test]
    fn gguf_end_of_generation_tokens() {
        let tokens = ["<unk>", "<s>", "</s>", "<end_of_turn>", "<|im_end|>", "x"]
            .map(String::from)
            .to_vec();
        let v = GgufVocab {
            model: "llama".into(),
            tokens,
            token_types: vec![2, 3, 3, 3, 1, 1],
            bos_id: Some(1),
            eos_id: Some(2),
            pad_id: Some(u32::MAX),
            ..Default::default()
        };
        let tok = Tokenizer::from_gguf_vocab(&v).expect("vocab");
        assert_eq!(tok.end_of_generation_ids(), [2, 3]);
        assert_eq!(tok.pad_token_id(), None);
        assert_eq!(tok.config().and_then(|c| c["eos_token"].as_str()), Some("</s>"));
    }

    #[test]
    fn tokenizer_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
    }
}

/// transformers' `clean_up_tokenization`: no space before `. ? ! ,` and in English contractions.
fn clean_up_spaces(text: &str) -> String {
    const PAIRS: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    PAIRS.iter().fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

#[cfg(test)]
mod clean_up_tests {
    #[test]
    fn removes_spaces_before_punctuation_and_contractions() {
        assert_eq!(
            super::clean_up_spaces("Hi , it 's fine . Is n't it ? I 'm sure !"),
            "Hi, it's fine. Isn't it? I'm sure!"
        );
    }
}
