//! ondo-model: from files on disk to a stateless model that turns tokens into logits.
//!
//! Data flow, top to bottom:
//! - [`load`]: a model folder (config.json + safetensors) or a `.gguf` file → [`Hparams`] + a
//!   [`TensorStore`] of named tensors (memory-mapped, nothing copied).
//! - [`names`]: one table from HF and GGUF tensor names to ondo's canonical names.
//! - [`arch`]: one file per architecture, built from the shared [`blocks`]; the registry picks it.
//! - [`Model::forward`]: tokens + a [`KvCache`] passed in + a [`Workspace`] of preallocated buffers
//!   → logits. Models keep no state between calls.
//!
//! It knows nothing of requests, sampling or text.
//!
//! ```no_run
//! use ondo_model::{load_model, KvCache, Workspace, LogitsFor};
//! let model = load_model(std::path::Path::new("models/SmolLM2-135M-Instruct")).unwrap();
//! let mut kv = KvCache::new(model.hparams(), 64);
//! let mut ws = Workspace::new(model.hparams(), 16);
//! let logits = model.forward(&[1, 2, 3], &mut kv, &mut ws, LogitsFor::Last).unwrap(); // [1, vocab]
//! assert_eq!(logits.len(), model.hparams().vocab_size);
//! ```

pub mod arch;
pub mod blocks;
pub mod config;
pub mod gguf;
pub mod gguf_model;
mod error;
pub mod hub;
pub mod kv;
pub mod load;
pub mod names;
pub mod safetensors;
pub mod store;

pub use config::Hparams;
pub use error::Error;
pub use kv::{KvCache, KvDtype};
pub use load::{load_model, ModelFiles};
pub use store::{TensorData, TensorStore};

use std::sync::Arc;

/// Which positions of a forward pass need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only the last token (decoding, plain prefill).
    Last,
    /// Every token (prompt logprobs).
    All,
}

/// A loaded model. Stateless: the KV cache and scratch buffers are passed in.
pub trait Model: Send + Sync {
    fn hparams(&self) -> &Hparams;

    /// Run `tokens` at positions `kv.len()..`, append their keys/values to `kv`, and return the
    /// logits `[rows, vocab]` (rows = 1 for [`LogitsFor::Last`], else `tokens.len()`), which live in
    /// `ws` until the next call.
    fn forward<'w>(
        &self,
        tokens: &[u32],
        kv: &mut KvCache,
        ws: &'w mut Workspace,
        logits_for: LogitsFor,
    ) -> Result<&'w [f32], Error>;
}

pub use blocks::Workspace;

/// A shared handle to any model.
pub type SharedModel = Arc<dyn Model>;
