//! The crate's error type: every failure names the file, field or token it is about.

use std::path::PathBuf;

/// Errors from loading vocabularies and tokenizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The `tokenizers` crate rejected a tokenizer.json or a built tokenizer.
    #[error("tokenizer {what}: {message}")]
    Tokenizers { what: String, message: String },
    /// A GGUF vocabulary field is missing, malformed or inconsistent.
    #[error("GGUF vocabulary field {field}: {message}")]
    Vocab { field: &'static str, message: String },
    /// The GGUF tokenizer model (`tokenizer.ggml.model`) is not one ondo implements.
    #[error("unsupported tokenizer model tokenizer.ggml.model = {0:?} (supported: \"llama\", \"gpt2\")")]
    UnsupportedModel(String),
    /// A token id outside the vocabulary was given to decode.
    #[error("token id {id} is outside the vocabulary (size {vocab_size})")]
    UnknownId { id: u32, vocab_size: usize },
}

impl Error {
    pub(crate) fn tokenizers(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
        Error::Tokenizers {
            what: what.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn vocab(field: &'static str, message: impl Into<String>) -> Error {
        Error::Vocab {
            field,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
