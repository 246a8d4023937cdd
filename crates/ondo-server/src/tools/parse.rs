//! Tool calls out of generated text. The format's own syntax first (`<tool_call>` tags, a
//! Llama 3 JSON object, `[TOOL_CALLS]` with a list, the generic object), then the form small
//! models often write instead of their template's tags: a fenced ```json block (or the bare
//! answer) holding `{"name", "arguments"}` (or a list of them). That fallback counts only when
//! the name is one of the request's tools and the arguments validate against its schema.

use super::{Format, Tool, ToolSpec};
use serde_json::Value;

/// One call as returned: arguments as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The message of an output: text content (if any is left) and calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub content: Option<String>,
    pub calls: Vec<ToolCall>,
}

/// Split `text` into content and tool calls for `spec`; `new_id` gives each call its id.
pub fn parse_output(spec: &ToolSpec, text: &str, mut new_id: impl FnMut() -> String) -> Parsed {
    let (content, calls) = match spec.format {
        Format::Hermes => hermes(text),
        Format::Llama3Json => (
            None,
            json_calls(text.trim().trim_start_matches("<|python_tag|>"), "parameters"),
        ),
        Format::Mistral => (
            None,
            json_calls(text.trim().trim_start_matches("[TOOL_CALLS]"), "arguments"),
        ),
        Format::Generic => generic(text),
    };
    let (content, calls) = match calls {
        calls if !calls.is_empty() => (content, calls),
        _ => match fenced_calls(text, &spec.tools) {
            Some(calls) => (None, calls),
            None => (Some(content.unwrap_or_else(|| text.to_string())), vec![]),
        },
    };
    let calls = calls
        .into_iter()
        .map(|(name, args)| ToolCall {
            id: new_id(),
            name,
            arguments: args.to_string(),
        })
        .collect();
    Parsed {
        content: content.filter(|c| !c.trim().is_empty()),
        calls,
    }
}

type RawCall = (String, Value);

/// `<tool_call>{...}</tool_call>` blocks (the last may be cut off); the text before the first
/// is the content.
fn hermes(text: &str) -> (Option<String>, Vec<RawCall>) {
    let Some(first) = text.find("<tool_call>") else {
        return (Some(text.to_string()), vec![]);
    };
    let content = text[..first].trim().to_string();
    let calls = text[first..]
        .split("<tool_call>")
        .filter_map(|block| {
            let inner = block.split("</tool_call>").next().unwrap_or("");
            serde_json::from_str::<Value>(inner.trim()).ok()
        })
        .filter_map(|v| raw_call(&v, "arguments"))
        .collect();
    (Some(content), calls)
}

/// The generic object: `{"tool_calls": [...]}` or `{"response": "..."}`.
fn generic(text: &str) -> (Option<String>, Vec<RawCall>) {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) => {
            let calls = v.get("tool_calls").and_then(Value::as_array);
            let calls = calls
                .into_iter()
                .flatten()
                .filter_map(|c| raw_call(c, "arguments"))
                .collect();
            let response = v.get("response").and_then(Value::as_str).map(str::to_string);
            (response, calls)
        }
        Err(_) => (Some(text.to_string()), vec![]),
    }
}

/// A JSON object or list of call objects, or objects separated by `;` (Llama 3.x).
fn json_calls(text: &str, args_key: &str) -> Vec<RawCall> {
    let text = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return calls_of(&v, args_key);
    }
    text.split(';')
        .filter_map(|part| serde_json::from_str::<Value>(part.trim()).ok())
        .filter_map(|v| raw_call(&v, args_key))
        .collect()
}

fn calls_of(v: &Value, args_key: &str) -> Vec<RawCall> {
    match v {
        Value::Array(items) => items.iter().filter_map(|c| raw_call(c, args_key)).collect(),
        other => raw_call(other, args_key).into_iter().collect(),
    }
}

/// `{"name": string, <args_key> | "arguments" | "parameters": object or JSON text}`.
fn raw_call(v: &Value, args_key: &str) -> Option<RawCall> {
    let name = v.get("name")?.as_str()?.to_string();
    let args = v
        .get(args_key)
        .or_else(|| v.get("arguments"))
        .or_else(|| v.get("parameters"));
    let args = match args {
        None => Value::Object(Default::default()),
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
    };
    args.is_object().then_some((name, args))
}

/// The fenced (or bare) JSON fallback: every call names a known tool with valid arguments.
fn fenced_calls(text: &str, tools: &[Tool]) -> Option<Vec<RawCall>> {
    let body = fenced_body(text).unwrap_or(text).trim();
    let v: Value = serde_json::from_str(body).ok()?;
    let calls = calls_of(&v, "arguments");
    let valid = |(name, args): &RawCall| {
        tools
            .iter()
            .find(|t| &t.name == name)
            .and_then(|t| jsonschema::validator_for(&t.parameters).ok())
            .is_some_and(|v| v.is_valid(args))
    };
    (!calls.is_empty() && calls.iter().all(valid)).then_some(calls)
}

/// The body of the first ``` fence (an info string such as `json` skipped).
fn fenced_body(text: &str) -> Option<&str> {
    let start = text.find("```")? + 3;
    let rest = &text[start..];
    let body = &rest[rest.find('\n')? + 1..];
    Some(body.split("```").next().unwrap_or(body))
}
