//! Attention for a batch of sequences over a paged KV cache, flash-style.
//!
//! The pool of one layer holds keys and values as `[num_blocks, block_size, n_kv_heads,
//! head_dim]`; each sequence reaches its positions through its own run of a block table. One
//! call attends every query row of every sequence (decode rows and prefill chunks mixed).
//!
//! Plan per call:
//! 1. Work items are (sequence, kv head, tile of up to `(*QTV)` consecutive query tokens): the `g =
//!    n_heads / n_kv_heads` query heads sharing the kv head times the tile's tokens make one
//!    block of `g · tile` query rows. A decode row is a tile of one token: `g` rows.
//! 2. A few tasks (one per thread) claim items from a shared counter, the last (longest) tiles
//!    of each sequence first, so the threads finish close together.
//! 3. One item walks the key blocks its rows can see (causality and the window), one block at a
//!    time: f16 keys/values are converted to f32 once per block, then each row takes the scores
//!    of its visible slots, folds them into a running max `m`, sum `l` and accumulator `acc`
//!    (rescaled when the max grows) and adds `p · V`. No `[tokens × context]` score matrix.
//! 4. `out = acc / l`, written straight into the item's own rows and heads of `out`.
//!
//! Scratch is the calling thread's (one region per task, sized from `(*QTV)`, `g`, `head_dim` and
//! `block_size`, never from the context), so a warm call allocates nothing.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::{exp, lanes_sum, max_of, AttnParams, KvElem, SendPtr};
use crate::ThreadPool;

/// One sequence's queries in a batched attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnSeq {
    /// Its first query row in `q`/`out`, and how many rows (tokens) it has.
    pub row0: usize,
    pub rows: usize,
    /// Position of its first query token: query i (0-based within the seq) is at position pos0 + i and
    /// sees cached positions 0..=pos0 + i (its own included; `window` narrows that as in `AttnParams`).
    pub pos0: usize,
    /// Where its block table starts in `table`: position p lives in block table[block0 + p / block_size],
    /// slot p % block_size.
    pub block0: usize,
}

/// Keys and values of one layer in a paged pool: `[num_blocks, block_size, n_kv_heads, head_dim]` each.
#[derive(Clone, Copy)]
pub struct PagedKv<'a, E> {
    pub keys: &'a [E],
    pub values: &'a [E],
    pub block_size: usize,
}

/// Query tokens per work item (`g · (*QTV)` query rows share each key/value block while it is hot).
static QTV: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| std::env::var("QT").map_or(16, |v| v.parse().unwrap()));
static KCV: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| std::env::var("KC").map_or(32, |v| v.parse().unwrap()));
/// Positions per step over an f16 pool (converted into scratch whatever the block size: fewer,
/// longer steps than 16-slot blocks; an f32 pool is read in place one block per step).


/// `out[row] = softmax(q[row] · Kᵀ · scale (softcapped)) · V` for every query row of every sequence,
/// reading each sequence's keys through its block table. q, out: [rows, n_heads * head_dim].
pub fn paged_attention(
    pool: &ThreadPool,
    q: &[f32],
    kv: PagedKv<'_, f32>,
    table: &[u32],
    seqs: &[AttnSeq],
    p: &AttnParams,
    out: &mut [f32],
) {
    run(pool, q, kv, table, seqs, p, out)
}

/// `paged_attention` over an f16 pool (f32 math).
pub fn paged_attention_f16(
    pool: &ThreadPool,
    q: &[f32],
    kv: PagedKv<'_, half::f16>,
    table: &[u32],
    seqs: &[AttnSeq],
    p: &AttnParams,
    out: &mut [f32],
) {
    run(pool, q, kv, table, seqs, p, out)
}

/// A pool element: f32 is read in place, anything else converted `(*KCV)` positions at a time.
trait PagedElem: KvElem + Sync {
    /// The slice itself when it already is f32.
    fn as_f32(src: &[Self]) -> Option<&[f32]>;

    /// Positions per step of an item.
    fn span(block_size: usize) -> usize {
        (*KCV).max(block_size)
    }
}

