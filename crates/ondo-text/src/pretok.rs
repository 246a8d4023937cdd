//! Byte-level BPE pre-tokenizers by GGUF `tokenizer.ggml.pre` name: llama.cpp's table as data.
//!
//! Each [`PreTok`] row is one of llama.cpp's `LLAMA_VOCAB_PRE_TYPE_*` types (llama-vocab.cpp at
//! c392e50): the names that select it, its split regexes, whether BOS is added by default and
//! whether whole words found in the vocabulary skip the merges (`ignore_merges`). The regexes
//! are applied in order, each splitting the pieces the previous one left; a match and the text
//! between two matches both become pieces (llama.cpp's `unicode_regex_split`). Then the bytes are
//! mapped to GPT-2's byte characters.
//!
//! llama.cpp runs most regexes through its own "collapsed" scheme (every non-ASCII code point
//! replaced by one byte standing for its Unicode category, then `std::regex`); ondo runs them in
//! Oniguruma with real Unicode categories. The two agree except where llama.cpp's collapsing
//! puts an ASCII character in no category: `~` is a symbol (`\p{S}`) in Unicode but in neither
//! `\p{P}` nor `\p{S}` in llama.cpp, so the one regex that uses `\p{S}` (deepseek-v3) is written
//! here with `~` taken out of `\p{S}`. Where llama.cpp itself rewrote a tokenizer.json pattern
//! for `std::regex` (Llama-3's `(?i:'s|...)`, Tekken's `\p{Lu}`/`\p{Ll}` classes), its rewrite
//! is used, since that is what produces llama.cpp's ids. All of c392e50's patterns compile in
//! Oniguruma; one that does not is an error naming the pre-tokenizer and the pattern.
//!
//! Out of scope: the SPM ("llama") vocabulary has no pre-tokenizer (see [`crate::spm`]);
//! WPM (BERT), UGM (T5) and RWKV vocabularies are not supported and fail as an unsupported
//! tokenizer model. llama.cpp's extra token attributes for `jina-v2-*` (`<mask>` strips the
//! space before it) are not applied.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::error::{Error, Result};

/// One llama.cpp pre-tokenizer type.
#[derive(Debug)]
pub(crate) struct PreTok {
    /// llama.cpp's type name (`LLAMA_VOCAB_PRE_TYPE_<kind>`), for messages and tests.
    pub kind: &'static str,
    /// The `tokenizer.ggml.pre` values that select it.
    pub names: &'static [&'static str],
    /// Split regexes, applied in order.
    pub regexes: &'static [&'static str],
    /// llama.cpp adds BOS by default (a file's `add_bos_token` still overrides it).
    pub add_bos: bool,
    /// A piece that is a whole vocabulary entry is that token, without running the merges.
    pub ignore_merges: bool,
}

