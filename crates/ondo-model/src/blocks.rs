//! The shared transformer blocks every architecture is built from, and the decoder that runs
//! them. An architecture file only says which tensors it has and how to fix them up at load;
//! its differences from Llama are `Hparams` fields and optional weights here.

use crate::config::{Activation, Hparams};
use crate::kv::{Batch, KvPool, LayerKv};
use crate::{Error, Model};
use ondo_kernels::ops::{self, AttnParams, AttnSeq, PagedKv};
use ondo_kernels::{matmul, matmul_multi, ThreadPool, Weight};
use std::sync::Arc;

/// A linear layer `y = x · Wᵀ + b`.
pub struct Linear {
    pub weight: Weight,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    /// x: [T, in] → out: [T, out]
    fn forward(&self, pool: &ThreadPool, x: &[f32], out: &mut [f32]) {
        matmul(pool, x, &self.weight, out);
        self.add_bias(out);
    }
    fn out_dim(&self) -> usize {
        self.weight.rows()
    }

    fn add_bias(&self, out: &mut [f32]) {
        if let Some(b) = &self.bias {
            out.chunks_exact_mut(b.len())
                .for_each(|row| ops::add(row, b));
        }
    }
}

/// Several linear layers over the same input in one pass (q/k/v, gate/up): the activations are
/// quantized once and all rows share one fork/join.
/// Arrays, not Vecs: nothing is allocated per call.
fn linear_multi<const N: usize>(
    pool: &ThreadPool,
    x: &[f32],
    layers: [&Linear; N],
    outs: [&mut [f32]; N],
) {
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

/// One decoder layer's weights. Norm weights are f32 with any `+1` offset already folded in.
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// Per-head rms norms of q and k (Gemma 3, Qwen 3).
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// Norm of the attention output before the residual add (Gemma).
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    /// Norm of the MLP output before the residual add (Gemma).
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// A decoder-only transformer: embeddings, layers, final norm, output head.
pub struct Decoder {
    pub hp: Hparams,
    pub embed: Weight,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>,
    /// The output head; `None` when tied to the embeddings.
    pub output: Option<Weight>,
    /// Rope angles per pair for global and sliding layers.
    pub inv_freq: Vec<f32>,
    pub inv_freq_local: Vec<f32>,
}

/// Preallocated buffers for one forward pass of up to `chunk` tokens at a time.
pub struct Workspace {
    pub pool: Arc<ThreadPool>,
    chunk: usize,
    x: Vec<f32>,                // [chunk, hidden] residual stream
    xn: Vec<f32>,               // [chunk, hidden] normed
    q: Vec<f32>,                // [chunk, q_dim]
    k: Vec<f32>,                // [chunk, kv_dim]
    v: Vec<f32>,                // [chunk, kv_dim]
    attn: Vec<f32>,             // [chunk, q_dim]
    o: Vec<f32>,                // [chunk, hidden]
    gate: Vec<f32>,             // [chunk, intermediate]
    up: Vec<f32>,               // [chunk, intermediate]
    logits: Vec<f32>,           // [logit rows, vocab]
    seqs: Vec<AttnSeq>,         // the chunk's part of each sequence (rows relative to the chunk)
    slots: Vec<(usize, usize)>, // [chunk] (position, pool row = block * block_size + slot)
}

impl Workspace {
    /// Buffers for chunks of up to `chunk` tokens, on a pool sized from `ONDO_NUM_THREADS`.
    pub fn new(hp: &Hparams, chunk: usize) -> Workspace {
        Workspace::with_pool(hp, chunk, Arc::new(ThreadPool::from_env()))
    }

    pub fn with_pool(hp: &Hparams, chunk: usize, pool: Arc<ThreadPool>) -> Workspace {
        let chunk = chunk.max(1);
        Workspace {
            pool,
            chunk,
            x: vec![0.0; chunk * hp.hidden_size],
            xn: vec![0.0; chunk * hp.hidden_size],
            q: vec![0.0; chunk * hp.q_dim()],
            k: vec![0.0; chunk * hp.kv_dim()],
            v: vec![0.0; chunk * hp.kv_dim()],
            attn: vec![0.0; chunk * hp.q_dim()],
            o: vec![0.0; chunk * hp.hidden_size],
            gate: vec![0.0; chunk * hp.intermediate_size],
            up: vec![0.0; chunk * hp.intermediate_size],
            logits: vec![0.0; hp.vocab_size],
            seqs: Vec::with_capacity(64),
            slots: vec![(0, 0); chunk],
        }
    }

    /// The part of `batch` in rows `rows`: each sequence's sub-span (rows relative to the chunk),
    /// and every row's position and pool row.
    fn load_chunk(&mut self, batch: &Batch, rows: std::ops::Range<usize>, block_size: usize) {
        self.seqs.clear();
        for s in &batch.seqs {
            let (a, b) = (s.row0.max(rows.start), (s.row0 + s.rows).min(rows.end));
            if a >= b {
                continue;
            }
            let sub = AttnSeq {
                row0: a - rows.start,
                rows: b - a,
                pos0: s.pos0 + (a - s.row0),
                block0: s.block0,
            };
            for i in 0..sub.rows {
                let pos = sub.pos0 + i;
                let block = batch.table[s.block0 + pos / block_size] as usize;
                self.slots[sub.row0 + i] = (pos, block * block_size + pos % block_size);
            }
            self.seqs.push(sub);
        }
    }
}

impl Model for Decoder {
    fn hparams(&self) -> &Hparams {
        &self.hp
    }

    fn forward<'w>(
        &self,
        batch: &Batch,
        kv: &mut KvPool,
        ws: &'w mut Workspace,
    ) -> Result<&'w [f32], Error> {
        self.check_batch(batch, kv)?;
        let vocab = self.hp.vocab_size;
        let n_logits = batch.logit_rows.len();
        if ws.logits.len() < n_logits * vocab {
            ws.logits.resize(n_logits * vocab, 0.0);
        }
        let (total, chunk) = (batch.tokens.len(), ws.chunk);
        let mut done_logits = 0;
        for start in (0..total).step_by(chunk) {
            let end = (start + chunk).min(total);
            ws.load_chunk(batch, start..end, kv.block_size());
            self.forward_chunk(&batch.tokens[start..end], &batch.table, kv, ws);
            let wanted = batch.logit_rows[done_logits..]
                .iter()
                .take_while(|&&r| r < end)
                .count();
            let rows = &batch.logit_rows[done_logits..done_logits + wanted];
            self.logits(ws, rows, start, done_logits);
            done_logits += wanted;
        }
        Ok(&ws.logits[..n_logits * vocab])
    }
}

