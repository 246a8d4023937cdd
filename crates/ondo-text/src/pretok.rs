//! Byte-level BPE pre-tokenizers by GGUF `tokenizer.ggml.pre` name.
//!
//! The split regexes are those of the models' own tokenizer.json files (the same ones llama.cpp's
//! llama-vocab.cpp uses); each family here is one row of that table.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::error::{Error, Result};

/// Llama-3: letters with one leading non-letter, numbers in groups of up to three.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2: as Llama-3 but every digit on its own.
const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer families ondo knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// GPT-2's regex (the `ByteLevel` pre-tokenizer's own).
    Gpt2,
    /// Digits split one by one, then GPT-2's regex (StarCoder, SmolLM, EXAONE).
    DigitsGpt2,
    /// Llama-3's regex; whole words found in the vocabulary skip the merges.
    Llama3,
    /// Qwen2's regex.
    Qwen2,
}

pub(crate) fn family(pre: Option<&str>) -> Result<Family> {
    let family = match pre.unwrap_or("default") {
        "default" | "gpt-2" | "gpt2" | "phi-2" | "olmo" | "jais" => Family::Gpt2,
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => Family::DigitsGpt2,
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "dbrx" | "smaug-bpe" => Family::Llama3,
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" => Family::Qwen2,
        other => {
            let msg = format!("pre-tokenizer {other:?} is not implemented");
            return Err(Error::vocab("tokenizer.ggml.pre", msg));
        }
    };
    Ok(family)
}

/// Whether llama.cpp adds BOS by default for this pre-tokenizer (the Llama-3 family does).
pub(crate) fn adds_bos(pre: &str) -> bool {
    family(Some(pre)).is_ok_and(|f| f == Family::Llama3)
}

/// The `tokenizers` pre-tokenizer for a family: split, then map bytes to ByteLevel characters.
pub(crate) fn pre_tokenizer(family: Family) -> Result<PreTokenizerWrapper> {
    let bytes_only = ByteLevel::new(false, true, false).into();
    let steps: Vec<PreTokenizerWrapper> = match family {
        Family::Gpt2 => vec![ByteLevel::new(false, true, true).into()],
        Family::DigitsGpt2 => vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()],
        Family::Llama3 => vec![regex_split(LLAMA3_REGEX)?, bytes_only],
        Family::Qwen2 => vec![regex_split(QWEN2_REGEX)?, bytes_only],
    };
    Ok(Sequence::new(steps).into())
}

fn regex_split(pattern: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| Error::tokenizers("pre-tokenizer regex", e))?;
    Ok(split.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn split(family: Family, text: &str) -> Vec<String> {
        let mut pts = PreTokenizedString::from(text);
        pre_tokenizer(family)
            .expect("pre-tokenizer")
            .pre_tokenize(&mut pts)
            .expect("pre_tokenize");
        let splits = pts.get_splits(OffsetReferential::Original, OffsetType::Byte);
        splits.into_iter().map(|(s, _, _)| s.to_string()).collect()
    }

    #[test]
    fn digit_grouping_differs_by_family() {
        let text = "Hi 1234567";
        assert_eq!(split(Family::Gpt2, text), ["Hi", "Ġ1234567"]);
        assert_eq!(
            split(Family::DigitsGpt2, text),
            ["Hi", "Ġ", "1", "2", "3", "4", "5", "6", "7"]
        );
        assert_eq!(split(Family::Llama3, text), ["Hi", "Ġ", "123", "456", "7"]);
        assert_eq!(
            split(Family::Qwen2, text),
            ["Hi", "Ġ", "1", "2", "3", "4", "5", "6", "7"]
        );
    }

    #[test]
    fn llama3_contractions_ignore_case_and_newlines_group() {
        assert_eq!(split(Family::Llama3, "I'VE\n\n x"), ["I", "'VE", "ĊĊ", "Ġx"]);
        assert_eq!(split(Family::Gpt2, "I'VE"), ["I", "'", "VE"]);
    }

    #[test]
    fn names_map_to_families() {
        assert_eq!(family(Some("smollm")).ok(), Some(Family::DigitsGpt2));
        assert_eq!(family(Some("llama-bpe")).ok(), Some(Family::Llama3));
        assert_eq!(family(None).ok(), Some(Family::Gpt2));
        assert!(family(Some("no-such-pre")).is_err());
        assert!(adds_bos("llama3") && !adds_bos("qwen2"));
    }
}
