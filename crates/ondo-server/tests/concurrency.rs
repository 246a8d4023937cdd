//! Many clients at once: 64 concurrent streams (batched by the engine) all complete with exact
//! usage; clients that disconnect mid-stream are cancelled and their KV blocks are free within
//! a few engine steps.

mod common;

use common::{metric, post, post_stream, start};
use ondo_server::Config;
use serde_json::{json, Value};

const TOKENS: u64 = 6;

/// One streaming chat; returns (text, finish_reason, usage) after checking the chunk shapes.
fn stream_chat(base: &str, i: usize) -> (String, String, Value) {
    let body = json!({
        "model": "smol",
        "messages": [{"role": "user", "content": format!("Count from {i} upwards.")}],
        "max_tokens": TOKENS, "ignore_eos": true, "temperature": 0.7, "seed": i,
        "stream": true, "stream_options": {"include_usage": true},
    });
    let stream = post_stream(base, "/v1/chat/completions", &body.to_string(), None);
    assert_eq!(stream.status, 200);
    let chunks = stream.collect();
    let (first, usage_chunk) = (&chunks[0], &chunks[chunks.len() - 1]);
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant", "{first}");
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    let with_choices = &chunks[..chunks.len() - 1];
    let last = &with_choices[with_choices.len() - 1];
    let text: String = with_choices
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(with_choices
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == first["id"]));
    (
        text,
        last["choices"][0]["finish_reason"].as_str().unwrap_or("").to_string(),
        usage_chunk["usage"].clone(),
    )
}

fn prompt_tokens(base: &str, i: usize) -> u64 {
    let body = json!({"messages": [{"role": "user", "content": format!("Count from {i} upwards.")}]});
    let (status, resp) = post(base, "/tokenize", &body.to_string(), None);
    assert_eq!(status, 200, "{resp}");
    resp["count"].as_u64().expect("count")
}

#[test]
fn sixty_four_concurrent_streams_all_complete_with_exact_usage() {
    let Some(server) = start(Config {
        model_name: "smol".into(),
        ..Config::default()
    }) else {
        return;
    };
    let base = server.base.clone();
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let base = base.clone();
            std::thread::spawn(move || (i, stream_chat(&base, i)))
        })
        .collect();
    for client in clients {
        let (i, (text, finish, usage)) = client.join().expect("client thread");
        assert!(!text.is_empty(), "client {i}");
        assert_eq!(finish, "length", "client {i}");
        assert_eq!(usage["completion_tokens"].as_u64(), Some(TOKENS), "client {i}: {usage}");
        assert_eq!(
            usage["prompt_tokens"].as_u64(),
            Some(prompt_tokens(&base, i)),
            "client {i}: {usage}"
        );
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(prompt_tokens(&base, i) + TOKENS),
            "client {i}"
        );
    }
    assert_eq!(metric(&base, "ondo_requests_finished_total"), 64);
    assert_eq!(metric(&base, "ondo_requests_waiting"), 0);
    assert_eq!(metric(&base, "ondo_kv_blocks_used"), 0, "every block is back");
    assert!(metric(&base, "vllm:num_requests_running") == 0);
}

#[test]
fn sixteen_clients_that_disconnect_give_their_blocks_back() {
    let Some(server) = start(Config {
        model_name: "smol".into(),
        ..Config::default()
    }) else {
        return;
    };
    let base = &server.base;
    let mut streams: Vec<_> = (0..16)
        .map(|i| {
            let body = json!({
                "model": "smol", "prompt": format!("Story number {i}:"), "max_tokens": 4000, "ignore_eos": true,
                "temperature": 0.8, "stream": true,
            });
            post_stream(base, "/v1/completions", &body.to_string(), None)
        })
        .collect();
    for s in &mut streams {
        assert_eq!(s.status, 200);
        for _ in 0..2 {
            assert_ne!(s.next_data().expect("a chunk"), "[DONE]");
        }
    }
    assert!(
        metric(base, "ondo_kv_blocks_used") > 0,
        "16 running streams hold blocks"
    );
    drop(streams); // every client goes away mid-stream
    let steps = metric(base, "ondo_engine_steps_total");
    let start = std::time::Instant::now();
    while metric(base, "ondo_kv_blocks_used") > 0 {
        assert!(
            start.elapsed().as_secs() < 30,
            "blocks still in use 30 s after the clients left"
        );
        std::thread::yield_now();
    }
    let taken = metric(base, "ondo_engine_steps_total") - steps;
    // the server notices a closed connection at its next write (one step), the engine cancels
    // at the step after
    assert!(taken <= 3, "blocks came back {taken} steps after the clients left");
    assert_eq!(metric(base, "ondo_requests_aborted_total"), 16);
    assert!(
        metric(base, "ondo_generation_tokens_total") < 16 * 100,
        "the abandoned requests kept generating"
    );
}

#[test]
fn a_client_that_disconnects_frees_its_place() {
    let Some(server) = start(Config {
        model_name: "smol".into(),
        ..Config::default()
    }) else {
        return;
    };
    let base = &server.base;
    let long = json!({
        "model": "smol", "prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true,
        "temperature": 0.8, "stream": true,
    });
    let mut stream = post_stream(base, "/v1/completions", &long.to_string(), None);
    assert_eq!(stream.status, 200);
    for _ in 0..3 {
        let data = stream.next_data().expect("a first chunk");
        assert_ne!(data, "[DONE]");
    }
    drop(stream); // the client goes away mid-stream

    // One engine thread: this request runs only once the abandoned one has stopped.
    let short = json!({"model": "smol", "prompt": "Hello", "max_tokens": 3, "ignore_eos": true});
    let (status, resp) = post(base, "/v1/completions", &short.to_string(), None);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["usage"]["completion_tokens"], 3);
    assert_eq!(metric(base, "ondo_requests_aborted_total"), 1);
    assert_eq!(metric(base, "ondo_requests_finished_total"), 1);
    let generated = metric(base, "ondo_generation_tokens_total");
    assert!(
        generated < 1000,
        "the abandoned request kept generating: {generated} tokens"
    );
}
