//! A weight matrix: its format, its shape, and the bytes it lives in (often a memory map).

use crate::{DType, Error};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

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

/// Writes the plain bytes of whole rows from a first row (`Weight::for_matmul_from`).
pub type FillRows<'a> = dyn Fn(usize, &mut [u8]) -> Result<(), Error> + Sync + 'a;

/// A 2-D weight `[rows, cols]` stored row-major in `dtype`. For a linear layer `rows` is the
/// output size and `cols` the input size (the PyTorch / GGUF layout), so `y = x · Wᵀ`.
///
/// Each row is held once: plain, or (once `interleaved`) in the tiles the SIMD kernels read,
/// from which `row`, `bytes` and `dequantize_row` rebuild the plain blocks (`matmul::untile`).
#[derive(Clone, Debug)]
pub struct Weight {
    dtype: DType,
    rows: usize,
    cols: usize,
    /// The plain bytes of the rows not in `tiles`: every row, or the rows past the last whole
    /// group of sixteen.
    bytes: Bytes,
    /// The first `rows / 16 · 16` rows interleaved for the SIMD kernels (`matmul::interleave`),
    /// when made by `interleaved` or `for_matmul_from`.
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
    /// its rows move into tiles now. Load weights through this.
    pub fn for_matmul(self) -> Weight {
        if crate::matmul::reads_interleaved(crate::Isa::detect(), self.dtype) {
            self.interleaved()
        } else {
            self
        }
    }

    /// With its rows moved into the interleaved layout (on any CPU; the SIMD matmuls read it):
    /// the plain bytes kept are those of the rows past the last group of sixteen. Unchanged when
    /// the format has no interleaved form or there are fewer than 16 rows.
    pub fn interleaved(mut self) -> Weight {
        use crate::matmul::interleave;
        if self.tiles.is_none() && interleave::interleaves(self.dtype) && self.rows >= interleave::ROWS {
            let rb = self.row_bytes();
            let tiles = interleave::interleave(self.dtype, self.bytes.as_slice(), self.rows, rb);
            let len = tiles.as_ref().len();
            self.tiles = Some(Bytes::new(Arc::new(tiles), 0, len));
            let tail = self.bytes.as_slice()[self.tile_rows() * rb..].to_vec();
            self.bytes = Bytes::from_vec(tail);
        }
        self
    }

    /// A `[rows, cols]` weight of `dtype` whose plain rows `fill(first_row, out)` writes (a
    /// few whole rows per call, from any thread), made straight into the layout this CPU's
    /// kernels read (`for_matmul`): with tiles, the rows are written sixteen at a time into a
    /// scratch and interleaved from there, so the matrix is never held plain. Rows are filled
    /// in parallel on every core. The first error `fill` returns is the result.
    pub fn for_matmul_from(dtype: DType, rows: usize, cols: usize, fill: &FillRows<'_>) -> Result<Weight, Error> {
        use crate::matmul::interleave;
        let row_bytes = dtype.row_bytes(cols).ok_or(Error::Blocks {
            dtype,
            cols,
            block: dtype.block_size(),
        })?;
        let failed = Mutex::new(None);
        let put = |first: usize, out: &mut [u8]| {
            if let Err(e) = fill(first, out) {
                failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
            }
        };
        let tiled = crate::matmul::reads_interleaved(crate::Isa::detect(), dtype) && rows >= interleave::ROWS;
        let tile_rows = if tiled {
            rows / interleave::ROWS * interleave::ROWS
        } else {
            0
        };
        let tiles = tiled.then(|| {
            let tiles = interleave::interleave_with(dtype, rows, row_bytes, &put);
            let len = tiles.as_ref().len();
            Bytes::new(Arc::new(tiles), 0, len)
        });
        let mut plain = vec![0u8; (rows - tile_rows) * row_bytes];
        fill_in_parallel(&mut plain, row_bytes, tile_rows, &put);
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        let mut w = Weight::new(dtype, rows - tile_rows, cols, Bytes::from_vec(plain))?;
        (w.rows, w.tiles) = (rows, tiles);
        Ok(w)
    }

    /// Whether the rows are held interleaved (`for_matmul`, `interleaved`).
    pub fn is_interleaved(&self) -> bool {
        self.tiles.is_some()
    }

    /// The interleaved rows, when made (`interleaved`), and how many rows they cover.
    pub(crate) fn tiles(&self) -> Option<(&[u8], usize)> {
        self.tiles.as_ref().map(|t| (t.as_slice(), self.tile_rows()))
    }

    /// How many rows are held in tiles (0 when not interleaved).
    fn tile_rows(&self) -> usize {
        match self.tiles {
            Some(_) => self.rows / crate::matmul::interleave::ROWS * crate::matmul::interleave::ROWS,
            None => 0,
        }
    }

