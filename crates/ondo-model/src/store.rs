//! Named tensors from any file format, as zero-copy byte ranges.

use crate::quant_plan::QuantPlan;
use crate::Error;
use ondo_kernels::{Bytes, DType, ThreadPool, Weight};
use std::path::{Path, PathBuf};

/// One tensor as stored: its format, its shape in PyTorch order (`[rows, cols]` for a matrix,
/// outermost axis first), and its bytes.
#[derive(Debug, Clone)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Bytes,
}

/// A source of named tensors (a set of safetensors files, a GGUF file).
pub trait TensorStore: Send + Sync {
    /// The file the tensors come from, for error messages.
    fn path(&self) -> &Path;
    /// The tensor `name`: None when absent, an error when present but unusable.
    fn get(&self, name: &str) -> Option<Result<TensorData, Error>>;
    fn names(&self) -> Vec<String>;
    /// Tensor `name`'s bytes were copied (`Weight::for_matmul`): a memory-mapped store may let
    /// the OS drop its pages now (they map again if touched), so a load never holds a weight
    /// twice.
    fn release(&self, _name: &str) {}
}

/// Which naming and storage conventions a store follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Hugging Face safetensors (PyTorch names and values).
    Hf,
    /// llama.cpp's GGUF conversion.
    Gguf,
}

/// Typed access to a store by canonical name, checking shapes as it goes.
pub struct Tensors<'a> {
    pub store: &'a dyn TensorStore,
    pub format: Format,
    /// Maps a canonical name (`blk.0.attn_q.weight`) to the store's own name.
    pub name_of: &'a dyn Fn(&str) -> String,
    /// Quantize matrices at load (`--quantize`), when set.
    pub quant: Option<&'a LoadQuant<'a>>,
}

/// Quantize-at-load: which format each matrix gets, and the pool that quantizes its rows.
pub struct LoadQuant<'a> {
    pub plan: QuantPlan,
    pub pool: &'a ThreadPool,
}

impl Tensors<'_> {
    fn path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    pub fn has(&self, canonical: &str) -> bool {
        self.store.get(&(self.name_of)(canonical)).is_some()
    }

    fn fetch(&self, canonical: &str) -> Result<(String, TensorData), Error> {
        let name = (self.name_of)(canonical);
        match self.store.get(&name) {
            Some(t) => Ok((name, t?)),
            None => Err(Error::MissingTensor {
                path: self.path(),
                name,
            }),
        }
    }

    fn check_shape(&self, name: &str, got: &[usize], expected: &[usize]) -> Result<(), Error> {
        if got == expected {
            return Ok(());
        }
        Err(Error::TensorShape {
            path: self.path(),
            name: name.to_string(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }

    /// A `[rows, cols]` matrix kept in its stored format (only read row by row: embeddings).
    pub fn matrix(&self, canonical: &str, rows: usize, cols: usize) -> Result<Weight, Error> {
        let (name, t) = self.fetch(canonical)?;
        self.check_shape(&name, &t.shape, &[rows, cols])?;
        Weight::new(t.dtype, rows, cols, t.bytes).map_err(|e| Error::Format {
            path: self.path(),
            msg: format!("tensor `{name}`: {e}"),
        })
    }

    /// A `[rows, cols]` matrix the matmul reads, in the layout this CPU's kernels read fastest
    /// (`planned_linear`).
    pub fn linear(&self, canonical: &str, rows: usize, cols: usize) -> Result<Weight, Error> {
        let stored = self.matrix(canonical, rows, cols)?;
        self.planned_linear(canonical, &stored, None)
    }

    /// Rows `rows` (every row when `None`) of `w`, the tensor `canonical`, as the matmul reads
    /// them: in the load's quantization plan's format, quantized straight into this CPU's
    /// kernel layout, or in their stored format (`Weight::for_matmul`). The source's mapped
    /// pages are let go once the whole tensor is converted: the load holds each weight once.
    pub fn planned_linear(&self, canonical: &str, w: &Weight, rows: Option<&[usize]>) -> Result<Weight, Error> {
        let name = (self.name_of)(canonical);
        let err = |e: ondo_kernels::Error| Error::Format {
            path: self.path(),
            msg: format!("tensor `{name}`: {e}"),
        };
        let out = match self.plan_dtype(canonical, w) {
            Some(dtype) => crate::quantize::quantize_for_matmul(w, rows, dtype).map_err(err)?,
            None => match rows {
                None => w.clone().for_matmul(),
                Some(rows) => {
                    let mut bytes = Vec::with_capacity(rows.len() * w.row_bytes());
                    for &r in rows {
                        bytes.extend_from_slice(&w.row(r));
                    }
                    Weight::new(w.dtype(), rows.len(), w.cols(), Bytes::from_vec(bytes))
                        .map_err(err)?
                        .for_matmul()
                }
            },
        };
        // a fused tensor's parts are made one by one (their caller lets it go after the last)
        if rows.is_none() && (out.is_interleaved() || out.dtype() != w.dtype()) {
            self.store.release(&name);
        }
        Ok(out)
    }

    /// The format the load's quantization plan gives the matrix `canonical`, when it changes it.
    fn plan_dtype(&self, canonical: &str, w: &Weight) -> Option<DType> {
        let q = self.quant?;
        q.plan
            .dtype_for(canonical, &[w.rows(), w.cols()])
            .filter(|d| *d != w.dtype())
    }

    /// `w` (the tensor `canonical`) in the format the load's quantization plan gives it, or as
    /// it is without a plan: plain rows, for matrices only read row by row (embeddings).
    pub fn planned(&self, canonical: &str, w: Weight) -> Result<Weight, Error> {
        let (Some(q), Some(dtype)) = (self.quant, self.plan_dtype(canonical, &w)) else {
            return Ok(w);
        };
        let name = (self.name_of)(canonical);
        let quantized = crate::quantize::quantize_weight(q.pool, &w, dtype).map_err(|e| Error::Format {
            path: self.path(),
            msg: format!("quantizing tensor `{name}`: {e}"),
        })?;
        // the source's pages are not needed again: the load holds each weight once
        self.store.release(&name);
        Ok(quantized)
    }

    /// A 1-D vector of `len` values as f32 (norm weights, biases).
    pub fn vector(&self, canonical: &str, len: usize) -> Result<Vec<f32>, Error> {
        let (name, t) = self.fetch(canonical)?;
        self.check_shape(&name, &t.shape, &[len])?;
        let w = Weight::new(t.dtype, 1, len, t.bytes).map_err(|e| Error::Format {
            path: self.path(),
            msg: format!("tensor `{name}`: {e}"),
        })?;
        Ok(w.to_f32())
    }

    pub fn opt_vector(&self, canonical: &str, len: usize) -> Result<Option<Vec<f32>>, Error> {
        if self.has(canonical) {
            self.vector(canonical, len).map(Some)
        } else {
            Ok(None)
        }
    }
}
