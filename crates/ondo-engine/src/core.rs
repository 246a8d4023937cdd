//! `EngineCore`: the step loop every surface runs on (vLLM v1's `EngineCore.step`).
//!
//! ```text
//! add_request ─► Scheduler (waiting) ─┐
//! step():  schedule  → Plan {seq, tokens start..start+len}     (scheduler.rs: counting only)
//!          execute   → Batch of every scheduled span → model.forward → logits rows
//!          update    → prompt logprobs, sample each finished span (seq.rs), stop rules,
//!                      text deltas to the request's queue; finished sequences free their blocks
//! ```
//! A request of `best_of` sequences is one scheduler sequence until its prompt is computed;
//! then it forks into `best_of` sequences that share the prompt's blocks. Requests join and
//! leave between steps; a request whose queue is closed (the caller went away) is cancelled at
//! the next step. One thread owns an `EngineCore` (see `engine.rs` for the thread).

use crate::constraint::{Constraint, Guide};
use crate::metrics::EngineStats;
use crate::output::{best_of_select, FinishReason, LogprobMap, RequestOutput};
use crate::params::{ParamError, SamplingParams};
use crate::rng::Rng;
use crate::scheduler::{Plan, Scheduler, SchedulerConfig, SeqId};
use crate::seq::Decoding;
use crate::EngineError;
use ondo_kernels::ThreadPool;
use ondo_model::{Batch, KvDtype, KvPool, LogitsFor, Model, Workspace};
use ondo_text::Tokenizer;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;
use update::Sample;

#[cfg(test)]
mod tests;
mod update;

/// Tokens per step by default (`--max-num-batched-tokens`). Steps with decoding sequences take
/// fewer prompt tokens (`prefill_per_decode`); a prompt alone runs in chunks of this many, which
/// measured as fast as longer chunks (SmolLM2 pp1500: 804 t/s in chunks of 64, 722 in 512).
pub const DEFAULT_MAX_BATCHED_TOKENS: usize = 256;

/// How the engine is sized.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Bytes of KV cache (`--kv-cache-memory`); `None` = a quarter of free memory, at most 4 GiB.
    pub kv_cache_memory: Option<usize>,
    pub block_size: usize,
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    /// Prompt tokens per decoding sequence in a step (at least 16): a step with a prompt chunk
    /// takes about (1 + this)× a decode-only step, so running streams slow by at most that much
    /// while a long prompt is computed.
    pub prefill_per_decode: f32,
    pub enable_prefix_caching: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kv_cache_memory: None,
            block_size: 16,
            max_num_seqs: 64,
            max_num_batched_tokens: DEFAULT_MAX_BATCHED_TOKENS,
            prefill_per_decode: 1.0,
            enable_prefix_caching: true,
        }
    }
}

/// The model side of an engine.
#[derive(Clone)]
pub struct ModelParts {
    pub model: Arc<dyn Model>,
    pub tokenizer: Arc<Tokenizer>,
    pub eos_ids: Arc<[u32]>,
    pub kv_dtype: KvDtype,
    pub pool: Arc<ThreadPool>,
}

/// A request as submitted.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub prompt: Option<String>,
    pub prompt_ids: Vec<u32>,
    pub params: SamplingParams,
    /// Send text deltas as they settle (else only the final output).
    pub stream: bool,
    /// Set = cancel at the next step (as closing the event queue does), still reporting the
    /// output with finish_reason "abort".
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a request reports on its queue.
#[derive(Debug)]
pub enum Event {
    /// Settled text of sequence `index` (streaming requests only).
    Delta {
        index: usize,
        text: String,
        /// The output tokens settled since the previous delta (text held back for a possible
        /// stop string or a split character comes with a later delta than its tokens), with
        /// their logprob maps when the request asks for logprobs. Tokens after the last delta
        /// are only in [`Event::Done`]'s output.
        tokens: Vec<u32>,
        logprobs: Option<Vec<LogprobMap>>,
    },
    /// The request finished (also when cancelled: finish_reason "abort").
    Done(Box<RequestOutput>),
    Failed(EngineError),
}

pub type Events = UnboundedSender<Event>;

