//! `OpenAiEndpoint` against a tiny HTTP server in the test (std `TcpListener`): the request it
//! sends, SSE deltas in both wire shapes, and clear errors naming the endpoint for an error
//! status, a stream dropped before `[DONE]`, a server that never answers or stalls mid-stream,
//! and a refused connection. Timeouts are short; nothing sleeps.

use ondo_chain::{ChatPromptTemplate, Error, Model, OpenAiEndpoint, PromptValue, Runnable};
use ondo_engine::SamplingParams;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the fake server saw of one request.
struct Seen {
    head: String,
    body: Value,
}

/// Serve one connection with `respond` on a free port; the request is read first and reported
/// on the returned channel. Returns the base URL (with `/v1`).
fn serve_once(respond: impl FnOnce(&mut TcpStream) + Send + 'static) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let seen = read_request(&mut conn);
        let _ = tx.send(seen);
        respond(&mut conn);
    });
    (base, rx)
}

fn read_request(conn: &mut TcpStream) -> Seen {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("body");
    Seen {
        head,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

fn sse(conn: &mut TcpStream, events: &[&str]) {
    conn.write_all(SSE_HEAD.as_bytes()).unwrap();
    for e in events {
        conn.write_all(format!("data: {e}\n\n").as_bytes()).unwrap();
    }
}

fn model(base: &str, timeout: Duration, params: SamplingParams) -> Model {
    Model::new(
        OpenAiEndpoint::new(base, "tiny")
            .with_api_key("sk-test")
            .with_timeout(timeout),
        params,
    )
    .unwrap()
}

fn greedy(max: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max),
        ..Default::default()
    }
}

