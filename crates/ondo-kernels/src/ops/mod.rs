//! The small fused operations of a transformer layer, on f32 rows.
//!
//! Each op is written once in a form the compiler vectorizes (eight independent lanes for
//! reductions, `exp` as plain arithmetic), compiled twice: for the baseline target and with
//! AVX2+FMA, picked at run time like the matmul kernels. `reference` holds the plain versions
//! they are tested against; `ONDO_FORCE_SCALAR=1` (or a CPU without AVX2) runs those.

mod paged;
mod plain_act;
pub mod reference;

pub use paged::{paged_attention, paged_attention_f16, AttnSeq, PagedKv};
pub use plain_act::{gelu_erf, gelu_tanh, silu};
pub use reference::{AttnParams, RopeStyle};

use crate::matmul::Isa;
use crate::ThreadPool;

/// Whether to run the vectorized bodies (decided once, like `Isa::detect`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn fast() -> bool {
    Isa::detect() != Isa::Scalar
}

/// `fn $name(args)` dispatching to an AVX2 build of `$body` or to the reference.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?, $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if fast() {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                // SAFETY: `fast()` is only true when the CPU has AVX2 and FMA.
                return unsafe { avx2($($arg),*) };
            }
            reference::$name($($arg),*)
        }
    };
}

dispatch!(
    /// `out = x / rms(x) * weight` over one row (`x.len() == weight.len()`).
    rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]),
    rms_norm_body
);
dispatch!(
    /// In-place rms norm of one row.
    rms_norm_inplace(x: &mut [f32], weight: &[f32], eps: f32),
    rms_norm_inplace_body
);
dispatch!(
    /// In-place softmax of one row.
    softmax(x: &mut [f32]),
    softmax_body
);
dispatch!(
    /// `gate = silu(gate) * up` (SwiGLU).
    silu_mul(gate: &mut [f32], up: &[f32]),
    silu_mul_body
);
dispatch!(
    /// `gate = gelu_tanh(gate) * up` (GeGLU with the tanh approximation, `gelu_pytorch_tanh`).
    gelu_tanh_mul(gate: &mut [f32], up: &[f32]),
    gelu_tanh_mul_body
);
dispatch!(
    /// `x += y`.
    add(x: &mut [f32], y: &[f32]),
    add_body
);
dispatch!(
    /// Attention of one query over the first `len` cached positions.
    /// `q: [n_heads, head_dim]`, `keys`/`values: [positions, n_kv_heads, head_dim]` (at least
    /// `len`), `out: [n_heads, head_dim]`, `scores`: scratch of at least `len`.
    attention(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        len: usize,
        p: &AttnParams,
        scores: &mut [f32],
        out: &mut [f32]
    ),
    attention_body
);

dispatch!(
    /// `attention` over an f16 KV cache: `keys`/`values: [positions, n_kv_heads, head_dim]` of
    /// f16, everything else as `attention` (f32 math).
    attention_f16(
        q: &[f32],
        keys: &[half::f16],
        values: &[half::f16],
        len: usize,
        p: &AttnParams,
        scores: &mut [f32],
        out: &mut [f32]
    ),
    attention_f16_body
);

dispatch!(
    /// The largest value of `x` that is not NaN (-inf when there is none).
    max(x: &[f32]) -> f32,
    max_of
);
dispatch!(
    /// `ln Σ e^x` over one row (the sum in f64), NaN entries left out; `max(x)` when that is not
    /// finite. A 152k-token vocabulary's row takes one pass of vector `exp`, where libm's scalar
    /// `exp` made the sampler's logprobs cost a tenth of a batched decode step.
    log_sum_exp(x: &[f32]) -> f32,
    log_sum_exp_body
);

dispatch!(
    /// `out = e^(x - max)` (0 for -inf and NaN entries; `max` at least every finite entry, as
    /// softmax weights take it) and returns `Σ out` in f64.
    exp_shifted_sum(x: &[f32], max: f32, out: &mut [f32]) -> f64,
    exp_shifted_sum_body
);

