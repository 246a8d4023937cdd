//! Sequential chains: steps of (template, model) where each step's output fills the next
//! step's variable. [`SimpleSequentialChain`] is the single-input form (one variable per step,
//! each fed the previous step's text); [`SequentialChain`] the named-variables form (each step
//! writes its output under a name, and later steps use any input or earlier output by name).
//! Both report every step's rendered prompt and text ([`StepRecord`]).

use crate::backend::Model;
use crate::chat::{PromptValue, Template};
use crate::runnable::{impl_bitor, once, Chunks, Runnable};
use crate::template::check_vars;
use crate::{Error, Result, Vars};
use serde::Serialize;

/// One step: a template and the model that answers it; its text is stored as `output_key`.
#[derive(Debug, Clone)]
pub struct LlmChain {
    pub prompt: Template,
    pub model: Model,
    pub output_key: String,
}

impl LlmChain {
    /// A step whose output is called `text` (change it with [`LlmChain::with_output_key`]).
    pub fn new(prompt: impl Into<Template>, model: Model) -> Self {
        Self {
            prompt: prompt.into(),
            model,
            output_key: "text".into(),
        }
    }

    pub fn with_output_key(mut self, key: impl Into<String>) -> Self {
        self.output_key = key.into();
        self
    }

    pub fn variables(&self) -> &[String] {
        self.prompt.variables()
    }

    /// Render with `vars` and run, streaming the text to `sink` (which returns false to stop).
    pub fn run_streaming(&self, vars: &Vars, sink: &mut dyn FnMut(&str) -> bool) -> Result<StepRecord> {
        let prompt = self.prompt.format(vars)?;
        let mut text = String::new();
        for delta in self.model.stream(prompt.clone()) {
            let delta = delta?;
            text.push_str(&delta);
            if !sink(&delta) {
                break;
            }
        }
        Ok(StepRecord {
            output_key: self.output_key.clone(),
            prompt,
            text,
        })
    }
}

impl Runnable for LlmChain {
    type Input = Vars;
    type Output = String;
    fn invoke(&self, vars: Vars) -> Result<String> {
        self.model.invoke(self.prompt.format(&vars)?)
    }
    fn stream<'a>(&'a self, vars: Vars) -> Chunks<'a, String> {
        match self.prompt.format(&vars) {
            Ok(prompt) => self.model.stream(prompt),
            Err(e) => once(Err(e)),
        }
    }
    fn batch(&self, inputs: Vec<Vars>) -> Result<Vec<String>> {
        let prompts = inputs
            .iter()
            .map(|v| self.prompt.format(v))
            .collect::<Result<Vec<_>>>()?;
        self.model.batch(prompts)
    }
}

/// What one step of a run saw and said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub output_key: String,
    /// The prompt as rendered from the step's template.
    pub prompt: PromptValue,
    pub text: String,
}

/// What a step's variables are filled from.
enum Feed {
    /// The chain's one input feeds step 1; each later step gets the previous step's text.
    Simple(String),
    /// Inputs by name, then earlier steps' outputs by their keys.
    Named(Vars),
}

/// The variables of step `i`, given the records of the steps before it.
fn step_vars(step: &LlmChain, i: usize, feed: &Feed, done: &[StepRecord]) -> Vars {
    match feed {
        Feed::Simple(input) => {
            let value = if i == 0 { input } else { &done[i - 1].text };
            step.variables().iter().map(|v| (v.clone(), value.clone())).collect()
        }
        Feed::Named(inputs) => step
            .variables()
            .iter()
            .map(|v| {
                let from_step = done.iter().rev().find(|r| r.output_key == *v).map(|r| &r.text);
                (
                    v.clone(),
                    from_step.or_else(|| inputs.get(v)).cloned().unwrap_or_default(),
                )
            })
            .collect(),
    }
}

/// Run `steps` for every feed, one step at a time over all of them (so a model sees the whole
/// batch at once); each feed's records in step order.
fn run_steps(steps: &[LlmChain], feeds: &[Feed]) -> Result<Vec<Vec<StepRecord>>> {
    let mut records: Vec<Vec<StepRecord>> = feeds.iter().map(|_| Vec::with_capacity(steps.len())).collect();
    for (i, step) in steps.iter().enumerate() {
        let prompts = feeds
            .iter()
            .zip(&records)
            .map(|(feed, done)| step.prompt.format(&step_vars(step, i, feed, done)))
            .collect::<Result<Vec<_>>>()?;
        let texts = step.model.batch(prompts.clone())?;
        for ((done, prompt), text) in records.iter_mut().zip(prompts).zip(texts) {
            done.push(StepRecord {
                output_key: step.output_key.clone(),
                prompt,
                text,
            });
        }
    }
    Ok(records)
}

