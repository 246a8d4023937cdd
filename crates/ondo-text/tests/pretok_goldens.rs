//! ondo's GGUF byte-level BPE tokenizer against llama.cpp's own ids, for every
//! `tokenizer.ggml.pre` name llama.cpp knows.
//!
//! fixtures/tokenizers/llamacpp_pretok_goldens.json holds what llama.cpp's `llama-tokenize` gave
//! for each name on a fixed set of texts, with SmolLM2's vocabulary (tools/make_pretok_goldens.py,
//! run by hand). This test builds the same vocabulary from the same tokenizer.json in
//! ../shared, sets each name, and asks for the same ids, BOS included as llama.cpp adds it.

use std::path::{Path, PathBuf};

use ondo_text::{GgufVocab, Tokenizer};
use serde_json::Value;

fn goldens() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tokenizers/llamacpp_pretok_goldens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The vocabulary the goldens' GGUFs carried: tokenizer.json's tokens in id order (added tokens
/// as control tokens), its merges, BOS/EOS as recorded; no `add_bos_token`, no pre yet.
fn base_vocab(tokenizer_json: &Path, g: &Value) -> GgufVocab {
    let text = std::fs::read_to_string(tokenizer_json).expect("tokenizer.json");
    let tj: Value = serde_json::from_str(&text).expect("tokenizer.json is JSON");
    let vocab = tj["model"]["vocab"].as_object().expect("model.vocab");
    let added = tj["added_tokens"].as_array().expect("added_tokens");
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        tokens[id.as_u64().expect("id") as usize] = token.clone();
    }
    let mut token_types = vec![1; tokens.len()];
    for a in added {
        let id = a["id"].as_u64().expect("added id") as usize;
        tokens[id] = a["content"].as_str().expect("content").to_string();
        token_types[id] = 3;
    }
    let merges = tj["model"]["merges"].as_array().expect("merges");
    let merges = merges
        .iter()
        .map(|m| m.as_str().expect("\"a b\" merges").to_string())
        .collect();
    let id = |key: &str| g[key].as_u64().map(|i| i as u32);
    GgufVocab {
        model: "gpt2".into(),
        tokens,
        token_types,
        merges,
        bos_id: id("bos_id"),
        eos_id: id("eos_id"),
        ..Default::default()
    }
}

/// The vocabulary as written for one name (jina-v2-* files carry a `<mask>` token).
fn vocab_for(base: &GgufVocab, name: &str, g: &Value) -> GgufVocab {
    let mut v = base.clone();
    v.pre = (!name.is_empty()).then(|| name.to_string());
    if name.starts_with("jina-v2-") {
        let mask = g["mask_id"].as_u64().expect("mask_id") as usize;
        v.tokens[mask] = "<mask>".into();
    }
    v
}

#[test]
fn every_llama_cpp_pre_tokenizer_gives_llama_cpp_ids() {
    let Some(json) = ondo_testdata::shared("models/smollm2-135m-instruct-hf/tokenizer.json") else {
        return;
    };
    let g = goldens();
    let base = base_vocab(&json, &g);
    let texts: Vec<&str> = g["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| t.as_str().expect("text"))
        .collect();
    let ids = g["ids"].as_object().expect("ids");
    assert!(ids.len() >= 40, "goldens cover {} names", ids.len());
    let mut failures = Vec::new();
    for (name, per_text) in ids {
        let tok =
            Tokenizer::from_gguf_vocab(&vocab_for(&base, name, &g)).unwrap_or_else(|e| panic!("pre {name:?}: {e}"));
        for (text, want) in texts.iter().zip(per_text.as_array().expect("ids per text")) {
            let want: Vec<u32> = serde_json::from_value(want.clone()).expect("ids");
            let got = tok.encode(text, true).expect("encode");
            if got != want {
                failures.push(format!(
                    "pre {name:?}, text {text:?}:\n  llama.cpp {want:?}\n  ondo      {got:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn goldens_tell_the_pre_tokenizers_apart() {
    // The texts must exercise the differences: rows with different regexes get different ids.
    let g = goldens();
    let ids = &g["ids"];
    for (a, b) in [
        ("gpt-2", "default"),
        ("gpt-2", "smollm"),
        ("smollm", "qwen2"),
        ("qwen2", "llama-bpe"),
        ("llama-bpe", "tekken"),
        ("deepseek-llm", "deepseek-coder"),
        ("deepseek-coder", "deepseek-v3"),
        ("bloom", "viking"),
        ("gpt-2", "falcon"),
        ("smollm", "chameleon"),
    ] {
        assert_ne!(ids[a], ids[b], "{a} and {b} give the same ids on every text");
    }
}
