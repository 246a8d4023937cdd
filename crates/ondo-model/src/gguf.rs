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

use memmap2::Mmap;
use ondo_kernels::{Bytes, DType, Weight};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of arrays accepted (real files use 1; this bounds recursion on bad input).
const MAX_ARRAY_NESTING: usize = 8;
/// GGML_MAX_DIMS.
const MAX_DIMS: usize = 4;

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
        parse(path.to_path_buf(), Arc::new(backing))
    }

    /// Parse a GGUF image held in memory; `name` is used in error messages.
    pub fn from_vec(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        parse(name.into(), Arc::new(Backing::Owned(bytes)))
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

// ---------------------------------------------------------------------------------------------
// Parsing: header → metadata → tensor infos → data section.

fn parse(path: PathBuf, data: Arc<Backing>) -> Result<GgufFile, GgufError> {
    let buf: &[u8] = (*data).as_ref();
    let mut r = Reader {
        buf,
        pos: 0,
        path: &path,
        warnings: Vec::new(),
    };
    let (version, n_tensors, n_kv) = read_header(&mut r)?;
    let metadata = read_metadata(&mut r, n_kv)?;
    let alignment = read_alignment(&path, &metadata)?;
    let mut tensors = read_tensor_infos(&mut r, n_tensors)?;
    let data_start = align_up(r.pos as u64, alignment);
    let by_name = locate_tensors(&path, &mut tensors, data_start, alignment, buf.len() as u64)?;
    let warnings = r.warnings;
    Ok(GgufFile {
        path,
        data,
        version,
        alignment,
        data_start,
        metadata,
        tensors,
        by_name,
        warnings,
    })
}

fn read_header(r: &mut Reader) -> Result<(u32, u64, u64), GgufError> {
    let magic = r.take(4, || "the magic \"GGUF\"".into())?;
    if magic != b"GGUF" {
        let found = [magic[0], magic[1], magic[2], magic[3]];
        return Err(GgufError::Magic {
            path: r.path.to_path_buf(),
            found,
        });
    }
    let version = r.u32(|| "the version".into())?;
    if version != 2 && version != 3 {
        return Err(GgufError::Version {
            path: r.path.to_path_buf(),
            version,
        });
    }
    let n_tensors = r.u64(|| "the tensor count".into())?;
    let n_kv = r.u64(|| "the metadata count".into())?;
    Ok((version, n_tensors, n_kv))
}

fn read_metadata(r: &mut Reader, n_kv: u64) -> Result<BTreeMap<String, Value>, GgufError> {
    // Smallest entry: empty key (8) + type (4) + a one-byte value.
    r.check_count(n_kv, 13, || format!("{n_kv} metadata entries"))?;
    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = r.name(|| format!("metadata key #{i}"))?;
        let type_id = r.u32(|| format!("the value type of {key}"))?;
        let value = r.value(&key, type_id)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(GgufError::DuplicateKey {
                path: r.path.to_path_buf(),
                key,
            });
        }
    }
    Ok(metadata)
}

fn read_alignment(path: &Path, metadata: &BTreeMap<String, Value>) -> Result<u64, GgufError> {
    let key = "general.alignment";
    let Some(value) = metadata.get(key) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let Some(alignment) = value.as_u64().filter(|&a| a <= u32::MAX as u64) else {
        let found = value.type_name();
        return Err(GgufError::WrongType {
            path: path.into(),
            key: key.into(),
            expected: "u32",
            found,
        });
    };
    if !alignment.is_power_of_two() {
        return Err(GgufError::Alignment {
            path: path.into(),
            alignment,
        });
    }
    Ok(alignment)
}

fn read_tensor_infos(r: &mut Reader, n_tensors: u64) -> Result<Vec<TensorInfo>, GgufError> {
    // Smallest info: empty name (8) + n_dims (4) + type (4) + offset (8).
    r.check_count(n_tensors, 24, || format!("{n_tensors} tensor infos"))?;
    (0..n_tensors).map(|i| read_tensor_info(r, i)).collect()
}

