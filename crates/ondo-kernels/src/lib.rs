//! ondo-kernels: the CPU compute under every ondo model.
//!
//! It owns the weight formats (f32, f16, bf16 and the GGUF/ggml quantized blocks), the matmul
//! `y = x · Wᵀ` over any of them, and the small fused operations a transformer needs (norms, rope,
//! softmax, activations, attention over a KV cache), plus the thread pool they run on.
//! It knows nothing of models, files or requests.
//!
//! - Formats: `DType` (ggml numbering), `dequantize_row` (bit-exact with ggml, the reference for
//!   every format) and `quantize_row` (test data, load-time conversions), `Weight::quantize`.
//! - `matmul` picks an instruction set once per process (`Isa::detect`: AVX-512 VNNI, AVX2, or
//!   `Scalar` when `ONDO_FORCE_SCALAR=1`, or the one `ONDO_ISA` names); `matmul_with` runs a
//!   chosen one (tests, benches). `Weight::for_matmul` adds the interleaved layout the chosen
//!   kernels read fastest (load weights through it).
//!   Quantized weights meet activations quantized on the fly to 8-bit blocks (integer dots).
//! - `ThreadPool`: persistent workers, `ONDO_NUM_THREADS` or the number of physical cores.
//! - `ops`: norms, softmax, activations, rope, attention (vectorized, `ops::reference` plain).
//! - `bench`: the numbers behind `cargo bench -p ondo-kernels` and `ondo bench kernels`.
//!
//! ```
//! use ondo_kernels::{matmul, DType, ThreadPool, Weight};
//! // W: [2 rows (out), 3 cols (in)], f32
//! let w: Vec<f32> = vec![1., 0., 0., 0., 1., 1.];
//! let w = Weight::from_f32(&w, 2, 3);
//! let x = [1f32, 2., 3.]; // [1 token, 3]
//! let mut y = [0f32; 2]; // [1 token, 2]
//! matmul(&ThreadPool::new(1), &x, &w, &mut y);
//! assert_eq!(y, [1., 5.]);
//! assert_eq!(w.dtype(), DType::F32);
//! ```

pub mod bench;
mod dtype;
pub(crate) mod matmul;
pub mod ops;
mod pool;
mod quant;
#[doc(hidden)]
pub mod testutil;
mod weight;

pub use dtype::DType;
pub use matmul::{matmul, matmul_multi, matmul_multi_with, matmul_with, Isa, MAX_MULTI};
pub use pool::ThreadPool;
pub use quant::{dequantize_row, quantize_row, quantize_row_nearest};
pub use weight::{Bytes, Weight};

/// Errors from building weights out of raw bytes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{dtype:?} weight of {rows}x{cols} needs {expected} bytes, got {got}")]
    Size {
        dtype: DType,
        rows: usize,
        cols: usize,
        expected: usize,
        got: usize,
    },
    #[error("{dtype:?} rows of {cols} values are not a whole number of {block}-value blocks")]
    Blocks { dtype: DType, cols: usize, block: usize },
    #[error("{0:?} is not supported by this build of ondo-kernels")]
    Unsupported(DType),
}