/// Every step but the last run on `feed`, then the last streamed to `sink`.
fn run_streaming(steps: &[LlmChain], feed: Feed, sink: &mut dyn FnMut(&str) -> bool) -> Result<Vec<StepRecord>> {
    let (last, rest) = steps
        .split_last()
        .ok_or_else(|| Error::Chain("a chain needs at least one step".into()))?;
    let mut done = run_steps(rest, std::slice::from_ref(&feed))?.pop().unwrap_or_default();
    let vars = step_vars(last, rest.len(), &feed, &done);
    done.push(last.run_streaming(&vars, sink)?);
    Ok(done)
}

/// The last step's text deltas, after every earlier step ran.
fn stream_last(steps: &[LlmChain], feed: Feed) -> Chunks<'_, String> {
    let Some((last, rest)) = steps.split_last() else {
        return once(Err(Error::Chain("no steps".into())));
    };
    match run_steps(rest, std::slice::from_ref(&feed)) {
        Ok(mut records) => {
            let done = records.pop().unwrap_or_default();
            last.stream(step_vars(last, rest.len(), &feed, &done))
        }
        Err(e) => once(Err(e)),
    }
}

fn last_text(records: Vec<StepRecord>) -> Result<String> {
    records
        .into_iter()
        .last()
        .map(|r| r.text)
        .ok_or_else(|| Error::Chain("no steps ran".into()))
}

/// Steps of one variable each: the input fills step 1's variable, each step's text fills the
/// next step's. As a [`Runnable`] it maps the input text to the last step's text.
#[derive(Debug, Clone)]
pub struct SimpleSequentialChain {
    steps: Vec<LlmChain>,
}

impl SimpleSequentialChain {
    /// Every step must have exactly one variable; the error names the step and what it has.
    pub fn new(steps: Vec<LlmChain>) -> Result<Self> {
        if steps.is_empty() {
            return Err(Error::Chain("a chain needs at least one step".into()));
        }
        for (i, s) in steps.iter().enumerate() {
            if s.variables().len() != 1 {
                let has = format!("{:?}", s.variables());
                return Err(Error::Chain(format!(
                    "step {} must have exactly one variable, it has {has}",
                    i + 1
                )));
            }
        }
        Ok(Self { steps })
    }

    pub fn steps(&self) -> &[LlmChain] {
        &self.steps
    }

    /// Run every step; the records hold each step's rendered prompt and text.
    pub fn run(&self, input: &str) -> Result<Vec<StepRecord>> {
        let feed = Feed::Simple(input.to_string());
        Ok(run_steps(&self.steps, std::slice::from_ref(&feed))?
            .pop()
            .unwrap_or_default())
    }

    /// [`SimpleSequentialChain::run`], streaming the last step's text to `sink`.
    pub fn run_streaming(&self, input: &str, sink: &mut dyn FnMut(&str) -> bool) -> Result<Vec<StepRecord>> {
        run_streaming(&self.steps, Feed::Simple(input.to_string()), sink)
    }
}

impl Runnable for SimpleSequentialChain {
    type Input = String;
    type Output = String;
    fn invoke(&self, input: String) -> Result<String> {
        last_text(self.run(&input)?)
    }
    fn stream<'a>(&'a self, input: String) -> Chunks<'a, String> {
        stream_last(&self.steps, Feed::Simple(input))
    }
    fn batch(&self, inputs: Vec<String>) -> Result<Vec<String>> {
        let feeds: Vec<Feed> = inputs.into_iter().map(Feed::Simple).collect();
        run_steps(&self.steps, &feeds)?.into_iter().map(last_text).collect()
    }
}