impl PagedElem for f32 {
    fn as_f32(src: &[f32]) -> Option<&[f32]> {
        Some(src)
    }

    fn span(block_size: usize) -> usize {
        block_size
    }
}

impl PagedElem for half::f16 {
    fn as_f32(_: &[half::f16]) -> Option<&[f32]> {
        None
    }
}

/// What every item of one call reads.
struct Call<'a, E> {
    q: &'a [f32],
    kv: PagedKv<'a, E>,
    table: &'a [u32],
    p: &'a AttnParams,
    /// `out`, written by items at disjoint (row, head) places.
    out: SendPtr,
}

/// One work item: `nt` tokens of `seq` from its token `t0`, the query heads of kv head `kvh`.
struct Item {
    seq: AttnSeq,
    kvh: usize,
    t0: usize,
    nt: usize,
}

thread_local! {
    /// The calling thread's scratch, one region per task (workers keep none of their own).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Floats of scratch one task needs: `acc [g·(*QTV), head_dim]`, `m`, `l [g·(*QTV)]`, one score row
/// `[span]` with its partial sums `[span, 8]`, and converted keys and values `[span, head_dim]`
/// each, rounded up to a cache line so tasks never share one.
fn task_scratch(p: &AttnParams, span: usize) -> usize {
    let (rows, hd) = (p.n_heads / p.n_kv_heads * (*QTV), p.head_dim);
    (rows * (hd + 2) + span * (9 + 2 * hd)).next_multiple_of(16)
}

fn items_of(s: &AttnSeq, n_kv_heads: usize) -> usize {
    s.rows.div_ceil((*QTV)) * n_kv_heads
}

fn run<E: PagedElem>(
    pool: &ThreadPool,
    q: &[f32],
    kv: PagedKv<'_, E>,
    table: &[u32],
    seqs: &[AttnSeq],
    p: &AttnParams,
    out: &mut [f32],
) {
    check(q, kv, table, seqs, p, out);
    let total: usize = seqs.iter().map(|s| items_of(s, p.n_kv_heads)).sum();
    if total == 0 {
        return;
    }
    let tasks = total.min(pool.threads());
    let need = task_scratch(p, E::span(kv.block_size));
    SCRATCH.with(|cell| {
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let scratch = match borrowed.as_deref_mut() {
            Ok(v) => v,
            Err(_) => &mut fresh, // nested use on this thread: rare
        };
        if scratch.len() < tasks * need {
            scratch.resize(tasks * need, 0.0);
        }
        let scratch_ptr = SendPtr(scratch.as_mut_ptr());
        let call = Call {
            q,
            kv,
            table,
            p,
            out: SendPtr(out.as_mut_ptr()),
        };
        let next = AtomicUsize::new(0);
        pool.run(tasks, |task| {
            // SAFETY: task `task` alone uses this region of the scratch.
            let scratch =
                unsafe { std::slice::from_raw_parts_mut(scratch_ptr.ptr().add(task * need), need) };
            // the items claimed here only grow, so the sequence cursor only moves forward:
            // seqs[si] holds items first..first + items_of(seqs[si])
            let (mut si, mut first) = (0, 0);
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= total {
                    break;
                }
                while i >= first + items_of(&seqs[si], p.n_kv_heads) {
                    first += items_of(&seqs[si], p.n_kv_heads);
                    si += 1;
                }
                let (seq, j) = (seqs[si], i - first);
                let tile = seq.rows.div_ceil((*QTV)) - 1 - j / p.n_kv_heads;
                let t0 = tile * (*QTV);
                let item = Item {
                    seq,
                    kvh: j % p.n_kv_heads,
                    t0,
                    nt: (*QTV).min(seq.rows - t0),
                };
                item_dispatch(&call, &item, scratch);
            }
        });
    });
}

