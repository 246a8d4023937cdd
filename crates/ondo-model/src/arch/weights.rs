//! Loading a `Decoder` from canonical tensor names, with the fix-ups a `LayerSpec` asks for done
//! once here: norm `+1` offsets folded in, `[in, out]` matrices transposed, fused q/k/v and
//! gate/up split into their parts (rows copied once; the matmul then runs them together).

use super::{LayerSpec, QkvLayout};
use crate::blocks::{Attention, Decoder, Layer, Linear, Mlp, Norm};
use crate::config::{Hparams, MlpKind, NormKind, Positions};
use crate::store::Tensors;
use crate::Error;
use ondo_kernels::Weight;

/// The shared decoder skeleton: embeddings, `num_hidden_layers` layers, final norm, head.
pub(crate) fn load_decoder(hp: Hparams, t: &Tensors, spec: &LayerSpec) -> Result<Decoder, Error> {
    let separate_head = t.has("output.weight") || !hp.tie_word_embeddings;
    // tied to the output head: the matmul reads it too
    let embed = if separate_head {
        let stored = t.matrix("token_embd.weight", hp.vocab_size, hp.hidden_size)?;
        t.planned("token_embd.weight", stored)?
    } else {
        t.linear("token_embd.weight", hp.vocab_size, hp.hidden_size)?
    };
    let pos_embed = match hp.positions {
        Positions::Learned => Some(t.matrix("position_embd.weight", hp.max_position_embeddings, hp.hidden_size)?),
        Positions::Rope => None,
    };
    let layers = (0..hp.num_hidden_layers)
        .map(|i| load_layer(&hp, t, i, spec))
        .collect::<Result<_, _>>()?;
    let output_norm = norm(&hp, t, "output_norm", hp.hidden_size, spec)?;
    let output = if separate_head {
        Some(t.linear("output.weight", hp.vocab_size, hp.hidden_size)?)
    } else {
        None
    };
    let inv_freq = hp.rope.inv_freq();
    let inv_freq_local = hp
        .rope_local
        .as_ref()
        .map_or_else(|| inv_freq.clone(), |r| r.inv_freq());
    let (inv_freq_long, rope_factor) = (hp.rope.long(), hp.rope.attention_factor());
    Ok(Decoder {
        hp,
        embed,
        pos_embed,
        layers,
        output_norm,
        output,
        inv_freq_long,
        rope_factor,
        inv_freq,
        inv_freq_local,
    })
}

fn load_layer(hp: &Hparams, t: &Tensors, i: usize, spec: &LayerSpec) -> Result<Layer, Error> {
    let (h, qd, kvd, hd, inter) = (
        hp.hidden_size,
        hp.q_dim(),
        hp.kv_dim(),
        hp.head_dim,
        hp.intermediate_size,
    );
    let p = |part: &str| format!("blk.{i}.{part}");
    let tr = spec.transposed;
    let opt_norm = |part: &str, len: usize, present: bool| -> Result<Option<Norm>, Error> {
        if present {
            norm(hp, t, &p(part), len, spec).map(Some)
        } else {
            Ok(None)
        }
    };
    let qk_norm = |part: &str| -> Result<Option<Vec<f32>>, Error> {
        if spec.qk_norm {
            rms_weight(t, &p(part), hd, spec).map(Some)
        } else {
            Ok(None)
        }
    };
    let [q, k, v] = match spec.qkv {
        QkvLayout::Split => [
            linear(t, &p("attn_q"), qd, h, tr)?,
            linear(t, &p("attn_k"), kvd, h, tr)?,
            linear(t, &p("attn_v"), kvd, h, tr)?,
        ],
        QkvLayout::Fused => {
            let parts = [0..qd, qd..qd + kvd, qd + kvd..qd + 2 * kvd].map(|r| r.collect());
            fused(t, &p("attn_qkv"), qd + 2 * kvd, h, tr, parts)?
        }
        QkvLayout::FusedPerHead => {
            // rows [heads, 3, head_dim]; grouped attention never stores its kv heads this way
            if qd != kvd {
                return Err(Error::config(
                    t.store.path(),
                    "num_key_value_heads",
                    "a per-head fused query_key_value needs as many kv heads as heads",
                ));
            }
            let heads = hp.num_attention_heads;
            let part = |which: usize| -> Vec<usize> {
                (0..heads)
                    .flat_map(|hh| (0..hd).map(move |d| (hh * 3 + which) * hd + d))
                    .collect()
            };
            fused(t, &p("attn_qkv"), 3 * qd, h, tr, [part(0), part(1), part(2)])?
        }
    };
    let mlp = match hp.mlp {
        MlpKind::Gated if spec.gate_up_fused => {
            let [gate, up] = fused(
                t,
                &p("ffn_up"),
                2 * inter,
                h,
                tr,
                [(0..inter).collect(), (inter..2 * inter).collect()],
            )?;
            Mlp::Gated {
                gate,
                up,
                down: linear(t, &p("ffn_down"), h, inter, tr)?,
            }
        }
        MlpKind::Gated => Mlp::Gated {
            gate: linear(t, &p("ffn_gate"), inter, h, tr)?,
            up: linear(t, &p("ffn_up"), inter, h, tr)?,
            down: linear(t, &p("ffn_down"), h, inter, tr)?,
        },
        MlpKind::Plain => Mlp::Plain {
            up: linear(t, &p("ffn_up"), inter, h, tr)?,
            down: linear(t, &p("ffn_down"), h, inter, tr)?,
        },
    };
    Ok(Layer {
        attn_norm: norm(hp, t, &p("attn_norm"), h, spec)?,
        attn: Attention {
            q,
            k,
            v,
            o: linear(t, &p("attn_output"), h, qd, tr)?,
            q_norm: qk_norm("attn_q_norm.weight")?,
            k_norm: qk_norm("attn_k_norm.weight")?,
        },
        post_attn_norm: opt_norm("post_attention_norm", h, spec.sandwich_norms)?,
        ffn_norm: norm(hp, t, &p("ffn_norm"), h, spec)?,
        mlp,
        post_ffn_norm: opt_norm("post_ffw_norm", h, spec.sandwich_norms)?,
    })
}