fn read_tensor_info(r: &mut Reader, index: u64) -> Result<TensorInfo, GgufError> {
    let name = r.name(|| format!("the name of tensor #{index}"))?;
    let n_dims = r.u32(|| format!("the dimension count of tensor {name}"))?;
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::Dims {
            path: r.path.to_path_buf(),
            name,
            n_dims,
        });
    }
    let dims = (0..n_dims)
        .map(|d| r.u64(|| format!("dimension {d} of tensor {name}")))
        .collect::<Result<Vec<_>, _>>()?;
    let ggml_type = r.u32(|| format!("the type of tensor {name}"))?;
    let offset = r.u64(|| format!("the offset of tensor {name}"))?;
    let dtype = DType::from_ggml_id(ggml_type);
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        dtype,
        offset,
        start: 0,
        size_bytes: None,
    })
}

/// Fill in each tensor's absolute start and size, checking shape, alignment and bounds.
fn locate_tensors(
    path: &Path,
    tensors: &mut [TensorInfo],
    data_start: u64,
    alignment: u64,
    file_len: u64,
) -> Result<HashMap<String, usize>, GgufError> {
    let mut by_name = HashMap::with_capacity(tensors.len());
    for (i, t) in tensors.iter_mut().enumerate() {
        t.size_bytes = tensor_size(path, t)?;
        if t.offset % alignment != 0 {
            let (name, offset) = (t.name.clone(), t.offset);
            return Err(GgufError::Misaligned {
                path: path.into(),
                name,
                offset,
                alignment,
            });
        }
        let start = data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.size_bytes.unwrap_or(0)));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_len => t.start = start,
            _ => {
                return Err(GgufError::PastEnd {
                    path: path.into(),
                    name: t.name.clone(),
                    offset: t.offset,
                    size: t.size_bytes,
                    file_len,
                })
            }
        }
        if by_name.insert(t.name.clone(), i).is_some() {
            return Err(GgufError::DuplicateTensor {
                path: path.into(),
                name: t.name.clone(),
            });
        }
    }
    Ok(by_name)
}

/// Bytes of a tensor's data, or None when its type's block layout is unknown.
fn tensor_size(path: &Path, t: &TensorInfo) -> Result<Option<u64>, GgufError> {
    let shape_err = |why: &'static str| GgufError::Shape {
        path: path.into(),
        name: t.name.clone(),
        dims: t.dims.clone(),
        why,
    };
    if t.dims.iter().any(|&d| d > i64::MAX as u64) {
        return Err(shape_err("a dimension is larger than 2^63 - 1"));
    }
    // The rows alone must fit too: with dims[0] = 0 the total is 0 however many rows there are.
    let product = |dims: &[u64]| {
        let n = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        n.filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| shape_err("too many elements"))
    };
    product(t.dims.get(1..).unwrap_or_default())?;
    let n = product(&t.dims)?;
    let Some((block, block_bytes)) = ggml_block_layout(t.ggml_type) else {
        return Ok(None);
    };
    let cols = t.dims.first().copied().unwrap_or(1);
    if cols % block != 0 {
        return Err(shape_err("rows are not a whole number of quantization blocks"));
    }
    // Also bound one row: with another dim 0 the total is 0 however wide the rows are.
    let too_big = || shape_err("too many bytes");
    (cols / block)
        .checked_mul(block_bytes)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(too_big)?;
    let size = (n / block).checked_mul(block_bytes).ok_or_else(too_big)?;
    Ok(Some(size))
}

fn align_up(x: u64, alignment: u64) -> u64 {
    x.div_ceil(alignment).saturating_mul(alignment)
}

