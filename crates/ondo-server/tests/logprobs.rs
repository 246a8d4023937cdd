//! Logprobs over HTTP on SmolLM2: streamed chunks carry their tokens' logprobs, which joined
//! equal the non-streamed answer's for the same greedy or seeded request (chat's
//! `logprobs.content`, completions' four lists, also with a stop string whose held-back tokens
//! come with the last chunk and with n = 2); `echo` with logprobs puts the prompt's tokens
//! (the first with a null logprob) before the completion's.

mod common;

use common::{post, post_stream, start, TestServer};
use ondo_server::Config;
use serde_json::{json, Value};
use std::sync::OnceLock;

const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";

fn server() -> Option<&'static TestServer> {
    common::load_model()?; // a skipping test says why
    static SERVER: OnceLock<Option<TestServer>> = OnceLock::new();
    SERVER.get_or_init(|| start(Config::default())).as_ref()
}

/// The streamed answer's logprobs of choice `index`, joined, and how many chunks carried some.
fn streamed(server: &TestServer, path: &str, body: &Value, index: u64) -> (Value, usize) {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let events = post_stream(&server.base, path, &body.to_string(), None).collect();
    let parts: Vec<&Value> = events
        .iter()
        .flat_map(|e| e["choices"].as_array().into_iter().flatten())
        .filter(|c| c["index"] == index && !c["logprobs"].is_null())
        .map(|c| &c["logprobs"])
        .collect();
    let joined = match path {
        CHAT => {
            json!({"content": parts.iter().flat_map(|p| p["content"].as_array().expect("content").clone()).collect::<Vec<_>>()})
        }
        _ => {
            let mut all = json!({"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []});
            for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
                let list: Vec<Value> = parts
                    .iter()
                    .flat_map(|p| p[key].as_array().expect(key).clone())
                    .collect();
                all[key] = json!(list);
            }
            all
        }
    };
    (joined, parts.len())
}

fn answer(server: &TestServer, path: &str, body: &Value) -> Value {
    let (status, resp) = post(&server.base, path, &body.to_string(), None);
    assert_eq!(status, 200, "{resp}");
    resp
}

#[test]
fn streamed_chat_logprobs_equal_the_answers() {
    let Some(server) = server() else { return };
    let body = json!({"messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": 16,
        "temperature": 0, "logprobs": true, "top_logprobs": 3});
    let resp = answer(server, CHAT, &body);
    let plain = &resp["choices"][0]["logprobs"];
    assert_eq!(
        plain["content"].as_array().map(Vec::len),
        resp["usage"]["completion_tokens"].as_u64().map(|n| n as usize)
    );
    let (joined, chunks) = streamed(server, CHAT, &body, 0);
    assert!(chunks > 1, "logprobs came in {chunks} chunk(s)");
    assert_eq!(&joined, plain);
}

#[test]
fn streamed_completion_logprobs_equal_the_answers_with_a_stop_string_and_two_choices() {
    let Some(server) = server() else { return };
    let body = json!({"prompt": "1, 2, 3, 4,", "max_tokens": 12, "temperature": 0.8, "seed": 11, "n": 2,
        "logprobs": 2, "stop": [" 8"]});
    let resp = answer(server, COMPLETIONS, &body);
    let stopped = resp["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter(|c| c["finish_reason"] == "stop");
    assert!(stopped.count() > 0, "no choice met the stop string: {resp}");
    for index in [0, 1] {
        let choice = resp["choices"]
            .as_array()
            .expect("choices")
            .iter()
            .find(|c| c["index"] == index);
        let plain = &choice.expect("both choices")["logprobs"];
        let (joined, chunks) = streamed(server, COMPLETIONS, &body, index);
        assert!(chunks > 1, "logprobs came in {chunks} chunk(s)");
        assert_eq!(&joined, plain, "choice {index}");
    }
}

#[test]
fn echo_with_logprobs_starts_with_the_prompt_tokens() {
    let Some(server) = server() else { return };
    let body = json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0, "logprobs": 1});
    let plain = answer(server, COMPLETIONS, &body);
    let mut echo = body.clone();
    echo["echo"] = json!(true);
    let resp = answer(server, COMPLETIONS, &echo);
    let (lp, text) = (&resp["choices"][0]["logprobs"], &resp["choices"][0]["text"]);
    let prompt_tokens = resp["usage"]["prompt_tokens"].as_u64().expect("usage") as usize;
    let tokens = lp["tokens"].as_array().expect("tokens");
    let completion = &plain["choices"][0]["logprobs"];
    let completion_len = completion["tokens"].as_array().expect("tokens").len();
    assert_eq!(tokens.len(), prompt_tokens + completion_len, "{lp}");
    assert!(
        lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null(),
        "{lp}"
    );
    for key in ["token_logprobs", "top_logprobs"] {
        let list = lp[key].as_array().expect(key);
        assert!(list[1..prompt_tokens].iter().all(|v| !v.is_null()), "{key}: {lp}");
        assert_eq!(
            list[prompt_tokens..],
            completion[key].as_array().expect(key)[..],
            "{key}"
        );
    }
    assert!(lp["token_logprobs"].as_array().expect("list")[1..]
        .iter()
        .all(|v| v.as_f64().is_some_and(|x| x <= 0.0)));
    let joined: String = tokens.iter().filter_map(Value::as_str).collect();
    assert_eq!(joined, text.as_str().expect("text"));
    let offsets = lp["text_offset"].as_array().expect("offsets");
    assert!(
        offsets.windows(2).all(|w| w[0].as_u64() <= w[1].as_u64()),
        "{offsets:?}"
    );
    // Streaming cannot send the prompt's logprobs before the answer: a named 400.
    echo["stream"] = json!(true);
    let (status, e) = post(&server.base, COMPLETIONS, &echo.to_string(), None);
    assert_eq!((status, &e["error"]["param"]), (400, &json!("echo")), "{e}");
}
