//! The engine thread: one thread owns the `EngineCore` and runs its steps; any thread submits
//! requests through a cheap, cloneable [`EngineHandle`] and reads that request's events from its
//! own queue. Requests are checked in the caller's thread (errors come back at once), then join
//! the running batch at the next step. Dropping a request's receiver cancels it at the next step.

use crate::constraint::{Constraint, Guide};
use crate::core::{EngineConfig, EngineCore, Event, Limits, ModelParts, NewRequest};
use crate::metrics::EngineStats;
use crate::EngineError;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

enum Command {
    Add(NewRequest, UnboundedSender<Event>, Option<Constraint>),
}

/// A handle on the engine thread. The thread ends when every handle is dropped.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    limits: Limits,
    block_size: usize,
    stats: Arc<EngineStats>,
    stop: Arc<AtomicBool>,
    guide: Arc<Guide>,
}

impl EngineHandle {
    /// Start the engine thread for `parts`, sized by `cfg`.
    pub fn start(parts: ModelParts, cfg: &EngineConfig) -> Result<EngineHandle, EngineError> {
        let stats = Arc::new(EngineStats::default());
        let core = EngineCore::new(parts, cfg, stats.clone());
        let (limits, block_size, guide) = (core.limits(), core.block_size(), core.guide().clone());
        let (commands, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("ondo-engine".into())
            .spawn(move || run(core, rx, &thread_stop))
            .map_err(|e| EngineError::Internal(format!("cannot start the engine thread: {e}")))?;
        Ok(EngineHandle {
            commands,
            limits,
            block_size,
            stats,
            stop,
            guide,
        })
    }

    /// Check `req` and queue it; its events arrive on the returned receiver.
    pub fn submit(&self, req: NewRequest) -> Result<UnboundedReceiver<Event>, EngineError> {
        self.limits.check(&req.prompt_ids, &req.params)?;
        let constraint = self.compile(&req)?;
        let (events, rx) = unbounded_channel();
        self.commands
            .send(Command::Add(req, events, constraint))
            .map_err(|_| EngineError::Internal("the engine thread has stopped".into()))?;
        Ok(rx)
    }

    /// Compile `req`'s structured-output constraint, if it has one (here, in the submitting
    /// thread: a schema's compile time is not the engine's).
    fn compile(&self, req: &NewRequest) -> Result<Option<Constraint>, EngineError> {
        let so = req.params.structured_outputs.as_ref();
        Ok(so.map(|so| self.guide.compile(so)).transpose()?)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
    pub fn block_size(&self) -> usize {
        self.block_size
    }
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Cancel every running and queued request (each reports "abort"); later ones still run.
    pub fn abort_all(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The loop: wait while idle, take new requests, step.
fn run(mut core: EngineCore, rx: mpsc::Receiver<Command>, stop: &AtomicBool) {
    loop {
        if core.is_idle() {
            match rx.recv() {
                Ok(cmd) => take(&mut core, cmd),
                Err(_) => return, // every handle dropped
            }
        }
        while let Ok(cmd) = rx.try_recv() {
            take(&mut core, cmd);
        }
        if stop.swap(false, Ordering::Relaxed) {
            core.abort_all();
        }
        if std::panic::catch_unwind(AssertUnwindSafe(|| core.step())).is_err() {
            eprintln!("error: the engine failed on a step (panic); its requests are aborted, it keeps serving");
            core.abort_all();
        }
    }
}

fn take(core: &mut EngineCore, cmd: Command) {
    match cmd {
        Command::Add(req, events, constraint) => core.add_checked(req, events, constraint),
    }
}
