//! The key/value cache, paged: one pool of fixed-size blocks shared by every sequence, and the
//! [`Batch`] a forward pass runs over.
//!
//! Layout per layer: `[num_blocks, block_size, kv_heads, head_dim]` for keys and for values, in
//! f32 (exact) or f16 (half the memory; what llama.cpp uses by default). A sequence's positions
//! live in the blocks of its block table: position `p` in block `table[p / block_size]`, slot
//! `p % block_size`. Which blocks a sequence owns is the engine's bookkeeping (ondo-engine's block
//! manager); the model only reads and writes the slots a batch names.
//!
//! [`SeqCache`] is one sequence on a pool of its own: how tests and benchmarks run a model
//! directly, through the same batched forward pass the engine uses.

use crate::{Error, Hparams, Model, Workspace};
use half::f16;
use ondo_kernels::ops::AttnSeq;

/// The element type of cached keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvDtype {
    #[default]
    F32,
    F16,
}

impl KvDtype {
    pub fn bytes(self) -> usize {
        match self {
            KvDtype::F32 => 4,
            KvDtype::F16 => 2,
        }
    }
}

/// One layer's keys and values, `[num_blocks * block_size, kv_dim]` each.
enum Layer {
    F32(Vec<f32>, Vec<f32>),
    F16(Vec<f16>, Vec<f16>),
}

/// A read view of one layer's whole pool of keys and values.
pub enum LayerKv<'a> {
    F32(&'a [f32], &'a [f32]),
    F16(&'a [f16], &'a [f16]),
}

/// The pool of KV blocks of every layer.
pub struct KvPool {
    layers: Vec<Layer>,
    kv_dim: usize,
    block_size: usize,
    num_blocks: usize,
    dtype: KvDtype,
}

impl KvPool {
    /// `num_blocks` blocks of `block_size` positions for every layer of `hp`. The memory is
    /// zeroed lazily by the OS: pages count as resident once a block is first written.
    pub fn new(hp: &Hparams, num_blocks: usize, block_size: usize, dtype: KvDtype) -> KvPool {
        let block_size = block_size.max(1);
        let kv_dim = hp.kv_dim();
        let n = num_blocks * block_size * kv_dim;
        let layer = || match dtype {
            KvDtype::F32 => Layer::F32(vec![0.0; n], vec![0.0; n]),
            KvDtype::F16 => Layer::F16(zeroed_f16(n), zeroed_f16(n)),
        };
        let layers = (0..hp.num_hidden_layers).map(|_| layer()).collect();
        KvPool {
            layers,
            kv_dim,
            block_size,
            num_blocks,
            dtype,
        }
    }

    /// Bytes one block takes over all layers (keys and values).
    pub fn block_bytes(hp: &Hparams, block_size: usize, dtype: KvDtype) -> usize {
        2 * hp.num_hidden_layers * block_size * hp.kv_dim() * dtype.bytes()
    }

    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }
    pub fn block_size(&self) -> usize {
        self.block_size
    }
    pub fn dtype(&self) -> KvDtype {
        self.dtype
    }

    /// Keys and values of `layer`, every block.
    pub fn layer(&self, layer: usize) -> LayerKv<'_> {
        match &self.layers[layer] {
            Layer::F32(k, v) => LayerKv::F32(k, v),
            Layer::F16(k, v) => LayerKv::F16(k, v),
        }
    }

    /// Write one position's key and value `[kv_dim]` of `layer` into pool row `row`
    /// (`block * block_size + slot`).
    pub fn write(&mut self, layer: usize, row: usize, key: &[f32], value: &[f32]) {
        let at = row * self.kv_dim..(row + 1) * self.kv_dim;
        match &mut self.layers[layer] {
            Layer::F32(k, v) => {
                k[at.clone()].copy_from_slice(key);
                v[at].copy_from_slice(value);
            }
            Layer::F16(k, v) => {
                k[at.clone()]
                    .iter_mut()
                    .zip(key)
                    .for_each(|(d, s)| *d = f16::from_f32(*s));
                v[at].iter_mut().zip(value).for_each(|(d, s)| *d = f16::from_f32(*s));
            }
        }
    }

    /// Copy the first `slots` positions of block `src` into block `dst` in every layer
    /// (copy-on-write of a shared partial block).
    pub fn copy_block(&mut self, src: usize, dst: usize, slots: usize) {
        let per_block = self.block_size * self.kv_dim;
        let (from, to) = (src * per_block, dst * per_block);
        let from = from..from + slots.min(self.block_size) * self.kv_dim;
        fn copy<T: Copy>(k: &mut [T], v: &mut [T], from: std::ops::Range<usize>, to: usize) {
            k.copy_within(from.clone(), to);
            v.copy_within(from, to);
        }
        for layer in &mut self.layers {
            match layer {
                Layer::F32(k, v) => copy(k, v, from.clone(), to),
                Layer::F16(k, v) => copy(k, v, from.clone(), to),
            }
        }
    }
}

