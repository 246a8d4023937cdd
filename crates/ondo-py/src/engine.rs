//! `Engine`: one loaded model and its batching engine, as the Python package sees it.
//!
//! Loading, tokenizing many prompts and waiting for results all run with the GIL released.
//! Requests are built here (`NewRequest`: prompt text and ids, parameters, a cancel flag) and
//! submitted to the engine thread, so a `generate` of many prompts is one batch there; the
//! checks are the engine's own (`Limits::check` in `EngineHandle::submit`).

use crate::wait::{self, TextStream};
use crate::{guard, not_found, params as pyparams, to_py};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ondo_engine::{EngineConfig, Llm, LoadOptions, NewRequest, RequestOutput, SamplingParams};
use ondo_text::RenderOptions;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A prompt from Python: text, or token ids.
#[derive(FromPyObject)]
pub enum PromptArg {
    Text(String),
    Ids(Vec<u32>),
}

/// A loaded model (`ondo.LLM` holds one).
#[pyclass(frozen, module = "ondo._ondo")]
pub struct Engine {
    llm: Llm,
    /// Prompt plus output tokens per request (`max_model_len`, default the model's context).
    max_model_len: usize,
    /// Whether `max_model_len` was given (then `max_tokens` is capped to what fits).
    capped: bool,
    /// `LLM(seed=...)`: requests without a seed get seeds derived from it, in order.
    seed: Option<u64>,
    requests: AtomicU64,
}

#[pymethods]
impl Engine {
    #[new]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments, one each
    #[pyo3(signature = (model, *, max_model_len=None, kv_cache_memory=None, seed=None, threads=None, offline=false, progress=true))]
    fn new(
        py: Python<'_>,
        model: String,
        max_model_len: Option<usize>,
        kv_cache_memory: Option<usize>,
        seed: Option<u64>,
        threads: Option<usize>,
        offline: bool,
        progress: bool,
    ) -> PyResult<Engine> {
        guard("LLM()", || {
            if looks_like_path(&model) && !Path::new(&model).exists() {
                return Err(not_found(&model));
            }
            let engine = EngineConfig {
                kv_cache_memory,
                ..Default::default()
            };
            let opts = LoadOptions {
                offline,
                threads,
                engine,
                ..Default::default()
            };
            let bar = load_bar(progress, &model);
            let loaded = py.detach(|| {
                let llm = Llm::load(&model, &opts)?;
                // Start the engine now (KV cache sized), as vLLM's LLM() does: errors show here.
                let context = llm.engine()?.limits().context;
                Ok::<_, ondo_engine::EngineError>((llm, context))
            });
            bar.finish_and_clear();
            let (llm, context) = loaded.map_err(to_py)?;
            if let Some(m) = max_model_len {
                if m == 0 || m > context {
                    return Err(PyValueError::new_err(format!(
                        "max_model_len must be between 1 and the model's context ({context}), got {m}"
                    )));
                }
            }
            Ok(Engine {
                llm,
                max_model_len: max_model_len.unwrap_or(context),
                capped: max_model_len.is_some(),
                seed,
                requests: AtomicU64::new(0),
            })
        })
    }

