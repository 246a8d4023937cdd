//! The tool-call formats, chosen from the chat template's source, and the constraint that
//! forces a call in each: Hermes / Qwen2.5 `<tool_call>\n{"name", "arguments"}\n</tool_call>`,
//! Llama 3.x `{"name", "parameters"}`, Mistral `[TOOL_CALLS][{"name", "arguments"}]`, and a
//! generic JSON object (llama.cpp's "generic" idea) for templates that know no tools.

use super::{object, Tool, ToolChoice, ToolSpec};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Hermes,
    Llama3Json,
    Mistral,
    Generic,
}

impl Format {
    /// The format a template's source speaks.
    pub fn of_template(source: &str) -> Format {
        if source.contains("<tool_call>") {
            Format::Hermes
        } else if source.contains("[TOOL_CALLS]") {
            Format::Mistral
        } else if source.contains("<|python_tag|>") || source.contains("ipython") {
            Format::Llama3Json
        } else {
            Format::Generic
        }
    }

    /// The key the format's calls hold their arguments in.
    pub fn arguments_key(self) -> &'static str {
        match self {
            Format::Llama3Json => "parameters",
            _ => "arguments",
        }
    }
}

/// JSON layout of every constrained call: what the models' own examples look like.
fn layout() -> Value {
    json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
}

/// `{"name": <const>, <args_key>: <parameters>}` for one tool.
fn call_schema(tool: &Tool, args_key: &'static str) -> Value {
    object([
        ("type", json!("object")),
        (
            "properties",
            object([
                ("name", json!({"const": tool.name})),
                (args_key, tool.parameters.clone()),
            ]),
        ),
        ("required", json!(["name", args_key])),
        ("additionalProperties", json!(false)),
    ])
}

/// Any one of the callable tools' calls.
fn any_call(spec: &ToolSpec, args_key: &'static str) -> Value {
    let calls: Vec<Value> = spec.callable().into_iter().map(|t| call_schema(t, args_key)).collect();
    match calls.len() {
        1 => calls.into_iter().next().expect("one"),
        _ => json!({"anyOf": calls}),
    }
}

fn calls_array(spec: &ToolSpec, args_key: &'static str) -> Value {
    let mut array = json!({"type": "array", "items": any_call(spec, args_key), "minItems": 1});
    if !spec.parallel {
        array["maxItems"] = json!(1);
    }
    array
}

/// The generic form's answer: `{"tool_calls": [...]}`, or with `auto` also `{"response": "..."}`.
pub fn generic_schema(spec: &ToolSpec) -> Value {
    let calls = json!({"type": "object", "properties": {"tool_calls": calls_array(spec, "arguments")},
        "required": ["tool_calls"], "additionalProperties": false});
    let mut schema = match spec.choice {
        ToolChoice::Auto => json!({"anyOf": [calls, {"type": "object", "properties": {"response": {"type": "string"}},
            "required": ["response"], "additionalProperties": false}]}),
        _ => calls,
    };
    schema["x-guidance"] = layout();
    schema
}

/// The system message of the generic form: the tools and the answer's shape.
pub fn add_generic_instructions(messages: &mut Vec<Value>, tools: &[Value], choice: &ToolChoice) {
    let list = serde_json::to_string_pretty(tools).unwrap_or_default();
    let answer = match choice {
        ToolChoice::Auto => {
            "Answer with one JSON object: {\"tool_calls\": [{\"name\": ..., \"arguments\": {...}}]} to call \
             tools, or {\"response\": \"...\"} to answer the user directly."
        }
        _ => "Answer with one JSON object: {\"tool_calls\": [{\"name\": ..., \"arguments\": {...}}]}.",
    };
    let text = format!("You can call these tools:\n{list}\n\n{answer}");
    match messages.first_mut() {
        Some(first) if first.get("role").and_then(Value::as_str) == Some("system") => {
            let content = first.get("content").and_then(Value::as_str).unwrap_or("");
            first["content"] = json!(format!("{content}\n\n{text}"));
        }
        _ => messages.insert(0, json!({"role": "system", "content": text})),
    }
}

/// A Lark grammar forcing the native format's call(s); `tool_token` is the id of Mistral's
/// [TOOL_CALLS] token.
pub fn native_grammar(spec: &ToolSpec, tool_token: Option<u32>) -> Option<String> {
    let json_rule = |schema: Value| {
        let mut schema = schema;
        schema["x-guidance"] = layout();
        format!("call: %json {schema}\n")
    };
    match spec.format {
        Format::Hermes => {
            let repeat = if spec.parallel { " (\"\\n\" tc)*" } else { "" };
            let rules = "tc: \"<tool_call>\\n\" call \"\\n</tool_call>\"\n";
            Some(format!(
                "start: tc{repeat}\n{rules}{}",
                json_rule(any_call(spec, "arguments"))
            ))
        }
        Format::Llama3Json => Some(format!("start: call\n{}", json_rule(any_call(spec, "parameters")))),
        Format::Mistral => {
            let marker = tool_token.map_or_else(|| "\"[TOOL_CALLS]\"".to_string(), |id| format!("<[{id}]>"));
            Some(format!(
                "start: {marker} call\n{}",
                json_rule(calls_array(spec, "arguments"))
            ))
        }
        Format::Generic => None,
    }
}
