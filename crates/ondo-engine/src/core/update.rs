//! The update phase of an engine step: a step's logits become prompt logprobs, forks, drawn
//! tokens (in parallel, `draws`), then stop rules, text and events in plan order.

use super::State;
use crate::draws;
use crate::output::FinishReason;
use crate::params::SamplingParams;
use crate::scheduler::{Plan, SeqId};
use crate::seq::Decoding;
use crate::Event;
use ondo_kernels::ops::log_softmax;
use ondo_model::LogitsFor;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// A span that samples this step: sequences `targets` of request `slot` draw from logits row
/// `row` (all of them at the end of a `best_of` prompt, where the request forks).
pub(super) struct Sample {
    slot: usize,
    targets: std::ops::Range<usize>,
    row: usize,
    /// The sequence's length before the token.
    len: usize,
    /// Its first unit in `units` (one per target, in order; set by `draw_samples`).
    unit0: usize,
}

impl State {
    /// Turn the step's logits into prompt logprobs, samples, text and finished requests: prompt
    /// logprobs and forks in plan order, then every sample drawn (in parallel), then each
    /// sample's stop rules, text and events in plan order.
    pub(super) fn update(&mut self, plan: &Plan, logits: &[f32]) {
        let vocab = self.limits.vocab_size;
        let mut row = 0;
        self.samples.clear();
        for (k, item) in plan.items.iter().enumerate() {
            let samples = item.start + item.len == self.sched.seq(item.seq).tokens.len();
            if self.modes[k] == LogitsFor::All {
                for r in 0..item.len {
                    let at = &logits[(row + r) * vocab..][..vocab];
                    self.prompt_logprob(item.seq, item.start + r, at);
                }
                row += item.len;
                if samples {
                    self.begin_sample(item.seq, row - 1);
                }
            } else if samples {
                self.begin_sample(item.seq, row);
                row += 1;
            }
        }
        debug_assert_eq!(row * vocab, logits.len(), "one logits row per row asked for");
        self.draw_samples(logits);
        for k in 0..self.samples.len() {
            self.finish_sample(k);
        }
        self.units.clear();
    }

    /// Draw the token of every sequence in `samples` (each draw only touches its sequence).
    /// Units are made request by request, each request borrowed once, its sequences' pointers
    /// all derived from one pointer to its `seqs`: no unit's pointer is invalidated by a later
    /// borrow. Each sample notes its first unit.
    fn draw_samples(&mut self, logits: &[f32]) {
        self.units.clear();
        for (slot, req) in self.requests.iter_mut().enumerate() {
            let Some(req) = req else { continue };
            let params: *const SamplingParams = &req.params;
            let seqs = req.seqs.as_mut_ptr();
            for s in self.samples.iter_mut().filter(|s| s.slot == slot) {
                s.unit0 = self.units.len();
                for i in s.targets.clone() {
                    self.units.push(draws::Unit {
                        // SAFETY: i < seqs.len(): targets index the request's sequences.
                        seq: unsafe { seqs.add(i) },
                        params,
                        row: s.row,
                        token: 0,
                    });
                }
            }
        }
        let vocab = self.limits.vocab_size;
        // SAFETY: each unit is a distinct sequence (a span samples its own sequences, or all
        // of a request's at its fork, and each request has one span then), the parameters are
        // only read, and nothing else touches the requests until `run` returns.
        unsafe { draws::run(&self.parts.pool, &mut self.units, logits, vocab) };
    }

    /// The logprobs of prompt token `pos + 1` from the logits at `pos`.
    fn prompt_logprob(&mut self, id: SeqId, pos: usize, row: &[f32]) {
        let (slot, _) = self.owner[id];
        let req = self.requests[slot].as_mut().expect("owned sequence has a request");
        let (Some(k), Some(list)) = (req.params.prompt_logprobs, req.prompt_logprobs.as_mut()) else {
            return;
        };
        // a recomputed prompt (after preemption) has its earlier entries already
        if pos + 1 >= req.prompt_ids.len() || list.len() != pos + 1 {
            return;
        }
        let actual = req.prompt_ids[pos + 1];
        self.row.copy_from_slice(row);
        log_softmax(&mut self.row);
        list.push(Some(
            crate::sampler::top_logprobs(&self.row, k, actual).into_iter().collect(),
        ));
    }

    /// Note that `id` samples from logits row `row`: all of its request's sequences when this is
    /// the end of a `best_of` prompt (it forks here), else `id` alone.
    fn begin_sample(&mut self, id: SeqId, row: usize) {
        let (slot, index, req) = self.request(id);
        let targets = if !req.forked && req.seqs.len() > 1 {
            req.forked = true;
            for i in 1..req.seqs.len() {
                let child = self.sched.fork(id);
                self.set_owner(child, slot, i);
                self.requests[slot].as_mut().expect("live").sched[i] = Some(child);
            }
            0..self.requests[slot].as_ref().expect("live").seqs.len()
        } else {
            index..index + 1
        };
        let len = self.sched.seq(id).tokens.len();
        self.samples.push(Sample {
            slot,
            targets,
            row,
            len,
            unit0: 0, // set by draw_samples
        });
    }

    /// Apply sample `k`'s drawn tokens: stop rules, text, events, scheduler and counters.
    fn finish_sample(&mut self, k: usize) {
        let (slot, len, first) = (self.samples[k].slot, self.samples[k].len, self.samples[k].unit0);
        let targets = self.samples[k].targets.clone();
        let now = Instant::now();
        // (a request failed by an earlier sample of this step is gone)
        let Some(req) = self.requests[slot].as_mut() else {
            return;
        };
        for (u, i) in targets.clone().enumerate() {
            let token = self.units[first + u].token;
            let sid = req.sched[i].expect("a sampled sequence is live");
            match req.seqs[i].settle(token, &req.params, &self.parts.eos_ids, len) {
                Ok(delta) => {
                    if !req.send_delta(i, delta) {
                        req.seqs[i].finish(FinishReason::Abort);
                    }
                    if req.seqs[i].finished() {
                        self.sched.remove(sid);
                        req.sched[i] = None;
                    } else {
                        self.sched.append(sid, token);
                        for forced in req.seqs[i].take_fast_forwarded() {
                            self.sched.append(sid, forced);
                        }
                    }
                }
                Err(e) => {
                    let _ = req.events.send(Event::Failed(e));
                    self.stats.requests_failed.fetch_add(1, Relaxed);
                    self.drop_request(slot);
                    return;
                }
            }
        }
        self.stats.generation_tokens.fetch_add(targets.len() as u64, Relaxed);
        match req.last_token.replace(now) {
            None => self
                .stats
                .time_to_first_token
                .observe((now - req.arrived).as_secs_f64()),
            Some(prev) => self.stats.inter_token_latency.observe((now - prev).as_secs_f64()),
        }
        if req.seqs.iter().all(Decoding::finished) {
            self.finish_request(slot, None);
        }
    }
}
