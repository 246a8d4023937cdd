//! The `Llm` handle: a loaded model, its tokenizer and its generation defaults.
//!
//! `Llm::load` takes what a user types: a model folder, a `.gguf` file, or a hub id.

use crate::core::{EngineConfig, Event, ModelParts, NewRequest};
use crate::engine::EngineHandle;
use crate::{EngineError, RequestOutput, SamplingParams};
use ondo_kernels::ThreadPool;
use ondo_model::load::QuantizeAtLoad;
use ondo_model::{KvDtype, Model};
use ondo_text::{ChatTemplate, RenderOptions, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::UnboundedReceiver;

/// How to find and load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Never touch the network (`--offline`, `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Worker threads (default: `ONDO_NUM_THREADS`, else the cores).
    pub threads: Option<usize>,
    /// KV cache element type (default: f32 for HF folders, f16 for GGUF files).
    pub kv_dtype: Option<KvDtype>,
    /// KV cache size, batch limits, prefix caching.
    pub engine: EngineConfig,
    /// Quantize the weights while loading (`--quantize q4_k_m`): an HF folder then runs with
    /// GGUF block formats, mixed as llama.cpp's scheme of that name.
    pub quantize: Option<ondo_model::Scheme>,
}

/// A prompt as text (tokenized with the tokenizer's special tokens) or as token ids.
#[derive(Debug, Clone)]
pub enum Prompt {
    Text(String),
    Ids(Vec<u32>),
}

/// A loaded model ready to generate. Cloning is cheap (the weights are shared).
/// Every clone submits to the same engine thread (started on first use), so requests from
/// many threads are batched together.
#[derive(Clone)]
pub struct Llm {
    parts: ModelParts,
    defaults: SamplingParams,
    chat_template: Option<Arc<ChatTemplate>>,
    source: PathBuf,
    config: EngineConfig,
    engine: Arc<OnceLock<Result<EngineHandle, String>>>,
}

impl Llm {
    /// Load a model folder, a `.gguf` file or a hub id (`org/name[@revision]`).
    pub fn load(model: &str, opts: &LoadOptions) -> Result<Llm, EngineError> {
        let path = crate::load::resolve(model, opts.offline)?;
        let threads = opts.threads.map_or_else(ThreadPool::from_env, ThreadPool::new);
        let quant = opts.quantize.map(|scheme| QuantizeAtLoad { scheme, pool: &threads });
        let loaded = crate::load::load_path_with(&path, quant.as_ref())?;
        let defaults = defaults_from(loaded.text.generation_config.as_ref());
        let parts = ModelParts {
            model: Arc::from(loaded.model),
            tokenizer: Arc::new(loaded.text.tokenizer),
            eos_ids: loaded.text.eos_ids.into(),
            // a model quantized at load runs as its GGUF would: f16 KV cache (llama.cpp's default)
            kv_dtype: opts.kv_dtype.unwrap_or(match opts.quantize {
                Some(_) => KvDtype::F16,
                None => loaded.kv_dtype,
            }),
            pool: Arc::new(threads),
        };
        Ok(Llm {
            parts,
            defaults,
            chat_template: loaded.text.chat_template.map(Arc::new),
            source: loaded.path,
            config: opts.engine.clone(),
            engine: Arc::new(OnceLock::new()),
        })
    }

    pub fn model(&self) -> &dyn Model {
        &*self.parts.model
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.parts.tokenizer
    }
    /// Token ids that end a sequence.
    pub fn eos_ids(&self) -> &[u32] {
        &self.parts.eos_ids
    }
    /// The model, tokenizer, stop ids, KV type and thread pool an engine is built from.
    pub fn parts(&self) -> &ModelParts {
        &self.parts
    }

