//! A tokenizer vocabulary as GGUF files store it (`tokenizer.ggml.*` metadata), as a plain struct.
//!
//! The model loader fills a [`GgufVocab`] from a GGUF file (the key names are the `KEY_*` constants),
//! so this crate needs no GGUF reader; [`crate::Tokenizer::from_gguf_vocab`] turns it into a tokenizer.
//! Fields a file leaves out stay `None` / empty and get llama.cpp's defaults here.

use crate::error::{Error, Result};

pub const KEY_MODEL: &str = "tokenizer.ggml.model";
pub const KEY_PRE: &str = "tokenizer.ggml.pre";
pub const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub const KEY_SCORES: &str = "tokenizer.ggml.scores";
pub const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const KEY_MERGES: &str = "tokenizer.ggml.merges";
pub const KEY_BOS_ID: &str = "tokenizer.ggml.bos_token_id";
pub const KEY_EOS_ID: &str = "tokenizer.ggml.eos_token_id";
pub const KEY_UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
pub const KEY_PAD_ID: &str = "tokenizer.ggml.padding_token_id";
pub const KEY_EOT_ID: &str = "tokenizer.ggml.eot_token_id";
pub const KEY_EOM_ID: &str = "tokenizer.ggml.eom_token_id";
pub const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
pub const KEY_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
pub const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    /// The GGUF integer code; 0 (undefined) and unknown codes count as normal, as in llama.cpp.
    pub fn from_code(code: i32) -> TokenType {
        match code {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// The `tokenizer.*` metadata of a GGUF file.
#[derive(Debug, Clone, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "llama" (SentencePiece BPE with scores) or "gpt2" (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer name ("gpt-2", "llama-bpe", "qwen2", "smollm", ...).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// One per token, or empty (all 0).
    pub scores: Vec<f32>,
    /// One GGUF code per token (see [`TokenType`]), or empty (all normal).
    pub token_types: Vec<i32>,
    /// "left right" pairs, highest priority first ("gpt2" only).
    pub merges: Vec<String>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub eot_id: Option<u32>,
    pub eom_id: Option<u32>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub add_space_prefix: Option<bool>,
    pub chat_template: Option<String>,
}

impl GgufVocab {
    /// Checks that the per-token arrays agree in length and the vocabulary is not empty.
    pub fn validate(&self) -> Result<()> {
        if self.tokens.is_empty() {
            return Err(Error::vocab("tokenizer.ggml.tokens", "missing or empty"));
        }
        let n = self.tokens.len();
        if !self.scores.is_empty() && self.scores.len() != n {
            let msg = format!("{} scores for {n} tokens", self.scores.len());
            return Err(Error::vocab("tokenizer.ggml.scores", msg));
        }
        if !self.token_types.is_empty() && self.token_types.len() != n {
            let msg = format!("{} types for {n} tokens", self.token_types.len());
            return Err(Error::vocab("tokenizer.ggml.token_type", msg));
        }
        Ok(())
    }

    pub fn token_type(&self, id: u32) -> TokenType {
        let code = self.token_types.get(id as usize).copied().unwrap_or(1);
        TokenType::from_code(code)
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// A special-token id, or None when absent or outside the vocabulary (GGUF writes -1 / u32::MAX).
    pub fn checked_id(&self, id: Option<u32>) -> Option<u32> {
        id.filter(|&i| (i as usize) < self.tokens.len())
    }

    /// Whether llama.cpp adds BOS for this vocabulary: the file's flag, else true for "llama" (SPM)
    /// and for the pre-tokenizers llama.cpp adds it for (Llama-3, Tekken, Chameleon).
    pub fn resolved_add_bos(&self) -> bool {
        let default = self.model == "llama" || self.pre.as_deref().is_some_and(crate::pretok::adds_bos);
        self.add_bos_token.unwrap_or(default)
    }

    pub fn resolved_add_eos(&self) -> bool {
        self.add_eos_token.unwrap_or(false)
    }

    /// Whether a space is put before the text ("llama" default: yes; "gpt2": no).
    pub fn resolved_add_space_prefix(&self) -> bool {
        self.add_space_prefix.unwrap_or(self.model == "llama")
    }
}
