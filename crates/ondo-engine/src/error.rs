//! Errors of running requests.

use crate::params::ParamError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid sampling parameter: {0}")]
    Param(#[from] ParamError),
    #[error(transparent)]
    Model(#[from] ondo_model::Error),
    #[error(transparent)]
    Text(#[from] ondo_text::Error),
    #[error(transparent)]
    Template(#[from] ondo_text::TemplateError),
    #[error("{0}: this model has no chat template, so it cannot chat; plain completion (`ondo run` without --chat) still works")]
    NoChatTemplate(String),
    #[error("the prompt is empty: nothing to continue from")]
    EmptyPrompt,
    #[error(
        "the prompt has {len} tokens, but the model's context is {max} (max_position_embeddings): shorten the prompt"
    )]
    PromptTooLong { len: usize, max: usize },
    #[error("{0}: no tokenizer found (expected tokenizer.json in the model folder or a vocabulary in the GGUF)")]
    NoTokenizer(String),
    #[error("{0}")]
    Load(String),
    #[error("the prompt has {len} tokens, but the KV cache holds {max} (--kv-cache-memory): shorten the prompt or give the cache more memory")]
    KvCacheTooSmall { len: usize, max: usize },
    #[error("prompt token id {id} is outside the vocabulary of {vocab_size}")]
    PromptToken { id: u32, vocab_size: usize },
    #[error("the structured-output constraint failed: {0}")]
    Constraint(String),
    #[error("internal error: {0}")]
    Internal(String),
}
