//! Request fields → `SamplingParams`, with OpenAI's defaults where they differ from vLLM's
//! (`temperature` 1, `max_tokens` absent = up to the context), then the context-length check.
//! Every rejection is a 400 naming the field.

use crate::error::ApiError;
use crate::wire::{SamplingFields, Seed, StringOrList};
use ondo_engine::params::count_param;
use ondo_engine::SamplingParams;

/// At most this many sequences per request (n, best_of): each holds its own KV cache.
pub const MAX_SEQUENCES: usize = 16;
/// At most this many top logprobs per token.
pub const MAX_LOGPROBS: usize = 20;

/// The sampling parameters a request asks for. `max_tokens` is the already-chosen field
/// (`max_completion_tokens` wins over `max_tokens` in chat); `logprobs` the number of top
/// logprobs wanted, if any.
pub fn sampling_params(
    f: &SamplingFields,
    max_tokens: Option<i64>,
    logprobs: Option<usize>,
) -> Result<SamplingParams, ApiError> {
    let d = SamplingParams::default();
    let p = SamplingParams {
        n: count("n", f.n)?.unwrap_or(1),
        best_of: count("best_of", f.best_of)?,
        presence_penalty: f.presence_penalty.unwrap_or(0.0),
        frequency_penalty: f.frequency_penalty.unwrap_or(0.0),
        repetition_penalty: f.repetition_penalty.unwrap_or(1.0),
        temperature: f.temperature.unwrap_or(1.0),
        top_p: f.top_p.unwrap_or(1.0),
        top_k: top_k(f.top_k)?,
        min_p: f.min_p.unwrap_or(0.0),
        seed: f.seed.map(Seed::as_u64),
        stop: stop_list(f.stop.as_ref()),
        stop_token_ids: f.stop_token_ids.clone().unwrap_or_default(),
        include_stop_str_in_output: f.include_stop_str_in_output.unwrap_or(false),
        ignore_eos: f.ignore_eos.unwrap_or(false),
        max_tokens: count("max_tokens", max_tokens)?,
        min_tokens: count("min_tokens", f.min_tokens)?.unwrap_or(0),
        logprobs,
        skip_special_tokens: f.skip_special_tokens.unwrap_or(true),
        spaces_between_special_tokens: f.spaces_between_special_tokens.unwrap_or(true),
        logit_bias: logit_bias(f)?,
        ..d
    };
    p.validate()
        .map_err(|e| ApiError::bad_param(e.field(), e.to_string()))?;
    if p.best_of() > MAX_SEQUENCES {
        let field = if p.best_of.is_some() { "best_of" } else { "n" };
        let msg = format!("{field} must be at most {MAX_SEQUENCES}, got {}", p.best_of());
        return Err(ApiError::bad_param(field, msg));
    }
    if f.stream() && p.best_of() != p.n {
        return Err(ApiError::bad_param("best_of", "best_of must equal n when streaming"));
    }
    Ok(p)
}

/// Checks the token ids the parameters name against the vocabulary.
pub fn check_vocab(p: &SamplingParams, vocab_size: usize) -> Result<(), ApiError> {
    p.validate_vocab(vocab_size)
        .map_err(|e| ApiError::bad_param(e.field(), e.to_string()))
}

/// `logprobs` of chat: a bool plus `top_logprobs` in 0..=20.
pub fn chat_logprobs(logprobs: Option<bool>, top: Option<i64>) -> Result<Option<usize>, ApiError> {
    let top = count("top_logprobs", top)?;
    if top.is_some_and(|k| k > MAX_LOGPROBS) {
        return Err(ApiError::bad_param(
            "top_logprobs",
            format!("top_logprobs must be at most {MAX_LOGPROBS}"),
        ));
    }
    match (logprobs.unwrap_or(false), top) {
        (true, k) => Ok(Some(k.unwrap_or(0))),
        (false, Some(k)) if k > 0 => Err(ApiError::bad_param(
            "top_logprobs",
            "top_logprobs requires logprobs to be set to true",
        )),
        (false, _) => Ok(None),
    }
}

/// `logprobs` of completions: the number of top logprobs, 0..=20.
pub fn completion_logprobs(logprobs: Option<i64>) -> Result<Option<usize>, ApiError> {
    let k = count("logprobs", logprobs)?;
    if k.is_some_and(|k| k > MAX_LOGPROBS) {
        return Err(ApiError::bad_param(
            "logprobs",
            format!("logprobs must be at most {MAX_LOGPROBS}"),
        ));
    }
    Ok(k)
}

