//! Tool calling on /v1/chat/completions: OpenAI's `tools`, `tool_choice` and
//! `parallel_tool_calls`.
//!
//! ```text
//! request tools ─► ToolSpec::from_request (400s name the field)
//!   format from the chat template's source (format.rs): Hermes <tool_call>, Llama 3 JSON,
//!   Mistral [TOOL_CALLS], or Generic (templates that know no tools: a system message asks for
//!   a JSON object, and a JSON-schema constraint makes the answer always parse)
//!   ─► the template gets `tools` as transformers passes them; assistant `tool_calls`
//!      arguments (strings on the wire) become objects, `role: "tool"` messages pass through
//!   ─► `required` / a named function: a constraint in the format's own syntax
//!   ─► output text ─► parse.rs ─► message.tool_calls + finish_reason "tool_calls"
//!   ─► streamed: stream.rs + scan.rs send each call's name, then its argument fragments,
//!      as they are generated (the fenced-JSON fallback is decided at the end)
//! ```

mod format;
mod parse;
mod scan;
mod stream;

use crate::error::ApiError;
use ondo_engine::StructuredOutputs;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub use format::Format;
pub use parse::{parse_output, Parsed, ToolCall};
pub use stream::ToolStream;

/// The request fields read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ToolFields {
    pub tools: Option<Value>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
}

/// One function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    /// Its arguments' JSON schema (`{"type": "object"}` when not given).
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Named(String),
}

/// The tools of a request and how they are used.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub tools: Vec<Tool>,
    /// The `tools` array as sent (what the chat template sees).
    pub raw: Vec<Value>,
    pub choice: ToolChoice,
    pub parallel: bool,
    pub format: Format,
}

impl ToolFields {
    /// The request's tools, or `None` when it has none (or `tool_choice` is "none": the
    /// model then answers in text and sees no tools). `template` is the chat template's
    /// source, which decides the format.
    pub fn spec(&self, template: &str) -> Result<Option<ToolSpec>, ApiError> {
        let (raw, tools) = match &self.tools {
            None | Some(Value::Null) => (vec![], vec![]),
            Some(v) => parse_tools(v)?,
        };
        let choice = parse_choice(self.tool_choice.as_ref(), &tools)?;
        if tools.is_empty() || choice == ToolChoice::None {
            return Ok(None);
        }
        Ok(Some(ToolSpec {
            tools,
            raw,
            choice,
            parallel: self.parallel_tool_calls.unwrap_or(true),
            format: Format::of_template(template),
        }))
    }
}

impl ToolSpec {
    /// The tools as the chat template gets them (`None` for the generic form, which tells
    /// the model about them in a system message instead).
    pub fn template_tools(&self) -> Option<Vec<Value>> {
        (self.format != Format::Generic).then(|| self.raw.clone())
    }

    /// `messages` ready for the template: assistant tool-call arguments as objects, and for
    /// the generic form a system message describing the tools.
    pub fn messages(&self, messages: Vec<Value>) -> Vec<Value> {
        let mut messages: Vec<Value> = messages.into_iter().map(arguments_as_objects).collect();
        if self.format == Format::Generic {
            format::add_generic_instructions(&mut messages, &self.raw, &self.choice);
        }
        messages
    }

    /// The constraint that makes the output a valid call: always for the generic form, for
    /// the native formats when a call is required or named. `tool_token` is the token id of
    /// a format's special marker ([TOOL_CALLS]), when the vocabulary has one.
    pub fn constraint(&self, tool_token: Option<u32>) -> Option<StructuredOutputs> {
        let forced = !matches!(self.choice, ToolChoice::Auto);
        match self.format {
            Format::Generic => Some(StructuredOutputs::json(format::generic_schema(self))),
            _ if forced => format::native_grammar(self, tool_token).map(|g| StructuredOutputs {
                grammar: Some(g),
                ..StructuredOutputs::default()
            }),
            _ => None,
        }
    }

    /// The tools a call may name: all, or the named one.
    fn callable(&self) -> Vec<&Tool> {
        match &self.choice {
            ToolChoice::Named(n) => self.tools.iter().filter(|t| &t.name == n).collect(),
            _ => self.tools.iter().collect(),
        }
    }
}

