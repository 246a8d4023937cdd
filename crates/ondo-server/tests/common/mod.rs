//! Shared by the server tests: an in-process server on 127.0.0.1:0 over SmolLM2-135M-Instruct,
//! and a small blocking HTTP client (ureq) that never treats a 4xx as a transport error.

#![allow(dead_code)]

use ondo_engine::{Llm, LoadOptions};
use ondo_server::{AppState, Config, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::Duration;

pub const MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

/// A running server; it lives until the test process ends.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
}

/// Start a server with `config` (port forced to 0); `llm` None = still loading.
pub fn start_with(config: Config, llm: Option<Llm>) -> TestServer {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let server = Server::bind(Config {
                host: "127.0.0.1".into(),
                port: 0,
                ..config
            })
            .await
            .expect("bind");
            if let Some(llm) = llm {
                server.state().install(llm);
            }
            tx.send((server.local_addr(), server.state())).expect("report address");
            server.run(std::future::pending()).await.expect("serve");
        });
    });
    let (addr, state) = rx.recv().expect("server started");
    TestServer {
        base: format!("http://{addr}"),
        state,
    }
}

/// The model, or None (skip) when the test asset is absent.
pub fn load_model() -> Option<Llm> {
    let path = ondo_testdata::fetched(MODEL)?;
    let opts = LoadOptions {
        offline: true,
        ..Default::default()
    };
    Some(Llm::load(path.to_str().expect("utf-8 path"), &opts).expect("load SmolLM2"))
}

/// A server over SmolLM2, or None (skip) when the model is absent.
pub fn start(config: Config) -> Option<TestServer> {
    let llm = load_model()?;
    Some(start_with(config, Some(llm)))
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

/// POST `body` (sent as is, so malformed JSON can be tested); returns status and parsed body
/// (Value::Null when the body is not JSON).
pub fn post(base: &str, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = agent()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let mut resp = req.send(body).expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn get(base: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut req = agent().get(format!("{base}{path}"));
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let mut resp = req.call().expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// One counter of /metrics.
pub fn metric(base: &str, name: &str) -> u64 {
    let (_, text) = get(base, "/metrics", None);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {name} missing in {text}"))
}

/// An open SSE stream: `next_event` yields each `data:` payload until `[DONE]` (None after).
pub struct Stream {
    reader: BufReader<ureq::BodyReader<'static>>,
    pub status: u16,
}

pub fn post_stream(base: &str, path: &str, body: &str, key: Option<&str>) -> Stream {
    let mut req = agent()
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(k) = key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let resp = req.send(body).expect("request sent");
    let status = resp.status().as_u16();
    Stream {
        reader: BufReader::new(resp.into_body().into_reader()),
        status,
    }
}

impl Stream {
    /// The next `data:` payload; `Some("[DONE]")` at the end, None when the stream closed.
    pub fn next_data(&mut self) -> Option<String> {
        let mut line = String::new();
        for _ in 0..1_000_000 {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return Some(data.to_string());
            }
        }
        None
    }

    /// Every JSON chunk up to `[DONE]`, which must come.
    pub fn collect(mut self) -> Vec<Value> {
        let mut chunks = vec![];
        for _ in 0..100_000 {
            match self.next_data() {
                Some(d) if d == "[DONE]" => return chunks,
                Some(d) => chunks.push(serde_json::from_str(&d).expect("chunk is JSON")),
                None => panic!("stream ended without [DONE] after {chunks:?}"),
            }
        }
        panic!("stream too long")
    }
}