/// GPT-2's regex (llama.cpp's form, without the redundant trailing `|\s+`).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama-3's regex with llama.cpp's case-insensitive contractions spelt out.
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2: Llama-3's regex with every digit on its own.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// BLOOM / Poro / GPT-3 Finnish: runs of anything but whitespace and sentence punctuation.
const BLOOM: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";
/// Letters of DeepSeek-LLM's Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee... ranges
/// (escaped where Unicode normalization would change the character, as an editor might).
const DEEPSEEK_LETTERS: &str = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
/// CJK ideographs, Samaritan to CJK, and Hangul (DeepSeek LLM and Coder).
const DEEPSEEK_CJK: &str = r"[一-龥ࠀ-一가-퟿]+";
/// DeepSeek-V3's main regex; `[\p{S}&&[^~]]` is llama.cpp's `\p{S}` (see the module docs).
const DEEPSEEK3: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}[\p{S}&&[^~]]]?[\p{L}\p{M}]+| ?[\p{P}[\p{S}&&[^~]]]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
/// Tekken (Mistral Nemo) as llama.cpp rewrote it: `(?=\p{L})[^a-z]` for "upper", `[^A-Z]` for
/// "lower", so a non-ASCII letter counts as both.
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A row that neither adds BOS nor skips merges.
const fn row(kind: &'static str, names: &'static [&'static str], regexes: &'static [&'static str]) -> PreTok {
    PreTok {
        kind,
        names,
        regexes,
        add_bos: false,
        ignore_merges: false,
    }
}

/// llama.cpp's BPE pre-tokenizer types (c392e50), in its enum order.
pub(crate) const TABLE: &[PreTok] = &[
    row(
        "DEFAULT",
        &["default"],
        &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
    ),
    PreTok {
        ignore_merges: true,
        add_bos: true,
        ..row("LLAMA3", &["llama3", "llama-v3", "llama-bpe", "falcon3"], &[LLAMA3])
    },
    row(
        "DEEPSEEK_LLM",
        &["deepseek-llm"],
        // llama.cpp's `\s+$` ends at the end of the piece: `\z` here.
        &[
            "[\r\n]",
            DEEPSEEK_LETTERS,
            r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
            r"\s+\z",
            DEEPSEEK_CJK,
            r"\p{N}+",
        ],
    ),
    row(
        "DEEPSEEK_CODER",
        &["deepseek-coder"],
        &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"],
    ),
    row(
        "FALCON",
        &["falcon"],
        &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
    ),
    row("MPT", &["mpt"], &[GPT2]),
    row("STARCODER", &["starcoder"], &[r"\p{N}", GPT2]),
    row(
        "GPT2",
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v1-en",
            "jina-v2-es",
            "jina-v2-de",
            "jina-v2-code",
            "roberta-bpe",
        ],
        &[GPT2],
    ),
    row("REFACT", &["refact"], &[r"\p{N}", GPT2]),
    row("COMMAND_R", &["command-r"], &[r"\p{N}", GPT2]),
    row("STABLELM2", &["stablelm2"], &[QWEN2]),
    row("QWEN2", &["qwen2", "deepseek-r1-qwen", "megrez"], &[QWEN2]),
    row("OLMO", &["olmo"], &[GPT2]),
    row("DBRX", &["dbrx"], &[LLAMA3]),
    row("SMAUG", &["smaug-bpe"], &[LLAMA3]),
    row("PORO", &["poro-chat"], &[BLOOM]),
    row("CHATGLM4", &["chatglm-bpe"], &[LLAMA3]),
    row("VIKING", &["viking"], &[BLOOM, r"\p{N}"]),
    row("JAIS", &["jais"], &[GPT2]),
    PreTok {
        ignore_merges: true,
        add_bos: true,
        ..row("TEKKEN", &["tekken"], &[TEKKEN])
    },
    row("SMOLLM", &["smollm"], &[r"\p{N}", GPT2]),
    row("CODESHELL", &["codeshell"], &[r"\p{N}", GPT2]),
    row("BLOOM", &["bloom"], &[BLOOM]),
    row("GPT3_FINNISH", &["gpt3-finnish"], &[BLOOM]),
    row("EXAONE", &["exaone"], &[r"\p{N}", GPT2]),
    PreTok {
        add_bos: true,
        ..row(
            "CHAMELEON",
            &["chameleon"],
            &[
                "<sentinel:[0-9]+>",
                "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                "([\t\n]|    |  )",
                r"\p{N}",
                r"[\p{P}!-/:-@\[-`{-~]",
                GPT2,
            ],
        )
    },
    row("MINERVA", &["minerva-7b"], &[r"\p{N}", GPT2]),
    row(
        "DEEPSEEK3_LLM",
        &["deepseek-v3"],
        &[r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK3],
    ),
];

/// The row for a `tokenizer.ggml.pre` value; a file without one gets llama.cpp's default.
pub(crate) fn lookup(pre: Option<&str>) -> Result<&'static PreTok> {
    let name = pre.unwrap_or("default");
    TABLE.iter().find(|p| p.names.contains(&name)).ok_or_else(|| {
        let known: Vec<&str> = TABLE.iter().flat_map(|p| p.names.iter().copied()).collect();
        let msg = format!(
            "pre-tokenizer {name:?} is not one llama.cpp knows ({})",
            known.join(", ")
        );
        Error::vocab("tokenizer.ggml.pre", msg)
    })
}

/// Whether llama.cpp adds BOS by default for this pre-tokenizer name.
pub(crate) fn adds_bos(pre: &str) -> bool {
    lookup(Some(pre)).is_ok_and(|p| p.add_bos)
}

/// The `tokenizers` pre-tokenizer of a row: its splits, then bytes to GPT-2's byte characters.
pub(crate) fn pre_tokenizer(pre: &PreTok) -> Result<PreTokenizerWrapper> {
    let mut steps = pre
        .regexes
        .iter()
        .map(|pattern| regex_split(pre, pattern))
        .collect::<Result<Vec<_>>>()?;
    steps.push(ByteLevel::new(false, true, false).into());
    Ok(Sequence::new(steps).into())
}

fn regex_split(pre: &PreTok, pattern: &str) -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| {
        let msg = format!("{} split regex {pattern:?} cannot be compiled: {e}", pre.kind);
        Error::vocab("tokenizer.ggml.pre", msg)
    })?;
    Ok(split.into())
}

#[cfg(test)]
#[path = "pretok_tests.rs"]
mod tests;
