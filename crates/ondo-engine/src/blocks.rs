//! The KV block manager: which blocks of the pool are free, how many sequences share each, and
//! which full blocks hold a known prefix (prefix caching). Bookkeeping only; the pool's memory
//! is `ondo_model::KvPool`.
//!
//! - A block in use has a reference count ≥ 1 (the `n`/`best_of` sequences of a request share
//!   their prompt's blocks; a cache hit shares a block with whoever computed it).
//! - Free blocks wait in one queue in the order they were freed. A free block keeps its content
//!   hash, so a later request with the same prefix takes it back (a hit); allocation takes the
//!   block at the front, evicting its hash: the least recently freed cached block goes first (LRU).
//! - A full block's hash chains its parent's hash with its own token ids, so equal hashes mean
//!   equal prefixes; the tokens are stored beside the hash and compared on lookup, so a hash
//!   collision is a miss, never wrong KV.
//!
//! Invariants: a block is in the free queue iff its reference count is 0; `cached` maps a hash
//! to exactly the one block whose `hash[b]` is that hash.

use std::collections::HashMap;

pub type BlockId = u32;

/// The parent hash of a sequence's first block.
pub const ROOT_HASH: u64 = 0x6f6e_646f_5f6b_7631;

const NONE: u32 = u32::MAX;

pub struct BlockManager {
    block_size: usize,
    refs: Vec<u32>,
    free: FreeQueue,
    caching: bool,
    cached: HashMap<u64, BlockId>,
    /// Per block: its registered hash, its parent's hash and its tokens (`block_size` each).
    hash: Vec<Option<u64>>,
    parent: Vec<u64>,
    tokens: Vec<u32>,
}

impl BlockManager {
    pub fn new(num_blocks: usize, block_size: usize, caching: bool) -> BlockManager {
        BlockManager {
            block_size,
            refs: vec![0; num_blocks],
            free: FreeQueue::full(num_blocks),
            caching,
            cached: HashMap::new(),
            hash: vec![None; num_blocks],
            parent: vec![0; num_blocks],
            tokens: vec![0; if caching { num_blocks * block_size } else { 0 }],
        }
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }
    pub fn num_blocks(&self) -> usize {
        self.refs.len()
    }
    /// Blocks no sequence uses (cached ones included: they are evicted on demand).
    pub fn num_free(&self) -> usize {
        self.free.len
    }
    pub fn refs(&self, b: BlockId) -> u32 {
        self.refs[b as usize]
    }
    pub fn caching(&self) -> bool {
        self.caching
    }