/// Steps that read variables by name: the chain's inputs and the outputs of earlier steps
/// (each step's `output_key`). The wiring is checked when the chain is made. As a
/// [`Runnable`] it maps the inputs to the output variables.
#[derive(Debug, Clone)]
pub struct SequentialChain {
    steps: Vec<LlmChain>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

impl SequentialChain {
    /// A chain with the given input and output variables. Every variable a step uses must be an
    /// input or an earlier step's output; output keys must be new names.
    pub fn new<I: Into<String>, O: Into<String>>(
        steps: Vec<LlmChain>,
        input_variables: impl IntoIterator<Item = I>,
        output_variables: impl IntoIterator<Item = O>,
    ) -> Result<Self> {
        let inputs: Vec<String> = input_variables.into_iter().map(Into::into).collect();
        let outputs: Vec<String> = output_variables.into_iter().map(Into::into).collect();
        if steps.is_empty() {
            return Err(Error::Chain("a chain needs at least one step".into()));
        }
        let mut known = inputs.clone();
        for (i, s) in steps.iter().enumerate() {
            if let Some(v) = s.variables().iter().find(|v| !known.contains(v)) {
                return Err(Error::Chain(format!(
                    "step {} uses variable {v:?}, which is neither an input ({inputs:?}) nor an earlier step's output",
                    i + 1
                )));
            }
            if known.contains(&s.output_key) {
                let key = &s.output_key;
                return Err(Error::Chain(format!(
                    "step {} writes {key:?}, which is already an input or an earlier output",
                    i + 1
                )));
            }
            known.push(s.output_key.clone());
        }
        if let Some(o) = outputs.iter().find(|o| !known.contains(o)) {
            return Err(Error::Chain(format!(
                "output variable {o:?} is neither an input nor a step's output"
            )));
        }
        Ok(Self { steps, inputs, outputs })
    }

    /// The inputs are the variables no earlier step writes; the outputs are every step's.
    pub fn from_steps(steps: Vec<LlmChain>) -> Result<Self> {
        let inputs = inputs_of(steps.iter().map(|s| (s.variables(), s.output_key.as_str())));
        let outputs: Vec<String> = steps.iter().map(|s| s.output_key.clone()).collect();
        Self::new(steps, inputs, outputs)
    }

    pub fn steps(&self) -> &[LlmChain] {
        &self.steps
    }
    pub fn input_variables(&self) -> &[String] {
        &self.inputs
    }
    pub fn output_variables(&self) -> &[String] {
        &self.outputs
    }

    /// Run every step; `vars` must hold exactly the input variables.
    pub fn run(&self, vars: Vars) -> Result<Vec<StepRecord>> {
        check_vars(&vars, &self.inputs)?;
        Ok(run_steps(&self.steps, &[Feed::Named(vars)])?.pop().unwrap_or_default())
    }

    /// [`SequentialChain::run`], streaming the last step's text to `sink`.
    pub fn run_streaming(&self, vars: Vars, sink: &mut dyn FnMut(&str) -> bool) -> Result<Vec<StepRecord>> {
        check_vars(&vars, &self.inputs)?;
        run_streaming(&self.steps, Feed::Named(vars), sink)
    }

    fn outputs_of(&self, vars: Vars, records: Vec<StepRecord>) -> Vars {
        let mut all = vars;
        all.extend(records.into_iter().map(|r| (r.output_key, r.text)));
        all.into_iter().filter(|(k, _)| self.outputs.contains(k)).collect()
    }
}

impl Runnable for SequentialChain {
    type Input = Vars;
    type Output = Vars;
    fn invoke(&self, vars: Vars) -> Result<Vars> {
        let records = self.run(vars.clone())?;
        Ok(self.outputs_of(vars, records))
    }
    fn batch(&self, inputs: Vec<Vars>) -> Result<Vec<Vars>> {
        for v in &inputs {
            check_vars(v, &self.inputs)?;
        }
        let feeds: Vec<Feed> = inputs.iter().cloned().map(Feed::Named).collect();
        let records = run_steps(&self.steps, &feeds)?;
        Ok(inputs
            .into_iter()
            .zip(records)
            .map(|(v, r)| self.outputs_of(v, r))
            .collect())
    }
}

/// The variables of steps given as (variables, output key) that no earlier step writes, in
/// order of first use: the inputs of a chain of them.
pub(crate) fn inputs_of<'a>(steps: impl Iterator<Item = (&'a [String], &'a str)>) -> Vec<String> {
    let mut written: Vec<&str> = Vec::new();
    let mut inputs: Vec<String> = Vec::new();
    for (vars, key) in steps {
        for v in vars {
            if !written.contains(&v.as_str()) && !inputs.contains(v) {
                inputs.push(v.clone());
            }
        }
        written.push(key);
    }
    inputs
}

impl_bitor!(LlmChain, SimpleSequentialChain, SequentialChain);
