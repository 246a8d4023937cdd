//! Streamed answers as server-sent events. Chat streams open with a role delta per choice;
//! each engine delta becomes a chunk (with tools in use, `tools::ToolStream` turns it into
//! content or `delta.tool_calls` chunks, or holds it back), carrying the logprobs of the
//! tokens that arrived since the choice's last chunk; each choice closes with its
//! finish_reason and the logprobs of tokens no delta carried (held-back text). A usage chunk
//! with empty choices follows when `stream_options.include_usage` is set, then `data: [DONE]`.

use crate::completions::{usage_of, Kind, Plan};
use crate::error::ApiError;
use crate::logprobs;
use crate::tools::ToolStream;
use crate::wire::Usage;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use ondo_engine::{CompletionOutput, Event, Llm, LogprobMap};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc::{self, UnboundedReceiver};

pub(crate) fn stream(plan: Plan, receivers: Vec<UnboundedReceiver<Event>>, llm: Arc<Llm>) -> Response {
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let _ = forward_events(&plan, receivers, &tx, &llm).await;
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, Infallible>(SseEvent::default().data(data)), rx))
    });
    Sse::new(events).into_response()
}

/// The client went away: returning drops the engine receivers, which cancels the generations.
struct Gone;

async fn send(tx: &mpsc::Sender<String>, v: Value) -> Result<(), Gone> {
    tx.send(v.to_string()).await.map_err(|_| Gone)
}

/// One choice's stream: tokens whose logprobs are not sent yet, and its tool-call state.
struct Choice<'a> {
    index: usize,
    /// Output tokens that came with deltas.
    received: usize,
    ids: Vec<u32>,
    maps: Vec<LogprobMap>,
    /// Completions' `text_offset` of the next token.
    offset: usize,
    tools: Option<ToolStream<'a>>,
}

impl<'a> Choice<'a> {
    fn new(plan: &'a Plan, index: usize) -> Choice<'a> {
        Choice {
            index,
            received: 0,
            ids: vec![],
            maps: vec![],
            offset: 0,
            tools: plan.tools.as_ref().map(ToolStream::new),
        }
    }

    fn add(&mut self, ids: &[u32], maps: Option<&[LogprobMap]>) {
        self.received += ids.len();
        self.ids.extend_from_slice(ids);
        self.maps.extend(maps.unwrap_or_default().iter().cloned());
    }

    /// The logprobs of the tokens not sent yet (null when none are asked for or pending).
    fn take_logprobs(&mut self, plan: &Plan, llm: &Llm) -> Value {
        let Some(k) = plan.logprobs.filter(|_| !self.ids.is_empty()) else {
            return Value::Null;
        };
        let tok = llm.tokenizer();
        let (ids, maps) = (std::mem::take(&mut self.ids), std::mem::take(&mut self.maps));
        match plan.kind {
            Kind::Chat => logprobs::chat(&ids, &maps, k, tok),
            Kind::Completion => logprobs::completion(&logprobs::with_maps(&ids, &maps), k, tok, &mut self.offset),
        }
    }

    /// The bodies a text delta makes: itself, or what the tool stream lets out.
    fn bodies(&mut self, plan: &Plan, text: &str) -> Vec<Value> {
        match (&mut self.tools, plan.kind) {
            (Some(t), _) => t.push(text),
            (None, Kind::Chat) => vec![json!({"content": text})],
            (None, Kind::Completion) => vec![json!(text)],
        }
    }
}

async fn forward_events(
    plan: &Plan,
    receivers: Vec<UnboundedReceiver<Event>>,
    tx: &mpsc::Sender<String>,
    llm: &Llm,
) -> Result<(), Gone> {
    let total = plan.n * receivers.len();
    if plan.kind == Kind::Chat {
        for i in 0..total {
            send(
                tx,
                chunk(plan, i, json!({"role": "assistant", "content": ""}), Value::Null, None),
            )
            .await?;
        }
    }
    let mut usage = Usage::default();
    for (p, mut rx) in receivers.into_iter().enumerate() {
        let mut choices: BTreeMap<usize, Choice> = BTreeMap::new();
        for i in 0..plan.n {
            if let Some(texts) = &plan.echo {
                send(tx, chunk(plan, p * plan.n + i, json!(texts[p]), Value::Null, None)).await?;
            }
        }
        let out = loop {
            match rx.recv().await {
                Some(Event::Delta {
                    index,
                    text,
                    tokens,
                    logprobs,
                }) => {
                    let c = choices
                        .entry(index)
                        .or_insert_with(|| Choice::new(plan, p * plan.n + index));
                    c.add(&tokens, logprobs.as_deref());
                    let bodies = c.bodies(plan, &text);
                    send_bodies(plan, c, bodies, llm, tx).await?;
                }
                Some(Event::Done(out)) => break *out,
                Some(Event::Failed(e)) => return fail(tx, ApiError::from_engine(e, plan.prompt_param())).await,
                None => return fail(tx, ApiError::internal("the engine dropped the request")).await,
            }
        };
        usage.add(usage_of(&out));
        for o in &out.outputs {
            let c = choices
                .entry(o.index)
                .or_insert_with(|| Choice::new(plan, p * plan.n + o.index));
            finish_choice(plan, c, o, llm, tx).await?;
        }
    }
    if plan.include_usage {
        send(tx, plan.header.object(chunk_object(plan), vec![], Some(usage.json()))).await?;
    }
    tx.send("[DONE]".into()).await.map_err(|_| Gone)
}

/// A chunk per body; the first carries the pending logprobs.
async fn send_bodies(
    plan: &Plan,
    c: &mut Choice<'_>,
    bodies: Vec<Value>,
    llm: &Llm,
    tx: &mpsc::Sender<String>,
) -> Result<(), Gone> {
    for body in bodies {
        let lp = c.take_logprobs(plan, llm);
        send(tx, chunk(plan, c.index, body, lp, None)).await?;
    }
    Ok(())
}

/// The choice's last chunks: what its tool stream held back, then the finish_reason with the
/// logprobs of tokens no delta carried.
async fn finish_choice(
    plan: &Plan,
    c: &mut Choice<'_>,
    o: &CompletionOutput,
    llm: &Llm,
    tx: &mpsc::Sender<String>,
) -> Result<(), Gone> {
    let from = c.received.min(o.token_ids.len());
    let maps = o.logprobs.as_ref().map(|l| &l[from.min(l.len())..]);
    c.add(&o.token_ids[from..], maps);
    let mut finish = o.finish_reason.map(|f| f.as_str());
    if let Some(t) = c.tools.as_mut() {
        let (bodies, called) = t.finish(&o.text);
        send_bodies(plan, c, bodies, llm, tx).await?;
        if called {
            finish = Some("tool_calls");
        }
    }
    let body = match plan.kind {
        Kind::Chat => json!({}),
        Kind::Completion => json!(""),
    };
    let lp = c.take_logprobs(plan, llm);
    send(tx, chunk(plan, c.index, body, lp, finish)).await
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

/// One chunk with one choice: chat's `delta` object, or completions' `text`.
fn chunk(plan: &Plan, index: usize, body: Value, logprobs: Value, finish: Option<&str>) -> Value {
    let choice = match plan.kind {
        Kind::Chat => json!({"index": index, "delta": body, "logprobs": logprobs, "finish_reason": finish}),
        Kind::Completion => json!({"index": index, "text": body, "logprobs": logprobs, "finish_reason": finish}),
    };
    let usage = plan.include_usage.then_some(Value::Null);
    plan.header.object(chunk_object(plan), vec![choice], usage)
}
