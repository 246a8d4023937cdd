//! Float weights against many tokens (`Kernels::float`): a task's rows in column panels.
//!
//! Every float kernel sums a (row, token) in one order (batch invariance): one 8-lane accumulator,
//! columns in increasing order, then its lane sum (the kernel's `hsum`) and the scalar tail. The
//! block kernel adds a panel's columns into the accumulators (`FloatAcc`), kept between panels,
//! and adds up the lanes after the last, so this driver may walk the columns in panels:
//!
//! ```text
//! token super-blocks of SUPER_T tokens
//!   row super-blocks of SUPER_R row blocks (FLOAT_ROWS rows each)
//!     column panels of PANEL columns        x[SUPER_T, PANEL]: 512 KiB, stays in L2
//!       each row block: its panel as f32     (converted or copied into `buf`)
//!         each token block: kernel adds into acc[row block][token block]
//!     on the last panel: lane sums (kernel) + tails -> out
//! ```
//!
//! Whole rows per row block (the earlier walk) read all of a super-block's activations again for
//! every eight rows: 3.7 MB at 64 tokens × 14336 columns, from L3. A panel of x now serves
//! `SUPER_R · FLOAT_ROWS` rows (f32 weights at 64 tokens: +15% there). A panel holds its rows
//! interleaved, eight columns of each per step (`float_panel`), so a kernel reads one stream and
//! the AVX-512 one loads a row pair with one load (+10-15% over pairing two row loads).

use super::table::{FloatAcc, FloatEnds, FLOAT_ROWS, FLOAT_TOKENS};
use super::Plan;
use crate::Weight;
use std::ops::Range;

/// Tokens per super-block: a panel made f32 once serves this many tokens.
const SUPER_T: usize = 64;
/// Row blocks per super-block: a panel of activations read from L2 serves this many.
const SUPER_R: usize = 8;
/// Columns per panel (a multiple of 8).
const PANEL: usize = 2048;
/// Row bytes of a panel up to which the next row block is prefetched.
const NARROW: usize = 2048;
/// Accumulator blocks one task uses.
pub(super) const ACCS: usize = SUPER_R * SUPER_T / FLOAT_TOKENS;

/// Rows `rs` of `w` (f32, f16 or bf16) against every token of `x` through the ISA's float block
/// kernel; `buf` (`FLOAT_ROWS · cols` floats) holds a row block's panel, and `accs` (`ACCS`
/// blocks) the running sums.
pub(super) fn rows(
    plan: &Plan,
    w: &Weight,
    x: &[f32],
    rs: Range<usize>,
    buf: &mut [f32],
    accs: &mut [FloatAcc],
    write: &dyn Fn(usize, usize, f32),
) {
    let (float_block, float_panel) = plan.k.float.expect("a blocked plan has a float block kernel");
    let (cols, n, dtype) = (w.cols(), x.len() / w.cols(), w.dtype());
    let n8 = cols / 8 * 8;
    let elem = dtype.block_bytes();
    debug_assert!(dtype.block_size() == 1 && buf.len() >= FLOAT_ROWS * cols);
    let tail = cols - n8;
    for ts in (0..n).step_by(SUPER_T) {
        let te = (ts + SUPER_T).min(n);
        let tblocks = (te - ts).div_ceil(FLOAT_TOKENS);
        for rsb in rs.clone().step_by(SUPER_R * FLOAT_ROWS) {
            let rse = (rsb + SUPER_R * FLOAT_ROWS).min(rs.end);
            let rblocks = (rse - rsb).div_ceil(FLOAT_ROWS);
            let accs = &mut accs[..rblocks * tblocks];
            let mut k0 = 0;
            loop {
                let k1 = (k0 + PANEL).min(n8);
                let last = k1 == n8;
                // the panel `[steps][FLOAT_ROWS][8]`, then (last panel) each row's tail
                let (panel_buf, tails) = buf.split_at_mut(FLOAT_ROWS * (k1 - k0));
                let narrow = elem * (k1 - k0) <= NARROW;
                for b in 0..rblocks {
                    let r0 = rsb + b * FLOAT_ROWS;
                    let nr = (rse - r0).min(FLOAT_ROWS);
                    let parts: [&[u8]; FLOAT_ROWS] =
                        std::array::from_fn(|i| &w.plain_row(r0 + i.min(nr - 1))[elem * k0..elem * k1]);
                    // SAFETY: the table is the ISA's this CPU runs; a float format.
                    unsafe { float_panel(dtype, &parts[..nr], panel_buf) };
                    // narrow rows: the next block's part of this panel, asked for while this one
                    // computes (their streams end before the hardware prefetchers ramp up: the
                    // 49152x576 LM head at 16 tokens ran 17-20% slower without this; 3 KiB rows
                    // ran 8% slower with it)
                    if narrow {
                        for r in r0 + FLOAT_ROWS..(r0 + 2 * FLOAT_ROWS).min(rs.end) {
                            super::prefetch(&w.plain_row(r)[elem * k0..elem * k1]);
                        }
                    }
                    if last && tail > 0 {
                        for (i, dst) in tails.chunks_exact_mut(tail).take(nr).enumerate() {
                            let row = w.plain_row(r0 + i);
                            crate::quant::dequantize_row(dtype, &row[elem * n8..], &mut dst[..tail]);
                        }
                    }
                    for tb in 0..tblocks {
                        let t0 = ts + tb * FLOAT_TOKENS;
                        let nt = (te - t0).min(FLOAT_TOKENS);
                        let xs: [&[f32]; FLOAT_TOKENS] =
                            std::array::from_fn(|j| &x[(t0 + j.min(nt - 1)) * cols..][k0..k1]);
                        let acc = &mut accs[b * tblocks + tb];
                        let mut sums = [[0f32; FLOAT_ROWS]; FLOAT_TOKENS];
                        let ends = FloatEnds {
                            first: k0 == 0,
                            last: last.then_some(&mut sums),
                        };
                        // SAFETY: the table is the ISA's this CPU runs; the panel holds
                        // FLOAT_ROWS rows of k1 - k0 (a multiple of 8) values, as does each token.
                        unsafe { float_block(panel_buf, nr, &xs[..nt], acc, ends) };
                        if last {
                            let x = &x[t0 * cols..];
                            finish(&sums, (nr, &tails[..nr * tail]), (x, nt), cols, &|t, i, v| {
                                write(t0 + t, r0 + i, v)
                            });
                        }
                    }
                }
                if last {
                    break;
                }
                k0 = k1;
            }
        }
    }
}

/// The block's results: each (row, token)'s lane sum (`sums[t][i]`), then its tail columns one
/// at a time (`tails`: each row's `cols % 8` last values; token t's values start at `x[t · cols]`).
fn finish(
    sums: &[[f32; FLOAT_ROWS]; FLOAT_TOKENS],
    (nr, tails): (usize, &[f32]),
    (x, nt): (&[f32], usize),
    cols: usize,
    write: &dyn Fn(usize, usize, f32),
) {
    let (n8, tail) = (cols / 8 * 8, cols % 8);
    for (t, sums) in sums.iter().enumerate().take(nt) {
        let xt = &x[t * cols + n8..(t + 1) * cols];
        for (i, &s) in sums.iter().enumerate().take(nr) {
            let mut s = s;
            for (wv, xv) in tails[i * tail..(i + 1) * tail].iter().zip(xt) {
                s += wv * xv;
            }
            write(t, i, s);
        }
    }
}
