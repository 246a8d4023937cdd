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
        let files = if single.exists() {
            vec![single]
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

/// The distinct shard files named by an index, in order.
fn shard_files(index: &Path) -> Result<Vec<PathBuf>, Error> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: index.to_path_buf(),
        source,
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::config(index, "weight_map", "is missing or not an object"))?;
    let mut files: BTreeMap<String, ()> = BTreeMap::new();
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
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    Ok(files.into_keys().map(|f| dir.join(f)).collect())
}

type Ranges = HashMap<String, (Arc<MappedFile>, usize, usize)>;

/// Map one safetensors file and add its tensors (and their byte ranges).
fn read_file(path: &Path, out: &mut HashMap<String, TensorData>, ranges: &mut Ranges) -> Result<(), Error> {
    let map = map_file(path)?;
    let bad = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    let (header_len, meta) = safetensors::SafeTensors::read_metadata(&map.0[..])
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let data_start = 8 + header_len;
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
        if data_start + end > map.0.len() || start > end {
            return Err(bad(format!(
                "tensor `{name}` lies past the end of the file (truncated?)"
            )));
        }
        let bytes = Bytes::new(map.clone(), data_start + start, end - start);
        ranges.insert(name.clone(), (map.clone(), data_start + start, end - start));
        out.insert(
            name,
            TensorData {
                dtype,
                shape: info.shape.clone(),
                bytes,
            },
        );
    }
    Ok(())
}
