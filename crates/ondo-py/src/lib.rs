//! `ondo._ondo`: the native half of the Python package `ondo` (PyO3, abi3 for Python 3.11+).
//!
//! It is thin on purpose. Python (`python/ondo/`) owns the user-facing names and shapes (vLLM's
//! `LLM`/`SamplingParams`/`RequestOutput`, transformers' `pipeline`, GPT4All's `chat_session`,
//! LangChain's classes); this module owns what must be Rust:
//! - [`engine::Engine`]: an `ondo_engine::Llm` (load, tokenizer, chat template, requests on the
//!   batching engine), with the GIL released while the engine works;
//! - [`wait`]: waiting on a request's event channel in short slices so Ctrl-C is seen
//!   (`check_signals`) and the request is cancelled, and the `TextStream` iterator;
//! - [`params`]: a Python `SamplingParams` read field by field into the engine's, validated by
//!   the engine's own rules (`ondo_engine::params`), so Python never repeats them.
//!
//! Results come back as JSON of `RequestOutput` (the `ondo generate --json` form, already tested
//! on the Rust side), which Python turns into vLLM's classes.
//! Errors map to the exceptions a Python user expects (see [`to_py`]); a panic becomes a
//! `RuntimeError`, never an abort or a `PanicException`.

mod engine;
mod params;
mod wait;

use ondo_engine::{EngineError, SamplingParams};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The Python exception for an engine error: bad input is `ValueError` (the message names the
/// field), unreadable models are `OSError`, anything else `RuntimeError`.
pub(crate) fn to_py(e: EngineError) -> PyErr {
    let msg = e.to_string();
    match e {
        EngineError::Param(p) => PyValueError::new_err(p.to_string()),
        EngineError::EmptyPrompt
        | EngineError::PromptTooLong { .. }
        | EngineError::KvCacheTooSmall { .. }
        | EngineError::PromptToken { .. }
        | EngineError::NoChatTemplate(_)
        | EngineError::Template(_) => PyValueError::new_err(msg),
        EngineError::Load(_) | EngineError::Model(_) | EngineError::NoTokenizer(_) => PyOSError::new_err(msg),
        EngineError::Text(_) | EngineError::Internal(_) | EngineError::Constraint(_) => PyRuntimeError::new_err(msg),
    }
}

/// `FileNotFoundError(errno.ENOENT, ..., path)`: `str(e)` and `e.filename` name the path.
pub(crate) fn not_found(path: &str) -> PyErr {
    PyFileNotFoundError::new_err((
        2,
        "No such file or directory (a model folder, a .gguf file or a hub id org/name)",
        path.to_string(),
    ))
}

/// Run `f`, turning a panic into a `RuntimeError` so none crosses into Python.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        Err(PyRuntimeError::new_err(format!("internal error in {what}: {why}")))
    })
}

/// Validate sampling parameters (what `ondo.SamplingParams` does at construction): any object
/// with vLLM's attribute names.
#[pyfunction]
fn check_params(params: &Bound<'_, PyAny>) -> PyResult<()> {
    guard("SamplingParams", || params::from_py(params).map(|_| ()))
}

/// vLLM's default `SamplingParams` as JSON (the engine's `SamplingParams::default()`).
#[pyfunction]
fn default_params_json() -> PyResult<String> {
    serde_json::to_string(&SamplingParams::default()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

#[pymodule]
fn _ondo(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<wait::TextStream>()?;
    m.add_function(wrap_pyfunction!(check_params, m)?)?;
    m.add_function(wrap_pyfunction!(default_params_json, m)?)?;
    Ok(())
}
