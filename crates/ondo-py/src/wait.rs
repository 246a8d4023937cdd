//! Waiting on the engine from Python: the GIL is released while waiting, and every
//! [`POLL`] the wait comes back to check for signals, so Ctrl-C raises `KeyboardInterrupt`
//! promptly and cancels the request (its cancel flag is set and its queue dropped; the engine
//! aborts it at its next step).

use crate::engine::to_json;
use crate::{guard, to_py};
use ondo_engine::{EngineHandle, Event, NewRequest, RequestOutput};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long one wait lasts before signals are checked.
const POLL: Duration = Duration::from_millis(50);

/// Wakes the waiting thread when the engine sends an event.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The next event of `rx` within `timeout` (`Err(())` when none came): the channel is polled
/// with a waker that unparks this thread, so no async runtime is needed.
fn recv_timeout(rx: &mut UnboundedReceiver<Event>, timeout: Duration) -> Result<Option<Event>, ()> {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(event) = rx.poll_recv(&mut cx) {
            return Ok(event);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(());
        }
        thread::park_timeout(deadline - now);
    }
}

/// A submitted request: its events and its cancel flag.
struct Pending {
    rx: UnboundedReceiver<Event>,
    cancel: Arc<AtomicBool>,
}

impl Pending {
    fn submit(engine: &EngineHandle, req: NewRequest) -> PyResult<Pending> {
        let cancel = req.cancel.clone().unwrap_or_default();
        let rx = engine.submit(req).map_err(to_py)?;
        Ok(Pending { rx, cancel })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // A request nobody waits for any more stops at the engine's next step.
        self.cancel.store(true, Relaxed);
    }
}

/// The next event of `p`, or the Python error of a signal handler (KeyboardInterrupt).
fn next_event(py: Python<'_>, p: &mut Pending) -> PyResult<Event> {
    loop {
        let rx = &mut p.rx;
        let got = py.detach(|| recv_timeout(rx, POLL));
        match got {
            Ok(Some(event)) => return Ok(event),
            Ok(None) => return Err(PyRuntimeError::new_err("the engine thread stopped")),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}

/// Submit every request (one engine batch), then collect their outputs in order. On an error
/// or a signal the requests still running are cancelled.
pub fn run_all(py: Python<'_>, engine: &EngineHandle, requests: Vec<NewRequest>) -> PyResult<Vec<RequestOutput>> {
    let mut pending = requests
        .into_iter()
        .map(|r| Pending::submit(engine, r))
        .collect::<PyResult<Vec<_>>>()?;
    let mut outputs = Vec::with_capacity(pending.len());
    for p in &mut pending {
        loop {
            match next_event(py, p)? {
                Event::Delta { .. } => continue,
                Event::Done(out) => break outputs.push(*out),
                Event::Failed(e) => return Err(to_py(e)),
            }
        }
    }
    Ok(outputs)
}

/// Iterator over a streaming request: `(index, delta)` tuples; when it ends, `output_json`
/// holds the final `RequestOutput`. Dropping or `close()` cancels the request.
#[pyclass(module = "ondo._ondo")]
pub struct TextStream {
    pending: Option<Pending>,
    output: Option<String>,
}

impl TextStream {
    pub fn start(engine: &EngineHandle, req: NewRequest) -> PyResult<TextStream> {
        Ok(TextStream {
            pending: Some(Pending::submit(engine, req)?),
            output: None,
        })
    }
}

#[pymethods]
impl TextStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<(usize, String)>> {
        guard("stream", || {
            let Some(p) = self.pending.as_mut() else {
                return Ok(None);
            };
            let event = next_event(py, p);
            match event {
                Ok(Event::Delta { index, text, .. }) => Ok(Some((index, text))),
                Ok(Event::Done(out)) => {
                    self.output = Some(to_json(&out)?);
                    self.pending = None;
                    Ok(None)
                }
                Ok(Event::Failed(e)) => {
                    self.pending = None;
                    Err(to_py(e))
                }
                Err(e) => {
                    self.pending = None;
                    Err(e)
                }
            }
        })
    }

    /// Cancel the request (the engine stops it at its next step).
    fn close(&mut self) {
        self.pending = None;
    }

    /// The finished `RequestOutput` as JSON, once the iterator is exhausted.
    #[getter]
    fn output_json(&self) -> Option<String> {
        self.output.clone()
    }
}
