//! A model whose chat template never ends, recurses forever or renders gigabytes: each chat
//! request gets a 400 naming the limit within seconds, and the server goes on answering (a
//! plain completion right after, on the same model). The model is the tiny Qwen2 fixture with
//! its chat template replaced (no shared assets needed).

mod common;

use common::{post, start_with};
use ondo_engine::{Llm, LoadOptions};
use ondo_server::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOSTILE: [(&str, &str); 3] = [
    (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "instructions",
    ),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
    ("{% for i in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}", "output"),
];

/// The tiny Qwen2 fixture copied into a fresh folder with `template` as its chat template.
fn model_with(template: &str, k: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models/qwen2");
    let dir = std::env::temp_dir().join(format!("ondo-sandbox-{}-{k}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer_config.json")).unwrap()).unwrap();
    cfg["chat_template"] = json!(template);
    std::fs::write(dir.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    dir
}

#[test]
fn a_hostile_template_is_stopped_and_the_server_keeps_serving() {
    for (k, (template, limit)) in HOSTILE.iter().enumerate() {
        let dir = model_with(template, k);
        let opts = LoadOptions {
            offline: true,
            ..Default::default()
        };
        let llm = Llm::load(dir.to_str().unwrap(), &opts).expect("the fixture loads");
        let server = start_with(Config::default(), Some(llm));
        let chat = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2});
        let start = Instant::now();
        let (status, body) = post(&server.base, "/v1/chat/completions", &chat.to_string(), None);
        let took = start.elapsed();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{template}: {body}");
        assert!(
            message.contains("chat template stopped") && message.contains(limit),
            "{template}: {message}"
        );
        assert!(took < Duration::from_secs(10), "{template}: answered after {took:?}");
        // the next request on the same server and model is answered normally
        let plain = json!({"prompt": "hello", "max_tokens": 3, "temperature": 0});
        let (status, body) = post(&server.base, "/v1/completions", &plain.to_string(), None);
        assert_eq!(status, 200, "after {template}: {body}");
        assert!(body["choices"][0]["text"].is_string(), "{body}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
