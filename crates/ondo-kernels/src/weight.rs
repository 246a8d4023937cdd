//! A weight matrix: its format, its shape, and the bytes it lives in (often a memory map).

use crate::{DType, Error};
use std::sync::Arc;

/// A shared, immutable byte range. The owner is whatever keeps the bytes alive: a memory map of a
/// model file, or a `Vec<u8>` made at load time. Cloning is cheap.
#[derive(Clone)]
pub struct Bytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    start: usize,
    len: usize,
}

impl Bytes {
    /// A range of `owner`'s bytes. Panics if the range is out of bounds: callers check file
    /// offsets before they get here.
    pub fn new(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, start: usize, len: usize) -> Bytes {
        assert!(
            start + len <= (*owner).as_ref().len(),
            "byte range past the end of its owner"
        );
        Bytes { owner, start, len }
    }

    pub fn from_vec(v: Vec<u8>) -> Bytes {
        let len = v.len();
        Bytes {
            owner: Arc::new(v),
            start: 0,
            len,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.start..self.start + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len)
    }
}

/// A 2-D weight `[rows, cols]` stored row-major in `dtype`. For a linear layer `rows` is the
/// output size and `cols` the input size (the PyTorch / GGUF layout), so `y = x · Wᵀ`.
#[derive(Clone, Debug)]
pub struct Weight {
    dtype: DType,
    rows: usize,
    cols: usize,
    bytes: Bytes,
    /// The first `rows / 16 · 16` rows again, interleaved for the SIMD kernels
    /// (`matmul::interleave`), when made by `interleaved`.
    tiles: Option<Bytes>,
}

impl Weight {
    /// Wrap raw bytes, checking that their size matches the shape and format.
    pub fn new(dtype: DType, rows: usize, cols: usize, bytes: Bytes) -> Result<Weight, Error> {
        let row_bytes = dtype.row_bytes(cols).ok_or(Error::Blocks {
            dtype,
            cols,
            block: dtype.block_size(),
        })?;
        let expected = row_bytes * rows;
        if bytes.len() != expected {
            return Err(Error::Size {
                dtype,
                rows,
                cols,
                expected,
                got: bytes.len(),
            });
        }
        Ok(Weight {
            dtype,
            rows,
            cols,
            bytes,
            tiles: None,
        })
    }

    /// An f32 weight copied from values (tests and small fix-ups).
    pub fn from_f32(values: &[f32], rows: usize, cols: usize) -> Weight {
        assert_eq!(values.len(), rows * cols, "from_f32: shape does not match the values");
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Weight {
            dtype: DType::F32,
            rows,
            cols,
            bytes: Bytes::from_vec(bytes),
            tiles: None,
        }
    }

    /// Quantize f32 values `[rows, cols]` into a new weight of `dtype` (tests, benchmarks,
    /// load-time conversions).
    pub fn quantize(dtype: DType, values: &[f32], rows: usize, cols: usize) -> Result<Weight, Error> {
        let row_bytes = dtype.row_bytes(cols).ok_or(Error::Blocks {
            dtype,
            cols,
            block: dtype.block_size(),
        })?;
        if values.len() != rows * cols {
            let expected = rows * cols;
            return Err(Error::Size {
                dtype: DType::F32,
                rows,
                cols,
                expected,
                got: values.len(),
            });
        }
        let mut bytes = vec![0u8; rows * row_bytes];
        for (src, dst) in values
            .chunks_exact(cols.max(1))
            .zip(bytes.chunks_exact_mut(row_bytes.max(1)))
        {
            crate::quant::quantize_row(dtype, src, dst)?;
        }
        Weight::new(dtype, rows, cols, Bytes::from_vec(bytes))
    }

    /// This weight ready for the matmul kernels of this CPU (`Isa::detect`): when they read its
    /// format interleaved (AVX-512 VNNI: Q4_0..Q8_0, Q4_K, Q5_K, Q6_K; AVX2: the 32-value ones),
    /// the interleaved copy is made now (the plain bytes stay for row lookups such as
    /// embeddings). Load weights through this.
    pub fn for_matmul(self) -> Weight {
        if crate::matmul::reads_interleaved(crate::Isa::detect(), self.dtype) {
            self.interleaved()
        } else {
            self
        }
    }

    /// With the interleaved copy of its rows (on any CPU; the SIMD matmuls read it).
    /// Unchanged when the format has no interleaved form or there are fewer than 16 rows.
    pub fn interleaved(mut self) -> Weight {
        use crate::matmul::interleave;
        if self.tiles.is_none() && interleave::interleaves(self.dtype) && self.rows >= interleave::ROWS {
            let tiles = interleave::interleave(self.dtype, self.bytes(), self.rows, self.row_bytes());
            let len = tiles.as_ref().len();
            self.tiles = Some(Bytes::new(std::sync::Arc::new(tiles), 0, len));
        }
        self
    }

    /// Whether the interleaved copy was made (`for_matmul`, `interleaved`).
    pub fn is_interleaved(&self) -> bool {
        self.tiles.is_some()
    }

    /// The interleaved rows, when made (`interleaved`), and how many rows they cover.
    pub(crate) fn tiles(&self) -> Option<(&[u8], usize)> {
        let rows = self.rows / crate::matmul::interleave::ROWS * crate::matmul::interleave::ROWS;
        self.tiles.as_ref().map(|t| (t.as_slice(), rows))
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }
    pub fn row_bytes(&self) -> usize {
        self.bytes.len() / self.rows.max(1)
    }

    /// The raw bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.bytes()[r * rb..(r + 1) * rb]
    }

    /// Row `r` as f32 values (embedding lookup, reference paths).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        crate::quant::dequantize_row(self.dtype, self.row(r), &mut out[..self.cols]);
    }

    /// The whole matrix as f32 values, `[rows, cols]` (tests, load-time fix-ups).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (r, chunk) in out.chunks_mut(self.cols.max(1)).enumerate().take(self.rows) {
            self.dequantize_row(r, chunk);
        }
        out
    }
}