/// Element-wise `op(gate, up)` (a gated activation such as `silu_mul`) split over the pool when
/// the rows are long enough to pay for waking it: a batched step's `[tokens, intermediate]`
/// gate is megabytes. The split does not change any value.
pub fn gated_on_pool(pool: &ThreadPool, op: fn(&mut [f32], &[f32]), gate: &mut [f32], up: &[f32]) {
    const MIN_PER_TASK: usize = 16 * 1024;
    let n = gate.len().min(up.len());
    let tasks = pool.threads().min(n / MIN_PER_TASK).max(1);
    if tasks == 1 {
        return op(&mut gate[..n], &up[..n]);
    }
    let per = n.div_ceil(tasks).next_multiple_of(16);
    let g = SendPtr(gate.as_mut_ptr());
    pool.run(tasks, |task| {
        let (a, b) = ((task * per).min(n), ((task + 1) * per).min(n));
        // SAFETY: task `task` alone takes gate[a..b]; the ranges of the tasks are disjoint.
        let gate = unsafe { std::slice::from_raw_parts_mut(g.ptr().add(a), b - a) };
        op(gate, &up[a..b]);
    });
}

/// In-place log-softmax of one row: `x - log_sum_exp(x)`.
pub fn log_softmax(x: &mut [f32]) {
    let lse = log_sum_exp(x);
    x.iter_mut().for_each(|v| *v -= lse);
}

// The ops not worth a second build stay the reference.
pub use reference::{erf, gelu_erf_mul, layer_norm};

/// Rotate the first `2 * inv_freq.len()` dims of each head in `x: [heads, head_dim]` by position
/// `pos` (`inv_freq[i]`: angle per position of pair i, rope scaling included). Each angle's
/// sin/cos is computed once and applied to every head.
pub fn rope(x: &mut [f32], head_dim: usize, pos: usize, inv_freq: &[f32], style: RopeStyle) {
    let half = inv_freq.len();
    for (i, f) in inv_freq.iter().enumerate() {
        let (sin, cos) = (pos as f32 * f).sin_cos();
        let (a, b) = match style {
            RopeStyle::Neox => (i, i + half),
            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
        };
        for head in x.chunks_exact_mut(head_dim) {
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

// ---- vectorizable bodies ----

/// `Σ a·b` in eight independent lanes (so the compiler may use SIMD without reassociating).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail = n / 8 * 8;
    let mut s = lanes_sum(acc);
    for i in tail..n {
        s += a[i] * b[i];
    }
    s
}

#[inline(always)]
fn lanes_sum(acc: [f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            m[k] = m[k].max(c[k]);
        }
    }
    let mut best = m.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
    for v in &x[x.len() / 8 * 8..] {
        best = best.max(*v);
    }
    best
}

/// `e^x` from arithmetic only (vectorizes): `2^n · p(r)` with `x = n·ln2 + r`, |r| ≤ ln2/2,
/// p a degree-6 Taylor polynomial (relative error below 3e-7). Saturates to 0 / inf outside
/// about ±87 (0 below, e^88 above: callers take exp of non-positive values or of -x in silu).
/// NaN gives NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // NaN fails both tests and is computed as -87.3 (so the conversion below is defined), then
    // given back as NaN at the end; `f32::clamp` would keep it NaN and `n` with it
    let nan = x.is_nan();
    let x = if x > -87.3 { x } else { -87.3 };
    let x = if x < 88.0 { x } else { 88.0 };
    // round to nearest by the 1.5·2^23 trick (plain arithmetic, vectorizes)
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    // two-step Cody-Waite reduction keeps r exact enough
    let r = (x - n * 0.693_359_4) + n * 2.121_944_4e-4;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // SAFETY: x is finite and |n| ≤ 127 after the clamp, so the conversion is exact and in range.
    let ni = unsafe { n.to_int_unchecked::<i32>() };
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    if nan {
        f32::NAN
    } else if x <= -87.3 {
        0.0
    } else {
        p * scale
    }
}

