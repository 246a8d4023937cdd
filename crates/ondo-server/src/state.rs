//! The server's configuration and the state every handler shares: the served name, the key, and
//! the engine once the model has loaded (503 until then).

use crate::engine::Engine;
use crate::error::ApiError;
use ondo_engine::Llm;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// How `ondo serve` runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// 0 = any free port.
    pub port: u16,
    /// Required as `Authorization: Bearer KEY` on every route but /health and /metrics.
    pub api_key: Option<String>,
    /// The name clients use in `model` and see in /v1/models.
    pub model_name: String,
    /// Cap on prompt + completion tokens (default: the model's context).
    pub max_model_len: Option<usize>,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Allow cross-origin requests from any origin.
    pub cors: bool,
    /// A client must send its whole request head within this (slow-loris clients are dropped).
    pub header_read_timeout: std::time::Duration,
    /// Largest request head (request line and headers) accepted: 431 above (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most messages one chat request may have (400 above).
    pub max_messages: usize,
    /// Serve the chat page at `/` (`webui.rs`).
    pub webui: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8000,
            api_key: None,
            model_name: "ondo".into(),
            max_model_len: None,
            max_body_bytes: 8 << 20,
            cors: false,
            header_read_timeout: std::time::Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            max_messages: 4096,
            webui: true,
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    engine: OnceLock<Engine>,
    stopping: Arc<AtomicBool>,
    created: u64,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let inner = Inner {
            config,
            engine: OnceLock::new(),
            stopping: Arc::default(),
            created: crate::wire::unix_now(),
        };
        AppState { inner: Arc::new(inner) }
    }

    /// The model has loaded: start its engine thread and begin serving requests.
    pub fn install(&self, llm: Llm) {
        let engine = match Engine::start(llm) {
            Ok(e) => e,
            Err(e) => return eprintln!("error: {}", e.message),
        };
        if self.inner.engine.set(engine).is_err() {
            eprintln!("warning: a model was already installed; keeping the first");
        }
    }

    /// The engine, or 503 while the model loads or the server stops.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        if self.inner.stopping.load(Ordering::Relaxed) {
            return Err(ApiError::shutting_down());
        }
        self.inner.engine.get().ok_or_else(ApiError::loading)
    }

    pub fn is_loaded(&self) -> bool {
        self.inner.engine.get().is_some()
    }

    /// Shutdown began: running generations stop at their next token, new ones get 503.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        if let Some(engine) = self.inner.engine.get() {
            engine.handle().abort_all();
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn created(&self) -> u64 {
        self.inner.created
    }

    /// A request's `model` must be the served name (absent is fine).
    pub fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        match model {
            Some(m) if m != self.inner.config.model_name => Err(ApiError::model_not_found(m)),
            _ => Ok(()),
        }
    }
}