impl Decoder {
    /// Every row belongs to one sequence, in order; positions fit the context and the block
    /// tables; tokens are in the vocabulary. Nothing is allocated.
    fn check_batch(&self, batch: &Batch, kv: &KvPool) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::BadBatch(msg.to_string()));
        let mut next_row = 0;
        for (i, s) in batch.seqs.iter().enumerate() {
            if s.row0 != next_row {
                return bad("sequences must cover the batch's tokens in order");
            }
            next_row += s.rows;
            let end = s.pos0 + s.rows;
            if end > self.hp.max_position_embeddings {
                return Err(Error::ContextTooLong {
                    len: end,
                    max: self.hp.max_position_embeddings,
                });
            }
            let blocks = batch.blocks_of(i);
            if blocks.len() * kv.block_size() < end {
                return bad("a sequence's block table is shorter than its positions");
            }
            if blocks.iter().any(|&b| b as usize >= kv.num_blocks()) {
                return bad("a block id is outside the KV pool");
            }
        }
        if next_row != batch.tokens.len() {
            return bad("sequences must cover the batch's tokens in order");
        }
        if batch.logit_rows.windows(2).any(|w| w[0] >= w[1])
            || batch.logit_rows.last().is_some_and(|&r| r >= next_row)
        {
            return bad("logit rows must be ascending rows of the batch");
        }
        match batch
            .tokens
            .iter()
            .find(|&&t| t as usize >= self.hp.vocab_size)
        {
            Some(&id) => Err(Error::TokenOutOfRange {
                id,
                vocab_size: self.hp.vocab_size,
            }),
            None => Ok(()),
        }
    }

    /// Run one chunk of tokens through every layer, leaving the final hidden states in `ws.x`.
    fn forward_chunk(&self, tokens: &[u32], table: &[u32], kv: &mut KvPool, ws: &mut Workspace) {
        let h = self.hp.hidden_size;
        let t = tokens.len();
        for (row, &tok) in ws.x[..t * h].chunks_exact_mut(h).zip(tokens) {
            self.embed.dequantize_row(tok as usize, row);
            if let Some(s) = self.hp.embed_scale {
                row.iter_mut().for_each(|v| *v *= s);
            }
        }
        for (li, layer) in self.layers.iter().enumerate() {
            self.attention_block(li, layer, t, table, kv, ws);
            self.mlp_block(layer, t, ws);
        }
    }

    /// x += o(attn(norm(x)))
    fn attention_block(
        &self,
        li: usize,
        layer: &Layer,
        t: usize,
        table: &[u32],
        kv: &mut KvPool,
        ws: &mut Workspace,
    ) {
        let hp = &self.hp;
        let (h, qd, kvd, hd) = (hp.hidden_size, hp.q_dim(), hp.kv_dim(), hp.head_dim);
        norm_rows(
            &ws.x[..t * h],
            &layer.attn_norm,
            hp.rms_norm_eps,
            &mut ws.xn[..t * h],
        );
        let pool = &*ws.pool;
        let qkv_outs = [
            &mut ws.q[..t * qd],
            &mut ws.k[..t * kvd],
            &mut ws.v[..t * kvd],
        ];
        linear_multi(
            pool,
            &ws.xn[..t * h],
            [&layer.q, &layer.k, &layer.v],
            qkv_outs,
        );
        if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
            ws.q[..t * qd]
                .chunks_exact_mut(hd)
                .for_each(|head| ops::rms_norm_inplace(head, qn, hp.rms_norm_eps));
            ws.k[..t * kvd]
                .chunks_exact_mut(hd)
                .for_each(|head| ops::rms_norm_inplace(head, kn, hp.rms_norm_eps));
        }
        let sliding = hp.is_sliding(li);
        let (inv_freq, style) = match (sliding, hp.rope_local) {
            (true, Some(local)) => (&self.inv_freq_local, local.style),
            _ => (&self.inv_freq, hp.rope.style),
        };
        let bs = kv.block_size();
        for (i, &(pos, at)) in ws.slots[..t].iter().enumerate() {
            ops::rope(&mut ws.q[i * qd..(i + 1) * qd], hd, pos, inv_freq, style);
            ops::rope(&mut ws.k[i * kvd..(i + 1) * kvd], hd, pos, inv_freq, style);
            kv.write(
                li,
                at,
                &ws.k[i * kvd..(i + 1) * kvd],
                &ws.v[i * kvd..(i + 1) * kvd],
            );
        }
        let params = AttnParams {
            n_heads: hp.num_attention_heads,
            n_kv_heads: hp.num_key_value_heads,
            head_dim: hd,
            scale: hp.attn_scale,
            softcap: hp.attn_logit_softcapping,
            window: if sliding { hp.sliding_window } else { None },
        };
        let (q, out, seqs) = (&ws.q[..t * qd], &mut ws.attn[..t * qd], &ws.seqs);
        match kv.layer(li) {
            LayerKv::F32(keys, values) => ops::paged_attention(
                pool,
                q,
                PagedKv {
                    keys,
                    values,
                    block_size: bs,
                },
                table,
                seqs,
                &params,
                out,
            ),
            LayerKv::F16(keys, values) => ops::paged_attention_f16(
                pool,
                q,
                PagedKv {
                    keys,
                    values,
                    block_size: bs,
                },
                table,
                seqs,
                &params,
                out,
            ),
        }
        layer
            .o
            .forward(pool, &ws.attn[..t * qd], &mut ws.o[..t * h]);
        if let Some(n) = &layer.post_attn_norm {
            ws.o[..t * h]
                .chunks_exact_mut(h)
                .for_each(|row| ops::rms_norm_inplace(row, n, hp.rms_norm_eps));
        }
        ops::add(&mut ws.x[..t * h], &ws.o[..t * h]);
    }

    /// x += down(act(gate(norm(x))) * up(norm(x)))
    fn mlp_block(&self, layer: &Layer, t: usize, ws: &mut Workspace) {
        let hp = &self.hp;
        let (h, inter) = (hp.hidden_size, layer.gate.out_dim());
        norm_rows(
            &ws.x[..t * h],
            &layer.ffn_norm,
            hp.rms_norm_eps,
            &mut ws.xn[..t * h],
        );
        let pool = &*ws.pool;
        let outs = [&mut ws.gate[..t * inter], &mut ws.up[..t * inter]];
        linear_multi(pool, &ws.xn[..t * h], [&layer.gate, &layer.up], outs);
        match hp.hidden_act {
            Activation::Silu => ops::silu_mul(&mut ws.gate[..t * inter], &ws.up[..t * inter]),
            Activation::GeluTanh => {
                ops::gelu_tanh_mul(&mut ws.gate[..t * inter], &ws.up[..t * inter])
            }
            Activation::Gelu => ops::gelu_erf_mul(&mut ws.gate[..t * inter], &ws.up[..t * inter]),
        }
        layer
            .down
            .forward(pool, &ws.gate[..t * inter], &mut ws.o[..t * h]);
        if let Some(n) = &layer.post_ffn_norm {
            ws.o[..t * h]
                .chunks_exact_mut(h)
                .for_each(|row| ops::rms_norm_inplace(row, n, hp.rms_norm_eps));
        }
        ops::add(&mut ws.x[..t * h], &ws.o[..t * h]);
    }

    /// Logits of the batch rows `rows` (all in the chunk starting at batch row `chunk_start`),
    /// written to `ws.logits` from output row `first_out` on.
    fn logits(&self, ws: &mut Workspace, rows: &[usize], chunk_start: usize, first_out: usize) {
        if rows.is_empty() {
            return;
        }
        let (h, vocab) = (self.hp.hidden_size, self.hp.vocab_size);
        let n = rows.len();
        for (i, &r) in rows.iter().enumerate() {
            let x = &ws.x[(r - chunk_start) * h..][..h];
            ops::rms_norm(
                x,
                &self.output_norm,
                self.hp.rms_norm_eps,
                &mut ws.xn[i * h..(i + 1) * h],
            );
        }
        let head = self.output.as_ref().unwrap_or(&self.embed);
        let out = &mut ws.logits[first_out * vocab..(first_out + n) * vocab];
        matmul(&ws.pool, &ws.xn[..n * h], head, out);
        if let Some(cap) = self.hp.final_logit_softcapping {
            out.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }
    }
}

/// RMS-norm each row of `x: [T, h]` into `out`.
fn norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let h = weight.len();
    for (xr, or) in x.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        ops::rms_norm(xr, weight, eps, or);
    }
}
