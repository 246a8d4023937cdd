//! A tokenizer.json as a GGUF vocabulary ([`GgufVocab`]), for writing GGUF files.
//!
//! Tokens come in id order (padded with `[PADn]` up to the model's vocabulary size, as llama.cpp's
//! converter pads), with GGUF token types (added special tokens are control tokens, other added
//! tokens user-defined, `<0xNN>` byte tokens of a SentencePiece-style vocabulary bytes) and the
//! BPE merges. A byte-level BPE becomes `"gpt2"`; a byte-fallback BPE (Metaspace, `▁`) becomes
//! `"llama"`, scored so that SentencePiece merging replays the merges in rank order.
//!
//! The pre-tokenizer name and the space-prefix flag are not guessed from the JSON: each
//! candidate vocabulary is built into a tokenizer the way a GGUF reader builds it, and the first
//! that tokenizes a set of probe texts exactly as tokenizer.json does is kept (llama.cpp's
//! converter does the same kind of check with a hash of one text's ids). None matching is an error.

use crate::error::{Error, Result};
use crate::gguf_vocab::GgufVocab;
use crate::Tokenizer;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Pre-tokenizer names tried for a byte-level BPE, one per family ondo (and llama.cpp) knows.
const PRE_CANDIDATES: &[&str] = &["gpt-2", "smollm", "llama-bpe", "qwen2"];

/// Texts both tokenizers must agree on: words, digit runs, code, whitespace runs, non-Latin text.
const PROBES: &[&str] = &[
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "In 2024, 1234567 people paid $3.50 each; 42% said 'yes'.",
    "def f(x):\n    return x ** 2  # square\n\n\n\tdone",
    "runs  of   spaces,    tabs\t\tand trailing spaces   \n\n",
    "안녕하세요, 세계! 日本語のテキスト. Ünïcödé café naïve",
    "I'm sure you've seen it; they'll say we'd done it, can't you?",
];

/// The GGUF vocabulary of `tok` (loaded from `tokenizer_json`), `vocab_size` tokens long.
pub fn vocab_from_hf(tok: &Tokenizer, tokenizer_json: &Path, vocab_size: usize) -> Result<GgufVocab> {
    let json = read(tokenizer_json)?;
    let model = &json["model"];
    let kind = model["type"].as_str().unwrap_or("");
    if kind != "BPE" {
        let msg = format!(
            "{}: a {kind:?} tokenizer cannot be written as a GGUF vocabulary (only BPE)",
            tokenizer_json.display()
        );
        return Err(Error::vocab("tokenizer.ggml.model", msg));
    }
    let spm = model["byte_fallback"].as_bool().unwrap_or(false);
    let merges = merges(model);
    let base = base_vocab(tok, &json, vocab_size, spm, &merges);
    let candidates: Vec<GgufVocab> = if spm {
        [true, false]
            .map(|p| GgufVocab {
                add_space_prefix: Some(p),
                ..base.clone()
            })
            .into()
    } else {
        let hinted = pre_hint(&json["pre_tokenizer"]);
        let rest = PRE_CANDIDATES.iter().filter(|p| Some(**p) != hinted);
        hinted
            .iter()
            .chain(rest)
            .map(|p| GgufVocab {
                pre: Some(p.to_string()),
                ..base.clone()
            })
            .collect()
    };
    for v in candidates {
        if tokenizes_alike(tok, &v)? {
            return Ok(v);
        }
    }
    let msg = format!(
        "{}: no GGUF pre-tokenizer reproduces this tokenizer's ids (tried {})",
        tokenizer_json.display(),
        if spm {
            "add_space_prefix true/false".to_string()
        } else {
            PRE_CANDIDATES.join(", ")
        }
    );
    Err(Error::vocab("tokenizer.ggml.pre", msg))
}

/// The candidate the pre-tokenizer's JSON points at, tried first: when a vocabulary cannot tell
/// two families apart (no multi-digit tokens), the name llama.cpp would pick is the one written.
fn pre_hint(pre: &Value) -> Option<&'static str> {
    let text = pre.to_string();
    if text.contains("\\\\p{N}{1,3}") {
        Some("llama-bpe")
    } else if text.contains("\\\\p{N}|") {
        Some("qwen2")
    } else if text.contains("\"Digits\"") {
        Some("smollm")
    } else {
        None
    }
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// `model.merges` as "left right" strings (tokenizer.json has them as strings or as pairs).
fn merges(model: &Value) -> Vec<String> {
    let items = model["merges"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    items
        .iter()
        .filter_map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(p) => Some(format!("{} {}", p.first()?.as_str()?, p.get(1)?.as_str()?)),
            _ => None,
        })
        .collect()
}

