//! Entry point of the cargo-fuzz target `server_request` (top-level `fuzz/`) and of the test
//! that replays its corpus and crash inputs on stable (`tests/fuzz_replay.rs`). Not an API.
//!
//! [`request_body`] runs a POST body through every check that needs no model, in the order the
//! handlers run them: the JSON object, the typed fields, the messages (chat, when the body has
//! `messages`) or the prompt forms (completions), logprobs, `SamplingParams`, structured
//! outputs, tools, the vocabulary and context fit, and finally a few draws with the
//! parameters (`ondo_engine::fuzz::sample_once`). Any input gives `Ok` or a clean 4xx.

use crate::error::ApiError;
use crate::params::{chat_logprobs, check_vocab, completion_logprobs, sampling_params};
use crate::prompt::{fit, normalize_messages, parse_prompts};
use crate::structured::StructuredFields;
use crate::tools::ToolFields;
use crate::wire::{fields, parse_object, ChatRequest, CompletionRequest, SamplingFields};
use axum::body::Bytes;
use ondo_engine::fuzz::{sample_once, VOCAB};
use ondo_engine::SamplingParams;
use serde_json::Value;

/// Messages a fuzzed chat may have (the server's default limit is larger; the check is the same).
const MAX_MESSAGES: usize = 64;
/// The context the fuzzed prompt must fit in.
const CONTEXT: usize = 4096;

/// A request body → `Ok(number of prompts)` or the 4xx the server would answer.
pub fn request_body(data: &[u8]) -> Result<usize, ApiError> {
    let value = parse_object(Ok(Bytes::copy_from_slice(data)))?;
    let sampling: SamplingFields = fields(&value)?;
    let (params, prompts) = match value.get("messages") {
        Some(_) => chat(&value, &sampling)?,
        None => completion(&value, &sampling)?,
    };
    check_vocab(&params, VOCAB)?;
    let ids = [1, 2, 3];
    let params = fit(&ids, &params, CONTEXT, "prompt")?;
    sample_once(&params, &[2]).map_err(|e| ApiError::bad_param(e.field(), e.to_string()))?;
    Ok(prompts)
}

fn chat(value: &Value, sampling: &SamplingFields) -> Result<(SamplingParams, usize), ApiError> {
    let req: ChatRequest = fields(value)?;
    let messages = normalize_messages(&req.messages, MAX_MESSAGES)?;
    let logprobs = chat_logprobs(req.logprobs, req.top_logprobs)?;
    let mut params = sampling_params(sampling, req.max_completion_tokens.or(sampling.max_tokens), logprobs)?;
    params.structured_outputs = fields::<StructuredFields>(value)?.constraint()?;
    if let Some(spec) = fields::<ToolFields>(value)?.spec("")? {
        let _ = (spec.messages(messages), spec.template_tools());
        params.structured_outputs = spec.constraint(None).or(params.structured_outputs.take());
    }
    Ok((params, 1))
}

fn completion(value: &Value, sampling: &SamplingFields) -> Result<(SamplingParams, usize), ApiError> {
    let req: CompletionRequest = fields(value)?;
    let prompts = parse_prompts(&req.prompt)?;
    let logprobs = completion_logprobs(req.logprobs)?;
    let mut params = sampling_params(sampling, sampling.max_tokens, logprobs)?;
    params.structured_outputs = fields::<StructuredFields>(value)?.constraint()?;
    Ok((params, prompts.len()))
}
