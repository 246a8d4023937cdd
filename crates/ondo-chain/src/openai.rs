//! A backend behind an OpenAI-compatible HTTP API: `ondo serve`, vLLM, llama-server or OpenAI
//! itself. Text prompts go to `{base_url}/completions`, chat prompts to
//! `{base_url}/chat/completions`, always as server-sent events, so `timeout` bounds every wait
//! (connecting, the first answer, each next chunk) without bounding a long generation.

use crate::backend::Backend;
use crate::chat::{Message, PromptValue};
use crate::runnable::{once, Chunks};
use crate::{Error, Result};
use ondo_engine::SamplingParams;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// At most this many requests of one batch are in flight at once.
const MAX_CONCURRENT: usize = 16;

/// An OpenAI-compatible endpoint: `base_url` as clients take it (`http://127.0.0.1:8000/v1`),
/// an optional API key (sent as `Authorization: Bearer`), and the model name to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiEndpoint {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// The longest wait for a connection, for the answer's headers and for each next piece of
    /// a stream. A wait beyond it is an error naming the endpoint.
    pub timeout: Duration,
}

impl OpenAiEndpoint {
    /// An endpoint without an API key, with a 120 s timeout.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            timeout: Duration::from_secs(120),
        }
    }

    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This endpoint with `params`, as a runnable step.
    pub fn with_params(self, params: SamplingParams) -> Result<crate::Model> {
        crate::Model::new(self, params)
    }

    /// The URL a prompt of this kind is posted to.
    pub fn url(&self, prompt: &PromptValue) -> String {
        let base = self.base_url.trim_end_matches('/');
        match prompt {
            PromptValue::Text(_) => format!("{base}/completions"),
            PromptValue::Chat(_) => format!("{base}/chat/completions"),
        }
    }

    /// The request body: OpenAI's fields, and vLLM's extra sampling fields (which ondo serve,
    /// vLLM and llama-server read) only where they differ from the defaults, so a server that
    /// does not know them never sees them.
    pub fn body(&self, prompt: &PromptValue, p: &SamplingParams) -> Value {
        let mut b = Map::new();
        b.insert("model".into(), json!(self.model));
        match prompt {
            PromptValue::Text(t) => b.insert("prompt".into(), json!(t)),
            PromptValue::Chat(m) => b.insert(
                "messages".into(),
                Value::Array(m.iter().map(Message::to_json).collect()),
            ),
        };
        b.insert("stream".into(), json!(true));
        b.insert("temperature".into(), json!(p.temperature));
        b.insert("top_p".into(), json!(p.top_p));
        let d = SamplingParams::default();
        let mut put = |key: &str, differs: bool, v: Value| {
            if differs {
                b.insert(key.into(), v);
            }
        };
        put("max_tokens", p.max_tokens.is_some(), json!(p.max_tokens));
        put("stop", !p.stop.is_empty(), json!(p.stop));
        put("seed", p.seed.is_some(), json!(p.seed));
        put(
            "presence_penalty",
            p.presence_penalty != d.presence_penalty,
            json!(p.presence_penalty),
        );
        put(
            "frequency_penalty",
            p.frequency_penalty != d.frequency_penalty,
            json!(p.frequency_penalty),
        );
        let bias: Map<String, Value> = p.logit_bias.iter().map(|(id, b)| (id.to_string(), json!(b))).collect();
        put("logit_bias", !bias.is_empty(), Value::Object(bias));
        put("best_of", p.best_of.is_some_and(|b| b != p.n), json!(p.best_of));
        put("top_k", p.top_k != d.top_k, json!(p.top_k));
        put("min_p", p.min_p != d.min_p, json!(p.min_p));
        put(
            "repetition_penalty",
            p.repetition_penalty != d.repetition_penalty,
            json!(p.repetition_penalty),
        );
        put("min_tokens", p.min_tokens != d.min_tokens, json!(p.min_tokens));
        put("ignore_eos", p.ignore_eos, json!(true));
        put("stop_token_ids", !p.stop_token_ids.is_empty(), json!(p.stop_token_ids));
        put("include_stop_str_in_output", p.include_stop_str_in_output, json!(true));
        put("skip_special_tokens", !p.skip_special_tokens, json!(false));
        put(
            "spaces_between_special_tokens",
            !p.spaces_between_special_tokens,
            json!(false),
        );
        put(
            "allowed_token_ids",
            p.allowed_token_ids.is_some(),
            json!(p.allowed_token_ids),
        );
        put(
            "structured_outputs",
            p.structured_outputs.is_some(),
            json!(p.structured_outputs),
        );
        Value::Object(b)
    }

    fn agent(&self) -> ureq::Agent {
        let t = Some(self.timeout);
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_send_body(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .build()
            .into()
    }

    /// Post the prompt and return its stream of deltas (or the error status).
    fn open(&self, prompt: &PromptValue, params: &SamplingParams) -> Result<Deltas> {
        let url = self.url(prompt);
        let remote = |status: Option<u16>, reason: String| Error::Remote {
            endpoint: url.clone(),
            status,
            reason,
        };
        let mut req = self.agent().post(&url).header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        let body = self.body(prompt, params).to_string();
        let mut resp = req.send(body.as_str()).map_err(|e| remote(None, self.transport(e)))?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_string()
                .unwrap_or_default();
            let reason = error_message(&text).unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
            return Err(remote(Some(status.as_u16()), reason));
        }
        let chat = matches!(prompt, PromptValue::Chat(_));
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if !sse {
            // A server that answered with one JSON object although a stream was asked for.
            let text = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| remote(None, self.transport(e)))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| remote(None, format!("the answer is not JSON ({e}): {text:.200}")))?;
            let delta =
                choice_text(&v, chat).ok_or_else(|| remote(None, format!("no choices[0] text in {text:.200}")))?;
            return Ok(Deltas {
                reader: None,
                pending: Some(delta),
                url,
                chat,
                timeout: self.timeout,
                chunks: 0,
            });
        }
        let reader = BufReader::new(resp.into_body().into_reader());
        Ok(Deltas {
            reader: Some(reader),
            pending: None,
            url,
            chat,
            timeout: self.timeout,
            chunks: 0,
        })
    }

    fn transport(&self, e: ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(which) => format!("timed out after {:?} ({which})", self.timeout),
            ureq::Error::Io(io) => format!("connection failed: {io}"),
            other => other.to_string(),
        }
    }
}

