//! Everything that can go wrong reading a GGUF file; each error names the file.

use std::path::PathBuf;

/// Everything that can go wrong reading a GGUF file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: file is truncated: {what} at byte {offset} runs past the end", path.display())]
    Truncated { path: PathBuf, offset: u64, what: String },
    #[error("{}: not a GGUF file (starts with {found:?}, expected \"GGUF\")", path.display())]
    Magic { path: PathBuf, found: [u8; 4] },
    #[error("{}: unsupported GGUF version {version} (ondo reads versions 2 and 3)", path.display())]
    Version { path: PathBuf, version: u32 },
    #[error("{}: metadata {key} has unknown value type {type_id}", path.display())]
    ValueType { path: PathBuf, key: String, type_id: u32 },
    #[error("{}: bool at byte {offset} is neither 0 nor 1", path.display())]
    InvalidBool { path: PathBuf, offset: u64 },
    #[error("{}: arrays in metadata {key} are nested too deeply", path.display())]
    Nesting { path: PathBuf, key: String },
    #[error("{}: {what} (at byte {offset}) is not valid UTF-8", path.display())]
    Utf8 { path: PathBuf, what: String, offset: u64 },
    #[error("{}: metadata key {key} appears twice", path.display())]
    DuplicateKey { path: PathBuf, key: String },
    #[error("{}: metadata {key} is {found}, expected {expected}", path.display())]
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("{}: general.alignment {alignment} is not a power of two", path.display())]
    Alignment { path: PathBuf, alignment: u64 },
    #[error("{}: tensor {name} has {n_dims} dimensions (at most 4)", path.display())]
    Dims { path: PathBuf, name: String, n_dims: u32 },
    #[error("{}: tensor {name} with dims {dims:?}: {why}", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        dims: Vec<u64>,
        why: &'static str,
    },
    #[error("{}: tensor {name} offset {offset} is not a multiple of the alignment {alignment}", path.display())]
    Misaligned {
        path: PathBuf,
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error("{}: tensor {name} data (offset {offset}, {}) is past the end of the file ({file_len} bytes)", path.display(),
        size.map_or("a size past 2^64".to_string(), |s| format!("{s} bytes")))]
    PastEnd {
        path: PathBuf,
        name: String,
        offset: u64,
        size: Option<u64>,
        file_len: u64,
    },
    #[error("{}: tensor {name} appears twice", path.display())]
    DuplicateTensor { path: PathBuf, name: String },
    #[error("{}: no tensor named {name}", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: tensor {name} has ggml type {type_id} ({type_name}), which ondo cannot compute", path.display())]
    UnsupportedType {
        path: PathBuf,
        name: String,
        type_id: u32,
        type_name: &'static str,
    },
    #[error("{}: tensor {name}: {source}", path.display())]
    Weight {
        path: PathBuf,
        name: String,
        source: ondo_kernels::Error,
    },
}
