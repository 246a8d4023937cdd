//! Where text is generated: a [`Backend`] is a model in this process ([`Local`]) or behind an
//! OpenAI-compatible HTTP API ([`crate::OpenAiEndpoint`]). [`Model`] pairs a backend with
//! sampling parameters and is the `llm` of `prompt | llm`.

use crate::chat::{Message, PromptValue};
use crate::runnable::{impl_bitor, once, Chunks, Runnable};
use crate::{Error, Result};
use ondo_engine::{Llm, Prompt, SamplingParams, StreamItem};
use ondo_text::RenderOptions;
use std::sync::Arc;

/// Something that completes prompts. Both backends take the same [`SamplingParams`], already
/// checked by [`Model::new`].
pub trait Backend: Send + Sync {
    /// What the backend is, for errors and reports: the model's path, or the endpoint's URL.
    fn describe(&self) -> String;

    /// The text of each prompt, in order; all prompts run together.
    fn generate(&self, prompts: &[PromptValue], params: &SamplingParams) -> Result<Vec<String>>;

    /// One prompt's text deltas as they come.
    fn stream(&self, prompt: &PromptValue, params: &SamplingParams) -> Chunks<'static, String>;
}

/// A model in this process. Text prompts are tokenized as `Llm::generate` does (with the
/// tokenizer's special tokens); chat prompts are rendered by the model's chat template with
/// the assistant's turn opened, then tokenized without adding special tokens again.
#[derive(Clone)]
pub struct Local(pub Llm);

impl Local {
    /// This model with `params`, as a runnable step (`prompt | Local(llm).with_params(p)?`).
    pub fn with_params(self, params: SamplingParams) -> Result<Model> {
        Model::new(self, params)
    }

    /// The engine prompt for `prompt`.
    pub fn prompt(&self, prompt: &PromptValue) -> Result<Prompt> {
        match prompt {
            PromptValue::Text(t) => Ok(Prompt::Text(t.clone())),
            PromptValue::Chat(messages) => {
                let json: Vec<serde_json::Value> = messages.iter().map(Message::to_json).collect();
                let opts = RenderOptions {
                    add_generation_prompt: true,
                    ..Default::default()
                };
                let text = self.0.render_chat(&json, &opts)?;
                let ids = self
                    .0
                    .tokenizer()
                    .encode(&text, false)
                    .map_err(ondo_engine::EngineError::from)?;
                Ok(Prompt::Ids(ids))
            }
        }
    }
}

impl Backend for Local {
    fn describe(&self) -> String {
        self.0.source().display().to_string()
    }

    fn generate(&self, prompts: &[PromptValue], params: &SamplingParams) -> Result<Vec<String>> {
        let prompts = prompts.iter().map(|p| self.prompt(p)).collect::<Result<Vec<_>>>()?;
        let outputs = self.0.generate(&prompts, params)?;
        outputs
            .into_iter()
            .map(|o| o.outputs.into_iter().next().map(|c| c.text))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Chain("the engine returned a request without outputs".into()))
    }

    fn stream(&self, prompt: &PromptValue, params: &SamplingParams) -> Chunks<'static, String> {
        let prompt = match self.prompt(prompt) {
            Ok(p) => p,
            Err(e) => return once(Err(e)),
        };
        let deltas = self.0.stream(prompt, params.clone()).filter_map(|item| match item {
            Ok(StreamItem::Delta { text, .. }) => Some(Ok(text)),
            Ok(StreamItem::Done(_)) => None,
            Err(e) => Some(Err(Error::Engine(e))),
        });
        Box::new(deltas)
    }
}

/// A backend with its sampling parameters: a runnable from a [`PromptValue`] to its text.
/// Cloning is cheap (the backend is shared).
#[derive(Clone)]
pub struct Model {
    backend: Arc<dyn Backend>,
    params: SamplingParams,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("backend", &self.backend.describe())
            .field("params", &self.params)
            .finish()
    }
}

impl Model {
    /// `params` are checked here, by `SamplingParams::validate`; a chain step returns one text,
    /// so `n` must be 1 (`best_of` may be larger).
    pub fn new(backend: impl Backend + 'static, params: SamplingParams) -> Result<Model> {
        Model::shared(Arc::new(backend), params)
    }

    /// [`Model::new`] over a backend other models use too (one loaded model, many steps).
    pub fn shared(backend: Arc<dyn Backend>, params: SamplingParams) -> Result<Model> {
        params.validate()?;
        if params.n != 1 {
            return Err(Error::Chain(format!(
                "a chain step returns one text, so n must be 1, got {}",
                params.n
            )));
        }
        Ok(Model { backend, params })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
}

impl Runnable for Model {
    type Input = PromptValue;
    type Output = String;
    fn invoke(&self, prompt: PromptValue) -> Result<String> {
        let mut texts = self.backend.generate(std::slice::from_ref(&prompt), &self.params)?;
        texts
            .pop()
            .ok_or_else(|| Error::Chain(format!("{}: no text came back", self.backend.describe())))
    }
    fn stream<'a>(&'a self, prompt: PromptValue) -> Chunks<'a, String> {
        self.backend.stream(&prompt, &self.params)
    }
    fn batch(&self, prompts: Vec<PromptValue>) -> Result<Vec<String>> {
        self.backend.generate(&prompts, &self.params)
    }
}

impl_bitor!(Model);
