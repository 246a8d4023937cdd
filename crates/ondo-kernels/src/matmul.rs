//! `y = x · Wᵀ` over every weight format.
//!
//! Reference path: dequantize one weight row at a time into f32 and dot it with each activation
//! row. Format-specific SIMD paths plug in behind `matmul` without changing its signature.

use crate::{ThreadPool, Weight};
use std::cell::RefCell;

/// A raw pointer that may cross threads; each task writes a disjoint part of the output.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

thread_local! {
    static ROW: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `out[t, r] = Σ_c x[t, c] · w[r, c]` for `x: [n, cols]`, `out: [n, rows]`, n = x.len() / cols.
pub fn matmul(pool: &ThreadPool, x: &[f32], w: &Weight, out: &mut [f32]) {
    let (rows, cols) = (w.rows(), w.cols());
    let n = x.len() / cols;
    assert_eq!(x.len(), n * cols, "matmul: x is not [n, {cols}]");
    assert_eq!(out.len(), n * rows, "matmul: out is not [{n}, {rows}]");
    let tasks = pool.threads() * 4;
    let per_task = rows.div_ceil(tasks);
    let out_ptr = OutPtr(out.as_mut_ptr());
    pool.run(tasks, |task| {
        let out_ptr = out_ptr;
        let r0 = task * per_task;
        let r1 = (r0 + per_task).min(rows);
        ROW.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.resize(cols, 0.0);
            for r in r0..r1 {
                w.dequantize_row(r, &mut buf);
                for t in 0..n {
                    let xs = &x[t * cols..(t + 1) * cols];
                    let dot: f32 = xs.iter().zip(buf.iter()).map(|(a, b)| a * b).sum();
                    // SAFETY: row r of every token is written by this task only.
                    unsafe { *out_ptr.0.add(t * rows + r) = dot };
                }
            }
        });
    });
}
