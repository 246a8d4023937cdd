//! GGUF v3 writer, streamed: [`GgufOut::create`] writes the header, the metadata and every
//! tensor's info (sizes known from shape and type up front, offsets aligned to 32), then
//! [`GgufOut::write_tensor`] appends one tensor's bytes at a time, in the order given, so a
//! writer holds at most one tensor. Everything goes to `OUT.partial` beside the target;
//! [`GgufOut::finish`] renames it into place once every tensor is written, and dropping an
//! unfinished writer removes it, so a failed export never leaves a partial file behind.
//!
//! The layout is the one `gguf.rs` reads (see its module docs).

use crate::gguf::{Array, Value, DEFAULT_ALIGNMENT};
use crate::Error;
use ondo_kernels::DType;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One tensor to be written: name, shape `[rows, cols]` (PyTorch order) and format.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl TensorSpec {
    /// Bytes of the tensor's data (None when its rows are not whole blocks).
    pub fn bytes(&self) -> Option<usize> {
        let cols = *self.shape.last().unwrap_or(&1);
        let rows: usize = self.shape.iter().rev().skip(1).product();
        self.dtype.row_bytes(cols).map(|b| b * rows)
    }
}

/// A GGUF file being written.
pub struct GgufOut {
    dst: PathBuf,
    tmp: PathBuf,
    w: Option<BufWriter<File>>,
    specs: Vec<TensorSpec>,
    next: usize,
}

impl GgufOut {
    /// Start `dst`: header, metadata (`(key, value)` in order) and tensor infos.
    pub fn create(dst: &Path, metadata: &[(String, Value)], specs: Vec<TensorSpec>) -> Result<GgufOut, Error> {
        let tmp = partial_path(dst);
        let file = File::create(&tmp).map_err(|e| Error::io(dst, e))?;
        let mut out = GgufOut {
            dst: dst.to_path_buf(),
            tmp,
            w: Some(BufWriter::with_capacity(1 << 20, file)),
            specs,
            next: 0,
        };
        let header = out.header(metadata)?;
        out.put(&header)?;
        Ok(out)
    }

    fn header(&self, metadata: &[(String, Value)]) -> Result<Vec<u8>, Error> {
        let mut h = Vec::new();
        h.extend_from_slice(b"GGUF");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&(self.specs.len() as u64).to_le_bytes());
        h.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_str(&mut h, key);
            put_value(&mut h, value);
        }
        let mut offset = 0u64;
        for spec in &self.specs {
            let size = self.size_of(spec)?;
            put_str(&mut h, &spec.name);
            h.extend_from_slice(&(spec.shape.len() as u32).to_le_bytes());
            for d in spec.shape.iter().rev() {
                h.extend_from_slice(&(*d as u64).to_le_bytes());
            }
            h.extend_from_slice(&spec.dtype.ggml_id().to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
            offset += align(size as u64);
        }
        h.resize(align(h.len() as u64) as usize, 0);
        Ok(h)
    }

    fn size_of(&self, spec: &TensorSpec) -> Result<usize, Error> {
        spec.bytes().ok_or_else(|| Error::Format {
            path: self.dst.clone(),
            msg: format!(
                "tensor `{}` of shape {:?} is not a whole number of {} blocks",
                spec.name, spec.shape, spec.dtype
            ),
        })
    }

    /// The specs still to be written, next first.
    pub fn pending(&self) -> &[TensorSpec] {
        &self.specs[self.next..]
    }

    /// Append the next tensor's data (its size must match its spec).
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<(), Error> {
        let Some(spec) = self.specs.get(self.next) else {
            return Err(self.format_error("more tensors written than announced".into()));
        };
        let size = self.size_of(spec)?;
        if data.len() != size {
            let msg = format!("tensor `{}`: {} bytes written, {size} expected", spec.name, data.len());
            return Err(self.format_error(msg));
        }
        self.put(data)?;
        let pad = align(size as u64) as usize - size;
        self.put(&vec![0u8; pad])?;
        self.next += 1;
        Ok(())
    }

    /// Flush, check every tensor was written, and move the file into place.
    pub fn finish(mut self) -> Result<(), Error> {
        if self.next != self.specs.len() {
            let msg = format!("{} of {} tensors written", self.next, self.specs.len());
            return Err(self.format_error(msg));
        }
        let w = self
            .w
            .take()
            .unwrap_or_else(|| unreachable!("the writer is there until finish"));
        let done = w
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.dst));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        done.map_err(|e| Error::io(&self.dst, e))
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let w = self
            .w
            .as_mut()
            .unwrap_or_else(|| unreachable!("the writer is there until finish"));
        w.write_all(bytes).map_err(|e| Error::io(&self.dst, e))
    }

    fn format_error(&self, msg: String) -> Error {
        Error::Format {
            path: self.dst.clone(),
            msg,
        }
    }
}