/// The limits every request is checked against, in one place.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub vocab_size: usize,
    /// The model's context (max_position_embeddings).
    pub context: usize,
    /// Positions the whole KV pool holds.
    pub kv_tokens: usize,
    /// Sequences the engine runs at once (`--max-num-seqs`): the cap on `best_of` (and `n`), so
    /// a request cannot ask for millions of sequences and their state.
    pub max_seqs: usize,
}

impl Limits {
    /// Every check a request passes before it is queued: parameters, token ids, lengths.
    pub fn check(&self, prompt_ids: &[u32], params: &SamplingParams) -> Result<(), EngineError> {
        params.validate()?;
        params.validate_vocab(self.vocab_size)?;
        if params.best_of() > self.max_seqs {
            let (field, got) = match params.best_of {
                Some(b) => ("best_of", b),
                None => ("n", params.n),
            };
            let rule = format!("at most {} (the engine's --max-num-seqs)", self.max_seqs);
            return Err(ParamError::range(field, rule, got.to_string()).into());
        }
        if prompt_ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if let Some(&id) = prompt_ids.iter().find(|&&t| t as usize >= self.vocab_size) {
            return Err(EngineError::PromptToken {
                id,
                vocab_size: self.vocab_size,
            });
        }
        if prompt_ids.len() >= self.context {
            return Err(EngineError::PromptTooLong {
                len: prompt_ids.len(),
                max: self.context,
            });
        }
        if prompt_ids.len() >= self.kv_tokens {
            return Err(EngineError::KvCacheTooSmall {
                len: prompt_ids.len(),
                max: self.kv_tokens,
            });
        }
        Ok(())
    }
}

struct Request {
    id: String,
    prompt: Option<String>,
    prompt_ids: Vec<u32>,
    params: SamplingParams,
    /// One per output sequence (`best_of` of them).
    seqs: Vec<Decoding>,
    /// The scheduler sequence of each output sequence: only [0] until the prompt is computed
    /// (then forked), `None` once finished.
    sched: Vec<Option<SeqId>>,
    forked: bool,
    prompt_logprobs: Option<Vec<Option<LogprobMap>>>,
    events: Events,
    stream: bool,
    cancel: Option<Arc<AtomicBool>>,
    arrived: Instant,
    last_token: Option<Instant>,
}

impl Request {
    /// Send settled text of sequence `index` (and the tokens since its last delta) to a
    /// streaming caller; false when it is gone.
    fn send_delta(&mut self, index: usize, text: String) -> bool {
        if !self.stream || text.is_empty() {
            return true;
        }
        let (tokens, logprobs) = self.seqs[index].take_unsent();
        let delta = Event::Delta {
            index,
            text,
            tokens,
            logprobs,
        };
        self.events.send(delta).is_ok()
    }
}

/// Runs a step's plan on the model.
struct Executor {
    parts: ModelParts,
    kv: KvPool,
    ws: Workspace,
    batch: Batch,
}

/// Everything about requests: the scheduler and each request's decoding state.
struct State {
    parts: ModelParts,
    limits: Limits,
    sched: Scheduler,
    requests: Vec<Option<Request>>,
    /// Request slot and sequence index of each scheduler sequence.
    owner: Vec<(usize, usize)>,
    /// Logits mode of each plan item this step.
    modes: Vec<LogitsFor>,
    row: Vec<f32>,
    stats: Arc<EngineStats>,
    /// Final outputs of this step, sent once its counters are published.
    outbox: Vec<(Events, Event)>,
    /// This step's samples: per sampling span, then per drawn sequence (kept for their
    /// capacity; the units' pointers are only used inside `update`).
    samples: Vec<Sample>,
    units: Vec<crate::draws::Unit>,
}

pub struct EngineCore {
    exec: Executor,
    state: State,
    plan: Plan,
    guide: Arc<Guide>,
}