/// `tools`: a list of `{"type": "function", "function": {"name", "description"?, "parameters"?}}`.
fn parse_tools(v: &Value) -> Result<(Vec<Value>, Vec<Tool>), ApiError> {
    let list = v
        .as_array()
        .ok_or_else(|| ApiError::bad_param("tools", "tools must be a list of tool objects"))?;
    let tools = list
        .iter()
        .enumerate()
        .map(|(i, t)| parse_tool(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, t) in tools.iter().enumerate() {
        if tools[..i].iter().any(|u| u.name == t.name) {
            let msg = format!("tools[{i}].function.name {:?} is given twice", t.name);
            return Err(ApiError::bad_param(format!("tools.[{i}].function.name"), msg));
        }
    }
    Ok((list.clone(), tools))
}

fn parse_tool(i: usize, t: &Value) -> Result<Tool, ApiError> {
    let bad = |field: &str, what: &str| {
        ApiError::bad_param(format!("tools.[{i}]{field}"), format!("tools[{i}]{field} {what}"))
    };
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(bad(".type", "must be \"function\""));
    }
    let f = t
        .get("function")
        .filter(|f| f.is_object())
        .ok_or_else(|| bad(".function", "must be an object"))?;
    let name = f.get("name").and_then(Value::as_str).unwrap_or("");
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !name_ok {
        return Err(bad(
            ".function.name",
            "must be 1-64 characters of a-z, A-Z, 0-9, _, - or .",
        ));
    }
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object"}),
        Some(p) if p.is_object() => p.clone(),
        Some(_) => return Err(bad(".function.parameters", "must be a JSON schema object")),
    };
    Ok(Tool {
        name: name.to_string(),
        parameters,
    })
}

/// `tool_choice`: "none" | "auto" | "required" | `{"type": "function", "function": {"name"}}`.
fn parse_choice(v: Option<&Value>, tools: &[Tool]) -> Result<ToolChoice, ApiError> {
    let bad = |msg: String| ApiError::bad_param("tool_choice", msg);
    let choice = match v {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(ToolChoice::None),
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(format!(
                    "tool_choice must be none, auto, required or a function, got {other:?}"
                )))
            }
        },
        Some(obj) => {
            let name = obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| obj.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    bad("tool_choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}".into())
                })?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(bad(format!(
                    "tool_choice names the function {name:?}, which is not in tools"
                )));
            }
            ToolChoice::Named(name.to_string())
        }
    };
    if tools.is_empty() {
        return Err(bad("tool_choice is only allowed when tools are given".into()));
    }
    Ok(choice)
}

/// An assistant message's `tool_calls[].function.arguments`, a JSON string on the wire, as
/// the object templates index into (as vLLM hands them to transformers' templates).
fn arguments_as_objects(mut m: Value) -> Value {
    let calls = m.get_mut("tool_calls").and_then(Value::as_array_mut);
    for call in calls.into_iter().flatten() {
        let Some(f) = call.get_mut("function").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(Value::String(s)) = f.get("arguments") {
            if let Ok(obj @ Value::Object(_)) = serde_json::from_str::<Value>(s) {
                f.insert("arguments".into(), obj);
            }
        }
    }
    m
}

/// `message.tool_calls` of a response: `[{"id", "type": "function", "function": {"name", "arguments"}}]`.
pub fn tool_calls_json(calls: &[ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect()
}

/// The streamed form of calls known only at the end (the fenced fallback): per call, a delta
/// with index, id, type and name (arguments ""), then one with all of its argument text.
pub fn tool_call_deltas(calls: &[ToolCall]) -> Vec<Value> {
    let mut out = vec![];
    for (i, c) in calls.iter().enumerate() {
        let head = json!({"index": i, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}});
        out.push(json!({"tool_calls": [head]}));
        out.push(json!({"tool_calls": [{"index": i, "function": {"arguments": c.arguments}}]}));
    }
    out
}

/// A JSON object from key/value pairs (short schema literals).
fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests;

/// A chat answer's `message` for `text`, and whether it holds tool calls (then the finish
/// reason is "tool_calls").
pub fn message(spec: Option<&ToolSpec>, text: &str) -> (Value, bool) {
    let Some(spec) = spec else {
        return (json!({"role": "assistant", "content": text}), false);
    };
    let parsed = parse_output(spec, text, new_call_id);
    if parsed.calls.is_empty() {
        return (
            json!({"role": "assistant", "content": parsed.content.unwrap_or_default()}),
            false,
        );
    }
    let calls = tool_calls_json(&parsed.calls);
    (
        json!({"role": "assistant", "content": parsed.content, "tool_calls": calls}),
        true,
    )
}

fn new_call_id() -> String {
    format!("call_{}", &crate::wire::random_hex()[..24])
}
