//! Errors: `ApiError` is what a client sees (OpenAI's `{"error": {message, type, param, code}}`
//! with an HTTP status); `Error` is what stops the server itself (binding, serving).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ondo_engine::EngineError;
use serde_json::json;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    #[error("loading the model failed: {0}")]
    Load(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// An error answer in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 invalid_request_error naming the offending parameter.
    pub fn bad_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_param(param)
    }

    /// 400 invalid_request_error about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided.",
        )
        .with_code("invalid_api_key")
    }

    pub fn model_not_found(model: &str) -> Self {
        let msg = format!("The model `{model}` does not exist.");
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", msg)
            .with_param("model")
            .with_code("model_not_found")
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unknown route {path}"),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Method not allowed for this route",
        )
    }

    pub fn loading() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The model is still loading; try again shortly.",
        )
        .with_code("model_loading")
    }

    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The server is shutting down.",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }

    /// An engine failure as the client should see it: its own mistakes are 400s.
    pub fn from_engine(e: EngineError, prompt_param: &str) -> Self {
        match &e {
            EngineError::Param(p) => Self::bad_param(p.field(), p.to_string()),
            EngineError::EmptyPrompt => Self::bad_param(prompt_param, e.to_string()),
            EngineError::PromptTooLong { .. } | EngineError::KvCacheTooSmall { .. } => {
                Self::bad_param(prompt_param, e.to_string()).with_code("context_length_exceeded")
            }
            EngineError::Template(_) | EngineError::NoChatTemplate(_) | EngineError::Text(_) => {
                Self::bad_param(prompt_param, e.to_string())
            }
            EngineError::PromptToken { .. } => Self::bad_param(prompt_param, e.to_string()),
            _ => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
