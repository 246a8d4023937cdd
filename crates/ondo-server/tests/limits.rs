//! Connection and request limits, each while a normal stream is being served: a slow-loris client
//! (request head trickling in) is dropped after `header_read_timeout`, an oversized head gets 431,
//! too many messages and too many sequences get a 400 naming the limit, and the concurrent
//! stream completes untouched.

mod common;

use common::{post, post_stream, start};
use ondo_server::Config;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn config() -> Config {
    Config {
        header_read_timeout: Duration::from_millis(500),
        max_header_bytes: 16 << 10,
        max_messages: 8,
        ..Config::default()
    }
}

fn addr(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Read until the server closes the connection (or `limit` passes); what it sent.
fn read_to_close(conn: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false), // still open at the limit
        }
    }
}

#[test]
fn limits_hold_while_a_normal_stream_is_served() {
    let Some(server) = start(config()) else {
        return;
    };
    let base = server.base.clone();
    // a normal stream, running through everything below
    let body = json!({"prompt": "Once upon a time", "max_tokens": 48, "temperature": 0,
                      "ignore_eos": true, "stream": true});
    let mut stream = post_stream(&base, "/v1/completions", &body.to_string(), None);
    assert_eq!(stream.status, 200);
    assert!(stream.next_data().is_some(), "the stream started");

    // slow loris: a request head that never ends, one header line at a time
    let mut loris = TcpStream::connect(addr(&base)).unwrap();
    let start = Instant::now();
    loris
        .write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    loris.write_all(b"X-Slow: 1\r\n").unwrap();
    let (_, closed) = read_to_close(&mut loris, Duration::from_secs(5));
    let waited = start.elapsed();
    assert!(closed, "a client that never finishes its head is dropped");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "dropped after about header_read_timeout (500 ms), took {waited:?}"
    );

    // a head over max_header_bytes
    let mut big = TcpStream::connect(addr(&base)).unwrap();
    let filler = "a".repeat(32 << 10);
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {filler}\r\n\r\n");
    let _ = big.write_all(head.as_bytes()); // the server may close before reading it all
    let (answer, closed) = read_to_close(&mut big, Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "an oversized head ends its connection");
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "431 for a 32 KiB header: {answer:?}"
    );

    // too many messages, too many sequences: 400s naming the limit
    let messages: Vec<_> = (0..9).map(|_| json!({"role": "user", "content": "hi"})).collect();
    let body = json!({"messages": messages, "max_tokens": 1});
    let (status, err) = post(&base, "/v1/chat/completions", &body.to_string(), None);
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "messages", "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("max_messages"),
        "{err}"
    );
    let body = json!({"prompt": "a", "max_tokens": 1, "n": 1, "best_of": 100000});
    let (status, err) = post(&base, "/v1/completions", &body.to_string(), None);
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "best_of", "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("must be at most"),
        "{err}"
    );

    // the normal stream was not disturbed
    let chunks = stream.collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    let last = chunks
        .iter()
        .rev()
        .find(|c| !c["choices"][0]["finish_reason"].is_null());
    assert_eq!(
        last.map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("length"))
    );
    assert!(!text.is_empty());
    // and the server still answers
    let (status, _) = common::get(&base, "/health", None);
    assert_eq!(status, 200);
}
