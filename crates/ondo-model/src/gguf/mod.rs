//! GGUF reader: a memory-mapped `.gguf` file → typed metadata + tensor infos + zero-copy weights.
//!
//! Layout of a GGUF v2/v3 file (all little-endian):
//! ```text
//! "GGUF" | version u32 | tensor_count u64 | kv_count u64
//! kv_count × (key: string, value_type u32, value)
//! tensor_count × (name: string, n_dims u32, dims n_dims × u64, ggml_type u32, offset u64)
//! padding to `general.alignment` (default 32) | tensor data (offsets are relative to here)
//! ```
//! A string is a u64 byte length and UTF-8 bytes; an array is an element type u32, a u64 count
//! and the elements (arrays may nest). `dims[0]` is the innermost, contiguous axis (columns).
//!
//! Reading order in this file: [`GgufFile::open`] maps the file, [`parse`] walks header →
//! metadata → tensor infos → data section, checking every count against the bytes left before
//! allocating and every tensor's byte range against the file size. Large arrays (a 150k-token
//! vocabulary) are decoded once into typed vectors (`Vec<String>`, `Vec<f32>`, ...). Tensor data
//! is never copied: [`GgufFile::bytes`] and [`GgufFile::weight`] hand out ranges of the map.
//!
//! Tensor types ondo-kernels cannot compute (IQ formats, ...) still open; using such a tensor
//! fails with an error naming it and its type id. Invalid UTF-8 in a metadata string value
//! (some converted vocabularies have it) is decoded lossily and reported in
//! [`GgufFile::warnings`]; invalid UTF-8 in a key or tensor name is an error.
//!
//! Files: this one (the open file and its accessors), `reader.rs` (parsing), `values.rs`
//! (metadata values), `types.rs` (the one table of ggml tensor types) and `error.rs`.

mod error;
mod reader;
mod types;
mod values;

pub use error::GgufError;
pub use types::{ggml_type, ggml_type_name, GgmlType};
pub use values::{Array, Value};

use memmap2::Mmap;
use ondo_kernels::{Bytes, DType, Weight};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// An open GGUF file: its metadata, its tensor infos and the memory map they point into.
pub struct GgufFile {
    path: PathBuf,
    data: Arc<Backing>,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: BTreeMap<String, Value>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    warnings: Vec<String>,
}

/// One tensor as the file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` is the innermost (contiguous) axis, i.e. the columns of a matrix.
    pub dims: Vec<u64>,
    /// The raw ggml type id.
    pub ggml_type: u32,
    /// The type as ondo-kernels knows it; `None` when it cannot compute this type.
    pub dtype: Option<DType>,
    /// Offset as stored: relative to the start of the data section.
    pub offset: u64,
    /// Absolute byte offset of the data in the file.
    pub start: u64,
    /// Bytes of data; `None` only for a type id whose block layout is unknown.
    pub size_bytes: Option<u64>,
}

impl TensorInfo {
    /// Number of values (product of the dims; checked not to overflow at open).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// `[rows, cols]` of the tensor seen as a matrix: cols = dims[0], rows = the product of the
    /// other dims (1 for a vector).
    pub fn rows_cols(&self) -> (u64, u64) {
        let cols = self.dims.first().copied().unwrap_or(1);
        (self.dims.iter().skip(1).product(), cols)
    }
}

