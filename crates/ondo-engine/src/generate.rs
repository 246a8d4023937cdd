//! The generation loop of one request: prefill the prompt once, then decode each of its
//! `best_of` sequences token by token until each stops, streaming text deltas as they settle.
//!
//! Per step and sequence: sample (sampler chain) → record logprobs → stop checks on the token
//! (eos, stop_token_ids, max_tokens, context) → detokenize the delta → hold back a possible stop
//! string → emit → forward the token to get the next logits.

use crate::output::{best_of_select, CompletionOutput, FinishReason, LogprobMap, RequestOutput, StopReason};
use crate::params::SamplingParams;
use crate::rng::Rng;
use crate::sampler::{Sampler, SeqHistory};
use crate::EngineError;
use ondo_kernels::ops::log_softmax;
use ondo_model::{KvCache, KvDtype, LogitsFor, Model, Workspace};
use ondo_text::{IncrementalDetokenizer, StopMatcher, Tokenizer};

/// What a request needs from its model.
pub struct ModelRef<'a> {
    pub model: &'a dyn Model,
    pub tokenizer: &'a Tokenizer,
    /// Tokens that end a sequence: the tokenizer's eos plus generation_config's `eos_token_id`s.
    pub eos_ids: &'a [u32],
    /// Element type of the KV cache.
    pub kv_dtype: KvDtype,
}

/// Receives each settled text delta of sequence `index`; returning false cancels the request.
pub type Sink<'s> = &'s mut dyn FnMut(usize, &str) -> bool;

/// One sequence being decoded.
struct Sequence<'t> {
    kv: KvCache,
    history: SeqHistory,
    sampler: Sampler,
    rng: Rng,
    detok: IncrementalDetokenizer<'t>,
    stops: StopMatcher,
    out: CompletionOutput,
    cumulative: f64,
    logits: Vec<f32>,
}

/// Run one request to completion.
pub fn generate(
    m: &ModelRef,
    ws: &mut Workspace,
    prompt: Option<String>,
    prompt_ids: Vec<u32>,
    params: &SamplingParams,
    sink: Sink,
) -> Result<RequestOutput, EngineError> {
    params.validate()?;
    params.validate_vocab(m.model.hparams().vocab_size)?;
    if prompt_ids.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    let context = m.model.hparams().max_position_embeddings;
    if prompt_ids.len() >= context {
        return Err(EngineError::PromptTooLong { len: prompt_ids.len(), max: context });
    }
    let capacity = (prompt_ids.len() + params.max_tokens.unwrap_or(context)).min(context);
    let mut kv = KvCache::with_dtype(m.model.hparams(), capacity, m.kv_dtype);
    let (prompt_logprobs, last_logits) = prefill(m.model, ws, &mut kv, &prompt_ids, params.prompt_logprobs)?;
    let seed = params.seed.unwrap_or_else(Rng::entropy_seed);
    let mut seqs: Vec<Sequence> = (0..params.best_of())
        .map(|i| new_sequence(m, params, &prompt_ids, kv.clone(), last_logits.clone(), seed, i))
        .collect::<Result<_, _>>()?;
    decode(m, ws, params, &mut seqs, sink)?;
    let outputs = seqs.into_iter().map(|s| s.out).collect();
    let outputs = if params.best_of() > params.n { best_of_select(outputs, params.n) } else { outputs };
    Ok(RequestOutput {
        request_id: String::new(),
        prompt,
        prompt_token_ids: prompt_ids,
        prompt_logprobs,
        outputs,
        finished: true,
    })
}

/// Forward the prompt once. Returns the prompt logprobs (when asked) and the last position's logits.
fn prefill(
    model: &dyn Model,
    ws: &mut Workspace,
    kv: &mut KvCache,
    prompt_ids: &[u32],
    prompt_logprobs: Option<usize>,
) -> Result<(Option<Vec<Option<LogprobMap>>>, Vec<f32>), EngineError> {
    let vocab = model.hparams().vocab_size;
    let Some(k) = prompt_logprobs else {
        let logits = model.forward(prompt_ids, kv, ws, LogitsFor::Last)?;
        return Ok((None, logits.to_vec()));
    };
    let logits = model.forward(prompt_ids, kv, ws, LogitsFor::All)?;
    let last = logits[(prompt_ids.len() - 1) * vocab..].to_vec();
    let mut maps = vec![None];
    let mut row = vec![0f32; vocab];
    for (i, &actual) in prompt_ids.iter().enumerate().skip(1) {
        row.copy_from_slice(&logits[(i - 1) * vocab..i * vocab]);
        log_softmax(&mut row);
        maps.push(Some(crate::sampler::top_logprobs(&row, k, actual).into_iter().collect()));
    }
    Ok((Some(maps), last))
}

