//! The key/value cache of one sequence, owned by the caller and passed into `forward`.
//!
//! Layout per layer: `[capacity, kv_heads, head_dim]` for keys and for values, in f32 (exact,
//! the default) or f16 (half the memory; what llama.cpp uses by default). A paged cache shared
//! between sequences replaces this when the engine batches requests.

use crate::Hparams;
use half::f16;

/// The element type of cached keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvDtype {
    #[default]
    F32,
    F16,
}

/// One layer's keys and values, `[capacity, kv_dim]` each.
#[derive(Clone)]
enum Layer {
    F32(Vec<f32>, Vec<f32>),
    F16(Vec<f16>, Vec<f16>),
}

/// A read view of one layer's keys and values (rows `< len` are filled).
pub enum LayerKv<'a> {
    F32(&'a [f32], &'a [f32]),
    F16(&'a [f16], &'a [f16]),
}

#[derive(Clone)]
pub struct KvCache {
    layers: Vec<Layer>,
    kv_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Room for `capacity` positions (at most the model's context), in f32.
    pub fn new(hp: &Hparams, capacity: usize) -> KvCache {
        KvCache::with_dtype(hp, capacity, KvDtype::F32)
    }

    pub fn with_dtype(hp: &Hparams, capacity: usize, dtype: KvDtype) -> KvCache {
        let capacity = capacity.min(hp.max_position_embeddings);
        let kv_dim = hp.kv_dim();
        let n = capacity * kv_dim;
        let layer = || match dtype {
            KvDtype::F32 => Layer::F32(vec![0.0; n], vec![0.0; n]),
            KvDtype::F16 => Layer::F16(vec![f16::ZERO; n], vec![f16::ZERO; n]),
        };
        KvCache { layers: (0..hp.num_hidden_layers).map(|_| layer()).collect(), kv_dim, capacity, len: 0 }
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

    /// Keys and values of `layer`.
    pub fn layer(&self, layer: usize) -> LayerKv<'_> {
        match &self.layers[layer] {
            Layer::F32(k, v) => LayerKv::F32(k, v),
            Layer::F16(k, v) => LayerKv::F16(k, v),
        }
    }

    /// Write one position's key and value `[kv_dim]` for `layer`.
    pub fn write(&mut self, layer: usize, pos: usize, key: &[f32], value: &[f32]) {
        let at = pos * self.kv_dim..(pos + 1) * self.kv_dim;
        match &mut self.layers[layer] {
            Layer::F32(k, v) => {
                k[at.clone()].copy_from_slice(key);
                v[at].copy_from_slice(value);
            }
            Layer::F16(k, v) => {
                k[at.clone()].iter_mut().zip(key).for_each(|(d, s)| *d = f16::from_f32(*s));
                v[at].iter_mut().zip(value).for_each(|(d, s)| *d = f16::from_f32(*s));
            }
        }
    }

    /// Mark `n` more positions as filled (after every layer wrote them).
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