/// The shapes, the block table's reach and (for the raw writes) that no two sequences share a row.
fn check<E>(
    q: &[f32],
    kv: PagedKv<'_, E>,
    table: &[u32],
    seqs: &[AttnSeq],
    p: &AttnParams,
    out: &[f32],
) {
    let (width, bs) = (p.n_heads * p.head_dim, kv.block_size);
    assert!(
        p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 && bs > 0,
        "paged_attention: bad heads or block size"
    );
    assert!(
        q.len() == out.len() && q.len() % width.max(1) == 0,
        "paged_attention: q and out must both be [rows, n_heads * head_dim]"
    );
    let block = bs * p.n_kv_heads * p.head_dim;
    assert!(
        kv.keys.len() == kv.values.len() && kv.keys.len() % block.max(1) == 0,
        "paged_attention: keys and values must both be [num_blocks, block_size, n_kv_heads, head_dim]"
    );
    let rows = q.len() / width.max(1);
    for s in seqs.iter().filter(|s| s.rows > 0) {
        assert!(
            s.row0 + s.rows <= rows,
            "paged_attention: {s:?} past the last row"
        );
        let blocks = (s.pos0 + s.rows).div_ceil(bs);
        assert!(
            s.block0 + blocks <= table.len(),
            "paged_attention: {s:?} past the block table"
        );
    }
    let overlap = |a: &AttnSeq, b: &AttnSeq| {
        a.rows > 0 && b.rows > 0 && a.row0 < b.row0 + b.rows && b.row0 < a.row0 + a.rows
    };
    let in_order = seqs.windows(2).all(|w| w[0].row0 + w[0].rows <= w[1].row0);
    if !in_order {
        for (i, a) in seqs.iter().enumerate() {
            assert!(
                !seqs[i + 1..].iter().any(|b| overlap(a, b)),
                "paged_attention: sequences share query rows"
            );
        }
    }
}

/// `attend` on the AVX2 build when available, else the same body on the baseline.
fn item_dispatch<E: PagedElem>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::fast() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<E: PagedElem>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
            attend(call, item, scratch)
        }
        // SAFETY: `fast()` is only true when the CPU has AVX2 and FMA.
        return unsafe { avx2(call, item, scratch) };
    }
    attend(call, item, scratch)
}

