//! The sampler: a chain of small logits processors, then the draw.
//!
//! For one position of one sequence, `Sampler::sample` takes the model's raw logits and runs, in
//! vLLM's order (design.md):
//!
//! 1. masks and biases: `allowed_token_ids`, `min_tokens` (eos and stop ids masked while the
//!    output is shorter), `logit_bias`;
//! 2. penalties: repetition (prompt + output tokens), presence and frequency (output tokens);
//! 3. temperature;
//! 4. truncation: min_p, top_k, top_p;
//! 5. the draw: argmax (ties → lowest id) when greedy, else categorical from the sequence's `Rng`.
//!
//! Greedy requests skip 3 and 4 (they cannot change the argmax). Processors that would do nothing
//! with the request's parameters are left out of the chain. Logprobs of the step (raw, or processed
//! = of the logits that were sampled from) are kept in the sampler for the caller to read.
//! Scratch buffers live in the sampler, so a step allocates nothing once they have grown.

mod logprobs;
mod processors;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

pub use logprobs::{log_softmax, top_logprobs};
pub use processors::{
    AllowedTokens, LogitBias, MinP, MinTokens, PresenceFrequencyPenalty, RepetitionPenalty, Temperature, TopK, TopP,
};

use crate::params::{LogprobsMode, SamplingParams};
use crate::rng::Rng;

/// How often each token occurs in a token sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenCounts {
    counts: HashMap<u32, u32>,
}

impl TokenCounts {
    /// Counts of `ids`.
    pub fn from_ids(ids: &[u32]) -> Self {
        let mut c = Self::default();
        ids.iter().for_each(|&t| c.add(t));
        c
    }

    /// Counts one more occurrence of `token`.
    pub fn add(&mut self, token: u32) {
        *self.counts.entry(token).or_insert(0) += 1;
    }

    /// Occurrences of `token`.
    pub fn get(&self, token: u32) -> u32 {
        self.counts.get(&token).copied().unwrap_or(0)
    }

    /// Whether `token` occurs.
    pub fn contains(&self, token: u32) -> bool {
        self.counts.contains_key(&token)
    }

    /// The distinct tokens with their counts (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.counts.iter().map(|(&t, &c)| (t, c))
    }

    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no token was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// What the processors may look at for one sequence.
#[derive(Debug, Clone, Copy)]
pub struct SeqContext<'a> {
    pub prompt_ids: &'a [u32],
    pub output_ids: &'a [u32],
    /// Counts of `prompt_ids` (repetition penalty walks its distinct tokens).
    pub prompt_counts: &'a TokenCounts,
    /// Counts of `output_ids`.
    pub output_counts: &'a TokenCounts,
}

/// The token history of one sequence, kept up to date with its counts; `ctx()` lends it out.
#[derive(Debug, Clone, Default)]
pub struct SeqHistory {
    pub prompt_ids: Vec<u32>,
    pub output_ids: Vec<u32>,
    prompt_counts: TokenCounts,
    output_counts: TokenCounts,
}

impl SeqHistory {
    /// A sequence that has generated nothing yet.
    pub fn new(prompt_ids: Vec<u32>) -> Self {
        let prompt_counts = TokenCounts::from_ids(&prompt_ids);
        Self {
            prompt_ids,
            output_ids: Vec::new(),
            prompt_counts,
            output_counts: TokenCounts::default(),
        }
    }

    /// Appends a generated token.
    pub fn push(&mut self, token: u32) {
        self.output_ids.push(token);
        self.output_counts.add(token);
    }

    /// The context the sampler reads.
    pub fn ctx(&self) -> SeqContext<'_> {
        SeqContext {
            prompt_ids: &self.prompt_ids,
            output_ids: &self.output_ids,
            prompt_counts: &self.prompt_counts,
            output_counts: &self.output_counts,
        }
    }
}

/// Reusable buffers for processors that need them (top_k, top_p) and for the draw.
#[derive(Debug, Default)]
pub struct Scratch {
    /// A vocabulary-sized row (top_k's selection copy, softmax weights).
    pub values: Vec<f32>,
    /// `(token id, logit)` pairs.
    pub candidates: Vec<(u32, f32)>,
}

/// One step of the chain: rewrites the logits of one position in place (masked = -inf).
pub trait LogitsProcessor: Send + Sync {
    fn apply(&self, logits: &mut [f32], ctx: &SeqContext<'_>, scratch: &mut Scratch);
    /// A short name for debugging ("top_p", ...).
    fn name(&self) -> &'static str;
}

/// How the token is picked from the processed logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Draw {
    Greedy,
    Categorical,
}

/// The processor chain and draw for one request's parameters, with its scratch buffers.
pub struct Sampler {
    chain: Vec<Box<dyn LogitsProcessor>>,
    draw: Draw,
    mode: LogprobsMode,
    track_logprobs: bool,
    logprobs: Vec<f32>,
    scratch: Scratch,
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler")
            .field("chain", &self.chain_names())
            .field("draw", &self.draw)
            .field("mode", &self.mode)
            .field("track_logprobs", &self.track_logprobs)
            .finish()
    }
}

