//! Tokenizers against references: llama.cpp's test vectors (tokenizer-tests), the prompt ids of
//! the llama.cpp / transformers references, SmolLM2's tokenizer.json against its own GGUF
//! vocabulary, and streaming detokenization of real generations.
//!
//! Assets come from `../shared` and the fetched models; a missing one skips the test (not in CI).

use std::path::Path;

use ondo_engine::load::vocab_from_gguf;
use ondo_model::gguf::GgufFile;
use ondo_text::{IncrementalDetokenizer, Tokenizer};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers.

fn gguf_tokenizer(path: &Path) -> Tokenizer {
    let g = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    let v = vocab_from_gguf(&g).unwrap_or_else(|e| panic!("{e}"));
    Tokenizer::from_gguf_vocab(&v).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids(v: &Value) -> Vec<u32> {
    let list = v.as_array().expect("an array of token ids");
    list.iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()).expect("a token id"))
        .collect()
}

/// The strings and expected ids of `<name>.inp` / `<name>.out` in tokenizer-tests.
fn vectors(name: &str) -> Option<Vec<(String, Vec<u32>)>> {
    let dir = ondo_testdata::shared("models/tokenizer-tests")?;
    let inp = read(&dir.join(format!("{name}.inp")));
    let out = read(&dir.join(format!("{name}.out")));
    let mut strings: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    assert_eq!(strings.pop(), Some(""), "{name}.inp must end with the separator");
    let expected: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().expect("a token id")).collect())
        .collect();
    assert_eq!(strings.len(), expected.len(), "{name}: .inp and .out disagree");
    assert_eq!(strings.len(), 46, "{name}: the README promises 46 strings");
    Some(strings.into_iter().map(str::to_string).zip(expected).collect())
}