    /// The engine every request of this model runs on (started on first use).
    pub fn engine(&self) -> Result<&EngineHandle, EngineError> {
        let started = self
            .engine
            .get_or_init(|| EngineHandle::start(self.parts.clone(), &self.config).map_err(|e| e.to_string()));
        started.as_ref().map_err(|e| EngineError::Internal(e.clone()))
    }
    /// Where the model was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }
    /// Sampling defaults from generation_config.json (as transformers applies them).
    pub fn default_params(&self) -> SamplingParams {
        self.defaults.clone()
    }

    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_deref()
    }

    /// The chat prompt for `messages` (`{"role", "content"}` objects), rendered by the model's
    /// template with the assistant's turn opened, as transformers' `apply_chat_template` does.
    pub fn render_chat(&self, messages: &[Value], opts: &RenderOptions) -> Result<String, EngineError> {
        let template = self
            .chat_template
            .as_ref()
            .ok_or_else(|| EngineError::NoChatTemplate(self.source.display().to_string()))?;
        Ok(template.render(messages, opts)?)
    }

    /// Answer the conversation `messages`; the output text is the new assistant turn only.
    pub fn chat(
        &self,
        messages: &[Value],
        params: &SamplingParams,
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<RequestOutput, EngineError> {
        let opts = RenderOptions {
            add_generation_prompt: true,
            ..Default::default()
        };
        let text = self.render_chat(messages, &opts)?;
        // The template already wrote the special tokens: add none again (no double BOS).
        let ids = self.parts.tokenizer.encode(&text, false)?;
        let mut out = self.run(Some(text), ids, params, sink)?;
        out.request_id = "chat".into();
        Ok(out)
    }

    /// Token ids of a prompt: text is tokenized as transformers' `tokenizer(text)` does.
    pub fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        match prompt {
            Prompt::Text(text) => Ok(self.parts.tokenizer.encode(text, true)?),
            Prompt::Ids(ids) => Ok(ids.clone()),
        }
    }

    /// Run every prompt to completion, all scheduled together; outputs in prompt order.
    pub fn generate(&self, prompts: &[Prompt], params: &SamplingParams) -> Result<Vec<RequestOutput>, EngineError> {
        let receivers = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| self.submit(i.to_string(), p, params, false))
            .collect::<Result<Vec<_>, _>>()?;
        receivers.into_iter().map(Llm::wait).collect()
    }

    /// Run one prompt, calling `sink(sequence_index, text_delta)` as text settles; `sink`
    /// returning false stops the request (finish_reason "abort").
    pub fn generate_streaming(
        &self,
        prompt: &Prompt,
        params: &SamplingParams,
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<RequestOutput, EngineError> {
        let ids = self.prompt_ids(prompt)?;
        self.run(prompt_text(prompt), ids, params, sink)
    }

    /// Stream one prompt's deltas as the engine produces them. Dropping the stream cancels the
    /// request at its next step.
    pub fn stream(&self, prompt: Prompt, params: SamplingParams) -> Stream {
        match self.submit(String::new(), &prompt, &params, true) {
            Ok(rx) => Stream {
                rx: Some(rx),
                error: None,
            },
            Err(e) => Stream {
                rx: None,
                error: Some(e),
            },
        }
    }

    /// Queue a prompt on the engine; its events come on the receiver.
    pub fn submit(
        &self,
        id: String,
        prompt: &Prompt,
        params: &SamplingParams,
        stream: bool,
    ) -> Result<UnboundedReceiver<Event>, EngineError> {
        let prompt_ids = self.prompt_ids(prompt)?;
        let req = NewRequest {
            id,
            prompt: prompt_text(prompt),
            prompt_ids,
            params: params.clone(),
            stream,
            cancel: None,
        };
        self.engine()?.submit(req)
    }

    /// Wait for a submitted request's output (its deltas are skipped).
    pub fn wait(mut rx: UnboundedReceiver<Event>) -> Result<RequestOutput, EngineError> {
        wait_done(&mut rx, &AtomicBool::new(false), &mut |_, _| true)
    }

    /// Stream `ids` to `sink` until done; `sink` returning false cancels the request.
    fn run(
        &self,
        text: Option<String>,
        ids: Vec<u32>,
        params: &SamplingParams,
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<RequestOutput, EngineError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let req = NewRequest {
            id: String::new(),
            prompt: text,
            prompt_ids: ids,
            params: params.clone(),
            stream: true,
            cancel: Some(cancel.clone()),
        };
        let mut rx = self.engine()?.submit(req)?;
        wait_done(&mut rx, &cancel, sink)
    }
}

/// The text of a prompt given as text (what `RequestOutput::prompt` reports).
fn prompt_text(prompt: &Prompt) -> Option<String> {
    match prompt {
        Prompt::Text(t) => Some(t.clone()),
        Prompt::Ids(_) => None,
    }
}

/// Read a request's events until it is done, passing deltas to `sink`; `sink` returning false
/// sets `cancel`: the engine aborts the request at its next step and reports its output.
fn wait_done(
    rx: &mut UnboundedReceiver<Event>,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(usize, &str) -> bool,
) -> Result<RequestOutput, EngineError> {
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Delta { index, text, .. } => {
                if !cancel.load(Ordering::Relaxed) && !sink(index, &text) {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            Event::Done(out) => return Ok(*out),
            Event::Failed(e) => return Err(e),
        }
    }
    Err(EngineError::Internal("the engine thread stopped".into()))
}

/// What a [`Stream`] yields: text deltas of sequence `index`, then the finished output.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Delta { index: usize, text: String },
    Done(RequestOutput),
}

/// Deltas of a request running on the engine (see [`Llm::stream`]).
pub struct Stream {
    rx: Option<UnboundedReceiver<Event>>,
    error: Option<EngineError>,
}

impl Iterator for Stream {
    type Item = Result<StreamItem, EngineError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let rx = self.rx.as_mut()?;
        let item = match rx.blocking_recv() {
            Some(Event::Delta { index, text, .. }) => Ok(StreamItem::Delta { index, text }),
            Some(Event::Done(out)) => Ok(StreamItem::Done(*out)),
            Some(Event::Failed(e)) => Err(e),
            None => Err(EngineError::Internal("the engine thread stopped".into())),
        };
        if !matches!(item, Ok(StreamItem::Delta { .. })) {
            self.rx = None;
        }
        Some(item)
    }
}

/// Sampling defaults as transformers reads them from generation_config.json: without
/// `do_sample: true` decoding is greedy.
pub(crate) fn defaults_from(gen: Option<&Value>) -> SamplingParams {
    let mut p = SamplingParams::default();
    let Some(g) = gen else { return p };
    let f = |k: &str| g.get(k).and_then(Value::as_f64);
    if g.get("do_sample").and_then(Value::as_bool) == Some(true) {
        p.temperature = f("temperature").unwrap_or(1.0) as f32;
        p.top_p = f("top_p").unwrap_or(1.0) as f32;
        p.top_k = f("top_k").map_or(0, |v| v as i32);
    } else {
        p.temperature = 0.0;
    }
    if let Some(r) = f("repetition_penalty") {
        p.repetition_penalty = r as f32;
    }
    if let Some(n) = g.get("max_new_tokens").and_then(Value::as_u64) {
        p.max_tokens = Some(n as usize);
    }
    p
}