fn new_sequence<'t>(
    m: &ModelRef<'t>,
    params: &SamplingParams,
    prompt_ids: &[u32],
    kv: KvCache,
    logits: Vec<f32>,
    seed: u64,
    index: usize,
) -> Result<Sequence<'t>, EngineError> {
    let track = params.logprobs.is_some() || params.best_of() > params.n;
    Ok(Sequence {
        kv,
        history: SeqHistory::new(prompt_ids.to_vec()),
        sampler: Sampler::new(params, m.eos_ids).with_logprobs(track),
        rng: Rng::for_sequence(seed, index),
        detok: IncrementalDetokenizer::new(m.tokenizer, prompt_ids, params.skip_special_tokens),
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
        logits,
    })
}

/// Step every unfinished sequence until all are done.
fn decode(m: &ModelRef, ws: &mut Workspace, params: &SamplingParams, seqs: &mut [Sequence], sink: Sink) -> Result<(), EngineError> {
    while seqs.iter().any(|s| s.out.finish_reason.is_none()) {
        for seq in seqs.iter_mut().filter(|s| s.out.finish_reason.is_none()) {
            let token = sample(seq, params);
            let delta = settle_text(seq, m, params, token)?;
            if !delta.is_empty() && !sink(seq.out.index, &delta) {
                seq.out.finish_reason = Some(FinishReason::Abort);
            }
            if seq.out.finish_reason.is_none() {
                let logits = m.model.forward(&[token], &mut seq.kv, ws, LogitsFor::Last)?;
                seq.logits.copy_from_slice(logits);
            }
        }
    }
    Ok(())
}

/// Draw the next token and record it with its logprobs.
fn sample(seq: &mut Sequence, params: &SamplingParams) -> u32 {
    let token = seq.sampler.sample(&mut seq.logits, &seq.history.ctx(), &mut seq.rng);
    seq.history.push(token);
    seq.out.token_ids.push(token);
    if let Some(lp) = seq.sampler.logprob_of(token) {
        seq.cumulative += lp as f64;
        seq.out.cumulative_logprob = Some(seq.cumulative);
    }
    if let (Some(k), Some(list)) = (params.logprobs, seq.out.logprobs.as_mut()) {
        let top = seq.sampler.top_logprobs(k, token).unwrap_or_default();
        list.push(top.into_iter().collect());
    }
    token
}

/// Apply the token-level stop rules, then turn the token into settled text; returns the delta
/// the caller may see now.
fn settle_text(seq: &mut Sequence, m: &ModelRef, params: &SamplingParams, token: u32) -> Result<String, EngineError> {
    let n_out = seq.out.token_ids.len();
    let past_min = n_out > params.min_tokens;
    if past_min && !params.ignore_eos && m.eos_ids.contains(&token) {
        seq.out.finish_reason = Some(FinishReason::Stop);
    } else if past_min && params.stop_token_ids.contains(&token) {
        seq.out.finish_reason = Some(FinishReason::Stop);
        seq.out.stop_reason = Some(StopReason::Token(token));
    }
    let mut raw = seq.detok.push(token)?;
    let will_end = seq.out.finish_reason.is_some() || at_limit(seq, params);
    if will_end {
        raw.push_str(&seq.detok.finish()?);
    }
    let step = seq.stops.push(&raw);
    let mut delta = step.text;
    if let Some(stop) = step.stop {
        seq.out.finish_reason = Some(FinishReason::Stop);
        seq.out.stop_reason = Some(StopReason::Str(stop));
    }
    if seq.out.finish_reason.is_none() && will_end {
        seq.out.finish_reason = Some(FinishReason::Length);
    }
    if seq.out.finish_reason.is_some() && !matches!(seq.out.stop_reason, Some(StopReason::Str(_))) {
        delta.push_str(&seq.stops.finish());
    }
    seq.out.text.push_str(&delta);
    Ok(delta)
}

/// Whether the sequence may not grow past this token: max_tokens reached or the cache full.
fn at_limit(seq: &Sequence, params: &SamplingParams) -> bool {
    params.max_tokens.is_some_and(|max| seq.out.token_ids.len() >= max) || seq.kv.len() >= seq.kv.capacity()
}
