//! Response shapes of every route, against SmolLM2-135M-Instruct.

mod common;

use common::{agent, get, post, post_stream, start};
use ondo_server::Config;
use serde_json::{json, Value};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

#[test]
fn routes_answer_in_openai_and_vllm_shapes() {
    let config = Config {
        model_name: "smol".into(),
        cors: true,
        ..Config::default()
    };
    let Some(server) = start(config) else { return };
    let base = &server.base;

    // /v1/models
    let (status, text) = get(base, "/v1/models", None);
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "smol");
    assert_eq!(get(base, "/v1/models/smol", None).0, 200);
    assert_eq!(get(base, "/v1/models/other", None).0, 404);

    // Chat, greedy: exact top-level and choice keys.
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]);
    let body = json!({"model": "smol", "messages": messages, "max_tokens": 12, "temperature": 0, "user": "u1", "unknown_field": 1});
    let (status, chat) = post(base, "/v1/chat/completions", &body.to_string(), None);
    assert_eq!(status, 200, "{chat}");
    assert_eq!(keys(&chat), ["choices", "created", "id", "model", "object", "usage"]);
    assert_eq!(chat["object"], "chat.completion");
    assert_eq!(
        keys(&chat["choices"][0]),
        ["finish_reason", "index", "logprobs", "message"]
    );
    assert_eq!(
        keys(&chat["usage"]),
        ["completion_tokens", "prompt_tokens", "total_tokens"]
    );
    let text = chat["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();

    // The same request streamed gives the same text, role first, finish last, then [DONE].
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = post_stream(base, "/v1/chat/completions", &streamed.to_string(), None).collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, text);
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"][0]["finish_reason"], chat["choices"][0]["finish_reason"]);
    assert!(last.get("usage").is_none(), "usage only with include_usage: {last}");

    // A stop string never reaches the client.
    let (_, plain) = post(
        base,
        "/v1/completions",
        &json!({"prompt": "1, 2, 3, 4,", "max_tokens": 12, "temperature": 0}).to_string(),
        None,
    );
    let full = plain["choices"][0]["text"].as_str().expect("text").to_string();
    let stop = full.trim_start().chars().take(2).collect::<String>();
    let body = json!({"prompt": "1, 2, 3, 4,", "max_tokens": 12, "temperature": 0, "stop": [stop]});
    let (_, stopped) = post(base, "/v1/completions", &body.to_string(), None);
    let cut = stopped["choices"][0]["text"].as_str().expect("text");
    assert!(!cut.contains(&stop), "{cut:?} contains {stop:?}");
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");

    // Completions: n=2 over two prompts -> four choices indexed 0..4, usage summed.
    let body = json!({"prompt": ["Hello", "The sky is"], "n": 2, "max_tokens": 3, "ignore_eos": true, "seed": 1});
    let (status, many) = post(base, "/v1/completions", &body.to_string(), None);
    assert_eq!(status, 200, "{many}");
    let mut idx: Vec<u64> = many["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(|c| c["index"].as_u64())
        .collect();
    idx.sort_unstable();
    assert_eq!(idx, [0, 1, 2, 3]);
    assert_eq!(many["usage"]["completion_tokens"], 12);

    // Token ids as the prompt, and /tokenize -> /detokenize round trip.
    let (_, tok) = post(base, "/tokenize", &json!({"prompt": "Hello world"}).to_string(), None);
    let ids = tok["tokens"].clone();
    assert_eq!(tok["count"].as_u64(), ids.as_array().map(|a| a.len() as u64));
    let (_, detok) = post(base, "/detokenize", &json!({"tokens": ids}).to_string(), None);
    assert_eq!(detok["prompt"], "Hello world");
    let (status, by_ids) = post(
        base,
        "/v1/completions",
        &json!({"prompt": ids, "max_tokens": 2}).to_string(),
        None,
    );
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["usage"]["prompt_tokens"], tok["count"]);

    // CORS preflight is answered when enabled.
    let resp = agent()
        .options(format!("{base}/v1/chat/completions"))
        .header("Origin", "http://example.com")
        .header("Access-Control-Request-Method", "POST")
        .call()
        .expect("preflight");
    assert!(resp.headers().contains_key("access-control-allow-origin"));
}
