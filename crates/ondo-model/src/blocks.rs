//! The shared transformer blocks every architecture is built from, and the decoder that runs
//! them: `Norm::{Rms, Layer}`, `Attention` (rope or learned positions, softcap, window),
//! `Mlp::{Gated, Plain}`, and a residual that is `Sequential` or `Parallel`. Which parts a model
//! has comes from its `Hparams` and the weights its architecture file loaded; nothing here
//! knows architecture names.

use crate::config::{Activation, Hparams, Positions, Residual};
use crate::kv::{Batch, KvPool, LayerKv};
use crate::{Error, Model};
use ondo_kernels::ops::{self, AttnParams, AttnSeq, PagedKv};
use ondo_kernels::{matmul, ThreadPool, Weight};

use crate::parts::linear_multi;
pub use crate::parts::{Attention, Layer, Linear, Mlp, Norm};
use std::sync::Arc;

/// A decoder-only transformer: embeddings, layers, final norm, output head.
pub struct Decoder {
    pub hp: Hparams,
    pub embed: Weight,
    /// Learned absolute positions `[max_positions, hidden]` (GPT-2), added to the embeddings.
    pub pos_embed: Option<Weight>,
    pub layers: Vec<Layer>,
    pub output_norm: Norm,
    /// The output head; `None` when tied to the embeddings.
    pub output: Option<Weight>,
    /// Rope angles per pair for global and sliding layers.
    pub inv_freq: Vec<f32>,
    pub inv_freq_local: Vec<f32>,
    /// Longrope: the long-context angles and the length past which a sequence uses them.
    pub inv_freq_long: Option<(Vec<f32>, usize)>,
    /// cos/sin scale of the rope (longrope's attention factor, else 1).
    pub rope_factor: f32,
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
    mlp_out: Vec<f32>,          // [chunk, hidden] MLP output of a parallel-residual layer
    logits: Vec<f32>,           // [logit rows, vocab]
    seqs: Vec<AttnSeq>,         // the chunk's part of each sequence (rows relative to the chunk)
    slots: Vec<(usize, usize)>, // [chunk] (position, pool row = block * block_size + slot)
    seq_end: Vec<usize>,        // [chunk] the row's sequence's known length (Batch::lens)
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
            mlp_out: match hp.residual {
                Residual::Parallel => vec![0.0; chunk * hp.hidden_size],
                Residual::Sequential => Vec::new(),
            },
            logits: vec![0.0; hp.vocab_size],
            seqs: Vec::with_capacity(64),
            slots: vec![(0, 0); chunk],
            seq_end: vec![0; chunk],
        }
    }

    /// The part of `batch` in rows `rows`: each sequence's sub-span (rows relative to the chunk),
    /// and every row's position and pool row.
    fn load_chunk(&mut self, batch: &Batch, rows: std::ops::Range<usize>, block_size: usize) {
        self.seqs.clear();
        for (s, &len) in batch.seqs.iter().zip(&batch.lens) {
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
                self.seq_end[sub.row0 + i] = len;
            }
            self.seqs.push(sub);
        }
    }
}

impl Model for Decoder {
    fn hparams(&self) -> &Hparams {
        &self.hp
    }

