//! The `Llm` handle: a loaded model, its tokenizer and its generation defaults.
//!
//! `Llm::load` takes what a user types: a model folder, a `.gguf` file, or a hub id.

use crate::generate::{generate, ModelRef};
use crate::{EngineError, RequestOutput, SamplingParams};
use ondo_kernels::ThreadPool;
use ondo_model::{KvDtype, Model, Workspace};
use ondo_text::{ChatTemplate, RenderOptions, Tokenizer};
use serde_json::Value;
use std::path::{Path, PathBuf};

use std::sync::Arc;

/// How to find and load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Never touch the network (`--offline`, `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Worker threads (default: `ONDO_NUM_THREADS`, else the cores).
    pub threads: Option<usize>,
    /// KV cache element type (default: f32 for HF folders, f16 for GGUF files).
    pub kv_dtype: Option<KvDtype>,
}

/// A prompt as text (tokenized with the tokenizer's special tokens) or as token ids.
#[derive(Debug, Clone)]
pub enum Prompt {
    Text(String),
    Ids(Vec<u32>),
}

/// A loaded model ready to generate. Cloning is cheap (the weights are shared).
#[derive(Clone)]
pub struct Llm {
    model: Arc<dyn Model>,
    tokenizer: Arc<Tokenizer>,
    eos_ids: Vec<u32>,
    defaults: SamplingParams,
    chat_template: Option<Arc<ChatTemplate>>,
    kv_dtype: KvDtype,
    pool: Arc<ThreadPool>,
    source: PathBuf,
}

impl Llm {
    /// Load a model folder, a `.gguf` file or a hub id (`org/name[@revision]`).
    pub fn load(model: &str, opts: &LoadOptions) -> Result<Llm, EngineError> {
        let path = crate::load::resolve(model, opts.offline)?;
        let loaded = crate::load::load_path(&path)?;
        let defaults = defaults_from(loaded.text.generation_config.as_ref());
        let threads = opts.threads.map_or_else(ThreadPool::from_env, ThreadPool::new);
        Ok(Llm {
            model: Arc::from(loaded.model),
            tokenizer: Arc::new(loaded.text.tokenizer),
            eos_ids: loaded.text.eos_ids,
            defaults,
            chat_template: loaded.text.chat_template.map(Arc::new),
            kv_dtype: opts.kv_dtype.unwrap_or(loaded.kv_dtype),
            pool: Arc::new(threads),
            source: loaded.path,
        })
    }

    pub fn model(&self) -> &dyn Model {
        &*self.model
    }
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    /// Token ids that end a sequence.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
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
        let template =
            self.chat_template.as_ref().ok_or_else(|| EngineError::NoChatTemplate(self.source.display().to_string()))?;
        Ok(template.render(messages, opts)?)
    }

    /// Answer the conversation `messages`; the output text is the new assistant turn only.
    pub fn chat(
        &self,
        messages: &[Value],
        params: &SamplingParams,
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<RequestOutput, EngineError> {
        let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
        let text = self.render_chat(messages, &opts)?;
        // The template already wrote the special tokens: add none again (no double BOS).
        let ids = self.tokenizer.encode(&text, false)?;
        let mut out = self.run(Some(text), ids, params, sink)?;
        out.request_id = "chat".into();
        Ok(out)
    }

    /// Token ids of a prompt: text is tokenized as transformers' `tokenizer(text)` does.
    pub fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>, EngineError> {
        match prompt {
            Prompt::Text(text) => Ok(self.tokenizer.encode(text, true)?),
            Prompt::Ids(ids) => Ok(ids.clone()),
        }
    }

    /// Run every prompt to completion, in order.
    pub fn generate(&self, prompts: &[Prompt], params: &SamplingParams) -> Result<Vec<RequestOutput>, EngineError> {
        prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut out = self.generate_streaming(p, params, &mut |_, _| true)?;
                out.request_id = i.to_string();
                Ok(out)
            })
            .collect()
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
        let text = match prompt {
            Prompt::Text(t) => Some(t.clone()),
            Prompt::Ids(_) => None,
        };
        self.run(text, ids, params, sink)
    }

    /// Stream one prompt's deltas from a worker thread. Dropping the stream cancels the
    /// request at its next token.
    pub fn stream(&self, prompt: Prompt, params: SamplingParams) -> Stream {
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let llm = self.clone();
        std::thread::spawn(move || {
            let mut sink = |index: usize, text: &str| tx.send(Ok(StreamItem::Delta { index, text: text.to_string() })).is_ok();
            let result = llm.generate_streaming(&prompt, &params, &mut sink);
            let _ = tx.send(result.map(StreamItem::Done));
        });
        Stream { rx }
    }

    fn run(
        &self,
        text: Option<String>,
        ids: Vec<u32>,
        params: &SamplingParams,
        sink: &mut dyn FnMut(usize, &str) -> bool,
    ) -> Result<RequestOutput, EngineError> {
        let mut ws = Workspace::with_pool(self.model.hparams(), 64, self.pool.clone());
        let m = ModelRef { model: &*self.model, tokenizer: &self.tokenizer, eos_ids: &self.eos_ids, kv_dtype: self.kv_dtype };
        generate(&m, &mut ws, text, ids, params, sink)
    }
}

/// What a [`Stream`] yields: text deltas of sequence `index`, then the finished output.
#[derive(Debug, Clone)]
pub enum StreamItem {
    Delta { index: usize, text: String },
    Done(RequestOutput),
}

/// Deltas of a request running on a worker thread (see [`Llm::stream`]).
pub struct Stream {
    rx: std::sync::mpsc::Receiver<Result<StreamItem, EngineError>>,
}

impl Iterator for Stream {
    type Item = Result<StreamItem, EngineError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

/// Sampling defaults as transformers reads them from generation_config.json: without
/// `do_sample: true` decoding is greedy.
fn defaults_from(gen: Option<&Value>) -> SamplingParams {
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
