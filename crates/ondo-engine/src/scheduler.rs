//! The scheduler, vLLM v1-style: no phases, only counting. Each sequence has tokens (prompt +
//! output so far) and a number of them already computed into its KV blocks; each step it is
//! given the tokens it still needs (a prompt chunk, or the one token sampled last step) under a
//! token budget and a cap on running sequences. The plan it returns is plain data the executor
//! runs: which tokens of which sequence, and which partial blocks to copy first.
//!
//! Prompt tokens cost a CPU about what decode tokens cost (both compute bound), so a step's time
//! grows with all its tokens: while sequences decode, prompt chunks are capped at
//! `prefill_per_decode` tokens per decoding sequence (at least `min_prefill_chunk`), which keeps
//! a step with a prompt chunk within about (1 + prefill_per_decode)× a decode-only step. With no
//! sequence decoding, prompts get the whole budget.
//!
//! Order: running sequences first (oldest first), then waiting ones in arrival order. When
//! blocks run out, the newest running sequence is preempted: its blocks are freed and it waits
//! at the front of the queue to be recomputed (its tokens are kept, so its output does not
//! change). A waiting sequence never preempts a running one.
//!
//! Invariants: a running sequence's block table covers exactly its computed positions plus
//! those scheduled this step; a waiting one holds no blocks (cache hits are taken when it is
//! admitted); `computed < tokens.len()` for every live sequence between steps.

use crate::blocks::{BlockId, BlockManager, ROOT_HASH};
use std::collections::VecDeque;

/// A sequence's handle in the scheduler.
pub type SeqId = usize;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Sequences in one step at most (`--max-num-seqs`).
    pub max_num_seqs: usize,
    /// Tokens in one step at most (`--max-num-batched-tokens`).
    pub max_num_batched_tokens: usize,
    /// While sequences decode, a step carries at most this many prompt tokens per decoding
    /// sequence (at least `min_prefill_chunk`): see `schedule`.
    pub prefill_per_decode: f32,
    pub min_prefill_chunk: usize,
    pub num_blocks: usize,
    pub block_size: usize,
    pub enable_prefix_caching: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
}

/// One sequence's bookkeeping.
#[derive(Debug)]
pub struct Seq {
    /// Prompt and output tokens so far.
    pub tokens: Vec<u32>,
    /// Tokens whose keys and values are in the blocks.
    pub computed: usize,
    pub table: Vec<BlockId>,
    /// Hash of each full block of `table` (registered or found in the prefix cache).
    hashes: Vec<u64>,
    /// Whether its full blocks may be taken from / given to the prefix cache.
    cacheable: bool,
    state: State,
    /// Arrival order (forks inherit their parent's).
    order: u64,
}

/// Tokens `start..start + len` of `seq` run this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub seq: SeqId,
    pub start: usize,
    pub len: usize,
}

/// Copy the first `slots` positions of block `src` into `dst` before the step (copy-on-write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCopy {
    pub src: BlockId,
    pub dst: BlockId,
    pub slots: usize,
}

/// What one step runs. Buffers are reused from step to step.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Scheduled>,
    pub copies: Vec<BlockCopy>,
    /// Sequences that cannot grow even with every block of the pool: they must finish.
    pub out_of_blocks: Vec<SeqId>,
}

/// Counters (monotonic) for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub preemptions: u64,
    /// Prompt tokens looked up in the prefix cache, and those found.
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    /// Tokens computed by steps (prompt, recomputed and decode tokens).
    pub computed_tokens: u64,
}

pub struct Scheduler {
    cfg: SchedulerConfig,
    pub blocks: BlockManager,
    seqs: Vec<Option<Seq>>,
    free_ids: Vec<SeqId>,
    waiting: VecDeque<SeqId>,
    /// Oldest first.
    running: Vec<SeqId>,
    next_order: u64,
    pub counters: Counters,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Scheduler {
        let blocks = BlockManager::new(cfg.num_blocks, cfg.block_size, cfg.enable_prefix_caching);
        Scheduler {
            cfg,
            blocks,
            seqs: vec![],
            free_ids: vec![],
            waiting: VecDeque::new(),
            running: vec![],
            next_order: 0,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }
    pub fn num_running(&self) -> usize {
        self.running.len()
    }
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }
    pub fn seq(&self, id: SeqId) -> &Seq {
        self.seqs[id].as_ref().expect("live sequence")
    }
    fn seq_mut(&mut self, id: SeqId) -> &mut Seq {
        self.seqs[id].as_mut().expect("live sequence")
    }