/// (values per block, bytes per block) of a ggml type: ondo-kernels' types, plus the ggml
/// types it does not compute, so their tensors can still be bounds-checked.
fn ggml_block_layout(type_id: u32) -> Option<(u64, u64)> {
    if let Some(d) = DType::from_ggml_id(type_id) {
        return Some((d.block_size() as u64, d.block_bytes() as u64));
    }
    let layout = match type_id {
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    };
    Some(layout)
}

/// The ggml name of a type id, for messages.
pub fn ggml_type_name(type_id: u32) -> &'static str {
    if let Some(d) = DType::from_ggml_id(type_id) {
        return d.name();
    }
    match type_id {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

/// A cursor over the file's bytes. Every read names what it was reading for the error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self, what: String) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            what,
        }
    }

    fn take(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(self.truncated(what()));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// Fail as truncated unless `count` items of at least `min_size` bytes each can follow.
    fn check_count(&self, count: u64, min_size: u64, what: impl FnOnce() -> String) -> Result<usize, GgufError> {
        match count.checked_mul(min_size) {
            Some(n) if n <= self.remaining() as u64 => Ok(count as usize),
            _ => Err(self.truncated(what())),
        }
    }

    fn fixed<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.fixed(what)?))
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.fixed(what)?))
    }

    fn string_bytes(&mut self, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let len = self.u64(|| format!("the length of {}", what()))?;
        let len = self.check_count(len, 1, || format!("{} ({len} bytes)", what()))?;
        self.take(len, what)
    }

    /// A key or tensor name: must be UTF-8.
    fn name(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let start = self.pos as u64;
        let bytes = self.string_bytes(&what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(GgufError::Utf8 {
                path: self.path.to_path_buf(),
                what: what(),
                offset: start,
            }),
        }
    }

    /// A string value: invalid UTF-8 is decoded lossily and recorded as a warning.
    fn string_value(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let start = self.pos;
        let bytes = self.string_bytes(&what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => {
                self.warnings
                    .push(format!("{} at byte {start} is not valid UTF-8", what()));
                Ok(String::from_utf8_lossy(bytes).into_owned())
            }
        }
    }

    fn value(&mut self, key: &str, type_id: u32) -> Result<Value, GgufError> {
        let what = || format!("the value of {key}");
        Ok(
            match ValueType::from_id(type_id).ok_or_else(|| self.bad_type(key, type_id))? {
                ValueType::U8 => Value::U8(self.prim(what)?),
                ValueType::I8 => Value::I8(self.prim(what)?),
                ValueType::U16 => Value::U16(self.prim(what)?),
                ValueType::I16 => Value::I16(self.prim(what)?),
                ValueType::U32 => Value::U32(self.prim(what)?),
                ValueType::I32 => Value::I32(self.prim(what)?),
                ValueType::F32 => Value::F32(self.prim(what)?),
                ValueType::Bool => Value::Bool(self.prim(what)?),
                ValueType::String => Value::String(self.string_value(what)?),
                ValueType::Array => Value::Array(self.array(key, 1)?),
                ValueType::U64 => Value::U64(self.prim(what)?),
                ValueType::I64 => Value::I64(self.prim(what)?),
                ValueType::F64 => Value::F64(self.prim(what)?),
            },
        )
    }

    fn bad_type(&self, key: &str, type_id: u32) -> GgufError {
        GgufError::ValueType {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            type_id,
        }
    }

    fn prim<T: Prim>(&mut self, what: impl FnOnce() -> String) -> Result<T, GgufError> {
        let at = self.pos as u64;
        let bytes = self.take(T::SIZE, what)?;
        T::decode(bytes).ok_or_else(|| GgufError::InvalidBool {
            path: self.path.to_path_buf(),
            offset: at,
        })
    }

    /// An array (element type, count, elements) of `key`, `depth` levels deep.
    fn array(&mut self, key: &str, depth: usize) -> Result<Array, GgufError> {
        if depth > MAX_ARRAY_NESTING {
            return Err(GgufError::Nesting {
                path: self.path.to_path_buf(),
                key: key.to_string(),
            });
        }
        let type_id = self.u32(|| format!("the element type of array {key}"))?;
        let elem = ValueType::from_id(type_id).ok_or_else(|| self.bad_type(key, type_id))?;
        let count = self.u64(|| format!("the length of array {key}"))?;
        let n = self.check_count(count, elem.min_size(), || {
            format!("array {key} of {count} {} elements", elem.name())
        })?;
        Ok(match elem {
            ValueType::U8 => Array::U8(self.prims(n, key)?),
            ValueType::I8 => Array::I8(self.prims(n, key)?),
            ValueType::U16 => Array::U16(self.prims(n, key)?),
            ValueType::I16 => Array::I16(self.prims(n, key)?),
            ValueType::U32 => Array::U32(self.prims(n, key)?),
            ValueType::I32 => Array::I32(self.prims(n, key)?),
            ValueType::F32 => Array::F32(self.prims(n, key)?),
            ValueType::Bool => Array::Bool(self.prims(n, key)?),
            ValueType::String => Array::String(
                (0..n)
                    .map(|i| self.string_value(|| format!("element {i} of {key}")))
                    .collect::<Result<_, _>>()?,
            ),
            ValueType::Array => Array::Array((0..n).map(|_| self.array(key, depth + 1)).collect::<Result<_, _>>()?),
            ValueType::U64 => Array::U64(self.prims(n, key)?),
            ValueType::I64 => Array::I64(self.prims(n, key)?),
            ValueType::F64 => Array::F64(self.prims(n, key)?),
        })
    }

    /// `n` fixed-size elements, decoded in one pass (n was checked against the bytes left).
    fn prims<T: Prim>(&mut self, n: usize, key: &str) -> Result<Vec<T>, GgufError> {
        let at = self.pos as u64;
        let bytes = self.take(n * T::SIZE, || format!("the elements of array {key}"))?;
        bytes
            .chunks_exact(T::SIZE)
            .map(T::decode)
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| GgufError::InvalidBool {
                path: self.path.to_path_buf(),
                offset: at,
            })
    }
}

