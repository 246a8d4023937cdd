//! The small parts a decoder layer is composed of: `Linear` (weight + optional bias, several
//! run as one pass), `Norm::{Rms, Layer}`, `Attention`'s weights, `Mlp::{Gated, Plain}`, and
//! `Layer`. How they are wired (sequential or parallel residual, rope or learned positions) is
//! `Hparams`-driven in `blocks`.

use ondo_kernels::ops;
use ondo_kernels::{matmul, matmul_multi, ThreadPool, Weight};

/// A linear layer `y = x · Wᵀ + b`.
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// x: [T, in] → out: [T, out]
    pub(crate) fn forward(&self, pool: &ThreadPool, x: &[f32], out: &mut [f32]) {
        matmul(pool, x, &self.weight, out);
        self.add_bias(out);
    }
    pub(crate) fn out_dim(&self) -> usize {
        self.weight.rows()
    }

    fn add_bias(&self, out: &mut [f32]) {
        if let Some(b) = &self.bias {
            out.chunks_exact_mut(b.len()).for_each(|row| ops::add(row, b));
        }
    }
}

/// Several linear layers over the same input in one pass (q/k/v, gate/up): the activations are
/// quantized once and all rows share one fork/join.
/// Arrays, not Vecs: nothing is allocated per call.
pub(crate) fn linear_multi<const N: usize>(pool: &ThreadPool, x: &[f32], layers: [&Linear; N], outs: [&mut [f32]; N]) {
    let mut i = 0;
    let mut jobs: [(&Weight, &mut [f32]); N] = outs.map(|out| {
        i += 1;
        (&layers[i - 1].weight, out)
    });
    matmul_multi(pool, x, &mut jobs);
    for (layer, (_, out)) in layers.iter().zip(jobs.iter_mut()) {
        layer.add_bias(out);
    }
}

/// A norm's weights (any `+1` offset already folded in).
pub enum Norm {
    Rms(Vec<f32>),
    Layer { weight: Vec<f32>, bias: Option<Vec<f32>> },
}

impl Norm {
    /// Normalize each row of `x: [T, h]` into `out`.
    pub(crate) fn rows(&self, x: &[f32], eps: f32, out: &mut [f32]) {
        match self {
            Norm::Rms(w) => {
                for (xr, or) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
                    ops::rms_norm(xr, w, eps, or);
                }
            }
            Norm::Layer { weight, bias } => {
                let h = weight.len();
                for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
                    ops::layer_norm(xr, weight, bias.as_deref(), eps, or);
                }
            }
        }
    }

    /// Normalize each row of `x: [T, h]` in place.
    pub(crate) fn rows_inplace(&self, x: &mut [f32], eps: f32) {
        match self {
            Norm::Rms(w) => x
                .chunks_exact_mut(w.len())
                .for_each(|row| ops::rms_norm_inplace(row, w, eps)),
            Norm::Layer { weight, bias } => {
                for row in x.chunks_exact_mut(weight.len()) {
                    let n = row.len() as f32;
                    let mean = row.iter().sum::<f32>() / n;
                    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
                    let scale = 1.0 / (var + eps).sqrt();
                    for (i, v) in row.iter_mut().enumerate() {
                        *v = (*v - mean) * scale * weight[i] + bias.as_ref().map_or(0.0, |b| b[i]);
                    }
                }
            }
        }
    }
}

/// The attention block's weights.
pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Per-head rms norms of q and k (Gemma 3, Qwen 3).
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
}

/// The MLP's weights.
pub enum Mlp {
    /// `down(act(gate(x)) · up(x))`
    Gated { gate: Linear, up: Linear, down: Linear },
    /// `down(act(up(x)))`
    Plain { up: Linear, down: Linear },
}

impl Mlp {
    pub(crate) fn inner_dim(&self) -> usize {
        match self {
            Mlp::Gated { up, .. } | Mlp::Plain { up, .. } => up.out_dim(),
        }
    }
}

/// One decoder layer's weights. How its two blocks meet the residual stream is
/// `Hparams::residual`.
pub struct Layer {
    pub attn_norm: Norm,
    pub attn: Attention,
    /// Norm of the attention output before the residual add (Gemma).
    pub post_attn_norm: Option<Norm>,
    pub ffn_norm: Norm,
    pub mlp: Mlp,
    /// Norm of the MLP output before the residual add (Gemma).
    pub post_ffn_norm: Option<Norm>,
}
