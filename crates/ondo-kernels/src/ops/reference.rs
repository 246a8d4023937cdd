//! The plain reference versions of every op in `ops`: the fast versions are tested against
//! these, and `ONDO_FORCE_SCALAR=1` runs them.

/// `out = x / rms(x) * weight` over one row (`x.len() == weight.len()`).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len();
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// In-place rms norm of one row.
pub fn rms_norm_inplace(x: &mut [f32], weight: &[f32], eps: f32) {
    let n = x.len();
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    for (v, w) in x.iter_mut().zip(weight) {
        *v *= scale * w;
    }
}

/// `out = (x - mean) / sqrt(var + eps) * weight + bias` over one row.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let scale = 1.0 / (var + eps).sqrt();
    for (i, (o, v)) in out.iter_mut().zip(x).enumerate() {
        *o = (v - mean) * scale * weight[i] + bias.map_or(0.0, |b| b[i]);
    }
}

/// How rotary pairs are laid out within a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// GPT-NeoX / HF `rotate_half`: pairs are (i, i + rot_dim/2).
    Neox,
    /// GPT-J / original Llama: pairs are (2i, 2i + 1).
    Interleaved,
}

/// Rotate the first `2 * inv_freq.len()` dims of each head in `x: [heads, head_dim]` by position
/// `pos`. `inv_freq[i]` is the angle per position of pair i (already scaled by the model's rope
/// scaling).
pub fn rope(x: &mut [f32], head_dim: usize, pos: usize, inv_freq: &[f32], style: RopeStyle) {
    let half = inv_freq.len();
    for head in x.chunks_exact_mut(head_dim) {
        for (i, f) in inv_freq.iter().enumerate() {
            let (sin, cos) = (pos as f32 * f).sin_cos();
            let (a, b) = match style {
                RopeStyle::Neox => (i, i + half),
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

/// In-place softmax of one row.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// The largest value of `x` that is not NaN (-inf when there is none).
pub fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `ln Σ e^x` over one row with the sum in f64, NaN entries left out; `max(x)` itself when that
/// is not finite (-inf for a row of only -inf / NaN, +inf when one entry is +inf).
pub fn log_sum_exp(x: &[f32]) -> f32 {
    let max = max(x);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = x
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| ((*v - max) as f64).exp())
        .sum();
    max + sum.ln() as f32
}

/// `out = e^(x - max)` (0 for -inf and NaN entries); returns `Σ out` in f64.
pub fn exp_shifted_sum(x: &[f32], max: f32, out: &mut [f32]) -> f64 {
    let mut sum = 0.0;
    for (&v, o) in x.iter().zip(out.iter_mut()) {
        *o = if v.is_nan() { 0.0 } else { (v - max).exp() };
        sum += f64::from(*o);
    }
    sum
}

/// In-place log-softmax of one row (f64 accumulation for stable logprobs).
pub fn log_softmax(x: &mut [f32]) {
    let lse = log_sum_exp(x);
    x.iter_mut().for_each(|v| *v -= lse);
}

/// `gate = silu(gate) * up` (SwiGLU).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `gate = gelu_tanh(gate) * up` (GeGLU with the tanh approximation, `gelu_pytorch_tanh`).
pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()) * u;
    }
}

/// `gate = gelu(gate) * up` with the exact GELU `x · Φ(x) = x/2 · (1 + erf(x/√2))` (HF's
/// `hidden_act: "gelu"`).
pub fn gelu_erf_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g as f64;
        *g = (0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))) as f32 * u;
    }
}

/// The error function to ~1e-7 absolute (Abramowitz & Stegun 7.1.26), ample for f32 results.
pub fn erf(x: f64) -> f64 {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * (-x * x).exp();
    y.copysign(x)
}

/// `x += y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// Options of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttnParams {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually 1/sqrt(head_dim)).
    pub scale: f32,
    /// `softcap * tanh(score / softcap)` when set (Gemma 2).
    pub softcap: Option<f32>,
    /// Only the last `window` positions are visible when set (sliding-window layers).
    pub window: Option<usize>,
}

/// Attention of one query over the first `len` cached positions.
/// `q: [n_heads, head_dim]`, `keys`/`values: [positions, n_kv_heads, head_dim]` (at least `len`),
/// `out: [n_heads, head_dim]`, `scores`: scratch of at least `len`.
pub fn attention(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    len: usize,
    p: &AttnParams,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = p.head_dim;
    let kv_stride = p.n_kv_heads * hd;
    let group = p.n_heads / p.n_kv_heads;
    let start = p.window.map_or(0, |w| len.saturating_sub(w));
    let scores = &mut scores[start..len];
    for h in 0..p.n_heads {
        let kvh = h / group;
        let qh = &q[h * hd..(h + 1) * hd];
        for (s, pos) in scores.iter_mut().zip(start..len) {
            let k = &keys[pos * kv_stride + kvh * hd..][..hd];
            let mut dot = qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * p.scale;
            if let Some(cap) = p.softcap {
                dot = cap * (dot / cap).tanh();
            }
            *s = dot;
        }
        softmax(scores);
        let oh = &mut out[h * hd..(h + 1) * hd];
        oh.fill(0.0);
        for (s, pos) in scores.iter().zip(start..len) {
            let v = &values[pos * kv_stride + kvh * hd..][..hd];
            oh.iter_mut().zip(v).for_each(|(o, v)| *o += s * v);
        }
    }
}

/// `attention` over an f16 KV cache (converted to f32 first).
pub fn attention_f16(
    q: &[f32],
    keys: &[half::f16],
    values: &[half::f16],
    len: usize,
    p: &AttnParams,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let k: Vec<f32> = keys.iter().map(|v| v.to_f32()).collect();
    let v: Vec<f32> = values.iter().map(|v| v.to_f32()).collect();
    attention(q, &k, &v, len, p, scores, out)
}