    /// Take a free block (evicting whatever prefix it cached), or `None` when all are in use.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let b = self.free.pop_front()?;
        if let Some(h) = self.hash[b as usize].take() {
            self.cached.remove(&h);
        }
        self.refs[b as usize] = 1;
        Some(b)
    }

    /// One more sequence uses `b`.
    pub fn share(&mut self, b: BlockId) {
        if self.refs[b as usize] == 0 {
            self.free.remove(b);
        }
        self.refs[b as usize] += 1;
    }

    /// One sequence stops using `b`; at 0 it joins the free queue (keeping its cached prefix).
    pub fn release(&mut self, b: BlockId) {
        let r = &mut self.refs[b as usize];
        debug_assert!(*r > 0, "block {b} released more often than taken");
        *r = r.saturating_sub(1);
        if *r == 0 {
            self.free.push_back(b);
        }
    }

    /// Release a whole block table, last block first (so a sequence's tail is evicted before
    /// its shared head).
    pub fn release_all(&mut self, table: &[BlockId]) {
        table.iter().rev().for_each(|&b| self.release(b));
    }

    /// The hash of a full block of `tokens` after a block hashed `parent`.
    pub fn hash(parent: u64, tokens: &[u32]) -> u64 {
        // FNV-1a over the parent hash and the ids, then a final mix (splitmix64).
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ parent;
        for &t in tokens {
            h = (h ^ t as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    /// The cached block holding `tokens` after `parent`, if any (not yet shared: call `share`).
    pub fn lookup(&self, parent: u64, tokens: &[u32]) -> Option<(BlockId, u64)> {
        if !self.caching {
            return None;
        }
        let h = Self::hash(parent, tokens);
        let &b = self.cached.get(&h)?;
        let at = b as usize * self.block_size;
        let same = self.parent[b as usize] == parent && self.tokens[at..at + self.block_size] == *tokens;
        same.then_some((b, h))
    }

    /// Record that block `b` now holds `tokens` (full) after `parent`; returns its hash. The
    /// first block registered under a hash is the one hits find.
    pub fn register(&mut self, b: BlockId, parent: u64, tokens: &[u32]) -> u64 {
        let h = Self::hash(parent, tokens);
        if !self.caching || self.hash[b as usize].is_some() || self.cached.contains_key(&h) {
            return h;
        }
        self.cached.insert(h, b);
        self.hash[b as usize] = Some(h);
        self.parent[b as usize] = parent;
        let at = b as usize * self.block_size;
        self.tokens[at..at + self.block_size].copy_from_slice(tokens);
        h
    }
}

/// Free blocks in freeing order: a doubly linked list over block ids (O(1) push, pop, remove).
struct FreeQueue {
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
}

impl FreeQueue {
    /// Every block free, in id order.
    fn full(n: usize) -> FreeQueue {
        let mut q = FreeQueue {
            prev: vec![NONE; n],
            next: vec![NONE; n],
            head: NONE,
            tail: NONE,
            len: 0,
        };
        (0..n as u32).for_each(|b| q.push_back(b));
        q
    }

    fn push_back(&mut self, b: u32) {
        self.prev[b as usize] = self.tail;
        self.next[b as usize] = NONE;
        match self.tail {
            NONE => self.head = b,
            t => self.next[t as usize] = b,
        }
        self.tail = b;
        self.len += 1;
    }

    fn pop_front(&mut self) -> Option<u32> {
        let b = self.head;
        (b != NONE).then(|| {
            self.remove(b);
            b
        })
    }

    fn remove(&mut self, b: u32) {
        let (p, n) = (self.prev[b as usize], self.next[b as usize]);
        match p {
            NONE => self.head = n,
            p => self.next[p as usize] = n,
        }
        match n {
            NONE => self.tail = p,
            n => self.prev[n as usize] = p,
        }
        self.prev[b as usize] = NONE;
        self.next[b as usize] = NONE;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_release_share() {
        let mut m = BlockManager::new(3, 4, true);
        let (a, b, c) = (m.allocate().unwrap(), m.allocate().unwrap(), m.allocate().unwrap());
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(m.allocate(), None);
        m.share(b);
        m.release(b);
        assert_eq!(m.num_free(), 0, "b still has one user");
        m.release_all(&[a, b]);
        assert_eq!(m.num_free(), 2);
        // released last block first: b is evicted before a
        assert_eq!(m.allocate(), Some(b));
        assert_eq!(m.allocate(), Some(a));
    }

    #[test]
    fn cached_blocks_are_found_until_evicted() {
        let mut m = BlockManager::new(2, 2, true);
        let a = m.allocate().unwrap();
        let h = m.register(a, ROOT_HASH, &[5, 6]);
        assert_eq!(m.lookup(ROOT_HASH, &[5, 6]), Some((a, h)));
        assert_eq!(m.lookup(ROOT_HASH, &[5, 7]), None);
        assert_eq!(m.lookup(h, &[5, 6]), None, "same tokens after another parent");
        m.release(a);
        assert_eq!(
            m.lookup(ROOT_HASH, &[5, 6]),
            Some((a, h)),
            "a free block keeps its prefix"
        );
        m.share(a); // a hit takes it out of the free queue
        assert_eq!(m.num_free(), 1);
        m.release(a);
        let (x, y) = (m.allocate().unwrap(), m.allocate().unwrap());
        assert_eq!(
            (x, y),
            (1, a),
            "the uncached block first, then the cached one is evicted"
        );
        assert_eq!(m.lookup(ROOT_HASH, &[5, 6]), None);
    }

    #[test]
    fn no_caching_means_no_hits() {
        let mut m = BlockManager::new(2, 2, false);
        let a = m.allocate().unwrap();
        m.register(a, ROOT_HASH, &[1, 2]);
        assert_eq!(m.lookup(ROOT_HASH, &[1, 2]), None);
    }
}
