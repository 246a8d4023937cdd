//! ondo-model: from files on disk to a stateless model that turns tokens into logits.
//!
//! Data flow, top to bottom:
//! - [`load`]: a model folder (config.json + safetensors) or a `.gguf` file → [`Hparams`] + a
//!   [`TensorStore`] of named tensors (memory-mapped, nothing copied).
//! - [`names`]: one table from HF and GGUF tensor names to ondo's canonical names.
//! - [`arch`]: one file per architecture, built from the shared [`blocks`]; the registry picks it.
//! - [`Model::forward`]: a [`Batch`] of token spans (each sequence's tokens, first position and
//!   block table) + the paged [`KvPool`] passed in + a [`Workspace`] of preallocated buffers →
//!   logits of the rows asked for. Every linear layer runs once over all tokens of the batch;
//!   attention runs per sequence over its blocks. Models keep no state between calls.
//!
//! It knows nothing of requests, sampling or text.
//!
//! ```no_run
//! use ondo_model::{load_model, KvDtype, LogitsFor, SeqCache, Workspace};
//! let model = load_model(std::path::Path::new("models/SmolLM2-135M-Instruct")).unwrap();
//! let mut kv = SeqCache::new(model.hparams(), 64, KvDtype::F32); // one sequence, its own pool
//! let mut ws = Workspace::new(model.hparams(), 16);
//! let logits = kv.forward(&*model, &[1, 2, 3], &mut ws, LogitsFor::Last).unwrap(); // [1, vocab]
//! assert_eq!(logits.len(), model.hparams().vocab_size);
//! ```

pub mod arch;
pub mod blocks;
pub mod config;
mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzz;
pub mod gguf;
pub mod gguf_model;
pub mod gguf_write;
mod hf_config;
pub mod kv;
pub mod load;
pub mod names;
mod parts;
pub mod quant_plan;
pub mod quantize;
pub mod safetensors;
pub mod store;

pub use config::Hparams;
pub use error::Error;
pub use kv::{Batch, KvDtype, KvPool, LogitsFor, SeqCache};
pub use load::{load_model, ModelFiles};
pub use quant_plan::{QuantPlan, Scheme};
pub use store::{TensorData, TensorStore};

use std::sync::Arc;

/// A loaded model. Stateless: the KV pool and scratch buffers are passed in.
pub trait Model: Send + Sync {
    fn hparams(&self) -> &Hparams;

    /// Run every sequence of `batch` (its tokens at positions `pos0..`), write their keys and
    /// values into their blocks of `kv`, and return the logits `[batch.logit_rows.len(), vocab]`,
    /// which live in `ws` until the next call.
    fn forward<'w>(&self, batch: &Batch, kv: &mut KvPool, ws: &'w mut Workspace) -> Result<&'w [f32], Error>;
}

pub use blocks::Workspace;

/// A shared handle to any model.
pub type SharedModel = Arc<dyn Model>;