fn remote(e: Error) -> (String, Option<u16>, String) {
    match e {
        Error::Remote {
            endpoint,
            status,
            reason,
        } => (endpoint, status, reason),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[test]
fn completions_request_carries_the_sampling_options_and_joins_deltas() {
    let (base, seen) = serve_once(|c| {
        sse(
            c,
            &[
                r#"{"choices":[{"index":0,"text":"Par","finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"text":"is.","finish_reason":"stop"}]}"#,
                "[DONE]",
            ],
        )
    });
    let params = SamplingParams {
        top_k: 5,
        stop: vec!["\n".into()],
        seed: Some(7),
        ..greedy(9)
    };
    let text = model(&base, Duration::from_secs(30), params)
        .invoke(PromptValue::from("The capital of France is"))
        .unwrap();
    assert_eq!(text, "Paris.");
    let seen = seen.recv().unwrap();
    assert!(seen.head.starts_with("POST /v1/completions HTTP/1.1"), "{}", seen.head);
    assert!(
        seen.head.to_ascii_lowercase().contains("authorization: bearer sk-test"),
        "{}",
        seen.head
    );
    let b = &seen.body;
    assert_eq!(
        (b["model"].as_str(), b["prompt"].as_str(), b["stream"].as_bool()),
        (Some("tiny"), Some("The capital of France is"), Some(true))
    );
    assert_eq!(
        (
            b["temperature"].as_f64(),
            b["max_tokens"].as_u64(),
            b["top_k"].as_i64(),
            b["seed"].as_u64()
        ),
        (Some(0.0), Some(9), Some(5), Some(7))
    );
    assert_eq!(b["stop"], serde_json::json!(["\n"]));
    // Fields left at their defaults are not sent (OpenAI itself rejects unknown ones).
    for absent in [
        "min_p",
        "repetition_penalty",
        "ignore_eos",
        "logit_bias",
        "best_of",
        "n",
    ] {
        assert!(b.get(absent).is_none(), "{absent} sent: {b}");
    }
}

#[test]
fn chat_prompts_go_to_chat_completions_and_read_delta_content() {
    let (base, seen) = serve_once(|c| {
        sse(
            c,
            &[
                r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"안녕"},"finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"하세요"},"finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
                "[DONE]",
            ],
        )
    });
    let prompt = ChatPromptTemplate::from_messages([("system", "Be kind."), ("user", "Say hello in {lang}.")]).unwrap();
    let chain = prompt | model(&base, Duration::from_secs(30), greedy(8));
    let deltas: Vec<String> = chain
        .stream(ondo_chain::vars([("lang", "Korean")]))
        .map(|d| d.unwrap())
        .collect();
    assert_eq!(deltas, ["안녕", "하세요"]);
    let seen = seen.recv().unwrap();
    assert!(
        seen.head.starts_with("POST /v1/chat/completions HTTP/1.1"),
        "{}",
        seen.head
    );
    let want = serde_json::json!([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hello in Korean."}]);
    assert_eq!(seen.body["messages"], want);
}

#[test]
fn an_error_status_names_the_endpoint_status_and_message() {
    for (status, line) in [(500, "500 Internal Server Error"), (401, "401 Unauthorized")] {
        let (base, _seen) = serve_once(move |c| {
            let body = r#"{"error":{"message":"the model fell over","type":"server_error"}}"#;
            let head = format!(
                "HTTP/1.1 {line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(body.as_bytes()).unwrap();
        });
        let e = model(&base, Duration::from_secs(30), greedy(4))
            .invoke("hi".into())
            .unwrap_err();
        let shown = e.to_string();
        let (endpoint, got, reason) = remote(e);
        assert_eq!((endpoint, got), (format!("{base}/completions"), Some(status)));
        assert_eq!(reason, "the model fell over");
        assert_eq!(shown, format!("{base}/completions: HTTP {status}: the model fell over"));
    }
}

#[test]
fn a_stream_dropped_before_done_is_an_error_not_a_short_answer() {
    let (base, _seen) = serve_once(|c| sse(c, &[r#"{"choices":[{"index":0,"text":"Hello"}]}"#]));
    let m = model(&base, Duration::from_secs(30), greedy(4));
    let mut stream = m.stream("hi".into());
    assert_eq!(stream.next().unwrap().unwrap(), "Hello");
    let (endpoint, status, reason) = remote(stream.next().unwrap().unwrap_err());
    assert_eq!((endpoint, status), (format!("{base}/completions"), None));
    assert!(
        reason.contains("ended before `data: [DONE]`") && reason.contains("after 1 chunks"),
        "{reason}"
    );
    assert!(stream.next().is_none(), "nothing after the error");

    // Cut inside a chunk of a chunked body: the transport's error, still naming the endpoint.
    let (base, _seen) = serve_once(|c| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        c.write_all(head.as_bytes()).unwrap();
        let event = "data: {\"choices\":[{\"index\":0,\"text\":\"Hi\"}]}\n\n";
        c.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
            .unwrap();
        c.write_all(b"40\r\ndata: {\"choi").unwrap();
    });
    let e = model(&base, Duration::from_secs(30), greedy(4))
        .invoke("hi".into())
        .unwrap_err();
    let (endpoint, _, reason) = remote(e);
    assert_eq!(endpoint, format!("{base}/completions"));
    assert!(reason.contains("after 1 chunks"), "{reason}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (base, seen) = serve_once(move |_c| {
        let _ = hold_rx.recv(); // keep the connection open, silent, until the test is done
    });
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = model(&base, timeout, greedy(4)).invoke("hi".into()).unwrap_err();
    let took = started.elapsed();
    seen.recv().expect("the request reached the server");
    let (endpoint, status, reason) = remote(e);
    assert_eq!((endpoint, status), (format!("{base}/completions"), None));
    assert!(reason.starts_with("timed out after 300ms"), "{reason}");
    assert!(took >= timeout && took < Duration::from_secs(10), "took {took:?}");
    drop(hold_tx);
}

#[test]
fn a_stream_that_stalls_times_out_between_chunks() {
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (base, _seen) = serve_once(move |c| {
        sse(c, &[r#"{"choices":[{"index":0,"text":"one"}]}"#]);
        c.flush().unwrap();
        let _ = hold_rx.recv();
    });
    let m = model(&base, Duration::from_millis(300), greedy(4));
    let mut stream = m.stream("hi".into());
    assert_eq!(stream.next().unwrap().unwrap(), "one");
    let (_, _, reason) = remote(stream.next().unwrap().unwrap_err());
    assert!(
        reason.starts_with("timed out after 300ms") && reason.contains("after 1 chunks"),
        "{reason}"
    );
    drop(hold_tx);
}

#[test]
fn a_refused_connection_names_the_endpoint() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let base = format!("http://127.0.0.1:{port}/v1");
    let e = model(&base, Duration::from_secs(5), greedy(4))
        .invoke("hi".into())
        .unwrap_err();
    let (endpoint, status, reason) = remote(e);
    assert_eq!((endpoint, status), (format!("{base}/completions"), None));
    assert!(reason.starts_with("connection failed"), "{reason}");
}

#[test]
fn parameters_are_checked_before_anything_is_sent() {
    let e = OpenAiEndpoint::new("http://127.0.0.1:9/v1", "m").with_params(SamplingParams {
        top_p: 2.0,
        ..Default::default()
    });
    assert_eq!(
        e.unwrap_err().to_string(),
        "invalid sampling parameter: top_p must be in (0, 1], got 2.0"
    );
    let e = Model::new(
        OpenAiEndpoint::new("http://127.0.0.1:9/v1", "m"),
        SamplingParams {
            n: 2,
            ..Default::default()
        },
    );
    assert!(e.unwrap_err().to_string().contains("n must be 1"));
}
