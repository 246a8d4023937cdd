//! Requantizing a matrix on every core: rows are split into tasks on the kernels' thread pool,
//! each task dequantizes its rows (the reference `dequantize_row`) into a small f32 scratch and
//! quantizes them into its own slice of the output. Nothing but the output is allocated per
//! matrix, so a load or an export holds one tensor's new bytes at a time.

use ondo_kernels::{dequantize_row, quantize_row, Bytes, DType, ThreadPool, Weight};
use std::sync::Mutex;

/// Rows per task: enough work per task to hide the hand-off, small enough to balance.
const ROWS_PER_TASK: usize = 16;

/// Rows `rows` of `src_dtype` (`src` holds them back to back) quantized to `dst`, `cols` values each.
pub fn quantize_rows(
    pool: &ThreadPool,
    src_dtype: DType,
    src: &[u8],
    rows: usize,
    cols: usize,
    dst: DType,
) -> Result<Vec<u8>, ondo_kernels::Error> {
    let blocks = |d: DType| {
        d.row_bytes(cols).ok_or(ondo_kernels::Error::Blocks {
            dtype: d,
            cols,
            block: d.block_size(),
        })
    };
    let (src_row, dst_row) = (blocks(src_dtype)?, blocks(dst)?);
    let mut out = vec![0u8; rows * dst_row];
    if rows == 0 || dst_row == 0 {
        return Ok(out);
    }
    let chunks: Vec<Mutex<&mut [u8]>> = out.chunks_mut(ROWS_PER_TASK * dst_row).map(Mutex::new).collect();
    let failed = Mutex::new(None);
    pool.run(chunks.len(), |task| {
        let mut dst_bytes = chunks[task].lock().unwrap_or_else(|e| e.into_inner());
        let mut values = vec![0f32; cols];
        for (i, dst_bytes) in dst_bytes.chunks_exact_mut(dst_row).enumerate() {
            let r = task * ROWS_PER_TASK + i;
            dequantize_row(src_dtype, &src[r * src_row..(r + 1) * src_row], &mut values);
            if let Err(e) = quantize_row(dst, &values, dst_bytes) {
                *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                return;
            }
        }
    });
    drop(chunks);
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Rows `rows` of `src` (every row when `None`) quantized to `dst` straight into the layout this
/// CPU's kernels read (`Weight::for_matmul_from`): sixteen rows at a time are dequantized,
/// quantized into a scratch and interleaved, on every core, so the quantized matrix is never
/// held plain beside its tiles.
pub fn quantize_for_matmul(src: &Weight, rows: Option<&[usize]>, dst: DType) -> Result<Weight, ondo_kernels::Error> {
    let cols = src.cols();
    let dst_row = dst.row_bytes(cols).unwrap_or(0);
    let fill = |first: usize, out: &mut [u8]| {
        let mut values = vec![0f32; cols];
        for (i, row) in out.chunks_exact_mut(dst_row.max(1)).enumerate() {
            let r = rows.map_or(first + i, |rows| rows[first + i]);
            src.dequantize_row(r, &mut values);
            quantize_row(dst, &values, row)?;
        }
        Ok(())
    };
    Weight::for_matmul_from(dst, rows.map_or(src.rows(), <[usize]>::len), cols, &fill)
}

/// `w` quantized to `dst` (a new weight; `w`'s own bytes are left to its owner).
pub fn quantize_weight(pool: &ThreadPool, w: &Weight, dst: DType) -> Result<Weight, ondo_kernels::Error> {
    let bytes = quantize_rows(pool, w.dtype(), &w.bytes(), w.rows(), w.cols(), dst)?;
    Weight::new(dst, w.rows(), w.cols(), Bytes::from_vec(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_rows_equal_the_row_by_row_reference() {
        let (rows, cols) = (37, 512);
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let src = Weight::from_f32(&values, rows, cols);
        let pool = ThreadPool::new(3);
        for dst in [DType::Q4_K, DType::Q8_0, DType::Q6_K] {
            let got = quantize_weight(&pool, &src, dst).unwrap();
            let want = Weight::quantize(dst, &values, rows, cols).unwrap();
            assert_eq!(got.bytes(), want.bytes(), "{dst}");
        }
    }

    /// Straight into tiles (on this CPU's layout) holds the same rows as quantizing plain.
    #[test]
    fn straight_into_the_kernel_layout_gives_the_plain_quantization() {
        let (rows, cols) = (53, 512);
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 997) as f32 / 400.0 - 1.2)
            .collect();
        let src = Weight::from_f32(&values, rows, cols);
        let picked: Vec<usize> = (0..40).map(|i| (i * 11) % rows).collect();
        for dst in [DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::Q4_0] {
            let want = Weight::quantize(dst, &values, rows, cols).unwrap();
            let got = quantize_for_matmul(&src, None, dst).unwrap();
            assert_eq!(got.bytes(), want.bytes(), "{dst}");
            let part = quantize_for_matmul(&src, Some(&picked), dst).unwrap();
            assert_eq!(part.rows(), picked.len());
            for (i, &r) in picked.iter().enumerate() {
                assert_eq!(part.row(i), want.row(r), "{dst} row {i} = source row {r}");
            }
            // held once: tiles and the plain rows past them, no plain copy of the tiled rows
            let plain = want.rows() * want.row_bytes();
            assert!(
                got.held_bytes() <= plain + plain / 32,
                "{dst}: {} of {plain}",
                got.held_bytes()
            );
        }
    }

    #[test]
    fn rows_that_are_not_whole_blocks_are_an_error() {
        let src = Weight::from_f32(&[0.5; 48], 1, 48);
        let e = quantize_weight(&ThreadPool::new(1), &src, DType::Q8_0).unwrap_err();
        assert!(e.to_string().contains("48"), "{e}");
    }
}
