//! The router: routes, then the layers every request passes (log line, CORS, API key, body
//! limit), and the small handlers (health, models, tokenize, detokenize, metrics).

use crate::completions::{chat, completions};
use crate::error::ApiError;
use crate::prompt::{check_ids, max_model_len, normalize_messages};
use crate::state::AppState;
use crate::wire::{parse_body, DetokenizeRequest, TokenizeRequest};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Every route of the server, with its layers.
pub fn router(state: AppState) -> Router {
    let cors = state.config().cors;
    let limit = state.config().max_body_bytes;
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    // The chat page loads without the key (it asks for one); added after the key layer.
    let app = match state.config().webui {
        true => crate::webui::add_routes(app),
        false => app,
    };
    let app = app.layer(DefaultBodyLimit::max(limit)).with_state(state);
    let app = if cors {
        app.layer(tower_http::cors::CorsLayer::permissive())
    } else {
        app
    };
    app.layer(middleware::from_fn(log_request))
}

// ---- layers ----

/// One line per request on stderr: client, method, path, status, time to the response head.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    eprintln!("{peer} \"{method} {path}\" {} {ms:.1}ms", response.status().as_u16());
    response
}

/// With an API key configured, every route but /health and /metrics needs
/// `Authorization: Bearer KEY` (compared in constant time).
async fn require_key(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = app.config().api_key.as_deref() else {
        return next.run(req).await;
    };
    let open = matches!(req.uri().path(), "/health" | "/metrics") || req.method() == Method::OPTIONS;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if open || bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

// ---- handlers ----

/// 200 once the model is loaded, 503 before.
async fn health(State(app): State<AppState>) -> Response {
    match app.engine() {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

fn model_card(app: &AppState) -> Result<Value, ApiError> {
    let engine = app.engine()?;
    Ok(json!({
        "id": app.config().model_name,
        "object": "model",
        "created": app.created(),
        "owned_by": "ondo",
        "root": engine.llm().source().display().to_string(),
        "parent": null,
        "max_model_len": max_model_len(engine.llm(), app.config().max_model_len),
    }))
}

async fn models(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"object": "list", "data": [model_card(&app)?]})))
}

async fn model(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    app.check_model(Some(&id))?;
    Ok(Json(model_card(&app)?))
}

/// vLLM's /tokenize: a prompt (`add_special_tokens` default true) or chat messages (rendered
/// with the template; `add_special_tokens` default false).
async fn tokenize(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let req: TokenizeRequest = parse_body(body)?;
    app.check_model(req.model.as_deref())?;
    let engine = app.engine()?;
    let llm = engine.llm_arc();
    let (limit, max_messages) = (app.config().max_model_len, app.config().max_messages);
    let job = move || -> Result<Value, ApiError> {
        let ids = match (&req.prompt, &req.messages) {
            (Some(p), None) => {
                let special = req.add_special_tokens.unwrap_or(true);
                llm.tokenizer()
                    .encode(p, special)
                    .map_err(|e| ApiError::bad_param("prompt", e.to_string()))?
            }
            (None, Some(m)) => tokenize_chat(&llm, m, &req, max_messages)?,
            _ => return Err(ApiError::bad_request("give exactly one of prompt or messages")),
        };
        let strs = req.return_token_strs.unwrap_or(false).then(|| {
            ids.iter()
                .map(|&id| llm.tokenizer().id_to_token(id).unwrap_or_default())
                .collect::<Vec<_>>()
        });
        Ok(json!({"count": ids.len(), "max_model_len": max_model_len(&llm, limit), "tokens": ids, "token_strs": strs}))
    };
    let value = tokio::task::spawn_blocking(job)
        .await
        .map_err(|_| ApiError::internal("tokenizing failed"))??;
    Ok(Json(value))
}

fn tokenize_chat(
    llm: &ondo_engine::Llm,
    messages: &Value,
    req: &TokenizeRequest,
    max_messages: usize,
) -> Result<Vec<u32>, ApiError> {
    let messages = normalize_messages(messages, max_messages)?;
    let opts = ondo_text::RenderOptions {
        add_generation_prompt: req.add_generation_prompt.unwrap_or(true),
        ..Default::default()
    };
    let text = llm
        .render_chat(&messages, &opts)
        .map_err(|e| ApiError::from_engine(e, "messages"))?;
    let special = req.add_special_tokens.unwrap_or(false);
    llm.tokenizer()
        .encode(&text, special)
        .map_err(|e| ApiError::bad_param("messages", e.to_string()))
}

async fn detokenize(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let req: DetokenizeRequest = parse_body(body)?;
    app.check_model(req.model.as_deref())?;
    let engine = app.engine()?;
    check_ids(engine.llm(), &req.tokens, "tokens")?;
    let text = engine
        .llm()
        .tokenizer()
        .decode(&req.tokens, false)
        .map_err(|e| ApiError::bad_param("tokens", e.to_string()))?;
    Ok(Json(json!({"prompt": text})))
}

/// Prometheus text, with vLLM's metric names where they exist (and ondo's earlier names for
/// the request counters).
async fn metrics(State(app): State<AppState>) -> Response {
    match app.engine() {
        Ok(engine) => crate::metrics::render(engine).into_response(),
        Err(e) => e.into_response(),
    }
}