/// One item: rows `r = i·g + j` (token i of the tile, query head `kvh·g + j`) over the key
/// blocks any of them sees, then `out = acc / l`.
#[inline(always)]
fn attend<E: PagedElem>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
    let (p, s, bs) = (call.p, &item.seq, call.kv.block_size);
    let (hd, g) = (p.head_dim, p.n_heads / p.n_kv_heads);
    let (width, slot) = (p.n_heads * hd, p.n_kv_heads * hd);
    let rows = g * item.nt;
    let (acc, rest) = scratch.split_at_mut(g * (*QTV) * hd);
    let (m, rest) = rest.split_at_mut(g * (*QTV));
    let (l, rest) = rest.split_at_mut(g * (*QTV));
    let span = E::span(bs);
    let (srow, rest) = rest.split_at_mut(span);
    let (part, rest) = rest.split_at_mut(8 * span);
    let (kbuf, rest) = rest.split_at_mut(span * hd);
    let vbuf = &mut rest[..span * hd];
    acc[..rows * hd].fill(0.0);
    m[..rows].fill(f32::NEG_INFINITY);
    l[..rows].fill(0.0);

    // token i of the tile is at position first + i and sees first_seen(first + i)..=first + i
    let first = s.pos0 + item.t0;
    let end = first + item.nt;
    let first_seen = |pos: usize| p.window.map_or(0, |w| (pos + 1).saturating_sub(w));
    let start = first_seen(first);
    // where position `pos` of the sequence is in the pool, for kv head kvh
    let at = |pos: usize| {
        let block = call.table[s.block0 + pos / bs] as usize;
        (block * bs + pos % bs) * slot + item.kvh * hd
    };
    // steps of `span` positions: b0.. (one block when read in place)
    for b in start / span..end.div_ceil(span) {
        let b0 = b * span;
        // positions b0 + j0..b0 + j1 are the ones some row sees
        let (j0, j1) = (start.saturating_sub(b0), (end - b0).min(span));
        // key/value of position b0 + j at `k[j * stride..][..hd]`
        let (k, v, stride): (&[f32], &[f32], usize) =
            match (E::as_f32(call.kv.keys), E::as_f32(call.kv.values)) {
                (Some(k), Some(v)) => (&k[at(b0)..], &v[at(b0)..], slot),
                _ => {
                    let pf = std::env::var_os("PF").is_some(); // TEMP
                    for j in j0..j1 {
                        if pf && b0 + span + j < end {
                            let ahead = at(b0 + span + j);
                            prefetch(call.kv.keys, ahead, hd);
                            prefetch(call.kv.values, ahead, hd);
                        }
                        let from = at(b0 + j);
                        to_f32(&call.kv.keys[from..][..hd], &mut kbuf[j * hd..][..hd]);
                        to_f32(&call.kv.values[from..][..hd], &mut vbuf[j * hd..][..hd]);
                    }
                    (&*kbuf, &*vbuf, hd)
                }
            };
        for i in 0..item.nt {
            let pos = first + i;
            let (lo, hi) = (
                first_seen(pos).saturating_sub(b0),
                (pos + 1).saturating_sub(b0).min(span),
            );
            if lo >= hi {
                continue;
            }
            let qrow = (s.row0 + item.t0 + i) * width;
            for h in 0..g {
                let r = i * g + h;
                let qh = &call.q[qrow + (item.kvh * g + h) * hd..][..hd];
                let sc = &mut srow[lo..hi];
                scores(qh, &k[lo * stride..], stride, part, sc, p.scale);
                if let Some(cap) = p.softcap {
                    sc.iter_mut().for_each(|x| *x = cap * (*x / cap).tanh());
                }
                let acc = &mut acc[r * hd..][..hd];
                let new_max = m[r].max(max_of(sc));
                if new_max > m[r] {
                    let alpha = exp(m[r] - new_max); // 0 on the first block (m = -inf)
                    l[r] *= alpha;
                    acc.iter_mut().for_each(|a| *a *= alpha);
                    m[r] = new_max;
                }
                l[r] += exp_shifted(sc, new_max);
                add_weighted(acc, sc, &v[lo * stride..], stride);
            }
        }
    }

    for r in 0..rows {
        let (i, h) = (r / g, r % g);
        let at = (s.row0 + item.t0 + i) * width + (item.kvh * g + h) * hd;
        // SAFETY: item (seq, kvh, tile) alone owns these rows' heads kvh·g..(kvh+1)·g of out,
        // and `check` saw that no two sequences share a row.
        let o = unsafe { std::slice::from_raw_parts_mut(call.out.ptr().add(at), hd) };
        // (a window of 0 sees nothing: zeros, as the reference)
        let inv = if l[r] > 0.0 { 1.0 / l[r] } else { 0.0 };
        o.iter_mut()
            .zip(&acc[r * hd..][..hd])
            .for_each(|(o, a)| *o = a * inv);
    }
}

/// Ask for the cache lines of `src[at..at + n]` ahead of their use.
#[inline(always)]
fn prefetch<E>(src: &[E], at: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let p = src[at..at + n].as_ptr() as *const i8;
        for off in (0..n * size_of::<E>()).step_by(64) {
            // SAFETY: SSE is part of x86_64; a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(off)) };
        }
    }
}

#[inline(always)]
fn to_f32<E: KvElem>(src: &[E], dst: &mut [f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
}

/// `x = e^(x - max)` in place; returns `Σ x` (eight lanes).
#[inline(always)]
fn exp_shifted(x: &mut [f32], max: f32) -> f32 {
    let mut sum = [0f32; 8];
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        for k in 0..8 {
            c[k] = exp(c[k] - max);
            sum[k] += c[k];
        }
    }
    let mut s = lanes_sum(sum);
    for v in chunks.into_remainder() {
        *v = exp(*v - max);
        s += *v;
    }
    s
}

