//! Safetensors weights, single-file or sharded with `model.safetensors.index.json`, memory-mapped.

use crate::store::{TensorData, TensorStore};
use crate::Error;
use ondo_kernels::{Bytes, DType};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A memory map that can own a `Bytes` range.
pub(crate) struct MappedFile(pub memmap2::Mmap);

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Map a file read-only.
pub(crate) fn map_file(path: &Path) -> Result<Arc<MappedFile>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: model files are not modified while ondo runs; a concurrent writer is outside our contract.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Arc::new(MappedFile(map)))
}

/// All tensors of a model's safetensors files.
pub struct SafetensorsStore {
    path: PathBuf,
    tensors: HashMap<String, TensorData>,
    /// Each tensor's map and byte range in it, for `release`.
    ranges: HashMap<String, (Arc<MappedFile>, usize, usize)>,
}

impl SafetensorsStore {
    /// Open `model.safetensors`, or every shard listed in `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<SafetensorsStore, Error> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let (files, listed) = if single.exists() {
            (vec![single], vec![])
        } else if index.exists() {
            shard_files(&index)?
        } else {
            return Err(Error::NotAModel {
                path: dir.to_path_buf(),
                msg: "neither model.safetensors nor model.safetensors.index.json is there".into(),
            });
        };
        let (mut tensors, mut ranges) = (HashMap::new(), HashMap::new());
        for file in &files {
            read_file(file, &mut tensors, &mut ranges)?;
        }
        // every tensor the index lists is where it says
        if let Some((tensor, file)) = listed.iter().find(|(t, _)| !tensors.contains_key(t)) {
            return Err(Error::config(
                &index,
                &format!("weight_map.{tensor}"),
                format!("`{file}` has no tensor `{tensor}`"),
            ));
        }
        Ok(SafetensorsStore {
            path: files[0].clone(),
            tensors,
            ranges,
        })
    }
}

impl TensorStore for SafetensorsStore {
    fn path(&self) -> &Path {
        &self.path
    }
    fn get(&self, name: &str) -> Option<Result<TensorData, Error>> {
        self.tensors.get(name).cloned().map(Ok)
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn release(&self, name: &str) {
        if let Some((map, start, len)) = self.ranges.get(name) {
            // SAFETY: a read-only private file mapping: dropped pages read back the same bytes
            // from the file on the next touch, so no reference sees a change.
            let advice = memmap2::UncheckedAdvice::DontNeed;
            let _ = unsafe { map.0.unchecked_advise_range(advice, *start, *len) };
        }
    }
}

/// (tensor, shard file) entries of an index.
type Listed = Vec<(String, String)>;

/// The distinct shard files named by an index, in order, and its (tensor, file) entries.
fn shard_files(index: &Path) -> Result<(Vec<PathBuf>, Listed), Error> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    parse_index(index, &text)
}

/// `shard_files` on the index's text (`index` names it in errors and gives the folder).
pub(crate) fn parse_index(index: &Path, text: &str) -> Result<(Vec<PathBuf>, Listed), Error> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|source| Error::Json {
        path: index.to_path_buf(),
        source,
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::config(index, "weight_map", "is missing or not an object"))?;
    let mut files: BTreeMap<String, ()> = BTreeMap::new();
    let mut listed = vec![];
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| Error::config(index, &format!("weight_map.{tensor}"), "expected a file name"))?;
        if file.contains('/') || file.contains("..") {
            return Err(Error::config(
                index,
                &format!("weight_map.{tensor}"),
                format!("`{file}` is not a file in this folder"),
            ));
        }
        files.insert(file.to_string(), ());
        listed.push((tensor.clone(), file.to_string()));
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    Ok((files.into_keys().map(|f| dir.join(f)).collect(), listed))
}

type Ranges = HashMap<String, (Arc<MappedFile>, usize, usize)>;