    /// A new sequence waiting to be computed from its first token.
    pub fn add(&mut self, tokens: Vec<u32>, cacheable: bool) -> SeqId {
        let order = self.next_order;
        self.next_order += 1;
        let seq = Seq {
            tokens,
            computed: 0,
            table: vec![],
            hashes: vec![],
            cacheable,
            state: State::Waiting,
            order,
        };
        let id = self.insert(seq);
        self.waiting.push_back(id);
        id
    }

    /// A running copy of running sequence `parent` that shares all its blocks (the next write
    /// into a shared partial block copies it first).
    pub fn fork(&mut self, parent: SeqId) -> SeqId {
        let p = self.seq(parent);
        let child = Seq {
            tokens: p.tokens.clone(),
            computed: p.computed,
            table: p.table.clone(),
            hashes: p.hashes.clone(),
            cacheable: p.cacheable,
            state: p.state,
            order: p.order,
        };
        child.table.iter().for_each(|&b| self.blocks.share(b));
        let waiting = child.state == State::Waiting;
        let id = self.insert(child);
        if waiting {
            self.waiting.push_back(id);
        } else {
            let at = self
                .running
                .partition_point(|&r| self.seq(r).order <= self.seq(id).order);
            self.running.insert(at, id);
        }
        id
    }

    fn insert(&mut self, seq: Seq) -> SeqId {
        match self.free_ids.pop() {
            Some(id) => {
                self.seqs[id] = Some(seq);
                id
            }
            None => {
                self.seqs.push(Some(seq));
                self.seqs.len() - 1
            }
        }
    }

    /// Append the token sampled for `id` (to be computed next step).
    pub fn append(&mut self, id: SeqId, token: u32) {
        self.seq_mut(id).tokens.push(token);
    }

    /// The sequence is done (finished, cancelled): its blocks go back to the pool.
    pub fn remove(&mut self, id: SeqId) {
        let seq = self.seqs[id].take().expect("live sequence");
        self.blocks.release_all(&seq.table);
        match seq.state {
            State::Running => self.running.retain(|&r| r != id),
            State::Waiting => self.waiting.retain(|&w| w != id),
        }
        self.free_ids.push(id);
    }