impl Drop for GgufOut {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `OUT.partial` beside `OUT`.
pub fn partial_path(dst: &Path) -> PathBuf {
    let mut name = dst.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dst.with_file_name(name)
}

fn align(n: u64) -> u64 {
    n.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A value's type id and bytes.
fn put_value(out: &mut Vec<u8>, v: &Value) {
    let (id, body): (u32, Vec<u8>) = match v {
        Value::U8(x) => (0, vec![*x]),
        Value::I8(x) => (1, x.to_le_bytes().to_vec()),
        Value::U16(x) => (2, x.to_le_bytes().to_vec()),
        Value::I16(x) => (3, x.to_le_bytes().to_vec()),
        Value::U32(x) => (4, x.to_le_bytes().to_vec()),
        Value::I32(x) => (5, x.to_le_bytes().to_vec()),
        Value::F32(x) => (6, x.to_le_bytes().to_vec()),
        Value::Bool(x) => (7, vec![*x as u8]),
        Value::String(s) => {
            let mut b = vec![];
            put_str(&mut b, s);
            (8, b)
        }
        Value::Array(a) => {
            let mut b = vec![];
            put_array(&mut b, a);
            (9, b)
        }
        Value::U64(x) => (10, x.to_le_bytes().to_vec()),
        Value::I64(x) => (11, x.to_le_bytes().to_vec()),
        Value::F64(x) => (12, x.to_le_bytes().to_vec()),
    };
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&body);
}

/// An array: element type, count, elements.
fn put_array(out: &mut Vec<u8>, a: &Array) {
    fn each<T>(out: &mut Vec<u8>, id: u32, items: &[T], f: impl Fn(&mut Vec<u8>, &T)) {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(items.len() as u64).to_le_bytes());
        items.iter().for_each(|x| f(out, x));
    }
    match a {
        Array::U8(v) => each(out, 0, v, |o, x| o.push(*x)),
        Array::I8(v) => each(out, 1, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::U16(v) => each(out, 2, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I16(v) => each(out, 3, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::U32(v) => each(out, 4, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I32(v) => each(out, 5, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::F32(v) => each(out, 6, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::Bool(v) => each(out, 7, v, |o, x| o.push(*x as u8)),
        Array::String(v) => each(out, 8, v, |o, x| put_str(o, x)),
        Array::Array(v) => each(out, 9, v, put_array),
        Array::U64(v) => each(out, 10, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::I64(v) => each(out, 11, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
        Array::F64(v) => each(out, 12, v, |o, x| o.extend_from_slice(&x.to_le_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    #[test]
    fn a_written_file_reads_back_with_its_metadata_and_tensors() {
        let dir = std::env::temp_dir().join(format!("ondo-gguf-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gguf");
        let meta = vec![
            ("general.architecture".to_string(), Value::String("llama".into())),
            (
                "x.list".to_string(),
                Value::Array(Array::String(vec!["a".into(), "b c".into()])),
            ),
            ("x.n".to_string(), Value::U32(7)),
        ];
        let values: Vec<f32> = (0..64).map(|i| i as f32 * 0.25).collect();
        let specs = vec![
            TensorSpec {
                name: "a.weight".into(),
                shape: vec![2, 32],
                dtype: DType::Q8_0,
            },
            TensorSpec {
                name: "b".into(),
                shape: vec![3],
                dtype: DType::F32,
            },
        ];
        let mut out = GgufOut::create(&path, &meta, specs).unwrap();
        let q = ondo_kernels::Weight::quantize(DType::Q8_0, &values, 2, 32).unwrap();
        out.write_tensor(&q.bytes()).unwrap();
        assert!(out.write_tensor(&[0u8; 5]).is_err(), "a wrong size is refused");
        out.write_tensor(&[1f32, 2., 3.].map(f32::to_le_bytes).concat())
            .unwrap();
        out.finish().unwrap();
        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.get_str("general.architecture").unwrap(), Some("llama"));
        assert_eq!(g.get_str_array("x.list").unwrap().unwrap(), &["a", "b c"]);
        assert_eq!(g.get_u32("x.n").unwrap(), Some(7));
        assert_eq!(g.weight("a.weight").unwrap().bytes(), q.bytes());
        assert_eq!(g.weight("b").unwrap().to_f32(), vec![1., 2., 3.]);
        assert!(!partial_path(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unfinished_file_is_removed() {
        let dir = std::env::temp_dir().join(format!("ondo-gguf-unfinished-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gguf");
        let spec = TensorSpec {
            name: "b".into(),
            shape: vec![3],
            dtype: DType::F32,
        };
        let out = GgufOut::create(&path, &[], vec![spec]).unwrap();
        assert!(partial_path(&path).exists());
        assert!(out.finish().is_err(), "a missing tensor is an error");
        assert!(!partial_path(&path).exists() && !path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
