//! ondo-chain: prompt templates, runnables, sequential chains and output parsers, over a model
//! in this process or any OpenAI-compatible endpoint.
//!
//! - [`PromptTemplate`] (f-string syntax: `{var}`, `{{`/`}}` escapes; variables found at parse
//!   time, missing and extra ones named in the error; [`PromptTemplate::partial`]) and
//!   [`ChatPromptTemplate`] from (role, template) pairs.
//! - [`Runnable`]: `invoke`, `stream` (chunks as they come), `batch` (all inputs together), and
//!   composition with [`Runnable::pipe`] or `|`; [`RunnableLambda`] for a closure.
//! - Backends behind one trait, [`Backend`]: [`Local`] (an `ondo_engine::Llm`; chat prompts go
//!   through the model's chat template) and [`OpenAiEndpoint`] (HTTP with SSE streaming).
//!   [`Model`] pairs a backend with `SamplingParams`, checked once by their own `validate`.
//! - [`SimpleSequentialChain`] (each step's text fills the next step's one variable) and
//!   [`SequentialChain`] (named variables), made of [`LlmChain`] steps.
//! - Parsers: [`StrOutputParser`], [`JsonOutputParser`], [`CommaSeparatedListOutputParser`].
//! - [`ChainFile`]: the TOML chain files `ondo chain FILE.toml --var key=value` runs.
//!
//! ```no_run
//! use ondo_chain::{vars, Local, PromptTemplate, Runnable, StrOutputParser};
//! use ondo_engine::{Llm, LoadOptions, SamplingParams};
//!
//! let llm = Llm::load("HuggingFaceTB/SmolLM2-135M-Instruct", &LoadOptions::default())?;
//! let params = SamplingParams { temperature: 0.0, max_tokens: Some(64), ..Default::default() };
//! let prompt = PromptTemplate::from_template("Question: {question}\nAnswer:")?;
//! let chain = prompt | Local(llm).with_params(params)? | StrOutputParser;
//! println!("{}", chain.invoke(vars([("question", "What is the capital of France?")]))?);
//! for delta in chain.stream(vars([("question", "Why is the sky blue?")])) {
//!     print!("{}", delta?);
//! }
//! # Ok::<(), ondo_chain::Error>(())
//! ```

mod backend;
mod chat;
mod error;
pub mod file;
mod openai;
mod parsers;
mod runnable;
mod sequential;
mod template;

pub use backend::{Backend, Local, Model};
pub use chat::{ChatPromptTemplate, Message, PromptValue, Role, Template};
pub use error::{Error, Result};
pub use file::ChainFile;
pub use openai::OpenAiEndpoint;
pub use parsers::{CommaSeparatedListOutputParser, JsonOutputParser, StrOutputParser};
pub use runnable::{once, Chunks, Pipe, Runnable, RunnableLambda};
pub use sequential::{LlmChain, SequentialChain, SimpleSequentialChain, StepRecord};
pub use template::PromptTemplate;

use std::collections::BTreeMap;

/// A template's variables by name.
pub type Vars = BTreeMap<String, String>;

/// `Vars` from pairs: `vars([("country", "France")])`.
pub fn vars<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Vars {
    pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

runnable::impl_bitor!(PromptTemplate, ChatPromptTemplate, Template);
