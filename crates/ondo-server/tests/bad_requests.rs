//! Bad requests get a 4xx in OpenAI's error shape, naming the parameter, and the server keeps
//! serving: a good request after all of them succeeds.

mod common;

use common::{get, post, start, start_with};
use ondo_server::Config;
use serde_json::{json, Value};

const KEY: &str = "sk-test-key";
const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";

fn config() -> Config {
    Config {
        api_key: Some(KEY.into()),
        model_name: "smol".into(),
        max_model_len: Some(64),
        max_body_bytes: 64 << 10,
        ..Config::default()
    }
}

/// A chat body: `fields` merged into a valid one-message request.
fn chat(fields: Value) -> String {
    let mut body = json!({"model": "smol", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    merge(&mut body, fields);
    body.to_string()
}

fn completion(fields: Value) -> String {
    let mut body = json!({"model": "smol", "prompt": "Hello", "max_tokens": 4});
    merge(&mut body, fields);
    body.to_string()
}

fn merge(body: &mut Value, fields: Value) {
    if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
        for (k, v) in f {
            b.insert(k, v);
        }
    }
}

fn assert_error_shape(case: &str, body: &Value) {
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: no message in {body}"
    );
    assert!(e["type"].is_string(), "{case}: no type in {body}");
    let obj = e
        .as_object()
        .unwrap_or_else(|| panic!("{case}: error is not an object: {body}"));
    assert!(obj.contains_key("param") && obj.contains_key("code"), "{case}: {body}");
}

/// (name, path, body, api key, expected status, expected param)
type Case<'a> = (&'a str, &'a str, String, Option<&'a str>, u16, Option<&'a str>);

