//! Activations prepared for a weight format: f32 as they are, or quantized on the fly to 8-bit
//! blocks so quantized weights can use integer dot products (the ggml approach).
//!
//! `Q8` (for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q8_1 weights): per 32 values an f32 scale `d`, and
//! `s = d · Σq` (what the formats with an offset need). `Q8K` (for the K-quants): per 256 values
//! an f32 `d`, and `bsums`, the integer sums of each 16 values.

/// Q8 activations of a row set: per 32 values `d`, `s = d·Σq` (a SIMD form of `quantize_q8`).
pub(crate) type QuantizeQ8 = unsafe fn(&[f32], &mut [i8], &mut [f32], &mut [f32]);
/// Q8K activations: per 256 values `d`, and Σq per 16 (a SIMD form of `quantize_q8k`).
pub(crate) type QuantizeQ8K = unsafe fn(&[f32], &mut [i8], &mut [f32], &mut [i16]);

/// An instruction set's activation quantizers (`None`: the portable ones here).
#[derive(Clone, Copy)]
pub(crate) struct Quantizers {
    pub q8: Option<QuantizeQ8>,
    pub q8k: Option<QuantizeQ8K>,
}

impl Quantizers {
    /// The portable quantizers only.
    pub const PORTABLE: Quantizers = Quantizers { q8: None, q8k: None };
}

/// How a weight format wants its activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActKind {
    F32,
    Q8,
    Q8K,
}

/// One activation row in the form a vec-dot kernel reads.
#[derive(Clone, Copy)]
pub(crate) struct ActRow<'a> {
    /// `[cols]` f32 values (ActKind::F32).
    pub f: &'a [f32],
    /// `[cols]` quantized values.
    pub qs: &'a [i8],
    /// One scale per block (32 or 256 values).
    pub d: &'a [f32],
    /// Q8: `d · Σq` per 32 values.
    pub s: &'a [f32],
    /// Q8K: `Σq` per 16 values.
    pub bsums: &'a [i16],
}

/// Quantized activations for `n` rows of `cols`, reused across calls (grows, never shrinks).
#[derive(Default)]
pub(crate) struct Acts {
    kind: Option<ActKind>,
    cols: usize,
    /// Quantized values in 64-byte aligned lines, so 512-bit loads never split a cache line.
    qs: Vec<Line>,
    d: Vec<f32>,
    s: Vec<f32>,
    bsums: Vec<i16>,
}

impl Acts {
    /// Quantize `x: [n, cols]` for `kind` (no-op for F32), with the ISA's quantizer if it has one.
    pub fn prepare(&mut self, kind: ActKind, x: &[f32], cols: usize, simd: Quantizers) {
        self.kind = Some(kind);
        self.cols = cols;
        let n = x.len() / cols.max(1);
        match kind {
            ActKind::F32 => {}
            ActKind::Q8 => {
                let qs = qs_mut(&mut self.qs, n * cols);
                resize(&mut self.d, n * cols / 32);
                resize(&mut self.s, n * cols / 32);
                if let Some(quantize) = simd.q8 {
                    // SAFETY: the quantizers are the table's of the ISA this CPU runs.
                    unsafe { quantize(x, qs, &mut self.d, &mut self.s) };
                    return;
                }
                let blocks = x.chunks_exact(32).zip(qs.chunks_exact_mut(32));
                for ((x, q), (d, s)) in blocks.zip(self.d.iter_mut().zip(self.s.iter_mut())) {
                    (*d, *s) = quantize_q8(x, q);
                }
            }
            ActKind::Q8K => {
                let qs = qs_mut(&mut self.qs, n * cols);
                resize(&mut self.d, n * cols / 256);
                resize(&mut self.bsums, n * cols / 16);
                if let Some(quantize) = simd.q8k {
                    // SAFETY: as above.
                    unsafe { quantize(x, qs, &mut self.d, &mut self.bsums) };
                    return;
                }
                let blocks = x.chunks_exact(256).zip(qs.chunks_exact_mut(256));
                for ((x, q), (d, bs)) in blocks.zip(self.d.iter_mut().zip(self.bsums.chunks_exact_mut(16))) {
                    *d = quantize_q8k(x, q, bs);
                }
            }
        }
    }

    /// Row `t` of the prepared activations (`x` is the same slice given to `prepare`).
    pub fn row<'a>(&'a self, x: &'a [f32], t: usize) -> ActRow<'a> {
        let c = self.cols;
        let f = &x[t * c..(t + 1) * c];
        let all = || qs(&self.qs, x.len());
        match self.kind {
            Some(ActKind::Q8) => ActRow {
                f,
                qs: &all()[t * c..(t + 1) * c],
                d: &self.d[t * c / 32..(t + 1) * c / 32],
                s: &self.s[t * c / 32..(t + 1) * c / 32],
                bsums: &[],
            },
            Some(ActKind::Q8K) => ActRow {
                f,
                qs: &all()[t * c..(t + 1) * c],
                d: &self.d[t * c / 256..(t + 1) * c / 256],
                s: &[],
                bsums: &self.bsums[t * c / 16..(t + 1) * c / 16],
            },
            _ => ActRow {
                f,
                qs: &[],
                d: &[],
                s: &[],
                bsums: &[],
            },
        }
    }
}

/// One cache line of quantized activations.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([i8; 64]);

impl Default for Line {
    fn default() -> Line {
        Line([0; 64])
    }
}

/// Room for `n` quantized values; the first `n` as a slice.
fn qs_mut(lines: &mut Vec<Line>, n: usize) -> &mut [i8] {
    resize(lines, n.div_ceil(64));
    // SAFETY: `Line` is 64 plain i8s with no padding.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr() as *mut i8, n) }
}

/// The quantized values as a slice of `n`.
fn qs(lines: &[Line], n: usize) -> &[i8] {
    assert!(n <= 64 * lines.len());
    // SAFETY: as above, and `n` values are inside `lines`.
    unsafe { std::slice::from_raw_parts(lines.as_ptr() as *const i8, n) }
}

fn resize<T: Default + Clone>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// Symmetric 8-bit quantization of 32 values (ties to even, as the SIMD path rounds): returns
/// `(d, d · Σq)`.
fn quantize_q8(x: &[f32], q: &mut [i8]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, v) in q.iter_mut().zip(x) {
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    (d, d * sum as f32)
}

/// Symmetric 8-bit quantization of 256 values with sums per 16: returns `d`.
fn quantize_q8k(x: &[f32], q: &mut [i8], bsums: &mut [i16]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for ((x, q), bs) in x.chunks_exact(16).zip(q.chunks_exact_mut(16)).zip(bsums.iter_mut()) {
        let mut sum = 0i32;
        for (q, v) in q.iter_mut().zip(x) {
            *q = (v * id).round_ties_even() as i8;
            sum += *q as i32;
        }
        *bs = sum as i16;
    }
    d
}
