//! ondo: run open language models on your own machine.
//!
//! This crate is the facade: it re-exports the pieces a program needs, and holds the `ondo`
//! command-line tool (`src/main.rs`, `src/cli/`).
//!
//! ```no_run
//! use ondo::{Llm, LoadOptions, Prompt, SamplingParams};
//! let llm = Llm::load("HuggingFaceTB/SmolLM2-135M-Instruct", &LoadOptions::default())?;
//! let params = SamplingParams { max_tokens: Some(32), temperature: 0.0, ..Default::default() };
//! let out = llm.generate(&[Prompt::Text("The capital of France is".into())], &params)?;
//! println!("{}", out[0].outputs[0].text);
//! # Ok::<(), ondo::EngineError>(())
//! ```

pub use ondo_chain as chain;
pub use ondo_engine as engine;
pub use ondo_engine::{
    CompletionOutput, EngineConfig, EngineError, EngineHandle, Event, FinishReason, Llm, LoadOptions, NewRequest,
    ParamError, Prompt, RequestOutput, SamplingParams, StopReason, StructuredOutputs,
};
pub use ondo_hub as hub;
pub use ondo_kernels as kernels;
pub use ondo_model as model;
pub use ondo_text as text;