impl EngineCore {
    pub fn new(parts: ModelParts, cfg: &EngineConfig, stats: Arc<EngineStats>) -> EngineCore {
        let hp = parts.model.hparams();
        let block_size = cfg.block_size.max(1);
        let block_bytes = KvPool::block_bytes(hp, block_size, parts.kv_dtype);
        let memory = cfg.kv_cache_memory.unwrap_or_else(default_kv_memory);
        let num_blocks = (memory / block_bytes.max(1)).max(1);
        let budget = cfg.max_num_batched_tokens.max(1);
        let kv = KvPool::new(hp, num_blocks, block_size, parts.kv_dtype);
        let ws = Workspace::with_pool(hp, budget, parts.pool.clone());
        let limits = Limits {
            vocab_size: hp.vocab_size,
            context: hp.max_position_embeddings,
            kv_tokens: num_blocks * block_size,
            max_seqs: cfg.max_num_seqs.max(1),
        };
        let sched = Scheduler::new(SchedulerConfig {
            max_num_seqs: cfg.max_num_seqs.max(1),
            max_num_batched_tokens: budget,
            prefill_per_decode: cfg.prefill_per_decode.max(0.0),
            min_prefill_chunk: 16,
            num_blocks,
            block_size,
            // longrope keys depend on the prompt's whole length: a cached block is not reusable
            enable_prefix_caching: cfg.enable_prefix_caching && hp.rope.long().is_none(),
        });
        stats.kv_blocks_total.store(num_blocks as u64, Relaxed);
        stats.kv_blocks_free.store(num_blocks as u64, Relaxed);
        let row = vec![0.0; hp.vocab_size];
        let guide = Arc::new(Guide::new(
            parts.tokenizer.clone(),
            hp.vocab_size,
            parts.eos_ids.clone(),
        ));
        let state = State {
            parts: parts.clone(),
            limits,
            sched,
            requests: vec![],
            owner: vec![],
            modes: vec![],
            row,
            stats,
            outbox: vec![],
            samples: vec![],
            units: vec![],
        };
        EngineCore {
            exec: Executor {
                parts,
                kv,
                ws,
                batch: Batch::default(),
            },
            state,
            plan: Plan::default(),
            guide,
        }
    }

    /// The engine's constraint compiler (structured outputs).
    pub fn guide(&self) -> &Arc<Guide> {
        &self.guide
    }

    pub fn limits(&self) -> Limits {
        self.state.limits
    }
    pub fn block_size(&self) -> usize {
        self.exec.kv.block_size()
    }
    /// No request is running or waiting.
    pub fn is_idle(&self) -> bool {
        self.state.requests.iter().all(Option::is_none)
    }
    pub fn scheduler(&self) -> &Scheduler {
        &self.state.sched
    }

    /// Queue a request; its events go to `events`. Checked here, so a bad request never
    /// reaches a batch.
    pub fn add_request(&mut self, req: NewRequest, events: Events) -> Result<(), EngineError> {
        self.state.limits.check(&req.prompt_ids, &req.params)?;
        let so = req.params.structured_outputs.as_ref();
        let constraint = so.map(|so| self.guide.compile(so)).transpose()?;
        self.state.add(req, events, constraint);
        Ok(())
    }

    /// `add_request` for a request `Limits::check` has passed and whose constraint is compiled
    /// (the engine thread's handle does both in the submitting thread).
    pub(crate) fn add_checked(&mut self, req: NewRequest, events: Events, constraint: Option<Constraint>) {
        self.state.add(req, events, constraint);
    }

    /// Cancel everything (server shutdown): each request reports finish_reason "abort".
    pub fn abort_all(&mut self) {
        for slot in 0..self.state.requests.len() {
            self.state.finish_request(slot, Some(FinishReason::Abort));
        }
        self.state.flush();
    }

    /// One step: schedule → execute → update. Returns the tokens computed.
    pub fn step(&mut self) -> usize {
        let EngineCore { exec, state, plan, .. } = self;
        state.reap_cancelled();
        state.sched.schedule(plan);
        for &id in &plan.out_of_blocks {
            state.out_of_blocks(id);
        }
        if !plan.items.is_empty() {
            state.logits_modes(plan);
            match exec.run(plan, &state.sched, &state.modes) {
                Ok(logits) => {
                    state.sched.commit(plan);
                    state.update(plan, logits);
                }
                Err(e) => state.fail_plan(plan, &e),
            }
        }
        state.stats.steps.fetch_add(1, Relaxed);
        state.flush();
        plan.items.iter().map(|i| i.len).sum()
    }
}

