//! What the model is asked: chat messages checked and normalized for the template, completion
//! prompts in their four forms (a string, strings, token ids, lists of token ids), each turned
//! into token ids that fit the context.

use crate::error::ApiError;
use crate::params::fit_context;
use ondo_engine::{Llm, SamplingParams};
use ondo_text::RenderOptions;
use serde_json::{Map, Value};

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

/// A completion prompt as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    Text(String),
    Ids(Vec<u32>),
}

/// Checks `messages` and returns them with list-of-parts content joined into one string (what
/// text-only templates expect).
pub fn normalize_messages(messages: &Value, max: usize) -> Result<Vec<Value>, ApiError> {
    let list = messages
        .as_array()
        .ok_or_else(|| ApiError::bad_param("messages", "messages must be a list of message objects"))?;
    if list.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "messages must contain at least one message",
        ));
    }
    if list.len() > max {
        let msg = format!(
            "messages has {} messages, more than this server's limit of {max} (max_messages)",
            list.len()
        );
        return Err(ApiError::bad_param("messages", msg));
    }
    list.iter().enumerate().map(|(i, m)| normalize_message(i, m)).collect()
}

fn normalize_message(i: usize, m: &Value) -> Result<Value, ApiError> {
    let param = |field: &str| format!("messages.[{i}]{field}");
    let obj = m
        .as_object()
        .ok_or_else(|| ApiError::bad_param(param(""), format!("messages[{i}] must be an object")))?;
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_param(param(".role"), format!("messages[{i}].role must be a string")))?;
    if !ROLES.contains(&role) {
        let msg = format!("messages[{i}].role must be one of {ROLES:?}, got {role:?}");
        return Err(ApiError::bad_param(param(".role"), msg));
    }
    let content = match obj.get("content") {
        None | Some(Value::Null) if role == "assistant" => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => Value::String(
            join_text_parts(parts)
                .map_err(|m| ApiError::bad_param(param(".content"), format!("messages[{i}].content: {m}")))?,
        ),
        _ => {
            let msg = format!("messages[{i}].content must be a string or a list of text parts");
            return Err(ApiError::bad_param(param(".content"), msg));
        }
    };
    let mut out: Map<String, Value> = obj.clone();
    out.insert("content".into(), content);
    Ok(Value::Object(out))
}

