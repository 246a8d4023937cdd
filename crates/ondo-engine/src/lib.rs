//! ondo-engine: requests in, text and logprobs out.
//!
//! - [`params`]: `SamplingParams` with vLLM's fields, defaults and validation.
//! - [`constraint`]: structured outputs (JSON schema, regex, choice, grammar) on llguidance.
//! - [`sampler`]: the logits-processor chain (penalties, temperature, min_p, top_k, top_p, draw).
//! - [`blocks`]: the KV block manager (free queue, sharing, prefix cache).
//! - [`scheduler`]: each step, which tokens of which sequences run (token budget, preemption).
//! - [`core`]: `EngineCore::step` = schedule → execute (one batched forward) → update (sample,
//!   stop, stream); [`seq`] is one output sequence's decoding state.
//! - [`engine`]: the thread that owns the core, and the handle any thread submits to.
//! - [`llm`]: the `Llm` handle that owns a loaded model and its tokenizer.
//! - [`metrics`]: what the engine counts (for `/metrics`).
//! - [`output`]: `RequestOutput` / `CompletionOutput`, vLLM's shapes.
//!
//! It knows nothing of HTTP or JSON wire formats beyond serde derives.
//!
//! ```no_run
//! use ondo_engine::{Llm, LoadOptions, SamplingParams, Prompt};
//! let llm = Llm::load("HuggingFaceTB/SmolLM2-135M-Instruct", &LoadOptions::default()).unwrap();
//! let params = SamplingParams { max_tokens: Some(20), temperature: 0.0, ..Default::default() };
//! let out = llm.generate(&[Prompt::Text("The capital of France is".into())], &params).unwrap();
//! println!("{}", out[0].outputs[0].text);
//! ```

pub mod blocks;
pub mod constraint;
pub mod core;
mod draws;
pub mod engine;
mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzz;
pub mod llm;
pub mod load;
pub mod metrics;
pub mod output;
pub mod params;
pub mod perplexity;
pub mod rng;
pub mod sampler;
pub mod scheduler;
mod seq;

pub use crate::core::{EngineConfig, Event, Limits, NewRequest};
pub use constraint::{Constraint, Guide, SeqConstraint, StructuredOutputs};
pub use engine::EngineHandle;
pub use error::EngineError;
pub use llm::{Llm, LoadOptions, Prompt, Stream, StreamItem};
pub use metrics::EngineStats;
pub use output::{best_of_select, CompletionOutput, FinishReason, LogprobMap, RequestOutput, StopReason};
pub use params::{LogprobsMode, ParamError, SamplingParams};
pub use rng::Rng;
pub use sampler::{LogitsProcessor, Sampler, SeqContext, SeqHistory, TokenCounts};