impl Executor {
    /// Copy shared partial blocks, then run every scheduled span in one forward pass.
    fn run(&mut self, plan: &Plan, sched: &Scheduler, modes: &[LogitsFor]) -> Result<&[f32], EngineError> {
        for c in &plan.copies {
            self.kv.copy_block(c.src as usize, c.dst as usize, c.slots);
        }
        self.batch.clear();
        for (item, &mode) in plan.items.iter().zip(modes) {
            let seq = sched.seq(item.seq);
            self.batch.push(
                &seq.tokens[item.start..item.start + item.len],
                item.start,
                &seq.table,
                mode,
            );
            // a prompt chunk: the prompt's whole length (rope scaling as in one pass)
            self.batch.set_len(seq.tokens.len());
        }
        Ok(self.parts.model.forward(&self.batch, &mut self.kv, &mut self.ws)?)
    }
}

impl State {
    /// Queue a checked request.
    fn add(&mut self, req: NewRequest, events: Events, constraint: Option<Constraint>) {
        let p = &req.params;
        let seed = p.seed.unwrap_or_else(Rng::entropy_seed);
        let limits = (self.limits.vocab_size, self.limits.context);
        let parts = &self.parts;
        let seqs = (0..p.best_of())
            .map(|i| {
                let seq = Decoding::new(&parts.tokenizer, &parts.eos_ids, p, &req.prompt_ids, seed, i, limits);
                seq.constrained(constraint.as_ref().map(Constraint::for_sequence))
            })
            .collect();
        let cacheable = p.prompt_logprobs.is_none();
        let id = self.sched.add(req.prompt_ids.clone(), cacheable);
        let slot = self.requests.iter().position(Option::is_none).unwrap_or_else(|| {
            self.requests.push(None);
            self.requests.len() - 1
        });
        self.set_owner(id, slot, 0);
        let mut sched = vec![None; p.best_of()];
        sched[0] = Some(id);
        self.requests[slot] = Some(Request {
            id: req.id,
            prompt: req.prompt,
            prompt_logprobs: p.prompt_logprobs.map(|_| vec![None]),
            prompt_ids: req.prompt_ids,
            params: req.params,
            seqs,
            sched,
            forked: false,
            events,
            stream: req.stream,
            cancel: req.cancel,
            arrived: Instant::now(),
            last_token: None,
        });
    }

    fn set_owner(&mut self, id: SeqId, slot: usize, index: usize) {
        if self.owner.len() <= id {
            self.owner.resize(id + 1, (usize::MAX, 0));
        }
        self.owner[id] = (slot, index);
    }

    fn request(&mut self, id: SeqId) -> (usize, usize, &mut Request) {
        let (slot, index) = self.owner[id];
        (
            slot,
            index,
            self.requests[slot].as_mut().expect("owned sequence has a request"),
        )
    }

    /// Which logits each scheduled span needs: its last row when it reaches the end of its
    /// tokens (then it samples), every row of a prompt whose logprobs were asked for.
    fn logits_modes(&mut self, plan: &Plan) {
        self.modes.clear();
        for item in &plan.items {
            let (slot, _) = self.owner[item.seq];
            let req = self.requests[slot].as_ref().expect("scheduled sequences have requests");
            let samples = item.start + item.len == self.sched.seq(item.seq).tokens.len();
            let prompt_rows = req.prompt_logprobs.is_some() && item.start + 1 < req.prompt_ids.len();
            self.modes.push(match (prompt_rows, samples) {
                (true, _) => LogitsFor::All,
                (false, true) => LogitsFor::Last,
                (false, false) => LogitsFor::None,
            });
        }
    }

    /// A sequence that cannot grow in the whole pool ends as if it reached its length.
    fn out_of_blocks(&mut self, id: SeqId) {
        let (slot, index, req) = self.request(id);
        let delta = req.seqs[index].finish(FinishReason::Length);
        req.send_delta(index, delta);
        let forked = req.forked;
        req.sched[index] = None;
        self.sched.remove(id);
        let req = self.requests[slot].as_ref().expect("live");
        if !forked && req.seqs.len() > 1 {
            // never forked: the other sequences end the same way
            self.finish_request(slot, Some(FinishReason::Length));
        } else if req.seqs.iter().all(Decoding::finished) {
            self.finish_request(slot, None);
        }
    }