    /// Run every prompt (each with its `SamplingParams`) on the engine at once; one
    /// `RequestOutput` JSON per prompt, in order. Ctrl-C cancels them all.
    fn generate(
        &self,
        py: Python<'_>,
        prompts: Vec<PromptArg>,
        params: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<String>> {
        guard("generate", || {
            if prompts.len() != params.len() {
                return Err(PyValueError::new_err(format!(
                    "sampling_params: got {} for {} prompts",
                    params.len(),
                    prompts.len()
                )));
            }
            let params = params.iter().map(pyparams::from_py).collect::<PyResult<Vec<_>>>()?;
            let requests = py.detach(|| {
                prompts
                    .into_iter()
                    .zip(params)
                    .enumerate()
                    .map(|(i, (prompt, p))| self.request(i.to_string(), prompt, p, false))
                    .collect::<PyResult<Vec<_>>>()
            })?;
            let outputs = wait::run_all(py, self.handle()?, requests)?;
            outputs.iter().map(to_json).collect()
        })
    }

    /// Stream one prompt: an iterator of `(sequence index, text delta)`, then its output.
    fn stream(&self, py: Python<'_>, prompt: PromptArg, params: &Bound<'_, PyAny>) -> PyResult<TextStream> {
        guard("stream", || {
            let params = pyparams::from_py(params)?;
            let req = py.detach(|| self.request("stream".into(), prompt, params, true))?;
            TextStream::start(self.handle()?, req)
        })
    }

    /// The chat prompt for `messages` (JSON list of `{"role", "content"}`), rendered by the
    /// model's template as transformers' `apply_chat_template(tokenize=False)` does.
    #[pyo3(signature = (messages_json, add_generation_prompt=true, continue_final_message=false))]
    fn render_chat(
        &self,
        messages_json: &str,
        add_generation_prompt: bool,
        continue_final_message: bool,
    ) -> PyResult<String> {
        guard("apply_chat_template", || {
            let messages: Vec<Value> =
                serde_json::from_str(messages_json).map_err(|e| PyValueError::new_err(format!("messages: {e}")))?;
            let opts = RenderOptions {
                add_generation_prompt,
                continue_final_message,
                ..Default::default()
            };
            self.llm.render_chat(&messages, &opts).map_err(to_py)
        })
    }

    /// Token ids of `text`.
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn encode(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<u32>> {
        guard("encode", || {
            self.llm
                .tokenizer()
                .encode(text, add_special_tokens)
                .map_err(|e| to_py(e.into()))
        })
    }

    /// The text of `ids`.
    #[pyo3(signature = (ids, skip_special_tokens=false))]
    fn decode(&self, ids: Vec<u32>, skip_special_tokens: bool) -> PyResult<String> {
        guard("decode", || {
            self.llm
                .tokenizer()
                .decode(&ids, skip_special_tokens)
                .map_err(|e| to_py(e.into()))
        })
    }

    /// Each id decoded on its own (vLLM's `Logprob.decoded_token`).
    fn token_texts(&self, ids: Vec<u32>) -> PyResult<Vec<String>> {
        guard("decode", || {
            let tok = self.llm.tokenizer();
            ids.iter()
                .map(|&id| tok.decode(&[id], false).map_err(|e| to_py(e.into())))
                .collect()
        })
    }

    /// The model's sampling defaults (generation_config.json as transformers reads it) as JSON.
    fn default_params_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.llm.default_params()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Where the model was loaded from.
    #[getter]
    fn source(&self) -> String {
        self.llm.source().display().to_string()
    }
    #[getter]
    fn max_model_len(&self) -> usize {
        self.max_model_len
    }
    #[getter]
    fn vocab_size(&self) -> usize {
        self.llm.tokenizer().vocab_size()
    }
    #[getter]
    fn eos_token_ids(&self) -> Vec<u32> {
        self.llm.eos_ids().to_vec()
    }
    #[getter]
    fn bos_token_id(&self) -> Option<u32> {
        self.llm.tokenizer().bos_token_id()
    }
    #[getter]
    fn eos_token_id(&self) -> Option<u32> {
        self.llm.tokenizer().eos_token_id()
    }
    #[getter]
    fn pad_token_id(&self) -> Option<u32> {
        self.llm.tokenizer().pad_token_id()
    }
    /// generation_config.json as written, for a model folder that has one.
    #[getter]
    fn generation_config(&self) -> Option<String> {
        std::fs::read_to_string(self.llm.source().join("generation_config.json")).ok()
    }
    /// The chat template's source, when the model has one.
    #[getter]
    fn chat_template(&self) -> Option<String> {
        self.llm.chat_template().map(|t| t.source().to_string())
    }
    #[getter]
    fn bos_token(&self) -> Option<String> {
        self.llm
            .tokenizer()
            .bos_token_id()
            .and_then(|id| self.llm.tokenizer().id_to_token(id))
    }
    #[getter]
    fn eos_token(&self) -> Option<String> {
        self.llm
            .tokenizer()
            .eos_token_id()
            .and_then(|id| self.llm.tokenizer().id_to_token(id))
    }

    /// The engine's counters (running and waiting requests, tokens, aborted requests).
    fn stats(&self) -> PyResult<HashMap<&'static str, u64>> {
        let s = self.handle()?.stats();
        Ok(HashMap::from([
            ("requests_running", s.requests_running.load(Relaxed)),
            ("requests_waiting", s.requests_waiting.load(Relaxed)),
            ("requests_finished", s.requests_finished.load(Relaxed)),
            ("requests_aborted", s.requests_aborted.load(Relaxed)),
            ("prompt_tokens", s.prompt_tokens.load(Relaxed)),
            ("generation_tokens", s.generation_tokens.load(Relaxed)),
        ]))
    }
}

impl Engine {
    fn handle(&self) -> PyResult<&ondo_engine::EngineHandle> {
        self.llm.engine().map_err(to_py)
    }

    /// The request for one prompt: tokenized as transformers' `tokenizer(text)` does, its
    /// `max_tokens` capped to `max_model_len` when that was given, its seed derived from the
    /// LLM's seed when it has none.
    fn request(&self, id: String, prompt: PromptArg, mut params: SamplingParams, stream: bool) -> PyResult<NewRequest> {
        let (text, ids) = match prompt {
            PromptArg::Text(t) => {
                let ids = self.llm.tokenizer().encode(&t, true).map_err(|e| to_py(e.into()))?;
                (Some(t), ids)
            }
            PromptArg::Ids(ids) => (None, ids),
        };
        if self.capped {
            if ids.len() >= self.max_model_len {
                return Err(PyValueError::new_err(format!(
                    "prompt: {} tokens do not leave room to generate within max_model_len={}",
                    ids.len(),
                    self.max_model_len
                )));
            }
            let room = self.max_model_len - ids.len();
            params.max_tokens = Some(params.max_tokens.map_or(room, |m| m.min(room)));
            params.min_tokens = params.min_tokens.min(room);
        }
        if params.seed.is_none() {
            if let Some(base) = self.seed {
                params.seed = Some(mix(base, self.requests.fetch_add(1, Relaxed)));
            }
        }
        Ok(NewRequest {
            id,
            prompt: text,
            prompt_ids: ids,
            params,
            stream,
            cancel: Some(Arc::new(AtomicBool::new(false))),
        })
    }
}

/// The n-th request seed of an LLM seeded with `base` (splitmix64, so nearby seeds differ).
fn mix(base: u64, n: u64) -> u64 {
    let mut z = base.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A model argument that names a file or folder rather than a hub id.
fn looks_like_path(model: &str) -> bool {
    model.starts_with(['/', '.', '~']) || model.ends_with(".gguf") || !ondo_hub::is_hub_id(model)
}

/// A spinner on stderr while the model loads (drawn only when stderr is a terminal).
fn load_bar(progress: bool, model: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(format!("loading {model}"));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

pub(crate) fn to_json(out: &RequestOutput) -> PyResult<String> {
    serde_json::to_string(out).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}