impl Backend for OpenAiEndpoint {
    fn describe(&self) -> String {
        format!("{} (model {:?})", self.base_url, self.model)
    }

    /// Each prompt is its own request (up to 16 at once); the server batches them.
    fn generate(&self, prompts: &[PromptValue], params: &SamplingParams) -> Result<Vec<String>> {
        let one = |p: &PromptValue| self.stream(p, params).collect::<Result<String>>();
        let mut texts = Vec::with_capacity(prompts.len());
        for group in prompts.chunks(MAX_CONCURRENT) {
            if group.len() == 1 {
                texts.push(one(&group[0])?);
                continue;
            }
            let results: Vec<Result<String>> = std::thread::scope(|s| {
                let handles: Vec<_> = group.iter().map(|p| s.spawn(move || one(p))).collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::Chain("a request thread panicked".into())))
                    })
                    .collect()
            });
            for r in results {
                texts.push(r?);
            }
        }
        Ok(texts)
    }

    fn stream(&self, prompt: &PromptValue, params: &SamplingParams) -> Chunks<'static, String> {
        match self.open(prompt, params) {
            Ok(deltas) => Box::new(deltas),
            Err(e) => once(Err(e)),
        }
    }
}

/// The text deltas of one streamed answer, read as they arrive.
struct Deltas {
    reader: Option<BufReader<ureq::BodyReader<'static>>>,
    /// The whole text of a non-streamed answer.
    pending: Option<String>,
    url: String,
    chat: bool,
    timeout: Duration,
    chunks: usize,
}

impl Deltas {
    fn fail(&mut self, reason: String) -> Option<Result<String>> {
        self.reader = None;
        Some(Err(Error::Remote {
            endpoint: self.url.clone(),
            status: None,
            reason,
        }))
    }
}

impl Iterator for Deltas {
    type Item = Result<String>;
    fn next(&mut self) -> Option<Result<String>> {
        if let Some(text) = self.pending.take() {
            return Some(Ok(text));
        }
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.reader.as_mut()?.read_line(&mut line);
            match read {
                Ok(0) => {
                    let n = self.chunks;
                    return self.fail(format!(
                        "the stream ended before `data: [DONE]` (connection closed after {n} chunks)"
                    ));
                }
                Err(e) => {
                    let reason = stream_error(&e, self.timeout, self.chunks);
                    return self.fail(reason);
                }
                Ok(_) => {}
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                self.reader = None;
                return None;
            }
            self.chunks += 1;
            let chunk: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => return self.fail(format!("a stream chunk is not JSON ({e}): {data:.200}")),
            };
            if let Some(reason) = error_message(data) {
                return self.fail(format!("error in the stream: {reason}"));
            }
            match choice_text(&chunk, self.chat) {
                Some(delta) if !delta.is_empty() => return Some(Ok(delta)),
                _ => continue, // a role-only or final chunk
            }
        }
    }
}

/// `choices[0].text` (completions) or `choices[0].delta.content` / `.message.content` (chat).
fn choice_text(v: &Value, chat: bool) -> Option<String> {
    let choice = v.get("choices")?.get(0)?;
    let text = if chat {
        choice
            .get("delta")
            .or_else(|| choice.get("message"))
            .and_then(|m| m.get("content"))
    } else {
        choice.get("text")
    };
    match text {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => Some(String::new()),
        Some(_) => None,
    }
}

/// The message of an OpenAI error body (`{"error": {"message": ...}}`), else the body itself.
fn error_message(body: &str) -> Option<String> {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let err = v.get("error")?;
            Some(
                err.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| err.to_string(), str::to_string),
            )
        }
        Err(_) if !body.trim().is_empty() => Some(format!("{:.300}", body.trim())),
        Err(_) => None,
    }
}

/// Why reading a stream failed: a timeout (ureq's, inside the io error) or a broken connection.
fn stream_error(e: &std::io::Error, timeout: Duration, chunks: usize) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
    match inner {
        Some(ureq::Error::Timeout(which)) => {
            format!("timed out after {timeout:?} ({which}) waiting for the stream's next chunk after {chunks} chunks")
        }
        _ if e.kind() == std::io::ErrorKind::TimedOut => {
            format!("timed out after {timeout:?} after {chunks} chunks")
        }
        _ => format!("the stream broke off after {chunks} chunks: {e}"),
    }
}
