//! ondo-engine: requests in, text and logprobs out.
//!
//! - [`params`]: `SamplingParams` with vLLM's fields, defaults and validation.
//! - [`sampler`]: the logits-processor chain (penalties, temperature, min_p, top_k, top_p, draw).
//! - [`generate`]: the loop of one request: prefill, then decode its sequences, stop, stream.
//! - [`llm`]: the `Llm` handle that owns a loaded model and its tokenizer.
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

mod error;
pub mod generate;
pub mod llm;
pub mod load;
pub mod output;
pub mod params;
pub mod rng;
pub mod sampler;

pub use error::EngineError;
pub use llm::{Llm, LoadOptions, Prompt, Stream, StreamItem};
pub use output::{best_of_select, CompletionOutput, FinishReason, LogprobMap, RequestOutput, StopReason};
pub use params::{LogprobsMode, ParamError, SamplingParams};
pub use rng::Rng;
pub use sampler::{LogitsProcessor, Sampler, SeqContext, SeqHistory, TokenCounts};