/// A weight `[rows, cols]` (stored `[cols, rows]` when `transposed`) and its bias when the file
/// has one.
fn linear(t: &Tensors, stem: &str, rows: usize, cols: usize, transposed: bool) -> Result<Linear, Error> {
    let name = format!("{stem}.weight");
    let weight = if transposed {
        t.planned_linear(&name, &transpose(t, &name, rows, cols)?, None)?
    } else {
        t.linear(&name, rows, cols)?
    };
    Ok(Linear {
        weight,
        bias: t.opt_vector(&format!("{stem}.bias"), rows)?,
    })
}

/// A `[cols, rows]` tensor as an f32 `[rows, cols]` weight.
fn transpose(t: &Tensors, name: &str, rows: usize, cols: usize) -> Result<Weight, Error> {
    let stored = t.matrix(name, cols, rows)?.to_f32();
    let mut out = vec![0f32; rows * cols];
    for (c, row) in stored.chunks_exact(rows).enumerate() {
        for (r, v) in row.iter().enumerate() {
            out[r * cols + c] = *v;
        }
    }
    Ok(Weight::from_f32(&out, rows, cols))
}

/// One fused tensor of `rows` rows split into `N` linears, part `j` made of rows `parts[j]` (in
/// that order), each with the matching bias entries.
fn fused<const N: usize>(
    t: &Tensors,
    stem: &str,
    rows: usize,
    cols: usize,
    transposed: bool,
    parts: [Vec<usize>; N],
) -> Result<[Linear; N], Error> {
    let name = format!("{stem}.weight");
    let whole = if transposed {
        transpose(t, &name, rows, cols)?
    } else {
        t.matrix(&name, rows, cols)?
    };
    let bias = t.opt_vector(&format!("{stem}.bias"), rows)?;
    let mut out = Vec::with_capacity(N);
    for part in &parts {
        let weight = t.planned_linear(&name, &whole, Some(part))?;
        let bias = bias.as_ref().map(|b| part.iter().map(|&r| b[r]).collect());
        out.push(Linear { weight, bias });
    }
    t.store.release(&(t.name_of)(&name));
    Ok(out.try_into().unwrap_or_else(|_| unreachable!("one linear per part")))
}

/// A norm of `len` values named `{stem}.weight` (and `{stem}.bias` for a LayerNorm).
fn norm(hp: &Hparams, t: &Tensors, stem: &str, len: usize, spec: &LayerSpec) -> Result<Norm, Error> {
    let weight = rms_weight(t, &format!("{stem}.weight"), len, spec)?;
    Ok(match hp.norm {
        NormKind::Rms => Norm::Rms(weight),
        NormKind::Layer => Norm::Layer {
            weight,
            bias: t.opt_vector(&format!("{stem}.bias"), len)?,
        },
    })
}

fn rms_weight(t: &Tensors, name: &str, len: usize, spec: &LayerSpec) -> Result<Vec<f32>, Error> {
    let mut w = t.vector(name, len)?;
    if spec.norm_offset != 0.0 {
        w.iter_mut().for_each(|v| *v += spec.norm_offset);
    }
    Ok(w)
}
