//! POST /v1/chat/completions and POST /v1/completions.
//!
//! A request is parsed and checked (400s name the field), turned into one [`GenRequest`] per
//! prompt off the async threads (templates, tokenizing), queued to the engine, and answered as
//! one JSON object or as server-sent events: chat streams open with a role delta per choice,
//! close each choice with its finish_reason, add a usage chunk with empty choices when
//! `stream_options.include_usage` is set, and end with `data: [DONE]`.

use crate::engine::GenRequest;
use crate::error::ApiError;
use crate::params::{chat_logprobs, check_vocab, completion_logprobs, sampling_params};
use crate::prompt::{chat_ids, fit, max_model_len, normalize_messages, parse_prompts, prompt_ids, PromptInput};
use crate::state::AppState;
use crate::structured::StructuredFields;
use crate::tools::{self, ToolFields, ToolSpec};
use crate::wire::{fields, parse_object, ChatRequest, CompletionRequest, Header, SamplingFields, Usage};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use ondo_engine::Event;
use ondo_engine::{CompletionOutput, Llm, RequestOutput};
use ondo_text::Tokenizer;
use serde_json::{json, Value};
use std::convert::Infallible;
use tokio::sync::mpsc::{self, UnboundedReceiver};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Completion,
}

/// Everything decided before generating.
struct Plan {
    kind: Kind,
    header: Header,
    requests: Vec<GenRequest>,
    n: usize,
    logprobs: Option<usize>,
    stream: bool,
    include_usage: bool,
    /// Tools in use (chat): the answer is parsed for calls, and streamed once complete.
    tools: Option<ToolSpec>,
    /// `echo` (completions): each prompt's text, put before its completions.
    echo: Option<Vec<String>>,
}

impl Plan {
    /// The request field a prompt error names.
    fn prompt_param(&self) -> &'static str {
        match self.kind {
            Kind::Chat => "messages",
            Kind::Completion => "prompt",
        }
    }
}

pub async fn chat(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match plan_chat(&app, body).await {
        Ok(plan) => respond(&app, plan).await,
        Err(e) => e.into_response(),
    }
}

pub async fn completions(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    match plan_completion(&app, body).await {
        Ok(plan) => respond(&app, plan).await,
        Err(e) => e.into_response(),
    }
}