impl Sampler {
    /// The chain for `params` (assumed validated); `eos_ids` are the model's stop tokens, masked
    /// with the `stop_token_ids` while the output is shorter than `min_tokens`.
    ///
    /// Logprobs are tracked when the request asks for them or needs them to pick `best_of`.
    pub fn new(params: &SamplingParams, eos_ids: &[u32]) -> Self {
        let mut chain = masks_and_penalties(params, eos_ids);
        let greedy = params.is_greedy();
        if !greedy {
            chain.extend(temperature_and_truncation(params));
        }
        Self {
            chain,
            draw: if greedy { Draw::Greedy } else { Draw::Categorical },
            mode: params.logprobs_mode,
            track_logprobs: params.logprobs.is_some() || params.best_of() > params.n,
            logprobs: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Turns logprob tracking on or off (e.g. to always report `cumulative_logprob`).
    pub fn with_logprobs(mut self, on: bool) -> Self {
        self.track_logprobs = on;
        self
    }

    /// The names of the processors, in order.
    pub fn chain_names(&self) -> Vec<&'static str> {
        self.chain.iter().map(|p| p.name()).collect()
    }

    /// Picks the next token from `logits` (the raw model logits of one position, vocab-sized;
    /// rewritten in place). Empty logits give token 0.
    pub fn sample(&mut self, logits: &mut [f32], ctx: &SeqContext<'_>, rng: &mut Rng) -> u32 {
        if self.track_logprobs && self.mode == LogprobsMode::RawLogprobs {
            self.keep_logprobs(logits);
        }
        for p in &self.chain {
            p.apply(logits, ctx, &mut self.scratch);
        }
        if self.track_logprobs && self.mode == LogprobsMode::ProcessedLogprobs {
            self.keep_logprobs(logits);
        }
        match self.draw {
            Draw::Greedy => argmax(logits),
            Draw::Categorical => categorical(logits, &mut self.scratch.values, rng),
        }
    }

    /// The full-vocabulary logprobs of the last `sample` call, when tracked.
    pub fn logprobs(&self) -> Option<&[f32]> {
        self.track_logprobs.then_some(self.logprobs.as_slice())
    }

    /// The last step's logprob of `token`, when tracked.
    pub fn logprob_of(&self, token: u32) -> Option<f32> {
        self.logprobs()?.get(token as usize).copied()
    }

    /// The last step's top `k` logprobs plus `chosen`'s, when tracked.
    pub fn top_logprobs(&self, k: usize, chosen: u32) -> Option<Vec<(u32, f32)>> {
        Some(top_logprobs(self.logprobs()?, k, chosen))
    }

    fn keep_logprobs(&mut self, logits: &[f32]) {
        let lse = ondo_kernels::ops::log_sum_exp(logits);
        self.logprobs.clear();
        self.logprobs.extend(logits.iter().map(|v| v - lse));
    }
}

/// Stage 1 and 2: masks, biases and penalties (these apply to greedy requests too).
fn masks_and_penalties(p: &SamplingParams, eos_ids: &[u32]) -> Vec<Box<dyn LogitsProcessor>> {
    let mut chain: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if let Some(ids) = &p.allowed_token_ids {
        chain.push(Box::new(AllowedTokens::new(ids)));
    }
    if p.min_tokens > 0 {
        let stops: Vec<u32> = eos_ids.iter().chain(&p.stop_token_ids).copied().collect();
        chain.push(Box::new(MinTokens::new(p.min_tokens, &stops)));
    }
    if !p.logit_bias.is_empty() {
        chain.push(Box::new(LogitBias::new(&p.logit_bias)));
    }
    if p.repetition_penalty != 1.0 {
        chain.push(Box::new(RepetitionPenalty::new(p.repetition_penalty)));
    }
    if p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
        chain.push(Box::new(PresenceFrequencyPenalty::new(
            p.presence_penalty,
            p.frequency_penalty,
        )));
    }
    chain
}

/// Stage 3 and 4: temperature, then min_p, top_k, top_p.
fn temperature_and_truncation(p: &SamplingParams) -> Vec<Box<dyn LogitsProcessor>> {
    let mut chain: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if p.temperature != 1.0 {
        chain.push(Box::new(Temperature::new(p.temperature)));
    }
    if p.min_p > 0.0 {
        chain.push(Box::new(MinP::new(p.min_p)));
    }
    if p.top_k_enabled() {
        chain.push(Box::new(TopK::new(p.top_k as usize)));
    }
    if p.top_p < 1.0 {
        chain.push(Box::new(TopP::new(p.top_p)));
    }
    chain
}

/// The id of the largest logit; ties go to the lowest id, NaN counts as -inf.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &v) in logits.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0 as u32
}

/// A draw from softmax(logits) by inverse CDF over the ids in order (f64 accumulation);
/// `weights` is scratch. Falls back to the argmax when no logit is finite or one is +inf.
fn categorical(logits: &[f32], weights: &mut Vec<f32>, rng: &mut Rng) -> u32 {
    let Some((_, total)) = processors::softmax_weights(logits, weights) else {
        return argmax(logits);
    };
    let target = rng.next_f64() * total;
    let (mut acc, mut last) = (0.0, 0);
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            acc += f64::from(w);
            last = i as u32;
            if acc > target {
                break;
            }
        }
    }
    last
}