fn join_text_parts(parts: &[Value]) -> Result<String, String> {
    let texts: Vec<&str> = parts
        .iter()
        .map(|p| {
            match (
                p.get("type").and_then(Value::as_str),
                p.get("text").and_then(Value::as_str),
            ) {
                (Some("text"), Some(t)) => Ok(t),
                (Some(kind), _) if kind != "text" => Err(format!("content parts of type {kind:?} are not supported")),
                _ => Err("each content part must be {\"type\": \"text\", \"text\": string}".to_string()),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(texts.join("\n"))
}

/// The prompts of a completions request.
pub fn parse_prompts(prompt: &Value) -> Result<Vec<PromptInput>, ApiError> {
    let bad = || {
        ApiError::bad_param(
            "prompt",
            "prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids",
        )
    };
    match prompt {
        Value::String(s) => Ok(vec![PromptInput::Text(s.clone())]),
        Value::Array(items) if items.is_empty() => Err(ApiError::bad_param("prompt", "prompt must not be empty")),
        Value::Array(items) if items[0].is_number() => Ok(vec![PromptInput::Ids(token_ids(items).ok_or_else(bad)?)]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(PromptInput::Text(s.clone())),
                Value::Array(ids) => token_ids(ids).map(PromptInput::Ids).ok_or_else(bad),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

fn token_ids(items: &[Value]) -> Option<Vec<u32>> {
    items
        .iter()
        .map(|v| v.as_u64().and_then(|id| u32::try_from(id).ok()))
        .collect()
}

/// Token ids of a chat: rendered by the model's template with the assistant turn opened (and
/// the tools, when given), then tokenized without adding special tokens again.
pub fn chat_ids(llm: &Llm, messages: &[Value], tools: Option<Vec<Value>>) -> Result<Vec<u32>, ApiError> {
    let opts = RenderOptions {
        add_generation_prompt: true,
        tools,
        ..Default::default()
    };
    let text = llm
        .render_chat(messages, &opts)
        .map_err(|e| ApiError::from_engine(e, "messages"))?;
    llm.tokenizer()
        .encode(&text, false)
        .map_err(|e| ApiError::bad_param("messages", e.to_string()))
}

/// Token ids of a completion prompt; ids must be in the vocabulary.
pub fn prompt_ids(llm: &Llm, prompt: &PromptInput) -> Result<Vec<u32>, ApiError> {
    match prompt {
        PromptInput::Text(t) => llm
            .tokenizer()
            .encode(t, true)
            .map_err(|e| ApiError::bad_param("prompt", e.to_string())),
        PromptInput::Ids(ids) => {
            check_ids(llm, ids, "prompt")?;
            Ok(ids.clone())
        }
    }
}

/// Every id below the vocabulary size.
pub fn check_ids(llm: &Llm, ids: &[u32], param: &str) -> Result<(), ApiError> {
    let vocab = llm.model().hparams().vocab_size;
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(id) => Err(ApiError::bad_param(
            param,
            format!("token id {id} is out of vocabulary (size {vocab})"),
        )),
        None => Ok(()),
    }
}

/// The context a request may use: the model's, or less with --max-model-len.
pub fn max_model_len(llm: &Llm, limit: Option<usize>) -> usize {
    let ctx = llm.engine().map_or(0, |e| e.limits().context);
    limit.map_or(ctx, |l| l.min(ctx))
}

/// Non-empty ids that fit the context with the parameters (the engine checks the rest when the
/// request is submitted: vocabulary, parameters, the KV pool's size).
pub fn fit(ids: &[u32], params: &SamplingParams, max_len: usize, param: &str) -> Result<SamplingParams, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_param(
            param,
            format!("the {param} is empty: nothing to continue from"),
        ));
    }
    fit_context(params.clone(), ids.len(), max_len, param)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_checked_and_parts_joined() {
        let m = normalize_messages(
            &json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]),
            8,
        )
        .expect("valid");
        assert_eq!(m[0]["content"], "a\nb");
        for (bad, param) in [
            (json!([]), "messages"),
            (json!("hi"), "messages"),
            (json!([1]), "messages.[0]"),
            (json!([{"content": "x"}]), "messages.[0].role"),
            (json!([{"role": "wizard", "content": "x"}]), "messages.[0].role"),
            (json!([{"role": "user"}]), "messages.[0].content"),
            (json!([{"role": "user", "content": 5}]), "messages.[0].content"),
            (
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
                "messages.[0].content",
            ),
        ] {
            let e = normalize_messages(&bad, 8).expect_err(&bad.to_string());
            assert_eq!(e.param.as_deref(), Some(param), "{bad}");
        }
        assert!(normalize_messages(&json!([{"role": "assistant", "content": null}]), 8).is_ok());
        let many = Value::Array(vec![json!({"role": "user", "content": "a"}); 9]);
        let err = normalize_messages(&many, 8).expect_err("9 messages over a limit of 8");
        assert!(err.message.contains("limit of 8 (max_messages)"), "{}", err.message);
        assert_eq!(err.param.as_deref(), Some("messages"));
    }

    #[test]
    fn prompts_in_four_forms() {
        let t = |s: &str| PromptInput::Text(s.into());
        assert_eq!(parse_prompts(&json!("a")), Ok(vec![t("a")]));
        assert_eq!(parse_prompts(&json!(["a", "b"])), Ok(vec![t("a"), t("b")]));
        assert_eq!(parse_prompts(&json!([1, 2])), Ok(vec![PromptInput::Ids(vec![1, 2])]));
        assert_eq!(
            parse_prompts(&json!([[1], [2]])),
            Ok(vec![PromptInput::Ids(vec![1]), PromptInput::Ids(vec![2])])
        );
        for bad in [
            json!([]),
            json!(5),
            json!([-1]),
            json!([1, "a"]),
            json!([{}]),
            json!(null),
        ] {
            assert!(parse_prompts(&bad).is_err(), "{bad}");
        }
    }
}