/// Eight f64 lane sums of `e^(x - max)`; NaN becomes `e^-88` = 0 through the `max(-88)`.
#[inline(always)]
fn log_sum_exp_body(x: &[f32]) -> f32 {
    let max = max_of(x);
    if !max.is_finite() {
        return max;
    }
    let term = |v: f32| f64::from(exp((v - max).max(-88.0)));
    let mut acc = [0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] += term(c[k]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in chunks.remainder() {
        sum += term(v);
    }
    max + sum.ln() as f32
}

#[inline(always)]
fn exp_shifted_sum_body(x: &[f32], max: f32, out: &mut [f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (mut xs, mut os) = (x.chunks_exact(8), out.chunks_exact_mut(8));
    for (c, o) in (&mut xs).zip(&mut os) {
        for k in 0..8 {
            o[k] = exp((c[k] - max).max(-88.0));
            acc[k] += f64::from(o[k]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (&v, o) in xs.remainder().iter().zip(os.into_remainder()) {
        *o = exp((v - max).max(-88.0));
        sum += f64::from(*o);
    }
    sum
}

#[inline(always)]
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let mean_sq = dot(x, x) / x.len() as f32;
    1.0 / (mean_sq + eps).sqrt()
}

#[inline(always)]
fn rms_norm_body(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let scale = rms_scale(x, eps);
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

#[inline(always)]
fn rms_norm_inplace_body(x: &mut [f32], weight: &[f32], eps: f32) {
    let scale = rms_scale(x, eps);
    for (v, w) in x.iter_mut().zip(weight) {
        *v *= scale * w;
    }
}

#[inline(always)]
fn softmax_body(x: &mut [f32]) {
    let max = max_of(x);
    let mut acc = [0f32; 8];
    for c in x.chunks_exact_mut(8) {
        for k in 0..8 {
            c[k] = exp(c[k] - max);
            acc[k] += c[k];
        }
    }
    let tail = x.len() / 8 * 8;
    let mut sum = lanes_sum(acc);
    for v in &mut x[tail..] {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

#[inline(always)]
fn silu_mul_body(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// `0.5·x·(1 + tanh(u))` computed as `x · sigmoid(2u)` (the same function, with `exp` that
/// vectorizes instead of libm's scalar `tanhf`: it was 12% of Gemma's prefill).
#[inline(always)]
fn gelu_tanh_mul_body(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        let inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        *g = x / (1.0 + exp(-2.0 * inner)) * u;
    }
}

#[inline(always)]
fn add_body(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// A KV cache element the attention body reads as f32.
pub(crate) trait KvElem: Copy {
    fn to_f32(self) -> f32;
}

impl KvElem for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl KvElem for half::f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16_bits_to_f32(self.to_bits())
    }
}

/// f16 → f32 from integer and float arithmetic only (so loops over it vectorize): move the
/// exponent and mantissa into f32 position and rescale by 2^112 (exact for normal and subnormal
/// values), keep infinities and NaNs, then put the sign back.
#[inline(always)]
pub(crate) fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let em = (h & 0x7FFF) as u32;
    let finite = f32::from_bits(em << 13) * f32::from_bits(0x7780_0000); // · 2^112
    let v = if em >= 0x7C00 {
        f32::from_bits((em << 13) | 0x7F80_0000)
    } else {
        finite
    };
    f32::from_bits(v.to_bits() | sign)
}

/// `Σ a·b` with `b` converted to f32, eight lanes.
#[inline(always)]
fn dot_kv<E: KvElem>(a: &[f32], b: &[E]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k].to_f32();
        }
    }
    let mut s = lanes_sum(acc);
    for i in n / 8 * 8..n {
        s += a[i] * b[i].to_f32();
    }
    s
}

#[inline(always)]
fn attention_body(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    p: &AttnParams,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attention_kv(q, keys, values, len, p, scores, out)
}

#[inline(always)]
fn attention_f16_body(
    q: &[f32],
    keys: &[half::f16],
    values: &[half::f16],
    len: usize,
    p: &AttnParams,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attention_kv(q, keys, values, len, p, scores, out)
}

#[inline(always)]
fn attention_kv<E: KvElem>(
    q: &[f32],
    keys: &[E],
    values: &[E],
    len: usize,
    p: &AttnParams,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = p.head_dim;
    for h in 0..p.n_heads {
        let (qh, oh) = (&q[h * hd..(h + 1) * hd], &mut out[h * hd..(h + 1) * hd]);
        attention_head(qh, keys, values, len, h, p, scores, oh);
    }
}

/// One query head `h` over the first `len` positions: `oh = softmax(q·K) · V`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attention_head<E: KvElem>(
    qh: &[f32],
    keys: &[E],
    values: &[E],
    len: usize,
    h: usize,
    p: &AttnParams,
    scores: &mut [f32],
    oh: &mut [f32],
) {
    let hd = p.head_dim;
    let kv_stride = p.n_kv_heads * hd;
    let kvh = h / (p.n_heads / p.n_kv_heads);
    let start = p.window.map_or(0, |w| len.saturating_sub(w));
    let scores = &mut scores[start..len];
    for (s, pos) in scores.iter_mut().zip(start..len) {
        let k = &keys[pos * kv_stride + kvh * hd..][..hd];
        let mut d = dot_kv(qh, k) * p.scale;
        if let Some(cap) = p.softcap {
            d = cap * (d / cap).tanh();
        }
        *s = d;
    }
    softmax_body(scores);
    oh.fill(0.0);
    for (s, pos) in scores.iter().zip(start..len) {
        let v = &values[pos * kv_stride + kvh * hd..][..hd];
        oh.iter_mut().zip(v).for_each(|(o, v)| *o += s * v.to_f32());
    }
}

// ---- attention for a run of tokens, over the pool ----

/// Attention for `t` consecutive query tokens at positions `pos0..pos0 + t` (token i sees the
/// first `pos0 + i + 1` cached positions, its own included), the (token, head) pairs spread
/// over the pool. `q`, `out: [t, n_heads, head_dim]`; `keys`/`values` as in `attention`, at
/// least `pos0 + t` positions. Score scratch is per thread (grows with the context).
pub fn attention_tokens(
    pool: &ThreadPool,
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    pos0: usize,
    p: &AttnParams,
    out: &mut [f32],
) {
    tokens_kv(pool, q, keys, values, pos0, p, out)
}

/// `attention_tokens` over an f16 KV cache.
pub fn attention_tokens_f16(
    pool: &ThreadPool,
    q: &[f32],
    keys: &[half::f16],
    values: &[half::f16],
    pos0: usize,
    p: &AttnParams,
    out: &mut [f32],
) {
    tokens_kv(pool, q, keys, values, pos0, p, out)
}

thread_local! {
    /// The calling thread's score rows, one per task (workers keep no scratch of their own: one
    /// that first ran an attention task mid-generation would allocate then).
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn tokens_kv<E: KvElem + Sync>(
    pool: &ThreadPool,
    q: &[f32],
    keys: &[E],
    values: &[E],
    pos0: usize,
    p: &AttnParams,
    out: &mut [f32],
) {
    let width = p.n_heads * p.head_dim;
    let t = q.len() / width.max(1);
    assert_eq!(
        out.len(),
        t * width,
        "attention_tokens: out is not [t, n_heads * head_dim]"
    );
    let items = t * p.n_heads;
    let tasks = if pool.threads() == 1 {
        1
    } else {
        items.min(pool.threads() * 4)
    };
    let per_task = items.div_ceil(tasks.max(1));
    // room for every position `keys` can hold (the cache's capacity), so a growing context
    // never reallocates mid-generation
    let positions = keys.len() / (p.n_kv_heads * p.head_dim).max(1);
    let need = positions.max(pos0 + t);
    SCORES.with(|cell| {
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let scores = match borrowed.as_deref_mut() {
            Ok(v) => v,
            Err(_) => &mut fresh, // nested use on this thread: rare
        };
        if scores.len() < tasks * need {
            scores.resize(tasks * need, 0.0);
        }
        let (scores_ptr, out_ptr) = (SendPtr(scores.as_mut_ptr()), SendPtr(out.as_mut_ptr()));
        pool.run(tasks, |task| {
            // SAFETY: task `task` alone uses this part of the score rows.
            let scores = unsafe { std::slice::from_raw_parts_mut(scores_ptr.ptr().add(task * need), need) };
            for item in task * per_task..((task + 1) * per_task).min(items) {
                let (i, h) = (item / p.n_heads, item % p.n_heads);
                let hd = p.head_dim;
                let qh = &q[i * width + h * hd..][..hd];
                // SAFETY: item (i, h) owns this head_dim-long part of out; items are disjoint.
                let oh = unsafe { std::slice::from_raw_parts_mut(out_ptr.ptr().add(i * width + h * hd), hd) };
                head_dispatch(qh, keys, values, pos0 + i + 1, h, p, scores, oh);
            }
        });
    });
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    /// The pointer (a method, so closures capture the whole Sync wrapper, not the raw field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `attention_head` on the AVX2 build when available, else the same body on the baseline.
#[allow(clippy::too_many_arguments)]
fn head_dispatch<E: KvElem>(
    qh: &[f32],
    keys: &[E],
    values: &[E],
    len: usize,
    h: usize,
    p: &AttnParams,
    scores: &mut [f32],
    oh: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if fast() {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn avx2<E: KvElem>(
            qh: &[f32],
            keys: &[E],
            values: &[E],
            len: usize,
            h: usize,
            p: &AttnParams,
            scores: &mut [f32],
            oh: &mut [f32],
        ) {
            attention_head(qh, keys, values, len, h, p, scores, oh)
        }
        // SAFETY: `fast()` is only true when the CPU has AVX2 and FMA.
        return unsafe { avx2(qh, keys, values, len, h, p, scores, oh) };
    }
    attention_head(qh, keys, values, len, h, p, scores, oh)
}

#[cfg(test)]
mod tests;