/// A fixed-size little-endian scalar.
trait Prim: Sized {
    const SIZE: usize;
    /// `bytes` has exactly SIZE bytes; None for an invalid value (a bool other than 0 or 1).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

macro_rules! prim_le {
    ($($t:ty),*) => {$(
        impl Prim for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn decode(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}
prim_le!(u8, i8, u16, i16, u32, i32, f32, u64, i64, f64);

impl Prim for bool {
    const SIZE: usize = 1;
    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.first()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// GGUF metadata value types, numbered as in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        const ALL: [ValueType; 13] = [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64];
        ALL.get(id as usize).copied()
    }

    /// The fewest bytes one value of this type takes in the file.
    fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }

    fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values.

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array value, decoded into a vector of its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    /// Any integer value that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(x) => Some(x.into()),
            Value::U16(x) => Some(x.into()),
            Value::U32(x) => Some(x.into()),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    /// Any integer value that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(x) => Some(x.into()),
            Value::I16(x) => Some(x.into()),
            Value::I32(x) => Some(x.into()),
            Value::I64(x) => Some(x),
            _ => self.as_u64().and_then(|x| i64::try_from(x).ok()),
        }
    }

    /// An f32 or f64 value.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(x) => Some(x.into()),
            Value::F64(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The type as a phrase for messages: "u32", "string", "array of 3 f32".
    pub fn type_name(&self) -> String {
        let scalar = match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Array(a) => return a.type_name(),
        };
        scalar.to_string()
    }
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            Array::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_arrays(&self) -> Option<&[Array]> {
        match self {
            Array::Array(v) => Some(v),
            _ => None,
        }
    }