/// `s[j] = q · k[j * stride..][..hd] · scale`. Each key's dot is left as eight lane sums in
/// `part [keys, 8]`, reduced in a second pass over all keys: a horizontal sum inside the key loop
/// makes the vectorizer split the lanes into shuffled halves (3x slower).
#[inline(always)]
fn scores(q: &[f32], k: &[f32], stride: usize, part: &mut [f32], s: &mut [f32], scale: f32) {
    let (hd, n) = (q.len(), s.len());
    let mut j = 0;
    while j + 4 <= n {
        lane_sums4(q, &k[j * stride..], stride, &mut part[j * 8..]);
        j += 4;
    }
    for j in j..n {
        lane_sums1(q, &k[j * stride..], &mut part[j * 8..]);
    }
    let body = hd / 8 * 8;
    for (j, o) in s.iter_mut().enumerate() {
        let p: [f32; 8] = part[j * 8..][..8].try_into().unwrap();
        let kj = &k[j * stride..][..hd];
        let tail: f32 = (body..hd).map(|d| q[d] * kj[d]).sum();
        *o = (lanes_sum(p) + tail) * scale;
    }
}

/// `part[u * 8 + l] = Σ_c q[8c + l] · k[u * stride + 8c + l]` for four keys `u` (one register
/// each, sharing the loads of `q`), over the whole eights of `q`.
#[inline(always)]
fn lane_sums4(q: &[f32], k: &[f32], stride: usize, part: &mut [f32]) {
    let hd = q.len();
    let key = |u: usize| k[u * stride..][..hd].chunks_exact(8);
    let mut acc = [[0f32; 8]; 4];
    let chunks = q
        .chunks_exact(8)
        .zip(key(0))
        .zip(key(1))
        .zip(key(2))
        .zip(key(3));
    for ((((qc, k0), k1), k2), k3) in chunks {
        for l in 0..8 {
            acc[0][l] += qc[l] * k0[l];
            acc[1][l] += qc[l] * k1[l];
            acc[2][l] += qc[l] * k2[l];
            acc[3][l] += qc[l] * k3[l];
        }
    }
    part[..32].copy_from_slice(acc.as_flattened());
}

/// `lane_sums4` for one key.
#[inline(always)]
fn lane_sums1(q: &[f32], k: &[f32], part: &mut [f32]) {
    let mut acc = [0f32; 8];
    for (qc, kc) in q.chunks_exact(8).zip(k[..q.len()].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += qc[l] * kc[l];
        }
    }
    part[..8].copy_from_slice(&acc);
}

/// `acc += Σ_j w[j] · v[j * stride..][..acc.len()]`, 32 (then 8) output lanes held in registers
/// across the j loop.
#[inline(always)]
fn add_weighted(acc: &mut [f32], w: &[f32], v: &[f32], stride: usize) {
    let mut d = 0;
    while d + 32 <= acc.len() {
        add_weighted_lanes::<32>(&mut acc[d..], w, &v[d..], stride);
        d += 32;
    }
    while d + 8 <= acc.len() {
        add_weighted_lanes::<8>(&mut acc[d..], w, &v[d..], stride);
        d += 8;
    }
    for (a, d) in acc[d..].iter_mut().zip(d..) {
        *a += w
            .iter()
            .enumerate()
            .map(|(j, wj)| wj * v[j * stride + d])
            .sum::<f32>();
    }
}

#[inline(always)]
fn add_weighted_lanes<const N: usize>(acc: &mut [f32], w: &[f32], v: &[f32], stride: usize) {
    let mut a: [f32; N] = acc[..N].try_into().unwrap();
    for (j, wj) in w.iter().enumerate() {
        let vj = &v[j * stride..][..N];
        for l in 0..N {
            a[l] += wj * vj[l];
        }
    }
    acc[..N].copy_from_slice(&a);
}

#[cfg(test)]
pub(crate) fn scratch_len() -> usize {
    SCRATCH.with(|c| c.borrow().len())
}

#[cfg(test)]
#[path = "paged_tests.rs"]
mod tests;
