//! POST /v1/chat/completions and POST /v1/completions.
//!
//! A request is parsed and checked (400s name the field), turned into one [`GenRequest`] per
//! prompt off the async threads (templates, tokenizing), queued to the engine, and answered as
//! one JSON object here, or as server-sent events (`sse.rs`).

use crate::engine::GenRequest;
use crate::error::ApiError;
use crate::logprobs;
use crate::params::{chat_logprobs, check_vocab, completion_logprobs, sampling_params};
use crate::prompt::{chat_ids, fit, max_model_len, normalize_messages, parse_prompts, prompt_ids, PromptInput};
use crate::sse;
use crate::state::AppState;
use crate::structured::StructuredFields;
use crate::tools::{self, ToolFields, ToolSpec};
use crate::wire::{fields, parse_object, ChatRequest, CompletionRequest, Header, SamplingFields, Usage};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ondo_engine::Event;
use ondo_engine::{CompletionOutput, Llm, RequestOutput};
use ondo_text::Tokenizer;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Completion,
}

/// Everything decided before generating.
pub(crate) struct Plan {
    pub kind: Kind,
    pub header: Header,
    pub requests: Vec<GenRequest>,
    pub n: usize,
    pub logprobs: Option<usize>,
    pub stream: bool,
    pub include_usage: bool,
    /// Tools in use (chat): the answer is parsed for calls (streamed: as they are generated).
    pub tools: Option<ToolSpec>,
    /// `echo` (completions): each prompt's text, put before its completions (with logprobs:
    /// the prompt's tokens and their prompt logprobs before the completion's).
    pub echo: Option<Vec<String>>,
}

impl Plan {
    /// The request field a prompt error names.
    pub fn prompt_param(&self) -> &'static str {
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
    let logprobs = completion_logprobs(req.logprobs)?;
    if echo && logprobs.is_some() && sampling.stream() {
        return Err(ApiError::bad_param(
            "echo",
            "echo together with logprobs is not supported when streaming",
        ));
    }
    let prompts = parse_prompts(&req.prompt)?;
    let mut params = sampling_params(&sampling, sampling.max_tokens, logprobs)?;
    if echo && logprobs.is_some() {
        params.prompt_logprobs = logprobs;
    }
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
        return sse::stream(plan, receivers, engine.llm_arc());
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
                if let Some(k) = plan.logprobs {
                    c["logprobs"] = echo_logprobs(&out, o, k, llm.tokenizer());
                }
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

pub(crate) fn usage_of(out: &RequestOutput) -> Usage {
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

/// An answer's logprobs in chat's shape.
fn chat_logprobs_json(o: &CompletionOutput, k: usize, tok: &Tokenizer) -> Value {
    logprobs::chat(&o.token_ids, o.logprobs.as_deref().unwrap_or_default(), k, tok)
}

/// An answer's logprobs in completions' shape.
fn completion_logprobs_json(o: &CompletionOutput, k: usize, tok: &Tokenizer) -> Value {
    let maps = o.logprobs.as_deref().unwrap_or_default();
    logprobs::completion(&logprobs::with_maps(&o.token_ids, maps), k, tok, &mut 0)
}

/// `echo` with logprobs: the prompt's tokens (the first without a logprob), then the answer's.
fn echo_logprobs(out: &RequestOutput, o: &CompletionOutput, k: usize, tok: &Tokenizer) -> Value {
    let prompt_maps = out.prompt_logprobs.as_deref().unwrap_or_default();
    let mut tokens = logprobs::prompt_tokens(&out.prompt_token_ids, prompt_maps);
    tokens.extend(logprobs::with_maps(
        &o.token_ids,
        o.logprobs.as_deref().unwrap_or_default(),
    ));
    logprobs::completion(&tokens, k, tok, &mut 0)
}
