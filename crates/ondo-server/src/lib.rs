//! ondo-server: an OpenAI-compatible HTTP server (axum) over one loaded model.
//!
//! Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (JSON or SSE
//! streams), GET /health, POST /tokenize and /detokenize (vLLM's shapes), GET /metrics, and the
//! chat page at GET / ([`webui`]).
//!
//! A request flows: [`routes`] (log line, CORS, API key, body limit) → [`completions`] parses it
//! ([`wire`]), maps its fields onto `SamplingParams` ([`params`]), renders and tokenizes the
//! prompt ([`prompt`]) → [`engine`]: queued to the one thread that generates → events back as
//! JSON or server-sent events. Errors are OpenAI's `{"error": {...}}` ([`error`]).
//! `response_format` / `structured_outputs` become an engine constraint ([`structured`]);
//! `tools` reach the chat template and calls are parsed out of the answer ([`tools`]).
//!
//! ```no_run
//! # async fn demo(llm: ondo_engine::Llm) -> Result<(), ondo_server::Error> {
//! let server = ondo_server::Server::bind(ondo_server::Config { port: 0, ..Default::default() }).await?;
//! println!("listening on {}", server.local_addr());
//! server.state().install(llm);
//! server.run(std::future::pending()).await
//! # }
//! ```

pub mod completions;
pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
mod listen;
mod logprobs;
pub mod metrics;
pub mod params;
pub mod prompt;
pub mod routes;
mod sse;
pub mod state;
pub mod structured;
pub mod tools;
pub mod webui;
pub mod wire;

pub use error::{ApiError, Error};
pub use routes::router;
pub use state::{AppState, Config};

use ondo_engine::Llm;
use std::future::Future;
use std::net::SocketAddr;

/// A bound listener and the state its routes share.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Listen on `config.host:config.port` (port 0 = any free port). Requests get 503 until a
    /// model is installed with `state().install(llm)`.
    pub async fn bind(config: Config) -> Result<Server, Error> {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.clone(),
                source,
            })?;
        Ok(Server {
            listener,
            state: AppState::new(config),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serve until `shutdown` resolves; then running generations stop at their next token and
    /// open connections are drained.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let state = self.state.clone();
        let config = state.config().clone();
        let app = router(self.state);
        listen::serve(self.listener, app, &config, async move {
            shutdown.await;
            state.begin_shutdown();
        })
        .await
        .map_err(Error::Serve)
    }
}

/// Serve `llm` with `config` until SIGINT or SIGTERM.
pub async fn serve(llm: Llm, config: Config) -> Result<(), Error> {
    let server = Server::bind(config).await?;
    eprintln!("listening on http://{}", server.local_addr());
    server.state().install(llm);
    server.run(shutdown_signal()).await
}

/// What `ondo serve` runs: listen at once (503 while loading), load the model with `load` on a
/// worker thread, serve until SIGINT or SIGTERM. A failed load stops the server with its error.
pub fn run_blocking(config: Config, load: impl FnOnce() -> Result<Llm, String> + Send + 'static) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        eprintln!("listening on http://{}", server.local_addr());
        if server.state().config().webui {
            eprintln!("chat page: http://{}/", server.local_addr());
        }
        let state = server.state();
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<String>();
        tokio::task::spawn_blocking(move || match load() {
            Ok(llm) => {
                state.install(llm);
                eprintln!("model loaded; serving {}", state.config().model_name);
            }
            Err(e) => {
                let _ = failed_tx.send(e);
            }
        });
        let (load_error_tx, load_error_rx) = tokio::sync::oneshot::channel::<String>();
        let stop = async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                Ok(e) = failed_rx => { let _ = load_error_tx.send(e); }
            }
        };
        server.run(stop).await?;
        match load_error_rx.await {
            Ok(e) => Err(Error::Load(e)),
            Err(_) => Ok(()),
        }
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("shutting down");
}
