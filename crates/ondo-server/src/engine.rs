//! The server's view of the engine: handlers prepare a [`GenRequest`] (token ids and validated
//! parameters) and `submit` it to the batching engine thread (`ondo_engine::EngineHandle`); its
//! events (text deltas, then the final output) come back on a per-request queue. Dropping that
//! receiver (the client went away) cancels the generation at the engine's next step, and its KV
//! blocks are free after that step.

use crate::error::ApiError;
use ondo_engine::{EngineHandle, EngineStats, Event, Llm, NewRequest, SamplingParams};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// One prompt to generate from.
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub prompt_ids: Vec<u32>,
    pub params: SamplingParams,
    /// Send text deltas as they settle (else only the final output).
    pub stream: bool,
    /// The request field an engine error about the prompt names ("messages" or "prompt").
    pub prompt_param: &'static str,
}

/// A handle on the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    llm: Arc<Llm>,
    handle: EngineHandle,
    /// Requests submitted (accepted by the engine).
    requests: Arc<AtomicU64>,
}

impl Engine {
    /// Start (or join) the engine thread of `llm`.
    pub fn start(llm: Llm) -> Result<Engine, ApiError> {
        let handle = llm.engine().map_err(|e| ApiError::internal(e.to_string()))?.clone();
        Ok(Engine {
            llm: Arc::new(llm),
            handle,
            requests: Arc::default(),
        })
    }

    /// Read-only access for tokenizing and rendering.
    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// A shared handle for blocking work off the async threads.
    pub fn llm_arc(&self) -> Arc<Llm> {
        self.llm.clone()
    }

    pub fn stats(&self) -> &EngineStats {
        self.handle.stats()
    }
    pub fn requests_total(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn handle(&self) -> &EngineHandle {
        &self.handle
    }

    /// Queue `req`; its events arrive on the returned receiver. Bad input is a 400 here.
    pub fn submit(&self, req: GenRequest) -> Result<UnboundedReceiver<Event>, ApiError> {
        let new = NewRequest {
            id: String::new(),
            prompt: None,
            prompt_ids: req.prompt_ids,
            params: req.params,
            stream: req.stream,
            cancel: None,
        };
        let rx = self
            .handle
            .submit(new)
            .map_err(|e| ApiError::from_engine(e, req.prompt_param))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }
}