/// `n` zero f16 values from zeroed memory (lazily paged in, like `vec![0.0f32; n]`).
fn zeroed_f16(n: usize) -> Vec<f16> {
    let bits: Vec<u16> = vec![0; n];
    let mut bits = std::mem::ManuallyDrop::new(bits);
    // SAFETY: f16 is a transparent u16 (same size and alignment) and 0 bits are +0.0.
    unsafe { Vec::from_raw_parts(bits.as_mut_ptr().cast::<f16>(), bits.len(), bits.capacity()) }
}

/// Which rows of a sequence's span need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// None (a prompt chunk that is not the prompt's end).
    None,
    /// Only the last token (decoding, the end of a prompt).
    Last,
    /// Every token (prompt logprobs).
    All,
}

/// The input of one forward pass: a flat list of tokens and, for each sequence, its span, its
/// first position and its block table. Owned buffers, cleared and refilled each step (nothing
/// allocated once they have grown).
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Every token of the step, sequence after sequence.
    pub tokens: Vec<u32>,
    /// Each sequence's rows, first position and table start (`AttnSeq::block0` indexes `table`).
    pub seqs: Vec<AttnSeq>,
    /// The block tables of all sequences, one after another.
    pub table: Vec<u32>,
    /// Rows of `tokens` whose logits are wanted, ascending; the output has one row each.
    pub logit_rows: Vec<usize>,
    /// Each sequence's known length: at least its last position in this batch + 1, more when
    /// this step is one chunk of a longer prompt (`set_len`). Length-dependent rope scaling
    /// (longrope) is chosen from it, so a prompt run in chunks gets the scaling of one pass.
    pub lens: Vec<usize>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.seqs.clear();
        self.table.clear();
        self.logit_rows.clear();
        self.lens.clear();
    }

    /// Add a sequence: `tokens` at positions `pos0..`, its block table (covering at least
    /// `pos0 + tokens.len()` positions) and which of its rows need logits.
    pub fn push(&mut self, tokens: &[u32], pos0: usize, blocks: &[u32], logits: LogitsFor) {
        let row0 = self.tokens.len();
        self.tokens.extend_from_slice(tokens);
        self.seqs.push(AttnSeq {
            row0,
            rows: tokens.len(),
            pos0,
            block0: self.table.len(),
        });
        self.table.extend_from_slice(blocks);
        self.lens.push(pos0 + tokens.len());
        match logits {
            LogitsFor::None => {}
            LogitsFor::Last if tokens.is_empty() => {}
            LogitsFor::Last => self.logit_rows.push(row0 + tokens.len() - 1),
            LogitsFor::All => self.logit_rows.extend(row0..row0 + tokens.len()),
        }
    }

    /// The last pushed sequence is `len` tokens long in all (its prompt goes on past this
    /// step's rows); shorter lengths are ignored.
    pub fn set_len(&mut self, len: usize) {
        if let Some(l) = self.lens.last_mut() {
            *l = (*l).max(len);
        }
    }

    /// Blocks the table of `seq` names (all of the rest of `table` for the last sequence).
    pub fn blocks_of(&self, seq: usize) -> &[u32] {
        let start = self.seqs[seq].block0;
        let end = self.seqs.get(seq + 1).map_or(self.table.len(), |s| s.block0);
        &self.table[start..end]
    }
}

/// One sequence on a pool of its own, for running a model directly (tests, `ondo bench`).
pub struct SeqCache {
    pub pool: KvPool,
    blocks: Vec<u32>,
    len: usize,
    batch: Batch,
}

impl SeqCache {
    /// Room for `capacity` positions (at most the model's context).
    pub fn new(hp: &Hparams, capacity: usize, dtype: KvDtype) -> SeqCache {
        const BLOCK: usize = 16;
        let capacity = capacity.min(hp.max_position_embeddings).max(1);
        let n = capacity.div_ceil(BLOCK);
        SeqCache {
            pool: KvPool::new(hp, n, BLOCK, dtype),
            blocks: (0..n as u32).collect(),
            len: 0,
            batch: Batch::default(),
        }
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.blocks.len() * self.pool.block_size()
    }

    /// Run `tokens` at positions `len()..` and return their logits (`[rows, vocab]`).
    pub fn forward<'w>(
        &mut self,
        model: &dyn Model,
        tokens: &[u32],
        ws: &'w mut Workspace,
        logits: LogitsFor,
    ) -> Result<&'w [f32], Error> {
        if self.len + tokens.len() > self.capacity() {
            return Err(Error::ContextTooLong {
                len: self.len + tokens.len(),
                max: self.capacity(),
            });
        }
        self.batch.clear();
        self.batch.push(tokens, self.len, &self.blocks, logits);
        let out = model.forward(&self.batch, &mut self.pool, ws)?;
        self.len += tokens.len();
        Ok(out)
    }
}