    /// End request `slot`: unfinished sequences end with `reason`, the output goes to its queue.
    fn finish_request(&mut self, slot: usize, reason: Option<FinishReason>) {
        let Some(mut req) = self.requests[slot].take() else {
            return;
        };
        for i in 0..req.seqs.len() {
            if let Some(id) = req.sched[i] {
                self.sched.remove(id);
            }
            let delta = req.seqs[i].finish(reason.unwrap_or(FinishReason::Abort));
            req.send_delta(i, delta);
        }
        let outputs: Vec<_> = req.seqs.into_iter().map(|s| s.out).collect();
        let aborted = outputs.iter().any(|o| o.finish_reason == Some(FinishReason::Abort));
        let counter = if aborted {
            &self.stats.requests_aborted
        } else {
            &self.stats.requests_finished
        };
        counter.fetch_add(1, Relaxed);
        self.stats.prompt_tokens.fetch_add(req.prompt_ids.len() as u64, Relaxed);
        let p = &req.params;
        let outputs = if p.best_of() > p.n {
            best_of_select(outputs, p.n)
        } else {
            outputs
        };
        let out = RequestOutput {
            request_id: req.id,
            prompt: req.prompt,
            prompt_token_ids: req.prompt_ids,
            prompt_logprobs: req.prompt_logprobs,
            outputs,
            finished: true,
        };
        self.outbox.push((req.events, Event::Done(Box::new(out))));
    }

    /// Remove a request without reporting (its failure was sent).
    fn drop_request(&mut self, slot: usize) {
        let Some(req) = self.requests[slot].take() else {
            return;
        };
        req.sched.iter().flatten().for_each(|&id| self.sched.remove(id));
    }

    /// Cancel requests whose caller went away.
    fn reap_cancelled(&mut self) {
        for slot in 0..self.requests.len() {
            let gone = |r: &Request| r.events.is_closed() || r.cancel.as_ref().is_some_and(|c| c.load(Relaxed));
            if self.requests[slot].as_ref().is_some_and(gone) {
                self.finish_request(slot, Some(FinishReason::Abort));
            }
        }
    }

    /// The model failed on a whole batch (it checks its input; this is a bug): fail every
    /// request in it and keep serving the others.
    fn fail_plan(&mut self, plan: &Plan, e: &EngineError) {
        for item in &plan.items {
            let (slot, _) = self.owner[item.seq];
            if let Some(req) = self.requests[slot].as_ref() {
                let _ = req.events.send(Event::Failed(EngineError::Internal(e.to_string())));
                self.stats.requests_failed.fetch_add(1, Relaxed);
                self.drop_request(slot);
            }
        }
    }

    /// Publish the gauges and counters, then send the step's final outputs: a caller that has
    /// its output sees the counters that include it.
    fn flush(&mut self) {
        self.publish_gauges();
        for (events, event) in self.outbox.drain(..) {
            let _ = events.send(event);
        }
    }

    fn publish_gauges(&self) {
        let s = &self.stats;
        let (free, total) = (self.sched.blocks.num_free(), self.sched.blocks.num_blocks());
        s.requests_running.store(self.sched.num_running() as u64, Relaxed);
        s.requests_waiting.store(self.sched.num_waiting() as u64, Relaxed);
        s.kv_blocks_free.store(free as u64, Relaxed);
        s.kv_blocks_used.store((total - free) as u64, Relaxed);
        let c = &self.sched.counters;
        s.prefix_cache_queries.store(c.prefix_queries, Relaxed);
        s.prefix_cache_hits.store(c.prefix_hits, Relaxed);
        s.preemptions.store(c.preemptions, Relaxed);
        s.computed_tokens.store(c.computed_tokens, Relaxed);
    }
}

/// A quarter of the memory the OS calls available, at most 4 GiB (1 GiB when unknown).
fn default_kv_memory() -> usize {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<usize>()
            .ok()
    });
    available.map_or(1 << 30, |kib| (kib * 1024 / 4).min(4 << 30))
}
