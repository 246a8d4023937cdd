//! The engine thread: the one place generations run.
//!
//! Handlers prepare a [`GenRequest`] (token ids and validated parameters) and `submit` it; the
//! request waits in a channel until the engine thread takes it, and its [`Event`]s (text deltas,
//! then the final output) come back on a per-request channel. Dropping that receiver (the client
//! went away) cancels the generation at its next token, or skips it if it has not started.
//! Today the thread runs one request at a time; a continuous-batching scheduler can replace
//! `run_jobs` behind the same `submit`.

use crate::error::ApiError;
use ondo_engine::{FinishReason, Llm, Prompt, RequestOutput, SamplingParams};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

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

/// What a submitted request reports.
#[derive(Debug)]
pub enum Event {
    /// Settled text of sequence `index`.
    Delta { index: usize, text: String },
    /// The request finished (also when cancelled: finish_reason "abort").
    Done(Box<RequestOutput>),
    Failed(ApiError),
}

/// Counters for /metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub waiting: AtomicU64,
    pub running: AtomicU64,
    pub finished: AtomicU64,
    pub aborted: AtomicU64,
    pub failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
}

struct Job {
    req: GenRequest,
    events: UnboundedSender<Event>,
}

/// A handle on the engine thread; cheap to clone. The thread ends when every handle is dropped.
#[derive(Clone)]
pub struct Engine {
    jobs: mpsc::Sender<Job>,
    llm: Arc<Llm>,
    stats: Arc<Stats>,
}

impl Engine {
    /// Start the engine thread that owns generation on `llm`. `stop` set = every running and
    /// queued request is cancelled (shutdown).
    pub fn start(llm: Llm, stats: Arc<Stats>, stop: Arc<AtomicBool>) -> Engine {
        let llm = Arc::new(llm);
        let (jobs, rx) = mpsc::channel();
        let (thread_llm, thread_stats) = (llm.clone(), stats.clone());
        std::thread::Builder::new()
            .name("ondo-engine".into())
            .spawn(move || run_jobs(&thread_llm, rx, &thread_stats, &stop))
            .map(drop)
            .unwrap_or_else(|e| eprintln!("error: cannot start the engine thread: {e}"));
        Engine { jobs, llm, stats }
    }

    /// Read-only access for tokenizing and rendering (never for generating).
    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// A shared handle for blocking work off the async threads.
    pub fn llm_arc(&self) -> Arc<Llm> {
        self.llm.clone()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Queue `req`; its events arrive on the returned receiver.
    pub fn submit(&self, req: GenRequest) -> Result<UnboundedReceiver<Event>, ApiError> {
        let (events, rx) = unbounded_channel();
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(Job { req, events }).map_err(|_| {
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            ApiError::internal("the engine thread has stopped")
        })?;
        Ok(rx)
    }
}

/// The engine thread's loop: take requests in order, run each to its end.
fn run_jobs(llm: &Llm, jobs: mpsc::Receiver<Job>, stats: &Stats, stop: &AtomicBool) {
    for job in jobs {
        stats.waiting.fetch_sub(1, Ordering::Relaxed);
        if job.events.is_closed() || stop.load(Ordering::Relaxed) {
            stats.aborted.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        stats.running.fetch_add(1, Ordering::Relaxed);
        let event = run_job(llm, &job, stop);
        stats.running.fetch_sub(1, Ordering::Relaxed);
        count(stats, &event);
        let _ = job.events.send(event);
    }
}

/// Generate one request; the sink stops it when the client is gone or the server stops.
fn run_job(llm: &Llm, job: &Job, stop: &AtomicBool) -> Event {
    let mut sink = |index: usize, text: &str| {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if job.req.stream {
            job.events.send(Event::Delta { index, text: text.to_owned() }).is_ok()
        } else {
            !job.events.is_closed()
        }
    };
    let prompt = Prompt::Ids(job.req.prompt_ids.clone());
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| llm.generate_streaming(&prompt, &job.req.params, &mut sink)));
    match run {
        Ok(Ok(out)) => Event::Done(Box::new(out)),
        Ok(Err(e)) => Event::Failed(ApiError::from_engine(e, job.req.prompt_param)),
        Err(_) => Event::Failed(ApiError::internal("the engine failed on this request (panic); it keeps serving")),
    }
}

fn count(stats: &Stats, event: &Event) {
    match event {
        Event::Done(out) => {
            let aborted = out.outputs.iter().any(|o| o.finish_reason == Some(FinishReason::Abort));
            let counter = if aborted { &stats.aborted } else { &stats.finished };
            counter.fetch_add(1, Ordering::Relaxed);
            stats.prompt_tokens.fetch_add(out.prompt_token_ids.len() as u64, Ordering::Relaxed);
            let generated: usize = out.outputs.iter().map(|o| o.token_ids.len()).sum();
            stats.generation_tokens.fetch_add(generated as u64, Ordering::Relaxed);
        }
        Event::Failed(_) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        Event::Delta { .. } => {}
    }
}
