//! Errors of model loading and running. Each names the file, field or tensor at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: field `{field}`: {msg}")]
    Config { path: PathBuf, field: String, msg: String },
    #[error("{path}: unsupported architecture `{name}` (supported: {supported})")]
    UnknownArch {
        path: PathBuf,
        name: String,
        supported: String,
    },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{path}: tensor `{name}` has unsupported dtype {dtype}")]
    TensorDType { path: PathBuf, name: String, dtype: String },
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("{path}: no model found: {msg}")]
    NotAModel { path: PathBuf, msg: String },
    #[error(transparent)]
    Gguf(Box<crate::gguf::GgufError>),
    #[error("sequence of {len} tokens exceeds the model's context of {max} (max_position_embeddings)")]
    ContextTooLong { len: usize, max: usize },
    #[error("invalid batch: {0}")]
    BadBatch(String),
    #[error("token id {id} is outside the vocabulary of {vocab_size}")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    #[error("unknown quantization type `{name}` (--type / --quantize; supported: {supported})")]
    UnknownQuantType { name: String, supported: String },
    #[error("{path}: cannot export architecture `{arch}` to GGUF (exportable: {supported})")]
    ExportArch {
        path: PathBuf,
        arch: String,
        supported: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn config(path: impl Into<PathBuf>, field: &str, msg: impl Into<String>) -> Error {
        Error::Config {
            path: path.into(),
            field: field.to_string(),
            msg: msg.into(),
        }
    }
}
