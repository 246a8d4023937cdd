//! The key/value cache of one sequence, owned by the caller and passed into `forward`.
//!
//! Layout per layer: `[capacity, kv_heads, head_dim]` f32 for keys and for values. A paged cache
//! shared between sequences replaces this when the engine batches requests.

use crate::Hparams;

#[derive(Clone)]
pub struct KvCache {
    /// Per layer: keys then values, each `[capacity, kv_dim]`.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    kv_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Room for `capacity` positions (at most the model's context).
    pub fn new(hp: &Hparams, capacity: usize) -> KvCache {
        let capacity = capacity.min(hp.max_position_embeddings);
        let kv_dim = hp.kv_dim();
        let layers = (0..hp.num_hidden_layers)
            .map(|_| (vec![0f32; capacity * kv_dim], vec![0f32; capacity * kv_dim]))
            .collect();
        KvCache { layers, kv_dim, capacity, len: 0 }
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forget positions from `len` on (reuse the cache for a new or shortened sequence).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Keys and values of `layer` (all `capacity` rows; rows `< len` are filled).
    pub fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        let (k, v) = &self.layers[layer];
        (k, v)
    }

    /// Write one position's key and value `[kv_dim]` for `layer`.
    pub fn write(&mut self, layer: usize, pos: usize, key: &[f32], value: &[f32]) {
        let (k, v) = &mut self.layers[layer];
        let at = pos * self.kv_dim;
        k[at..at + self.kv_dim].copy_from_slice(key);
        v[at..at + self.kv_dim].copy_from_slice(value);
    }

    /// Mark `n` more positions as filled (after every layer wrote them).
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
