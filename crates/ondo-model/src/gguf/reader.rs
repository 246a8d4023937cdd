//! GGUF parsing: header → metadata → tensor infos → data section, every count checked against
//! the bytes left before allocating and every tensor's byte range against the file size.

use super::types::ggml_type;
use super::{Array, Backing, GgufError, GgufFile, TensorInfo, Value, DEFAULT_ALIGNMENT};
use ondo_kernels::DType;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Deepest nesting of arrays accepted (real files use 1; this bounds recursion on bad input).
const MAX_ARRAY_NESTING: usize = 8;
/// GGML_MAX_DIMS.
const MAX_DIMS: usize = 4;

/// Parse a whole file held by `data` (`path` names it in errors).
pub(super) fn parse(path: PathBuf, data: Arc<Backing>) -> Result<GgufFile, GgufError> {
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
    let Some(ty) = ggml_type(t.ggml_type) else {
        return Ok(None);
    };
    let (block, block_bytes) = (ty.block_size, ty.block_bytes);
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
    fn align_up_rounds_to_the_next_multiple() {
        assert_eq!(align_up(0, 32), 0);
        assert_eq!(align_up(1, 32), 32);
        assert_eq!(align_up(64, 32), 64);
        assert_eq!(align_up(u64::MAX, 32), u64::MAX); // saturates, no panic
    }
}