/// Map one safetensors file and add its tensors (and their byte ranges).
fn read_file(path: &Path, out: &mut HashMap<String, TensorData>, ranges: &mut Ranges) -> Result<(), Error> {
    let map = map_file(path)?;
    for (name, tensor, start) in tensors_of(path, map.clone())? {
        ranges.insert(name.clone(), (map.clone(), start, tensor.bytes.len()));
        out.insert(name, tensor);
    }
    Ok(())
}

/// The tensors of a safetensors file held by `owner` (`path` names it in errors), each with its
/// data's start in the file.
pub(crate) fn tensors_of(
    path: &Path,
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
) -> Result<Vec<(String, TensorData, usize)>, Error> {
    let file = (*owner).as_ref();
    let bad = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let (header_len, meta) = safetensors::SafeTensors::read_metadata(file).map_err(|e| {
        let why = diagnose(file).unwrap_or_else(|| e.to_string());
        bad(format!("not a valid safetensors file: {why}"))
    })?;
    let data_start = 8 + header_len;
    let mut tensors = vec![];
    for (name, info) in meta.tensors() {
        let dtype = match info.dtype {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(Error::TensorDType {
                    path: path.to_path_buf(),
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        let (start, end) = info.data_offsets;
        if data_start + end > file.len() || start > end {
            return Err(bad(format!(
                "tensor `{name}` lies past the end of the file (truncated?)"
            )));
        }
        let bytes = Bytes::new(owner.clone(), data_start + start, end - start);
        let shape = info.shape.clone();
        tensors.push((name, TensorData { dtype, shape, bytes }, data_start + start));
    }
    Ok(tensors)
}

/// Why a header the `safetensors` crate refused is bad, naming the tensor (its own errors do
/// not): dtype, shape, offsets and coverage of each entry. `None` when no entry is at fault (or
/// the header itself cannot be read: the crate's message says that well enough).
fn diagnose(file: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(file.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value = serde_json::from_slice(file.get(8..8usize.checked_add(n)?)?).ok()?;
    let data_len = (file.len() - 8 - n) as u64;
    let mut spans = vec![];
    for (name, t) in header.as_object()?.iter().filter(|(k, _)| *k != "__metadata__") {
        let why = |msg: String| Some(format!("tensor `{name}`: {msg}"));
        let dtype = t["dtype"].as_str().unwrap_or("(none)");
        let size: u64 = match dtype {
            "F64" | "I64" | "U64" | "C64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            d if d == "BOOL" || d.ends_with("8") || d.starts_with("F8") => 1,
            _ => return why(format!("unknown dtype {dtype}")),
        };
        let Some(shape) = t["shape"]
            .as_array()
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect::<Option<Vec<_>>>())
        else {
            return why(format!("shape {} is not a list of sizes", t["shape"]));
        };
        let Some(need) = shape.iter().try_fold(size, |a, &d| a.checked_mul(d)) else {
            return why(format!("shape {shape:?} overflows"));
        };
        let Some([start, end]) = t["data_offsets"].as_array().and_then(|o| {
            let v: Option<Vec<u64>> = o.iter().map(|x| x.as_u64()).collect();
            v.and_then(|v| <[u64; 2]>::try_from(v).ok())
        }) else {
            return why(format!("data_offsets {} is not [start, end]", t["data_offsets"]));
        };
        if start > end {
            return why(format!("data_offsets [{start}, {end}] run backwards"));
        }
        if end - start != need {
            return why(format!(
                "shape {shape:?} of {dtype} is {need} bytes, its data_offsets span {}",
                end - start
            ));
        }
        if end > data_len {
            return why(format!(
                "its data ends at byte {end}, past the file's {data_len} bytes of data (truncated?)"
            ));
        }
        spans.push((start, end, name));
    }
    spans.sort();
    let mut at = 0;
    for (start, end, name) in spans {
        if start != at {
            return Some(format!(
                "tensor `{name}` starts at byte {start}, where byte {at} was expected (a gap or an overlap)"
            ));
        }
        at = end;
    }
    (at != data_len).then(|| format!("{} bytes of data after the last tensor", data_len - at))
}