/// What keeps the bytes alive: a memory map, or a buffer given by the caller.
enum Backing {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Backing {
    fn as_ref(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

impl GgufFile {
    /// Map and parse `path`. Tensor data stays on disk until touched.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let backing = if len == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; like every mmap-based model loader we rely on the
            // file not being truncated or rewritten while it is open.
            Backing::Map(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        reader::parse(path.to_path_buf(), Arc::new(backing))
    }

    /// Parse a GGUF image held in memory; `name` is used in error messages.
    pub fn from_vec(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        reader::parse(name.into(), Arc::new(Backing::Owned(bytes)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drop tensor `name`'s mapped pages from the process's memory (as `release_pages`, for one
    /// tensor: called as soon as its bytes were copied, so a load's peak memory holds each
    /// weight once).
    pub fn release_tensor_pages(&self, name: &str) {
        let (Some(info), Backing::Map(m)) = (self.tensor(name), &*self.data) else {
            return;
        };
        if let Some(size) = info.size_bytes {
            // SAFETY: as in `release_pages` (the range is widened to whole pages: a neighbour's
            // dropped page reads back unchanged too).
            let advice = memmap2::UncheckedAdvice::DontNeed;
            let _ = unsafe { m.unchecked_advise_range(advice, info.start as usize, size as usize) };
        }
    }

    /// Drop this file's mapped pages from the process's memory (`MADV_DONTNEED`): called after
    /// a load that copied what the kernels read (`Weight::for_matmul`), so those bytes are not
    /// counted twice. Anything touched later (embedding rows) is mapped again from the page cache.
    pub fn release_pages(&self) {
        if let Backing::Map(m) = &*self.data {
            // SAFETY: the map is a read-only private file mapping: dropped pages read back the
            // same bytes from the file on the next touch, so no reference sees a change.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The data-section alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }
    /// Absolute file offset of the data section.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }
    /// Problems that did not stop the file from opening (lossily decoded strings).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// Any integer value that fits a u32.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.typed(key, "u32", |v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
    }
    /// Any non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.typed(key, "u64", Value::as_u64)
    }
    /// Any integer value that fits an i32.
    pub fn get_i32(&self, key: &str) -> Result<Option<i32>, GgufError> {
        self.typed(key, "i32", |v| v.as_i64().and_then(|x| i32::try_from(x).ok()))
    }
    /// Any integer value that fits an i64.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.typed(key, "i64", Value::as_i64)
    }
    /// An f32 or f64 value.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.typed(key, "f32", |v| v.as_f64().map(|x| x as f32))
    }
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.typed(key, "bool", Value::as_bool)
    }
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.typed(key, "string", Value::as_str)
    }
    pub fn get_array(&self, key: &str) -> Result<Option<&Array>, GgufError> {
        self.typed(key, "array", Value::as_array)
    }
    pub fn get_str_array(&self, key: &str) -> Result<Option<&[String]>, GgufError> {
        self.typed(key, "array of string", |v| v.as_array()?.as_strings())
    }
    pub fn get_f32_array(&self, key: &str) -> Result<Option<&[f32]>, GgufError> {
        self.typed(key, "array of f32", |v| v.as_array()?.as_f32s())
    }
    /// An array of any integer type whose values all fit an i32 (borrowed when stored as i32).
    pub fn get_i32_array(&self, key: &str) -> Result<Option<Cow<'_, [i32]>>, GgufError> {
        self.typed(key, "array of i32", |v| v.as_array()?.to_i32s())
    }
    /// An array of any integer type whose values all fit a u32 (borrowed when stored as u32).
    pub fn get_u32_array(&self, key: &str) -> Result<Option<Cow<'_, [u32]>>, GgufError> {
        self.typed(key, "array of u32", |v| v.as_array()?.to_u32s())
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, GgufError> {
        let Some(value) = self.metadata.get(key) else {
            return Ok(None);
        };
        convert(value).map(Some).ok_or_else(|| GgufError::WrongType {
            path: self.path.clone(),
            key: key.to_string(),
            expected,
            found: value.type_name(),
        })
    }

    /// All tensors, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The tensor's bytes, zero-copy. Fails only for a type whose block layout is unknown.
    pub fn bytes(&self, info: &TensorInfo) -> Result<Bytes, GgufError> {
        let size = info.size_bytes.ok_or_else(|| self.unsupported(info))?;
        let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = self.data.clone();
        // Both fit in usize and lie inside the data: checked in `locate_tensors`.
        Ok(Bytes::new(owner, info.start as usize, size as usize))
    }

    /// Tensor `name` as a matrix `[rows, cols]` (cols = dims[0], rows = product of the other
    /// dims; a vector is one row), zero-copy.
    pub fn weight(&self, name: &str) -> Result<Weight, GgufError> {
        let info = self.tensor(name).ok_or_else(|| GgufError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let dtype = info.dtype.ok_or_else(|| self.unsupported(info))?;
        let (rows, cols) = info.rows_cols();
        let bytes = self.bytes(info)?;
        // rows·cols is a checked element count, and the bytes are in memory: both fit usize.
        Weight::new(dtype, rows as usize, cols as usize, bytes).map_err(|source| GgufError::Weight {
            path: self.path.clone(),
            name: name.to_string(),
            source,
        })
    }

    fn unsupported(&self, info: &TensorInfo) -> GgufError {
        GgufError::UnsupportedType {
            path: self.path.clone(),
            name: info.name.clone(),
            type_id: info.ggml_type,
            type_name: ggml_type_name(info.ggml_type),
        }
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}