#[test]
fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let Some(server) = start(config()) else {
        return;
    };
    let base = &server.base;
    let long = "word ".repeat(200);
    let cases: Vec<Case> = vec![
        ("malformed json", CHAT, "{\"messages\": [".into(), Some(KEY), 400, None),
        ("empty body", CHAT, "".into(), Some(KEY), 400, None),
        ("body is a list", CHAT, "[]".into(), Some(KEY), 400, None),
        ("body is a string", CHAT, "\"hi\"".into(), Some(KEY), 400, None),
        (
            "missing messages",
            CHAT,
            json!({"model": "smol"}).to_string(),
            Some(KEY),
            400,
            None,
        ),
        (
            "messages not a list",
            CHAT,
            chat(json!({"messages": "hello"})),
            Some(KEY),
            400,
            Some("messages"),
        ),
        (
            "empty messages",
            CHAT,
            chat(json!({"messages": []})),
            Some(KEY),
            400,
            Some("messages"),
        ),
        (
            "unknown role",
            CHAT,
            chat(json!({"messages": [{"role": "wizard", "content": "x"}]})),
            Some(KEY),
            400,
            Some("messages.[0].role"),
        ),
        (
            "missing role",
            CHAT,
            chat(json!({"messages": [{"content": "x"}]})),
            Some(KEY),
            400,
            Some("messages.[0].role"),
        ),
        (
            "content a number",
            CHAT,
            chat(json!({"messages": [{"role": "user", "content": 5}]})),
            Some(KEY),
            400,
            Some("messages.[0].content"),
        ),
        (
            "missing user content",
            CHAT,
            chat(json!({"messages": [{"role": "user"}]})),
            Some(KEY),
            400,
            Some("messages.[0].content"),
        ),
        (
            "image part",
            CHAT,
            chat(
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            ),
            Some(KEY),
            400,
            Some("messages.[0].content"),
        ),
        ("n = 0", CHAT, chat(json!({"n": 0})), Some(KEY), 400, Some("n")),
        ("n a string", CHAT, chat(json!({"n": "two"})), Some(KEY), 400, Some("n")),
        ("n too many", CHAT, chat(json!({"n": 1000})), Some(KEY), 400, Some("n")),
        (
            "temperature -1",
            CHAT,
            chat(json!({"temperature": -1})),
            Some(KEY),
            400,
            Some("temperature"),
        ),
        (
            "temperature a string",
            CHAT,
            chat(json!({"temperature": "hot"})),
            Some(KEY),
            400,
            Some("temperature"),
        ),
        (
            "top_p 2",
            CHAT,
            chat(json!({"top_p": 2})),
            Some(KEY),
            400,
            Some("top_p"),
        ),
        (
            "top_p 0",
            CHAT,
            chat(json!({"top_p": 0})),
            Some(KEY),
            400,
            Some("top_p"),
        ),
        (
            "max_tokens 0",
            CHAT,
            chat(json!({"max_tokens": 0})),
            Some(KEY),
            400,
            Some("max_tokens"),
        ),
        (
            "max_tokens -5",
            CHAT,
            chat(json!({"max_tokens": -5})),
            Some(KEY),
            400,
            Some("max_tokens"),
        ),
        (
            "max_tokens a float",
            CHAT,
            chat(json!({"max_tokens": 1.5})),
            Some(KEY),
            400,
            Some("max_tokens"),
        ),
        (
            "max_tokens beyond the context",
            CHAT,
            chat(json!({"max_tokens": 1000})),
            Some(KEY),
            400,
            Some("max_tokens"),
        ),
        (
            "max_completion_tokens 0",
            CHAT,
            chat(json!({"max_completion_tokens": 0})),
            Some(KEY),
            400,
            Some("max_completion_tokens"),
        ),
        (
            "presence_penalty 3",
            CHAT,
            chat(json!({"presence_penalty": 3})),
            Some(KEY),
            400,
            Some("presence_penalty"),
        ),
        (
            "frequency_penalty -2.5",
            CHAT,
            chat(json!({"frequency_penalty": -2.5})),
            Some(KEY),
            400,
            Some("frequency_penalty"),
        ),
        (
            "logit_bias key not an id",
            CHAT,
            chat(json!({"logit_bias": {"abc": 1}})),
            Some(KEY),
            400,
            Some("logit_bias"),
        ),
        (
            "logit_bias out of vocab",
            CHAT,
            chat(json!({"logit_bias": {"99999999": 1}})),
            Some(KEY),
            400,
            Some("logit_bias"),
        ),
        (
            "logit_bias value 500",
            CHAT,
            chat(json!({"logit_bias": {"5": 500}})),
            Some(KEY),
            400,
            Some("logit_bias"),
        ),
        (
            "stop a number",
            CHAT,
            chat(json!({"stop": 5})),
            Some(KEY),
            400,
            Some("stop"),
        ),
        (
            "stop empty string",
            CHAT,
            chat(json!({"stop": [""]})),
            Some(KEY),
            400,
            Some("stop"),
        ),
        (
            "top_k -5",
            CHAT,
            chat(json!({"top_k": -5})),
            Some(KEY),
            400,
            Some("top_k"),
        ),
        (
            "min_p 2",
            CHAT,
            chat(json!({"min_p": 2})),
            Some(KEY),
            400,
            Some("min_p"),
        ),
        (
            "repetition_penalty 0",
            CHAT,
            chat(json!({"repetition_penalty": 0})),
            Some(KEY),
            400,
            Some("repetition_penalty"),
        ),
        (
            "best_of below n",
            CHAT,
            chat(json!({"n": 2, "best_of": 1})),
            Some(KEY),
            400,
            Some("best_of"),
        ),
        (
            "greedy with n 2",
            CHAT,
            chat(json!({"n": 2, "temperature": 0})),
            Some(KEY),
            400,
            Some("n"),
        ),
        (
            "min_tokens over max_tokens",
            CHAT,
            chat(json!({"min_tokens": 10, "max_tokens": 5})),
            Some(KEY),
            400,
            Some("min_tokens"),
        ),
        (
            "top_logprobs 50",
            CHAT,
            chat(json!({"logprobs": true, "top_logprobs": 50})),
            Some(KEY),
            400,
            Some("top_logprobs"),
        ),
        (
            "top_logprobs without logprobs",
            CHAT,
            chat(json!({"top_logprobs": 2})),
            Some(KEY),
            400,
            Some("top_logprobs"),
        ),
        (
            "stop_token_ids negative",
            CHAT,
            chat(json!({"stop_token_ids": [-1]})),
            Some(KEY),
            400,
            Some("stop_token_ids[0]"),
        ),
        (
            "stop_token_ids out of vocab",
            CHAT,
            chat(json!({"stop_token_ids": [99999999]})),
            Some(KEY),
            400,
            Some("stop_token_ids"),
        ),
        (
            "seed a string",
            CHAT,
            chat(json!({"seed": "x"})),
            Some(KEY),
            400,
            Some("seed"),
        ),
        (
            "stream a string",
            CHAT,
            chat(json!({"stream": "yes"})),
            Some(KEY),
            400,
            Some("stream"),
        ),
        (
            "include_usage a string",
            CHAT,
            chat(json!({"stream": true, "stream_options": {"include_usage": "yes"}})),
            Some(KEY),
            400,
            Some("stream_options.include_usage"),
        ),
        (
            "stream with best_of > n",
            CHAT,
            chat(json!({"stream": true, "n": 2, "best_of": 3})),
            Some(KEY),
            400,
            Some("best_of"),
        ),
        (
            "prompt longer than the context",
            CHAT,
            chat(json!({"messages": [{"role": "user", "content": long}]})),
            Some(KEY),
            400,
            Some("messages"),
        ),
        (
            "unknown model",
            CHAT,
            chat(json!({"model": "gpt-4"})),
            Some(KEY),
            404,
            Some("model"),
        ),
        ("no api key", CHAT, chat(json!({})), None, 401, None),
        ("wrong api key", CHAT, chat(json!({})), Some("sk-wrong"), 401, None),
        (
            "body too large",
            CHAT,
            chat(json!({"user": "x".repeat(100 << 10)})),
            Some(KEY),
            413,
            None,
        ),
        (
            "completion without prompt",
            COMPLETIONS,
            json!({"model": "smol"}).to_string(),
            Some(KEY),
            400,
            None,
        ),
        (
            "completion prompt empty list",
            COMPLETIONS,
            completion(json!({"prompt": []})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion prompt bad ids",
            COMPLETIONS,
            completion(json!({"prompt": [[1, -2]]})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion prompt an object",
            COMPLETIONS,
            completion(json!({"prompt": {"text": "x"}})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion ids out of vocab",
            COMPLETIONS,
            completion(json!({"prompt": [99999999]})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion empty prompt",
            COMPLETIONS,
            completion(json!({"prompt": ""})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion prompt too long",
            COMPLETIONS,
            completion(json!({"prompt": long})),
            Some(KEY),
            400,
            Some("prompt"),
        ),
        (
            "completion logprobs 50",
            COMPLETIONS,
            completion(json!({"logprobs": 50})),
            Some(KEY),
            400,
            Some("logprobs"),
        ),
        (
            "completion echo with logprobs",
            COMPLETIONS,
            completion(json!({"echo": true, "logprobs": 1, "stream": true})),
            Some(KEY),
            400,
            Some("echo"),
        ),
        (
            "tokenize nothing",
            "/tokenize",
            json!({}).to_string(),
            Some(KEY),
            400,
            None,
        ),
        (
            "detokenize out of vocab",
            "/detokenize",
            json!({"tokens": [99999999]}).to_string(),
            Some(KEY),
            400,
            Some("tokens"),
        ),
        ("unknown route", "/v1/nope", "{}".into(), Some(KEY), 404, None),
    ];
    assert!(cases.len() >= 30);
    for (name, path, body, key, status, param) in &cases {
        let (got, resp) = post(base, path, body, *key);
        assert_eq!(got, *status, "{name}: {resp}");
        assert_error_shape(name, &resp);
        if let Some(p) = param {
            assert_eq!(resp["error"]["param"].as_str(), Some(*p), "{name}: {resp}");
        }
    }
    let (status, body) = get(base, CHAT, Some(KEY));
    assert_eq!(status, 405, "{body}");

    // Still serving.
    assert_eq!(get(base, "/health", None).0, 200);
    let (status, resp) = post(base, CHAT, &chat(json!({"temperature": 0})), Some(KEY));
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["choices"][0]["message"]["role"], "assistant");
    assert!(
        resp["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| (1..=4).contains(&n)),
        "{resp}"
    );
    let (status, resp) = post(base, COMPLETIONS, &completion(json!({})), Some(KEY));
    assert_eq!(status, 200, "{resp}");
}

#[test]
fn loading_server_answers_503() {
    let server = start_with(
        Config {
            model_name: "smol".into(),
            ..Config::default()
        },
        None,
    );
    let (status, _) = get(&server.base, "/health", None);
    assert_eq!(status, 503);
    let (status, body) = post(&server.base, CHAT, &chat(json!({})), None);
    assert_eq!(status, 503, "{body}");
    assert_error_shape("loading", &body);
    assert_eq!(body["error"]["code"], "model_loading");
    let (status, _) = get(&server.base, "/v1/models", None);
    assert_eq!(status, 503);
    assert!(!server.state.is_loaded());
}
