//! One output sequence's decoding state: what happens to a logits row once the model has
//! produced it. Per step: sample (sampler chain) → record logprobs → stop checks on the token
//! (eos, stop_token_ids, max_tokens, context) → detokenize the delta → hold back a possible stop
//! string → the settled delta the caller may see now. A constrained sequence masks the row
//! before the sampler chain and advances its matcher after the draw (both inside the parallel
//! draws); tokens the constraint then forces are settled with the drawn one (fast-forward), and
//! the constraint's completion ends the sequence as eos would.

use crate::constraint::SeqConstraint;
use crate::output::{CompletionOutput, FinishReason, LogprobMap, StopReason};
use crate::params::SamplingParams;
use crate::rng::Rng;
use crate::sampler::{Sampler, SeqHistory};
use crate::EngineError;
use ondo_text::{IncrementalDetokenizer, StopMatcher, Tokenizer};
use std::sync::Arc;

pub(crate) struct Decoding {
    history: SeqHistory,
    sampler: Sampler,
    rng: Rng,
    detok: IncrementalDetokenizer<Arc<Tokenizer>>,
    stops: StopMatcher,
    pub out: CompletionOutput,
    cumulative: f64,
    /// The row being sampled (the sampler edits it in place).
    logits: Vec<f32>,
    /// Longest the sequence may grow (prompt + output), the model's context.
    max_len: usize,
    constraint: Option<SeqConstraint>,
    /// Tokens the constraint forced after the last drawn one, for the scheduler to append.
    fast_forwarded: Vec<u32>,
    /// Output tokens already sent with a streamed delta.
    sent: usize,
}

impl Decoding {
    pub fn new(
        tokenizer: &Arc<Tokenizer>,
        eos_ids: &[u32],
        params: &SamplingParams,
        prompt_ids: &[u32],
        seed: u64,
        index: usize,
        limits: (usize, usize),
    ) -> Decoding {
        let (vocab, max_len) = limits;
        let track = params.logprobs.is_some() || params.best_of() > params.n;
        Decoding {
            history: SeqHistory::new(prompt_ids.to_vec()),
            sampler: Sampler::new(params, eos_ids).with_logprobs(track),
            rng: Rng::for_sequence(seed, index),
            detok: IncrementalDetokenizer::new(tokenizer.clone(), prompt_ids, params.skip_special_tokens),
            stops: StopMatcher::new(&params.stop, params.include_stop_str_in_output),
            out: CompletionOutput {
                index,
                text: String::new(),
                token_ids: vec![],
                cumulative_logprob: track.then_some(0.0),
                logprobs: params.logprobs.map(|_| vec![]),
                finish_reason: None,
                stop_reason: None,
            },
            cumulative: 0.0,
            logits: vec![0.0; vocab],
            max_len,
            constraint: None,
            fast_forwarded: Vec::new(),
            sent: 0,
        }
    }

    /// Masks every draw with `constraint`. Forced tokens are fast-forwarded unless logprobs
    /// are tracked (a forced token has no logits of its own).
    pub fn constrained(mut self, constraint: Option<SeqConstraint>) -> Decoding {
        let track = self.out.cumulative_logprob.is_some();
        self.constraint = constraint.map(|c| c.with_fast_forward(!track));
        self
    }

