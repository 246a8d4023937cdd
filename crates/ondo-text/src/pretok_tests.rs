//! Splits of a few rows, worked out by hand from llama.cpp's rules; the ids of every row against
//! llama.cpp itself are in tests/pretok_goldens.rs.

use super::*;
use std::collections::HashSet;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

fn split(name: &str, text: &str) -> Vec<String> {
    let row = lookup(Some(name)).expect("known name");
    let mut pts = PreTokenizedString::from(text);
    pre_tokenizer(row)
        .expect("pre-tokenizer")
        .pre_tokenize(&mut pts)
        .expect("pre_tokenize");
    let splits = pts.get_splits(OffsetReferential::Original, OffsetType::Byte);
    splits.into_iter().map(|(s, _, _)| s.to_string()).collect()
}

#[test]
fn every_row_compiles_and_every_name_is_unique() {
    let mut seen = HashSet::new();
    for row in TABLE {
        if let Err(e) = pre_tokenizer(row) {
            panic!("{}: {e}", row.kind);
        }
        for name in row.names {
            assert!(seen.insert(*name), "{name} is in two rows");
        }
    }
}

#[test]
fn digit_grouping_differs_by_row() {
    let text = "Hi 1234567";
    assert_eq!(split("gpt-2", text), ["Hi", "Ġ1234567"]);
    let singles = ["Hi", "Ġ", "1", "2", "3", "4", "5", "6", "7"];
    assert_eq!(split("smollm", text), singles);
    assert_eq!(split("qwen2", text), singles);
    assert_eq!(split("llama-bpe", text), ["Hi", "Ġ", "123", "456", "7"]);
    // falcon: GPT-2's " 1234567", then groups of three digits split out of it.
    assert_eq!(split("falcon", text), ["Hi", "Ġ", "123", "456", "7"]);
}

#[test]
fn llama3_contractions_ignore_case_and_newlines_group() {
    assert_eq!(split("llama3", "I'VE\n\n x"), ["I", "'VE", "ĊĊ", "Ġx"]);
    assert_eq!(split("gpt-2", "I'VE"), ["I", "'", "VE"]);
}

#[test]
fn default_splits_punctuation_before_words() {
    // llama.cpp's default (no or "default" pre) isolates punctuation runs first; GPT-2 does not.
    assert_eq!(split("default", "a ,b"), ["a", "Ġ", ",", "b"]);
    assert_eq!(split("gpt-2", "a ,b"), ["a", "Ġ,", "b"]);
    assert_eq!(lookup(None).expect("default").kind, "DEFAULT");
}

#[test]
fn deepseek_v3_treats_tilde_as_llama_cpp_does() {
    // In llama.cpp `~` is neither punctuation nor symbol, so ` ?[\p{P}\p{S}]+` does not take it.
    assert_eq!(split("deepseek-v3", "x ~~"), ["x", "Ġ", "~~"]);
    assert_eq!(split("deepseek-v3", "x !!"), ["x", "Ġ!!"]);
}

#[test]
fn tekken_counts_non_ascii_letters_as_both_cases() {
    assert_eq!(split("tekken", "camelCase"), ["camel", "Case"]);
    assert_eq!(split("tekken", "aB"), ["a", "B"]);
    // tokenizer.json's \p{Ll} would stop before the capital; llama.cpp's rewrite does not.
    assert_eq!(split("tekken", "aÉ").len(), 1);
}

#[test]
fn bloom_keeps_everything_but_sentence_punctuation() {
    assert_eq!(split("bloom", "a-b c!d"), ["a-b", "Ġc", "!", "d"]);
}

#[test]
fn names_pick_rows_and_flags() {
    assert_eq!(lookup(Some("smaug-bpe")).expect("known").kind, "SMAUG");
    assert!(lookup(Some("llama-bpe")).expect("known").ignore_merges);
    assert!(!lookup(Some("qwen2")).expect("known").ignore_merges);
    assert!(adds_bos("llama3") && adds_bos("tekken") && adds_bos("chameleon"));
    assert!(!adds_bos("qwen2") && !adds_bos("no-such-pre"));
}

#[test]
fn unknown_name_is_an_error_listing_the_known_ones() {
    let err = lookup(Some("no-such-pre")).expect_err("unknown").to_string();
    assert!(
        err.contains("tokenizer.ggml.pre") && err.contains("no-such-pre"),
        "{err}"
    );
    assert!(err.contains("deepseek-v3") && err.contains("gpt-2"), "{err}");
}
