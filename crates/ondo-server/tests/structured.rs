//! Structured outputs and tools over HTTP on SmolLM2 (whose template knows no tools: the
//! generic constrained form): bad schemas, regexes, tools and tool choices get OpenAI-shaped
//! 400s naming the field, and the server keeps serving; response_format json_schema and
//! structured_outputs (both endpoints) give outputs that match; a required tool call parses,
//! streamed (name first, then the arguments in pieces, equal to the non-streamed call's) and
//! not; `echo` on completions.

mod common;

use common::{post, post_stream, start};
use ondo_server::Config;
use serde_json::{json, Value};

const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";

fn config() -> Config {
    Config {
        model_name: "smol".into(),
        ..Config::default()
    }
}

fn chat(fields: Value) -> String {
    let mut body = json!({"model": "smol", "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "max_tokens": 60, "temperature": 0});
    for (k, v) in fields.as_object().expect("object").clone() {
        body[k] = v;
    }
    body.to_string()
}

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"], "additionalProperties": false}}}])
}

#[test]
fn bad_constraints_and_tools_are_400s_and_the_server_keeps_serving() {
    let Some(server) = start(config()) else { return };
    let cases = [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x",
                "schema": {"type": "array", "uniqueItems": true}}}}),
            "structured_outputs.json",
            "uniqueItems",
        ),
        (
            json!({"structured_outputs": {"regex": "(open"}}),
            "structured_outputs.regex",
            "regex",
        ),
        (
            json!({"structured_outputs": {"grammar": "start: nope"}}),
            "structured_outputs.grammar",
            "nope",
        ),
        (
            json!({"response_format": {"type": "xml"}}),
            "response_format.type",
            "xml",
        ),
        (json!({"tools": {"name": "x"}}), "tools", "list"),
        (
            json!({"tools": [{"type": "function", "function": {}}]}),
            "tools.[0].function.name",
            "name",
        ),
        (
            json!({"tools": weather(), "tool_choice": {"type": "function", "function": {"name": "launch"}}}),
            "tool_choice",
            "launch",
        ),
        (
            json!({"tools": weather(), "tool_choice": "sometimes"}),
            "tool_choice",
            "sometimes",
        ),
    ];
    for (fields, param, named) in cases {
        let (status, body) = post(&server.base, CHAT, &chat(fields.clone()), None);
        assert_eq!(status, 400, "{fields}: {body}");
        let e = &body["error"];
        assert_eq!(e["param"], param, "{fields}: {body}");
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"].as_str().expect("message").contains(named),
            "{fields}: {body}"
        );
    }
    let (status, body) = post(&server.base, CHAT, &chat(json!({"max_tokens": 4})), None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn constrained_answers_match_on_both_endpoints() {
    let Some(server) = start(config()) else { return };
    let schema = json!({"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon"]},
        "celsius": {"type": "integer", "minimum": -5, "maximum": 35}}, "required": ["city", "celsius"],
        "additionalProperties": false});
    let rf = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}}});
    let (status, body) = post(&server.base, CHAT, &chat(rf), None);
    assert_eq!(status, 200, "{body}");
    let text = body["choices"][0]["message"]["content"].as_str().expect("content");
    let v: Value = serde_json::from_str(text).expect("JSON answer");
    assert!(["Paris", "Lyon"].contains(&v["city"].as_str().expect("city")), "{v}");
    assert!((-5..=35).contains(&v["celsius"].as_i64().expect("celsius")), "{v}");
    let (status, body) = post(
        &server.base,
        CHAT,
        &chat(json!({"response_format": {"type": "json_object"}})),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let text = body["choices"][0]["message"]["content"].as_str().expect("content");
    assert!(serde_json::from_str::<Value>(text).expect("JSON").is_object(), "{text}");
    let completion = json!({"model": "smol", "prompt": "The sky is", "max_tokens": 8, "temperature": 0.8,
        "structured_outputs": {"choice": ["blue", "grey"]}, "n": 3});
    let (status, body) = post(&server.base, COMPLETIONS, &completion.to_string(), None);
    assert_eq!(status, 200, "{body}");
    for c in body["choices"].as_array().expect("choices") {
        assert!(["blue", "grey"].contains(&c["text"].as_str().expect("text")), "{c}");
    }
}

/// The arguments of a `get_weather` call: a JSON object with a string city and nothing else.
fn check_arguments(args: &str) {
    let v: Value = serde_json::from_str(args).expect("arguments are JSON");
    assert!(v["city"].is_string(), "{v}");
    assert_eq!(v.as_object().expect("object").len(), 1, "{v}");
}

#[test]
fn required_tool_calls_parse_streamed_and_not() {
    let Some(server) = start(config()) else { return };
    let body = chat(json!({"tools": weather(), "tool_choice": "required"}));
    let (status, resp) = post(&server.base, CHAT, &body, None);
    assert_eq!(status, 200, "{resp}");
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{resp}");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(
        (&call["type"], &call["function"]["name"]),
        (&json!("function"), &json!("get_weather"))
    );
    assert!(call["id"].as_str().is_some_and(|id| id.starts_with("call_")), "{call}");
    check_arguments(call["function"]["arguments"].as_str().expect("arguments"));

    let stream_body = chat(json!({"tools": weather(), "tool_choice": "required", "stream": true}));
    let events = post_stream(&server.base, CHAT, &stream_body, None).collect();
    let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
    let calls: Vec<&Value> = deltas
        .iter()
        .filter_map(|d| d.get("tool_calls"))
        .map(|c| &c[0])
        .collect();
    assert!(!calls.is_empty(), "no tool_calls deltas in {events:?}");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(
        calls[0]["id"].is_string() && calls[0]["type"] == "function",
        "{}",
        calls[0]
    );
    let pieces: Vec<&str> = calls[1..]
        .iter()
        .map(|c| c["function"]["arguments"].as_str().expect("arguments text"))
        .collect();
    assert!(pieces.len() > 1, "the arguments came in {} piece(s)", pieces.len());
    let args = pieces.concat();
    check_arguments(&args);
    // Greedy: the streamed arguments are the non-streamed call's.
    let streamed: Value = serde_json::from_str(&args).expect("JSON");
    let whole: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("text")).expect("JSON");
    assert_eq!(streamed, whole);
    let finish = events.iter().find_map(|e| e["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
}

#[test]
fn echo_puts_the_prompt_before_the_completion() {
    let Some(server) = start(config()) else { return };
    let body = json!({"model": "smol", "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0});
    let (_, plain) = post(&server.base, COMPLETIONS, &body.to_string(), None);
    let plain = plain["choices"][0]["text"].as_str().expect("text").to_string();
    let mut echoed = body.clone();
    echoed["echo"] = json!(true);
    let (status, resp) = post(&server.base, COMPLETIONS, &echoed.to_string(), None);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["choices"][0]["text"], format!("The capital of France is{plain}"));
    echoed["stream"] = json!(true);
    let events = post_stream(&server.base, COMPLETIONS, &echoed.to_string(), None).collect();
    let streamed: String = events.iter().filter_map(|e| e["choices"][0]["text"].as_str()).collect();
    assert_eq!(streamed, format!("The capital of France is{plain}"));
}