    /// The tokens settled after the drawn one (forced by the constraint), taken once.
    pub fn take_fast_forwarded(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.fast_forwarded)
    }

    /// The output tokens (and their logprob maps, when tracked) not yet sent with a delta.
    pub fn take_unsent(&mut self) -> (Vec<u32>, Option<Vec<LogprobMap>>) {
        let from = self.sent;
        self.sent = self.out.token_ids.len();
        let tokens = self.out.token_ids[from..].to_vec();
        let logprobs = self.out.logprobs.as_ref().map(|l| l[from.min(l.len())..].to_vec());
        (tokens, logprobs)
    }

    pub fn finished(&self) -> bool {
        self.out.finish_reason.is_some()
    }

    /// Draw the next token from `logits` (sampler chain, logprobs); `settle` applies it. The
    /// two halves are apart so that a step's draws can run in parallel (`draws`).
    pub fn draw(&mut self, logits: &[f32], params: &SamplingParams) -> u32 {
        self.logits.copy_from_slice(logits);
        if let Some(c) = self.constraint.as_mut() {
            c.mask(&mut self.logits);
            if c.error().is_some() {
                // `settle` fails the request; draw from the unmasked row meanwhile
                self.logits.copy_from_slice(logits);
            }
        }
        let token = self.sample(params);
        if let Some(c) = self.constraint.as_mut() {
            c.commit(token);
        }
        token
    }

    /// Apply the stop rules to the token `draw` returned, with `len` the sequence's length
    /// before it; returns the settled text delta.
    pub fn settle(
        &mut self,
        token: u32,
        params: &SamplingParams,
        eos_ids: &[u32],
        len: usize,
    ) -> Result<String, EngineError> {
        if let Some(e) = self.constraint.as_ref().and_then(SeqConstraint::error) {
            return Err(EngineError::Constraint(e.to_string()));
        }
        let forced = self
            .constraint
            .as_mut()
            .map(SeqConstraint::take_forced)
            .unwrap_or_default();
        let done = self.constraint.as_ref().is_some_and(SeqConstraint::is_done);
        let mut delta = self.settle_text(params, eos_ids, token, len + 1, done && forced.is_empty())?;
        for (k, &t) in forced.iter().enumerate() {
            if self.finished() {
                break;
            }
            self.history.push(t);
            self.out.token_ids.push(t);
            let complete = done && k + 1 == forced.len();
            delta.push_str(&self.settle_text(params, eos_ids, t, len + 2 + k, complete)?);
            self.fast_forwarded.push(t);
        }
        Ok(delta)
    }

    /// End the sequence early (cancelled, or no KV room left); returns the text held back.
    pub fn finish(&mut self, reason: FinishReason) -> String {
        if self.finished() {
            return String::new();
        }
        self.out.finish_reason = Some(reason);
        let mut delta = self.detok.finish().unwrap_or_default();
        delta = self.stops.push(&delta).text;
        delta.push_str(&self.stops.finish());
        self.out.text.push_str(&delta);
        delta
    }

    /// Draw the next token and record it with its logprobs.
    fn sample(&mut self, params: &SamplingParams) -> u32 {
        let token = self
            .sampler
            .sample(&mut self.logits, &self.history.ctx(), &mut self.rng);
        self.history.push(token);
        self.out.token_ids.push(token);
        if let Some(lp) = self.sampler.logprob_of(token) {
            self.cumulative += lp as f64;
            self.out.cumulative_logprob = Some(self.cumulative);
        }
        if let (Some(k), Some(list)) = (params.logprobs, self.out.logprobs.as_mut()) {
            let top = self.sampler.top_logprobs(k, token).unwrap_or_default();
            list.push(top.into_iter().collect());
        }
        token
    }

    /// Apply the token-level stop rules, then turn the token into settled text; `len` is the
    /// sequence's length with the token, `complete` whether it completes the constraint.
    fn settle_text(
        &mut self,
        params: &SamplingParams,
        eos_ids: &[u32],
        token: u32,
        len: usize,
        complete: bool,
    ) -> Result<String, EngineError> {
        let n_out = self.out.token_ids.len();
        let past_min = n_out > params.min_tokens;
        if complete || (past_min && !params.ignore_eos && eos_ids.contains(&token)) {
            self.out.finish_reason = Some(FinishReason::Stop);
        } else if past_min && params.stop_token_ids.contains(&token) {
            self.out.finish_reason = Some(FinishReason::Stop);
            self.out.stop_reason = Some(StopReason::Token(token));
        }
        let mut raw = self.detok.push(token)?;
        let at_limit = params.max_tokens.is_some_and(|max| n_out >= max) || len >= self.max_len;
        let will_end = self.out.finish_reason.is_some() || at_limit;
        if will_end {
            raw.push_str(&self.detok.finish()?);
        }
        let step = self.stops.push(&raw);
        let mut delta = step.text;
        if let Some(stop) = step.stop {
            self.out.finish_reason = Some(FinishReason::Stop);
            self.out.stop_reason = Some(StopReason::Str(stop));
        }
        if self.out.finish_reason.is_none() && will_end {
            self.out.finish_reason = Some(FinishReason::Length);
        }
        if self.finished() && !matches!(self.out.stop_reason, Some(StopReason::Str(_))) {
            delta.push_str(&self.stops.finish());
        }
        self.out.text.push_str(&delta);
        Ok(delta)
    }
}