/// Everything but the pre-tokenizer choice.
fn base_vocab(tok: &Tokenizer, json: &Value, vocab_size: usize, spm: bool, merges: &[String]) -> GgufVocab {
    let added: HashMap<u64, bool> = json["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| Some((t["id"].as_u64()?, t["special"].as_bool().unwrap_or(false))))
        .collect();
    let size = vocab_size.max(tok.vocab_size());
    let mut tokens = Vec::with_capacity(size);
    let mut types = Vec::with_capacity(size);
    for id in 0..size as u32 {
        let Some(text) = tok.id_to_token(id) else {
            tokens.push(format!("[PAD{id}]"));
            types.push(5);
            continue;
        };
        let ty = match added.get(&(id as u64)) {
            _ if spm && Some(id) == tok.unk_token_id() => 2,
            _ if spm && is_byte_token(&text) => 6,
            Some(true) => 3,
            Some(false) => 4,
            None => 1,
        };
        tokens.push(text);
        types.push(ty);
    }
    let scores = if spm { merge_scores(&tokens, merges) } else { vec![] };
    GgufVocab {
        model: if spm { "llama" } else { "gpt2" }.into(),
        pre: None,
        tokens,
        scores,
        token_types: types,
        merges: if spm { vec![] } else { merges.to_vec() },
        bos_id: tok.bos_token_id(),
        eos_id: tok.eos_token_id(),
        unk_id: tok.unk_token_id(),
        pad_id: tok.pad_token_id(),
        add_bos_token: Some(adds_first(tok)),
        add_eos_token: Some(adds_last(tok)),
        ..GgufVocab::default()
    }
}

fn is_byte_token(t: &str) -> bool {
    t.len() == 6 && t.starts_with("<0x") && t.ends_with('>')
}

/// SentencePiece scores that replay BPE merges: the token a merge of rank r makes scores -r;
/// tokens no merge makes score below every merge.
fn merge_scores(tokens: &[String], merges: &[String]) -> Vec<f32> {
    let index: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut scores = vec![-1e9f32; tokens.len()];
    for (rank, m) in merges.iter().enumerate() {
        let joined = m.replacen(' ', "", 1);
        if let Some(&i) = index.get(joined.as_str()) {
            scores[i] = scores[i].max(-(rank as f32));
        }
    }
    scores
}

fn adds_first(tok: &Tokenizer) -> bool {
    let (with, without) = (tok.encode("a", true), tok.encode("a", false));
    matches!((with, without, tok.bos_token_id()), (Ok(w), Ok(o), Some(b)) if w.len() > o.len() && w[0] == b)
}

fn adds_last(tok: &Tokenizer) -> bool {
    let (with, without) = (tok.encode("a", true), tok.encode("a", false));
    matches!((with, without, tok.eos_token_id()), (Ok(w), Ok(o), Some(e)) if w.len() > o.len() && w.last() == Some(&e))
}

/// Whether `v`, built as a GGUF reader builds it, gives `tok`'s ids on every probe.
fn tokenizes_alike(tok: &Tokenizer, v: &GgufVocab) -> Result<bool> {
    let Ok(built) = Tokenizer::from_gguf_vocab(v) else {
        return Ok(false);
    };
    for text in PROBES {
        if built.encode_with(text, true, false)? != tok.encode_with(text, true, false)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(name: &str) -> Result<GgufVocab> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/tiny-models")
            .join(name);
        let tok = Tokenizer::from_files(&dir.join("tokenizer.json"), Some(&dir.join("tokenizer_config.json")))?;
        vocab_from_hf(&tok, &dir.join("tokenizer.json"), tok.vocab_size() + 3)
    }

    #[test]
    fn fixture_tokenizers_become_the_gguf_vocabulary_that_tokenizes_alike() {
        let cases = [
            ("llama-gqa", "gpt2", Some("llama-bpe")),
            ("qwen2", "gpt2", Some("qwen2")),
            ("exaone", "gpt2", Some("smollm")),
            ("gpt2", "gpt2", Some("gpt-2")),
            ("mistral", "llama", None),
        ];
        for (name, model, pre) in cases {
            let v = vocab(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((v.model.as_str(), v.pre.as_deref()), (model, pre), "{name}");
            let n = v.tokens.len();
            assert_eq!(
                v.tokens[n - 1],
                format!("[PAD{}]", n - 1),
                "{name}: padded to the model's size"
            );
            assert_eq!(v.token_types[n - 1], 5, "{name}: padding is unused");
        }
        let mistral = vocab("mistral").unwrap();
        assert_eq!(mistral.token_types[mistral.unk_id.unwrap() as usize], 2);
        assert!(mistral
            .tokens
            .iter()
            .zip(&mistral.token_types)
            .any(|(t, &ty)| t == "<0x41>" && ty == 6));
        let llama = vocab("llama-gqa").unwrap();
        assert_eq!(llama.add_bos_token, Some(true), "its post-processor adds <s>");
        assert_eq!(
            llama.token_types[llama.bos_id.unwrap() as usize],
            3,
            "<s> is a control token"
        );
    }
}