/// Fit the request into the context: the prompt must leave room, and `max_tokens` (absent =
/// all the room left) must fit beside it. Returns the parameters with `max_tokens` set.
pub fn fit_context(
    mut p: SamplingParams,
    prompt_len: usize,
    max_len: usize,
    prompt_param: &str,
) -> Result<SamplingParams, ApiError> {
    if prompt_len >= max_len {
        let msg = format!(
            "This model's maximum context length is {max_len} tokens. However, your {prompt_param} resulted in \
             {prompt_len} tokens. Please reduce the length of the {prompt_param}."
        );
        return Err(ApiError::bad_param(prompt_param, msg).with_code("context_length_exceeded"));
    }
    let room = max_len - prompt_len;
    match p.max_tokens {
        Some(m) if m > room => {
            let msg = format!(
                "This model's maximum context length is {max_len} tokens. However, you requested {} tokens \
                 ({prompt_len} in the {prompt_param}, {m} in the completion). Please reduce the length of the \
                 {prompt_param} or completion.",
                prompt_len + m
            );
            Err(ApiError::bad_param("max_tokens", msg).with_code("context_length_exceeded"))
        }
        Some(_) => Ok(p),
        None => {
            p.max_tokens = Some(room);
            p.min_tokens = p.min_tokens.min(room);
            Ok(p)
        }
    }
}

/// An integer count, checked where every count is (`ondo_engine::params::count_param`).
fn count(field: &'static str, v: Option<i64>) -> Result<Option<usize>, ApiError> {
    v.map(|v| count_param(field, v).map_err(|e| ApiError::bad_param(field, e.to_string())))
        .transpose()
}

fn top_k(v: Option<i64>) -> Result<i32, ApiError> {
    let v = v.unwrap_or(0);
    i32::try_from(v).map_err(|_| ApiError::bad_param("top_k", format!("top_k is out of range: {v}")))
}

fn stop_list(stop: Option<&StringOrList>) -> Vec<String> {
    match stop {
        None => vec![],
        Some(StringOrList::One(s)) => vec![s.clone()],
        Some(StringOrList::Many(v)) => v.clone(),
    }
}

/// `{"token id": bias}` with the keys parsed; biases outside [-100, 100] are rejected as OpenAI does.
fn logit_bias(f: &SamplingFields) -> Result<std::collections::BTreeMap<u32, f32>, ApiError> {
    let Some(map) = &f.logit_bias else {
        return Ok(Default::default());
    };
    map.iter()
        .map(|(k, &v)| {
            let id = k.trim().parse::<u32>().map_err(|_| {
                ApiError::bad_param("logit_bias", format!("logit_bias keys must be token ids, got {k:?}"))
            })?;
            if !(-100.0..=100.0).contains(&v) {
                let msg = format!("logit_bias values must be in [-100, 100], got {v} for token {id}");
                return Err(ApiError::bad_param("logit_bias", msg));
            }
            Ok((id, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> SamplingFields {
        serde_json::from_str(json).expect("fields parse")
    }

    #[test]
    fn openai_defaults_not_vllm_defaults() {
        let p = sampling_params(&fields("{}"), None, None).expect("valid");
        assert_eq!((p.temperature, p.max_tokens, p.n), (1.0, None, 1));
        let p = fit_context(p, 10, 100, "prompt").expect("fits");
        assert_eq!(p.max_tokens, Some(90));
    }

    #[test]
    fn fields_map_and_errors_name_them() {
        let f = fields(r#"{"stop": "\n", "seed": -1, "top_k": 5, "logit_bias": {"42": -100}}"#);
        let p = sampling_params(&f, Some(8), None).expect("valid");
        assert_eq!(p.stop, vec!["\n".to_string()]);
        assert_eq!(p.seed, Some(u64::MAX));
        assert_eq!(p.logit_bias.get(&42), Some(&-100.0));
        for (json, max, param) in [
            (r#"{"n": 0}"#, None, "n"),
            (r#"{"temperature": -1}"#, None, "temperature"),
            (r#"{"top_p": 2}"#, None, "top_p"),
            (r#"{"logit_bias": {"x": 1}}"#, None, "logit_bias"),
            (r#"{"logit_bias": {"1": 101}}"#, None, "logit_bias"),
            (r#"{"n": 17}"#, None, "n"),
            (r#"{"n": 2, "stream": true, "best_of": 3}"#, None, "best_of"),
            ("{}", Some(0), "max_tokens"),
        ] {
            let e = sampling_params(&fields(json), max, None).expect_err(json);
            assert_eq!(e.param.as_deref(), Some(param), "{json}: {}", e.message);
        }
    }

    #[test]
    fn context_is_enforced() {
        let p = SamplingParams {
            max_tokens: Some(50),
            ..Default::default()
        };
        assert_eq!(
            fit_context(p.clone(), 100, 100, "messages")
                .expect_err("full")
                .param
                .as_deref(),
            Some("messages")
        );
        assert_eq!(
            fit_context(p.clone(), 60, 100, "prompt")
                .expect_err("over")
                .param
                .as_deref(),
            Some("max_tokens")
        );
        assert!(fit_context(p, 50, 100, "prompt").is_ok());
    }

    #[test]
    fn chat_logprobs_rules() {
        assert_eq!(chat_logprobs(Some(true), Some(3)), Ok(Some(3)));
        assert_eq!(chat_logprobs(None, None), Ok(None));
        assert!(chat_logprobs(None, Some(2)).is_err());
        assert!(chat_logprobs(Some(true), Some(21)).is_err());
        assert_eq!(completion_logprobs(Some(0)), Ok(Some(0)));
        assert!(completion_logprobs(Some(-1)).is_err());
    }
}