/// Encodes every vector as llama.cpp's test does (no BOS/EOS, special text not parsed).
fn check_vectors(tok: &Tokenizer, name: &str) {
    let Some(cases) = vectors(name) else { return };
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().enumerate() {
        let got = tok.encode_with(text, false, false).expect("encode");
        if &got != want {
            failures.push(format!("#{i} {text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Streams `out` after `prompt`; checks no delta holds a broken character and returns the text.
fn stream(tok: &Tokenizer, prompt: &[u32], out: &[u32], skip_special: bool) -> String {
    let mut d = IncrementalDetokenizer::new(tok, prompt, skip_special);
    let mut text = String::new();
    for &id in out {
        let delta = d.push(id).expect("push");
        assert!(!delta.contains('\u{FFFD}'), "delta {delta:?} after token {id}");
        text.push_str(&delta);
    }
    text + &d.finish().expect("finish")
}

/// Streaming equals the full decode: of the output alone, and as the continuation of a prompt.
fn check_streaming(tok: &Tokenizer, prompt: &str, output: &str) {
    let out = tok.encode_with(output, false, false).expect("encode");
    assert_eq!(
        stream(tok, &[], &out, true),
        tok.decode(&out, true).expect("decode"),
        "{output:?}"
    );
    let prompt = tok.encode(prompt, true).expect("encode");
    let all: Vec<u32> = prompt.iter().chain(&out).copied().collect();
    let whole = tok.decode(&all, true).expect("decode");
    let before = tok.decode(&prompt, true).expect("decode");
    let want = whole.strip_prefix(before.as_str()).expect("prompt text is a prefix");
    assert_eq!(stream(tok, &prompt, &out, true), want, "{output:?} after the prompt");
}

/// Strings that exercise spaces, digits, code, CJK, Korean and emoji.
const SAMPLES: &[&str] = &[
    "Hello world",
    " Hello  world\n\n\tend ",
    "The year 2024 had 366 days; 3.14159 != 22/7.",
    "fn main() { println!(\"{}\", x + 1); }",
    "안녕하세요, 세계! 한국어 문장입니다.",
    "서울특별시 강남구 테헤란로 123",
    "日本語と中文の混合テキスト",
    "Emoji: 🦙🚀👍🏽 and ZWJ 👨‍👩‍👧",
    "<|im_start|>user\nHi<|im_end|>",
    "I've been 'there' and they'll say it's DON'T",
    "\u{00e9}t\u{00e9} e\u{0301}te\u{0301}",
];

// ---------------------------------------------------------------------------------------------
// llama.cpp's vectors.

#[test]
fn llama_spm_vectors() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    check_vectors(
        &gguf_tokenizer(&dir.join("ggml-vocab-llama-spm.gguf")),
        "ggml-vocab-llama-spm.gguf",
    );
}

#[test]
fn phi3_vectors() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    check_vectors(
        &gguf_tokenizer(&dir.join("ggml-vocab-phi-3.gguf")),
        "ggml-vocab-phi-3.gguf",
    );
}

#[test]
fn gpt2_vectors() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    check_vectors(
        &gguf_tokenizer(&dir.join("ggml-vocab-gpt-2.gguf")),
        "ggml-vocab-gpt-2.gguf",
    );
}

#[test]
fn qwen2_vectors_with_qwen25_vocab() {
    let Some(path) = ondo_testdata::fetched("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf") else {
        return;
    };
    check_vectors(&gguf_tokenizer(&path), "ggml-vocab-qwen2.gguf");
}

// ---------------------------------------------------------------------------------------------
// Prompt ids of the generation references, and their generated text streamed back.

#[test]
fn stories260k_prompts_and_streamed_generations() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let tok = gguf_tokenizer(&dir.join("stories260K.gguf"));
    let expected = json(&dir.join("expected.json"));
    let cases = expected["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let prompt = case["prompt"].as_str().expect("prompt");
        let prompt_ids = ids(&case["prompt_token_ids"]);
        assert_eq!(tok.encode(prompt, true).expect("encode"), prompt_ids, "{prompt:?}");
        let generated = ids(&case["generated_token_ids"]);
        let text = case["generated_text"].as_str().expect("generated_text");
        assert_eq!(stream(&tok, &prompt_ids, &generated, true), text, "{prompt:?}");
    }
}

/// Each fetched GGUF's llama.cpp reference: prompt ids (BOS as llama.cpp adds it, special text
/// parsed) and the generated text, streamed.
fn check_llama_cpp_reference(model: &str, reference: &str) {
    let Some(path) = ondo_testdata::fetched(model) else {
        return;
    };
    let Some(refs) = ondo_testdata::shared(&format!("models/references/{reference}")) else {
        return;
    };
    let tok = gguf_tokenizer(&path);
    for case in json(&refs)["llama_cpp"]["cases"].as_array().expect("cases") {
        let prompt = case["prompt_text"].as_str().expect("prompt_text");
        let prompt_ids = ids(&case["prompt_token_ids"]);
        assert_eq!(
            tok.encode(prompt, true).expect("encode"),
            prompt_ids,
            "{model}: {prompt:?}"
        );
        let generated = ids(&case["generated_token_ids"]);
        let text = case["generated_text"].as_str().expect("generated_text");
        assert_eq!(stream(&tok, &prompt_ids, &generated, true), text, "{model}: {prompt:?}");
    }
}

#[test]
fn smollm2_gguf_matches_llama_cpp_reference() {
    check_llama_cpp_reference("smollm2-135m-instruct-q4_1.gguf", "smollm2-135m-instruct.json");
}

#[test]
fn qwen25_gguf_matches_llama_cpp_reference() {
    check_llama_cpp_reference(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "qwen2.5-coder-1.5b-instruct.json",
    );
}

#[test]
fn gemma3_gguf_matches_llama_cpp_reference() {
    check_llama_cpp_reference("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m.json");
}

// ---------------------------------------------------------------------------------------------
// SmolLM2: tokenizer.json (transformers' ids) and the GGUF vocabulary agree.

fn smollm2_json() -> Option<Tokenizer> {
    let dir = ondo_testdata::shared("models/smollm2-135m-instruct-hf")?;
    let config = dir.join("tokenizer_config.json");
    Some(Tokenizer::from_files(&dir.join("tokenizer.json"), Some(&config)).expect("SmolLM2 tokenizer.json"))
}

#[test]
fn smollm2_tokenizer_json_matches_transformers_reference() {
    let Some(tok) = smollm2_json() else { return };
    let Some(refs) = ondo_testdata::shared("models/references/smollm2-135m-instruct.json") else {
        return;
    };
    let refs = json(&refs);
    let cases = refs["transformers"]["cases"].as_array().expect("cases");
    for case in cases {
        let prompt = case["prompt_text"].as_str().expect("prompt_text");
        assert_eq!(
            tok.encode(prompt, true).expect("encode"),
            ids(&case["prompt_token_ids"]),
            "{prompt:?}"
        );
    }
    assert_eq!(tok.bos_token_id(), Some(1));
    assert_eq!(tok.eos_token_id(), Some(2));
    assert!(tok.is_special(2) && !tok.is_special(504));
    let config = tok.config().expect("tokenizer_config.json");
    assert!(config["chat_template"]
        .as_str()
        .is_some_and(|t| t.contains("<|im_start|>")));
}

#[test]
fn smollm2_gguf_vocab_encodes_like_tokenizer_json() {
    let Some(json_tok) = smollm2_json() else {
        return;
    };
    let Some(path) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let gguf_tok = gguf_tokenizer(&path);
    assert_eq!(gguf_tok.vocab_size(), json_tok.vocab_size());
    let mut texts: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
    for name in [
        "ggml-vocab-gpt-2.gguf",
        "ggml-vocab-qwen2.gguf",
        "ggml-vocab-llama-spm.gguf",
    ] {
        texts.extend(vectors(name).unwrap_or_default().into_iter().map(|(s, _)| s));
    }
    for text in &texts {
        for (add, parse) in [(true, true), (false, false)] {
            let want = json_tok.encode_with(text, add, parse).expect("encode");
            assert_eq!(
                gguf_tok.encode_with(text, add, parse).expect("encode"),
                want,
                "{text:?} add {add} parse {parse}"
            );
        }
        let ids = json_tok.encode(text, false).expect("encode");
        assert_eq!(
            gguf_tok.decode(&ids, false).expect("decode"),
            json_tok.decode(&ids, false).expect("decode")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming: Korean and emoji over byte-level BPE and SentencePiece byte fallback.

#[test]
fn streaming_korean_and_emoji_on_smollm2() {
    let Some(tok) = smollm2_json() else { return };
    for text in SAMPLES {
        check_streaming(&tok, "<|im_start|>assistant\n", text);
    }
    let with_special = tok.encode("안녕<|im_end|>", false).expect("encode");
    assert_eq!(stream(&tok, &[], &with_special, true), "안녕");
    assert_eq!(stream(&tok, &[], &with_special, false), "안녕<|im_end|>");
}

#[test]
fn streaming_korean_and_emoji_with_byte_fallback() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let Some(stories) = ondo_testdata::shared("models/stories260K/stories260K.gguf") else {
        return;
    };
    for tok in [
        gguf_tokenizer(&dir.join("ggml-vocab-llama-spm.gguf")),
        gguf_tokenizer(&stories),
    ] {
        for text in SAMPLES {
            check_streaming(&tok, "Once upon a time", text);
        }
        // A Hangul syllable as three byte tokens: nothing until the third arrives.
        let ids = tok.encode_with("됐", false, false).expect("encode");
        let bytes: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&i| tok.id_to_token(i).is_some_and(|t| t.starts_with("<0x")))
            .collect();
        assert_eq!(bytes.len(), 3, "됐 should need byte fallback: {ids:?}");
        let mut d = IncrementalDetokenizer::new(&tok, &[], true);
        let deltas: Vec<String> = bytes.iter().map(|&i| d.push(i).expect("push")).collect();
        assert_eq!(deltas, ["", "", "됐"]);
    }
}