    fn forward<'w>(&self, batch: &Batch, kv: &mut KvPool, ws: &'w mut Workspace) -> Result<&'w [f32], Error> {
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
            let wanted = batch.logit_rows[done_logits..].iter().take_while(|&&r| r < end).count();
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
        if batch.logit_rows.windows(2).any(|w| w[0] >= w[1]) || batch.logit_rows.last().is_some_and(|&r| r >= next_row)
        {
            return bad("logit rows must be ascending rows of the batch");
        }
        match batch.tokens.iter().find(|&&t| t as usize >= self.hp.vocab_size) {
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
        for (i, (row, &tok)) in ws.x[..t * h].chunks_exact_mut(h).zip(tokens).enumerate() {
            self.embed.dequantize_row(tok as usize, row);
            if let Some(s) = self.hp.embed_scale {
                row.iter_mut().for_each(|v| *v *= s);
            }
            if let Some(pe) = &self.pos_embed {
                let pos_row = &mut ws.xn[..h];
                pe.dequantize_row(ws.slots[i].0, pos_row);
                ops::add(row, pos_row);
            }
        }
        for (li, layer) in self.layers.iter().enumerate() {
            self.attention_block(li, layer, t, table, kv, ws);
            match self.hp.residual {
                Residual::Sequential => {
                    ops::add(&mut ws.x[..t * h], &ws.o[..t * h]);
                    self.mlp_block(layer, t, ws, false);
                    ops::add(&mut ws.x[..t * h], &ws.o[..t * h]);
                }
                Residual::Parallel => {
                    // the MLP reads the same x as attention did
                    self.mlp_block(layer, t, ws, true);
                    ops::add(&mut ws.x[..t * h], &ws.o[..t * h]);
                    ops::add(&mut ws.x[..t * h], &ws.mlp_out[..t * h]);
                }
            }
        }
    }

    /// ws.o = post_norm(o(attn(norm(x))))
    fn attention_block(&self, li: usize, layer: &Layer, t: usize, table: &[u32], kv: &mut KvPool, ws: &mut Workspace) {
        let hp = &self.hp;
        let (h, qd, kvd, hd) = (hp.hidden_size, hp.q_dim(), hp.kv_dim(), hp.head_dim);
        let eps = hp.norm_eps;
        let a = &layer.attn;
        layer.attn_norm.rows(&ws.x[..t * h], eps, &mut ws.xn[..t * h]);
        let pool = &*ws.pool;
        let qkv_outs = [&mut ws.q[..t * qd], &mut ws.k[..t * kvd], &mut ws.v[..t * kvd]];
        linear_multi(pool, &ws.xn[..t * h], [&a.q, &a.k, &a.v], qkv_outs);
        if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
            ws.q[..t * qd]
                .chunks_exact_mut(hd)
                .for_each(|head| ops::rms_norm_inplace(head, qn, eps));
            ws.k[..t * kvd]
                .chunks_exact_mut(hd)
                .for_each(|head| ops::rms_norm_inplace(head, kn, eps));
        }
        let sliding = hp.is_sliding(li);
        let (inv_freq, style) = match (sliding, &hp.rope_local) {
            (true, Some(local)) => (&self.inv_freq_local, local.style),
            _ => (&self.inv_freq, hp.rope.style),
        };
        let bs = kv.block_size();
        let rope = hp.positions == Positions::Rope;
        for (i, &(pos, at)) in ws.slots[..t].iter().enumerate() {
            if rope {
                let inv_freq = match &self.inv_freq_long {
                    Some((long, after)) if ws.seq_end[i] > *after => long,
                    _ => inv_freq,
                };
                let (q, k) = (&mut ws.q[i * qd..(i + 1) * qd], &mut ws.k[i * kvd..(i + 1) * kvd]);
                ops::rope(q, hd, pos, inv_freq, style);
                ops::rope(k, hd, pos, inv_freq, style);
                if self.rope_factor != 1.0 {
                    // cos and sin scaled: the rotated dims of q and k
                    let rot = 2 * inv_freq.len();
                    for head in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
                        head[..rot].iter_mut().for_each(|v| *v *= self.rope_factor);
                    }
                }
            }
            kv.write(li, at, &ws.k[i * kvd..(i + 1) * kvd], &ws.v[i * kvd..(i + 1) * kvd]);
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
        a.o.forward(pool, &ws.attn[..t * qd], &mut ws.o[..t * h]);
        if let Some(n) = &layer.post_attn_norm {
            n.rows_inplace(&mut ws.o[..t * h], eps);
        }
    }

    /// post_norm(mlp(norm(x))) into `ws.o`, or into `ws.mlp_out` when `parallel` (ws.o then
    /// still holds the attention output).
    fn mlp_block(&self, layer: &Layer, t: usize, ws: &mut Workspace, parallel: bool) {
        let hp = &self.hp;
        let (h, inter) = (hp.hidden_size, layer.mlp.inner_dim());
        let eps = hp.norm_eps;
        layer.ffn_norm.rows(&ws.x[..t * h], eps, &mut ws.xn[..t * h]);
        let pool = &*ws.pool;
        let (gate, up) = (&mut ws.gate[..t * inter], &mut ws.up[..t * inter]);
        let down = match &layer.mlp {
            Mlp::Gated { gate: g, up: u, down } => {
                linear_multi(pool, &ws.xn[..t * h], [g, u], [&mut *gate, &mut *up]);
                match hp.hidden_act {
                    Activation::Silu => ops::gated_on_pool(pool, ops::silu_mul, gate, up),
                    Activation::GeluTanh => ops::gated_on_pool(pool, ops::gelu_tanh_mul, gate, up),
                    Activation::Gelu => ops::gated_on_pool(pool, ops::gelu_erf_mul, gate, up),
                }
                down
            }
            Mlp::Plain { up: u, down } => {
                u.forward(pool, &ws.xn[..t * h], gate);
                match hp.hidden_act {
                    Activation::Silu => ops::silu(gate),
                    Activation::GeluTanh => ops::gelu_tanh(gate),
                    Activation::Gelu => ops::gelu_erf(gate),
                }
                down
            }
        };
        let out = if parallel {
            &mut ws.mlp_out[..t * h]
        } else {
            &mut ws.o[..t * h]
        };
        down.forward(pool, &ws.gate[..t * inter], out);
        if let Some(n) = &layer.post_ffn_norm {
            n.rows_inplace(out, eps);
        }
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
            self.output_norm
                .rows(x, self.hp.norm_eps, &mut ws.xn[i * h..(i + 1) * h]);
        }
        let head = self.output.as_ref().unwrap_or(&self.embed);
        let out = &mut ws.logits[first_out * vocab..(first_out + n) * vocab];
        matmul(&ws.pool, &ws.xn[..n * h], head, out);
        if let Some(cap) = self.hp.final_logit_softcapping {
            out.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }
    }
}