    /// The values as i32 when every one fits (borrowed when stored as i32).
    pub fn to_i32s(&self) -> Option<Cow<'_, [i32]>> {
        match self {
            Array::I32(v) => Some(Cow::Borrowed(v)),
            _ => self.convert_ints(|x| i32::try_from(x).ok()).map(Cow::Owned),
        }
    }

    /// The values as u32 when every one fits (borrowed when stored as u32).
    pub fn to_u32s(&self) -> Option<Cow<'_, [u32]>> {
        match self {
            Array::U32(v) => Some(Cow::Borrowed(v)),
            _ => self.convert_ints(|x| u32::try_from(x).ok()).map(Cow::Owned),
        }
    }

    /// Map every integer element (widened to i128) through `f`; None for non-integer arrays or
    /// when any element does not convert.
    fn convert_ints<T>(&self, f: impl Fn(i128) -> Option<T>) -> Option<Vec<T>> {
        fn all<S: Copy + Into<i128>, T>(v: &[S], f: impl Fn(i128) -> Option<T>) -> Option<Vec<T>> {
            v.iter().map(|&x| f(x.into())).collect()
        }
        match self {
            Array::U8(v) => all(v, f),
            Array::I8(v) => all(v, f),
            Array::U16(v) => all(v, f),
            Array::I16(v) => all(v, f),
            Array::U32(v) => all(v, f),
            Array::I32(v) => all(v, f),
            Array::U64(v) => all(v, f),
            Array::I64(v) => all(v, f),
            _ => None,
        }
    }

    /// "array of 3 f32", "array of 2 array".
    pub fn type_name(&self) -> String {
        let elem = match self {
            Array::U8(_) => "u8",
            Array::I8(_) => "i8",
            Array::U16(_) => "u16",
            Array::I16(_) => "i16",
            Array::U32(_) => "u32",
            Array::I32(_) => "i32",
            Array::F32(_) => "f32",
            Array::Bool(_) => "bool",
            Array::String(_) => "string",
            Array::Array(_) => "array",
            Array::U64(_) => "u64",
            Array::I64(_) => "i64",
            Array::F64(_) => "f64",
        };
        format!("array of {} {elem}", self.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types_are_numbered_as_in_the_spec() {
        assert_eq!(ValueType::from_id(0), Some(ValueType::U8));
        assert_eq!(ValueType::from_id(8), Some(ValueType::String));
        assert_eq!(ValueType::from_id(9), Some(ValueType::Array));
        assert_eq!(ValueType::from_id(12), Some(ValueType::F64));
        assert_eq!(ValueType::from_id(13), None);
    }

    #[test]
    fn integer_accessors_accept_any_type_that_fits() {
        assert_eq!(Value::U8(7).as_u64(), Some(7));
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I32(-1).as_i64(), Some(-1));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::F32(1.0).as_u64(), None);
        assert_eq!(Value::String("x".into()).as_f64(), None);
    }

    #[test]
    fn int_arrays_convert_when_every_value_fits() {
        let a = Array::U8(vec![1, 2, 255]);
        assert_eq!(a.to_i32s().as_deref(), Some(&[1, 2, 255][..]));
        assert_eq!(Array::I64(vec![1, -1]).to_u32s(), None);
        assert_eq!(Array::F32(vec![1.0]).to_i32s(), None);
        assert!(matches!(Array::I32(vec![3]).to_i32s(), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn block_layouts_match_ondo_kernels_and_ggml() {
        assert_eq!(ggml_block_layout(0), Some((1, 4)));
        assert_eq!(ggml_block_layout(12), Some((256, 144)));
        assert_eq!(ggml_block_layout(23), Some((256, 136)));
        assert_eq!(ggml_block_layout(4), None); // removed Q4_2
        assert_eq!(ggml_type_name(20), "IQ4_NL");
    }

    #[test]
    fn align_up_rounds_to_the_next_multiple() {
        assert_eq!(align_up(0, 32), 0);
        assert_eq!(align_up(1, 32), 32);
        assert_eq!(align_up(64, 32), 64);
        assert_eq!(align_up(u64::MAX, 32), u64::MAX); // saturates, no panic
    }
}