    /// Plan the next step into `plan`.
    pub fn schedule(&mut self, plan: &mut Plan) {
        plan.items.clear();
        plan.copies.clear();
        plan.out_of_blocks.clear();
        let mut budget = self.cfg.max_num_batched_tokens;
        let need = |s: &Seq| s.tokens.len() - s.computed;
        let decoding = self.running.iter().filter(|&&id| need(self.seq(id)) == 1).count();
        let mut prefill_room = match decoding {
            0 => usize::MAX,
            d => ((d as f32 * self.cfg.prefill_per_decode) as usize).max(self.cfg.min_prefill_chunk),
        };
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let id = self.running[i];
            let left = need(self.seq(id));
            let n = if left == 1 {
                1
            } else {
                left.min(budget).min(prefill_room)
            };
            if n == 0 {
                i += 1;
                continue;
            }
            if left > 1 {
                prefill_room -= n;
            }
            if !self.make_room(id, n, plan) {
                continue; // `id` left the running list; the same index holds the next one
            }
            plan.items.push(Scheduled {
                seq: id,
                start: self.seq(id).computed,
                len: n,
            });
            budget -= n;
            i += 1;
        }
        while budget > 0 && prefill_room > 0 && self.running.len() < self.cfg.max_num_seqs {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            self.take_cache_hits(id);
            let n = need(self.seq(id)).min(budget).min(prefill_room);
            if !self.grow(id, n, plan) {
                self.undo_admission(id);
                if self.running.is_empty() {
                    // nothing else holds blocks: it does not fit the pool at all
                    self.waiting.pop_front();
                    plan.out_of_blocks.push(id);
                    continue;
                }
                break;
            }
            self.waiting.pop_front();
            let seq = self.seq_mut(id);
            seq.state = State::Running;
            plan.items.push(Scheduled {
                seq: id,
                start: seq.computed,
                len: n,
            });
            self.running.push(id);
            budget -= n;
            prefill_room = prefill_room.saturating_sub(n);
        }
    }

    /// Blocks for `n` more tokens of running `id`, preempting newer sequences if needed. False
    /// when `id` itself had to leave the running list (preempted, or out of blocks).
    fn make_room(&mut self, id: SeqId, n: usize, plan: &mut Plan) -> bool {
        loop {
            if self.grow(id, n, plan) {
                return true;
            }
            let newest = *self.running.last().expect("id is running");
            if newest == id && self.running.len() == 1 {
                self.running.pop();
                self.seq_mut(id).state = State::Waiting; // removed by the caller via out_of_blocks
                plan.out_of_blocks.push(id);
                return false;
            }
            self.preempt(newest);
            if newest == id {
                return false;
            }
        }
    }

    /// Free `id`'s blocks and queue it first among the waiting, to be recomputed.
    fn preempt(&mut self, id: SeqId) {
        self.running.retain(|&r| r != id);
        let seq = self.seqs[id].as_mut().expect("live sequence");
        self.blocks.release_all(&seq.table);
        seq.table.clear();
        seq.hashes.clear();
        seq.computed = 0;
        seq.state = State::Waiting;
        self.waiting.push_front(id);
        self.counters.preemptions += 1;
    }

    /// Make `id`'s table cover `computed + n` positions, copying a shared partial block it is
    /// about to write. All or nothing: false (and nothing taken) when the pool lacks blocks.
    fn grow(&mut self, id: SeqId, n: usize, plan: &mut Plan) -> bool {
        let bs = self.cfg.block_size;
        let seq = self.seqs[id].as_ref().expect("live sequence");
        let (start, have) = (seq.computed, seq.table.len());
        let partial = start % bs != 0 && self.blocks.refs(seq.table[start / bs]) > 1;
        let need = (start + n).div_ceil(bs).saturating_sub(have) + partial as usize;
        if need > self.blocks.num_free() {
            return false;
        }
        let seq = self.seqs[id].as_mut().expect("live sequence");
        if partial {
            let (src, dst) = (seq.table[start / bs], self.blocks.allocate().expect("counted"));
            plan.copies.push(BlockCopy {
                src,
                dst,
                slots: start % bs,
            });
            self.blocks.release(src);
            seq.table[start / bs] = dst;
        }
        while seq.table.len() * bs < start + n {
            seq.table.push(self.blocks.allocate().expect("counted"));
        }
        true
    }

    /// Take the cached blocks of a waiting sequence's prefix (never its last token's block:
    /// the last prompt token is always recomputed, for its logits).
    fn take_cache_hits(&mut self, id: SeqId) {
        let bs = self.cfg.block_size;
        let seq = self.seqs[id].as_mut().expect("live sequence");
        if !seq.cacheable || seq.computed > 0 || !self.blocks.caching() {
            return;
        }
        self.counters.prefix_queries += seq.tokens.len() as u64;
        let max_blocks = (seq.tokens.len() - 1) / bs;
        for chunk in seq.tokens.chunks_exact(bs).take(max_blocks) {
            let parent = seq.hashes.last().copied().unwrap_or(ROOT_HASH);
            let Some((b, h)) = self.blocks.lookup(parent, chunk) else {
                break;
            };
            self.blocks.share(b);
            seq.table.push(b);
            seq.hashes.push(h);
        }
        seq.computed = seq.table.len() * bs;
        self.counters.prefix_hits += seq.computed as u64;
    }

    /// Give back the cache hits of a sequence that could not be admitted after all.
    fn undo_admission(&mut self, id: SeqId) {
        let seq = self.seqs[id].as_mut().expect("live sequence");
        self.counters.prefix_hits -= seq.computed as u64;
        self.counters.prefix_queries -= seq.tokens.len() as u64;
        self.blocks.release_all(&seq.table);
        seq.table.clear();
        seq.hashes.clear();
        seq.computed = 0;
    }

    /// After the executor ran `plan`: count the tokens as computed and give the blocks they
    /// filled to the prefix cache.
    pub fn commit(&mut self, plan: &Plan) {
        let bs = self.cfg.block_size;
        for item in &plan.items {
            self.counters.computed_tokens += item.len as u64;
            let seq = self.seqs[item.seq].as_mut().expect("live sequence");
            seq.computed = item.start + item.len;
            while seq.cacheable && (seq.hashes.len() + 1) * bs <= seq.computed {
                let i = seq.hashes.len();
                let parent = seq.hashes.last().copied().unwrap_or(ROOT_HASH);
                let h = self
                    .blocks
                    .register(seq.table[i], parent, &seq.tokens[i * bs..(i + 1) * bs]);
                seq.hashes.push(h);
            }
        }
    }
}

#[cfg(test)]
mod tests;