    /// The rows held plain: the first of them and their bytes (all rows unless interleaved).
    pub(crate) fn plain_rows(&self) -> (usize, &[u8]) {
        (self.tile_rows(), self.bytes.as_slice())
    }

    /// Row `r`'s bytes when it is held plain (kernels that read the plain format).
    pub(crate) fn plain_row(&self, r: usize) -> &[u8] {
        let (first, rb) = (self.tile_rows(), self.row_bytes());
        assert!(r >= first, "row {r} is held in tiles: rebuild it with `row`");
        &self.bytes.as_slice()[(r - first) * rb..][..rb]
    }

    /// Bytes this weight holds (tiles and plain rows).
    pub fn held_bytes(&self) -> usize {
        self.bytes.len() + self.tiles.as_ref().map_or(0, |t| t.len())
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
    /// Every row's plain bytes, back to back: borrowed, or rebuilt from the tiles when
    /// interleaved (tests, whole-matrix reads; the kernels read the tiles).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        if self.tiles.is_none() {
            return Cow::Borrowed(self.bytes.as_slice());
        }
        let rb = self.row_bytes();
        let mut out = vec![0u8; self.rows * rb];
        for (r, row) in out.chunks_exact_mut(rb.max(1)).enumerate() {
            row.copy_from_slice(&self.row(r));
        }
        Cow::Owned(out)
    }

    /// Bytes of one row in `dtype`.
    pub fn row_bytes(&self) -> usize {
        self.dtype.row_bytes(self.cols).unwrap_or(0)
    }

    /// The plain bytes of row `r` (rebuilt from its tile when interleaved).
    pub fn row(&self, r: usize) -> Cow<'_, [u8]> {
        if r >= self.tile_rows() {
            return Cow::Borrowed(self.plain_row(r));
        }
        let mut out = vec![0u8; self.row_bytes()];
        self.each_tiled_block(r, |b, block| {
            let bb = block.len();
            out[b * bb..(b + 1) * bb].copy_from_slice(block)
        });
        Cow::Owned(out)
    }

    /// Row `r` as f32 values (embedding lookup, reference paths); no allocation.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        if r >= self.tile_rows() {
            return crate::quant::dequantize_row(self.dtype, self.plain_row(r), &mut out[..self.cols]);
        }
        let bs = self.dtype.block_size();
        self.each_tiled_block(r, |b, block| {
            crate::quant::dequantize_row(self.dtype, block, &mut out[b * bs..(b + 1) * bs])
        });
    }

    /// Each plain block of tiled row `r`, in column order, rebuilt in a stack buffer.
    fn each_tiled_block(&self, r: usize, mut f: impl FnMut(usize, &[u8])) {
        use crate::matmul::{interleave, untile};
        let Some((tiles, _)) = self.tiles() else { return };
        let (bb, tb) = (self.dtype.block_bytes(), interleave::tile_bytes(self.dtype));
        let blocks = self.row_bytes() / bb;
        let group = &tiles[r / interleave::ROWS * blocks * tb..][..blocks * tb];
        let mut block = [0u8; untile::MAX_BLOCK];
        for (b, tile) in group.chunks_exact(tb).enumerate() {
            untile::plain_block(self.dtype, tile, r % interleave::ROWS, &mut block[..bb]);
            f(b, &block[..bb]);
        }
    }

    /// The whole matrix as f32 values, `[rows, cols]` (tests, load-time fix-ups).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (r, chunk) in out.chunks_mut(self.cols.max(1)).enumerate().take(self.rows) {
            self.dequantize_row(r, chunk);
        }
        out
    }

    /// The same weight with every row plain (for kernels that do not read its tiles).
    pub fn untiled(&self) -> Weight {
        match self.tiles {
            None => self.clone(),
            Some(_) => Weight {
                bytes: Bytes::from_vec(self.bytes().into_owned()),
                tiles: None,
                ..*self
            },
        }
    }
}

/// Rows from `first` filled into `out` (`row_bytes` each) by `put`, sixteen rows per call,
/// split over the cores.
fn fill_in_parallel(out: &mut [u8], row_bytes: usize, first: usize, put: &(dyn Fn(usize, &mut [u8]) + Sync)) {
    const ROWS: usize = 16;
    if out.is_empty() || row_bytes == 0 {
        return;
    }
    let rows = out.len() / row_bytes;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = rows.div_ceil(threads).next_multiple_of(ROWS);
    std::thread::scope(|s| {
        for (k, part) in out.chunks_mut(per * row_bytes).enumerate() {
            s.spawn(move || {
                for (i, rows) in part.chunks_mut(ROWS * row_bytes).enumerate() {
                    put(first + k * per + i * ROWS, rows);
                }
            });
        }
    });
}