async fn plan_chat(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Plan, ApiError> {
    let value = parse_object(body)?;
    let (req, sampling): (ChatRequest, SamplingFields) = (fields(&value)?, fields(&value)?);
    app.check_model(req.model.as_deref())?;
    let engine = app.engine()?;
    let messages = normalize_messages(&req.messages, app.config().max_messages)?;
    let logprobs = chat_logprobs(req.logprobs, req.top_logprobs)?;
    if let Some(v) = req.max_completion_tokens.filter(|&v| v < 1) {
        let msg = format!("max_completion_tokens must be at least 1, got {v}");
        return Err(ApiError::bad_param("max_completion_tokens", msg));
    }
    let max_tokens = req.max_completion_tokens.or(sampling.max_tokens);
    let mut params = sampling_params(&sampling, max_tokens, logprobs)?;
    params.structured_outputs = fields::<StructuredFields>(&value)?.constraint()?;
    let template = engine.llm().chat_template().map_or("", |t| t.source());
    let tools = fields::<ToolFields>(&value)?.spec(template)?;
    let (llm, limit, stream) = (engine.llm_arc(), app.config().max_model_len, sampling.stream());
    let spec = tools.clone();
    let request = blocking(move || {
        check_vocab(&params, llm.model().hparams().vocab_size)?;
        let (messages, template_tools) = match &spec {
            Some(spec) => {
                let marker = llm.tokenizer().token_to_id("[TOOL_CALLS]");
                params.structured_outputs = spec.constraint(marker).or(params.structured_outputs.take());
                (spec.messages(messages), spec.template_tools())
            }
            None => (messages, None),
        };
        let ids = chat_ids(&llm, &messages, template_tools)?;
        let params = fit(&ids, &params, max_model_len(&llm, limit), "messages")?;
        Ok(GenRequest {
            prompt_ids: ids,
            params,
            stream,
            prompt_param: "messages",
        })
    })
    .await?;
    Ok(Plan {
        kind: Kind::Chat,
        header: Header::new("chatcmpl", &app.config().model_name),
        n: request.params.n,
        requests: vec![request],
        logprobs,
        stream,
        include_usage: sampling.include_usage(),
        tools,
        echo: None,
    })
}

async fn plan_completion(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Plan, ApiError> {
    let value = parse_object(body)?;
    let (req, sampling): (CompletionRequest, SamplingFields) = (fields(&value)?, fields(&value)?);
    app.check_model(req.model.as_deref())?;
    let engine = app.engine()?;
    let echo = req.echo == Some(true);
    if echo && req.logprobs.is_some() {
        return Err(ApiError::bad_param(
            "echo",
            "echo together with logprobs is not supported",
        ));
    }
    let prompts = parse_prompts(&req.prompt)?;
    let logprobs = completion_logprobs(req.logprobs)?;
    let mut params = sampling_params(&sampling, sampling.max_tokens, logprobs)?;
    params.structured_outputs = fields::<StructuredFields>(&value)?.constraint()?;
    let (llm, limit, stream) = (engine.llm_arc(), app.config().max_model_len, sampling.stream());
    let n = params.n;
    let (requests, texts) = blocking(move || {
        check_vocab(&params, llm.model().hparams().vocab_size)?;
        let max_len = max_model_len(&llm, limit);
        let requests = prompts
            .iter()
            .map(|p| {
                let ids = prompt_ids(&llm, p)?;
                let params = fit(&ids, &params, max_len, "prompt")?;
                Ok(GenRequest {
                    prompt_ids: ids,
                    params,
                    stream,
                    prompt_param: "prompt",
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let texts = echo.then(|| prompts.iter().map(|p| prompt_text(&llm, p)).collect());
        Ok((requests, texts))
    })
    .await?;
    Ok(Plan {
        kind: Kind::Completion,
        header: Header::new("cmpl", &app.config().model_name),
        requests,
        n,
        logprobs,
        stream,
        include_usage: sampling.include_usage(),
        tools: None,
        echo: texts,
    })
}

/// The text of a completion prompt, as `echo` returns it.
fn prompt_text(llm: &Llm, p: &PromptInput) -> String {
    match p {
        PromptInput::Text(t) => t.clone(),
        PromptInput::Ids(ids) => llm.tokenizer().decode(ids, false).unwrap_or_default(),
    }
}

/// Run CPU work (templates, tokenizing) on the blocking pool; a panic there is a 500.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("preparing the request failed"))?
}

/// Queue every prompt, then answer as JSON or as a stream.
async fn respond(app: &AppState, mut plan: Plan) -> Response {
    let engine = match app.engine() {
        Ok(e) => e.clone(),
        Err(e) => return e.into_response(),
    };
    let receivers: Result<Vec<_>, _> = std::mem::take(&mut plan.requests)
        .into_iter()
        .map(|r| engine.submit(r))
        .collect();
    let receivers = match receivers {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if plan.stream {
        return stream(plan, receivers);
    }
    match complete(&plan, receivers, engine.llm()).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- one JSON answer ----

async fn complete(plan: &Plan, receivers: Vec<UnboundedReceiver<Event>>, llm: &Llm) -> Result<Value, ApiError> {
    let mut choices = vec![];
    let mut usage = Usage::default();
    for (p, rx) in receivers.into_iter().enumerate() {
        let out = wait_done(rx, plan.prompt_param()).await?;
        usage.add(usage_of(&out));
        for o in &out.outputs {
            let mut c = choice(plan, p * plan.n + o.index, o, llm.tokenizer());
            if let Some(texts) = &plan.echo {
                c["text"] = json!(format!("{}{}", texts[p], o.text));
            }
            choices.push(c);
        }
    }
    let object = match plan.kind {
        Kind::Chat => "chat.completion",
        Kind::Completion => "text_completion",
    };
    Ok(plan.header.object(object, choices, Some(usage.json())))
}

async fn wait_done(mut rx: UnboundedReceiver<Event>, prompt_param: &str) -> Result<RequestOutput, ApiError> {
    loop {
        match rx.recv().await {
            Some(Event::Delta { .. }) => continue,
            Some(Event::Done(out)) => return Ok(*out),
            Some(Event::Failed(e)) => return Err(ApiError::from_engine(e, prompt_param)),
            None => return Err(ApiError::internal("the engine dropped the request")),
        }
    }
}

fn usage_of(out: &RequestOutput) -> Usage {
    Usage {
        prompt_tokens: out.prompt_token_ids.len(),
        completion_tokens: out.outputs.iter().map(|o| o.token_ids.len()).sum(),
    }
}

fn choice(plan: &Plan, index: usize, o: &CompletionOutput, tok: &Tokenizer) -> Value {
    let finish = o.finish_reason.map(|f| f.as_str());
    match plan.kind {
        Kind::Chat => {
            let (message, called) = tools::message(plan.tools.as_ref(), &o.text);
            json!({
                "index": index,
                "message": message,
                "logprobs": plan.logprobs.map(|k| chat_logprobs_json(o, k, tok)),
                "finish_reason": if called { Some("tool_calls") } else { finish },
            })
        }
        Kind::Completion => json!({
            "index": index,
            "text": o.text,
            "logprobs": plan.logprobs.map(|k| completion_logprobs_json(o, k, tok)),
            "finish_reason": finish,
        }),
    }
}

/// One output token: its id, its logprob, and the top `k` `(id, logprob)`, best first.
type TokenLogprobs = (u32, f32, Vec<(u32, f32)>);

fn token_logprobs(o: &CompletionOutput, k: usize) -> Vec<TokenLogprobs> {
    let Some(maps) = &o.logprobs else {
        return vec![];
    };
    o.token_ids
        .iter()
        .zip(maps)
        .map(|(&id, map)| {
            let mut top: Vec<(u32, f32)> = map.iter().map(|(&t, &l)| (t, l)).collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            top.truncate(k);
            (id, map.get(&id).copied().unwrap_or(f32::NEG_INFINITY), top)
        })
        .collect()
}

fn piece(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// Chat's `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`.
fn chat_logprobs_json(o: &CompletionOutput, k: usize, tok: &Tokenizer) -> Value {
    let entry = |id: u32, lp: f32| {
        let text = piece(tok, id);
        json!({"token": text, "logprob": lp.max(-9999.0), "bytes": text.as_bytes()})
    };
    let content: Vec<Value> = token_logprobs(o, k)
        .into_iter()
        .map(|(id, lp, top)| {
            let mut e = entry(id, lp);
            e["top_logprobs"] = top.into_iter().map(|(t, l)| entry(t, l)).collect();
            e
        })
        .collect();
    json!({"content": content})
}

/// Completions' `{"tokens", "token_logprobs", "top_logprobs", "text_offset"}`.
fn completion_logprobs_json(o: &CompletionOutput, k: usize, tok: &Tokenizer) -> Value {
    let (mut tokens, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
    let mut offset = 0;
    for (id, lp, top) in token_logprobs(o, k.max(1)) {
        let text = piece(tok, id);
        offsets.push(offset);
        offset += text.chars().count();
        tokens.push(text);
        lps.push(lp.max(-9999.0));
        let map: serde_json::Map<String, Value> = top
            .into_iter()
            .map(|(t, l)| (piece(tok, t), json!(l.max(-9999.0))))
            .collect();
        tops.push(Value::Object(map));
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

// ---- server-sent events ----

fn stream(plan: Plan, receivers: Vec<UnboundedReceiver<Event>>) -> Response {
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(forward(plan, receivers, tx));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, Infallible>(SseEvent::default().data(data)), rx))
    });
    Sse::new(events).into_response()
}

/// Turn engine events into SSE payloads. Returns as soon as the client is gone, which drops the
/// engine receivers and so cancels the generations.
/// Logprobs are not streamed yet (`logprobs` is null in chunks).
async fn forward(plan: Plan, receivers: Vec<UnboundedReceiver<Event>>, tx: mpsc::Sender<String>) {
    let _ = forward_events(&plan, receivers, &tx).await;
}

/// The client went away.
struct Gone;

async fn send(tx: &mpsc::Sender<String>, v: Value) -> Result<(), Gone> {
    tx.send(v.to_string()).await.map_err(|_| Gone)
}

async fn forward_events(
    plan: &Plan,
    receivers: Vec<UnboundedReceiver<Event>>,
    tx: &mpsc::Sender<String>,
) -> Result<(), Gone> {
    let total = plan.n * receivers.len();
    if plan.kind == Kind::Chat {
        for i in 0..total {
            send(tx, chunk(plan, i, json!({"role": "assistant", "content": ""}), None)).await?;
        }
    }
    let mut usage = Usage::default();
    for (p, mut rx) in receivers.into_iter().enumerate() {
        for i in 0..plan.n {
            if let Some(texts) = &plan.echo {
                send(tx, delta_chunk(plan, p * plan.n + i, &texts[p])).await?;
            }
        }
        let out = loop {
            match rx.recv().await {
                Some(Event::Delta { .. }) if plan.tools.is_some() => continue,
                Some(Event::Delta { index, text }) => send(tx, delta_chunk(plan, p * plan.n + index, &text)).await?,
                Some(Event::Done(out)) => break *out,
                Some(Event::Failed(e)) => return fail(tx, ApiError::from_engine(e, plan.prompt_param())).await,
                None => return fail(tx, ApiError::internal("the engine dropped the request")).await,
            }
        };
        usage.add(usage_of(&out));
        for o in &out.outputs {
            let mut finish = o.finish_reason.map(|f| f.as_str());
            if let Some(spec) = &plan.tools {
                let (deltas, called) = tools::stream_deltas(spec, &o.text);
                for d in deltas {
                    send(tx, chunk(plan, p * plan.n + o.index, d, None)).await?;
                }
                finish = if called { Some("tool_calls") } else { finish };
            }
            let last = match plan.kind {
                Kind::Chat => chunk(plan, p * plan.n + o.index, json!({}), finish),
                Kind::Completion => chunk(plan, p * plan.n + o.index, json!(""), finish),
            };
            send(tx, last).await?;
        }
    }
    if plan.include_usage {
        send(tx, plan.header.object(chunk_object(plan), vec![], Some(usage.json()))).await?;
    }
    tx.send("[DONE]".into()).await.map_err(|_| Gone)
}

async fn fail(tx: &mpsc::Sender<String>, e: ApiError) -> Result<(), Gone> {
    send(tx, e.body()).await?;
    tx.send("[DONE]".into()).await.map_err(|_| Gone)
}

fn chunk_object(plan: &Plan) -> &'static str {
    match plan.kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Completion => "text_completion",
    }
}

fn delta_chunk(plan: &Plan, index: usize, text: &str) -> Value {
    match plan.kind {
        Kind::Chat => chunk(plan, index, json!({"content": text}), None),
        Kind::Completion => chunk(plan, index, json!(text), None),
    }
}

/// One chunk with one choice: chat's `delta` object, or completions' `text`.
fn chunk(plan: &Plan, index: usize, body: Value, finish: Option<&str>) -> Value {
    let choice = match plan.kind {
        Kind::Chat => {
            json!({"index": index, "delta": body, "logprobs": null, "finish_reason": finish})
        }
        Kind::Completion => {
            json!({"index": index, "text": body, "logprobs": null, "finish_reason": finish})
        }
    };
    let usage = plan.include_usage.then_some(Value::Null);
    plan.header.object(chunk_object(plan), vec![choice], usage)
}
