//! Attention for a batch of sequences over a paged KV cache, flash-style.
//!
//! A layer's pool holds keys and values as `[num_blocks, block_size, n_kv_heads, head_dim]`; a
//! sequence finds its positions through its run of the block table. One call attends every query
//! row of every sequence (decode rows and prefill chunks mixed).
//!
//! 1. Work items are (sequence, kv head, tile of up to `QT` consecutive tokens): the `g =
//!    n_heads / n_kv_heads` query heads of the kv head times the tile's tokens are `g · tile`
//!    query rows that share every key and value read. A decode row is a tile of one token.
//! 2. One task per thread claims items from a shared counter, each sequence's last (longest)
//!    tiles first, so the threads finish close together. Claiming an item asks for the first
//!    step of the next one (decode items are often one step long, and their keys are out of
//!    cache: +8% on a 16-sequence decode step).
//! 3. An item walks the positions its rows can see (causality, window) in steps: one block of an
//!    f32 pool, read in place, or `KC / head_dim` positions of an f16 pool, converted to f32 once
//!    per step (not per row; F16C on the AVX2 build) while the next step's lines are prefetched. Each row scores its
//!    visible positions of the step and folds them into its running max `m`, sum `l` and
//!    accumulator `acc` (rescaled when the max grows): `acc += p · V`. No `[tokens × context]`
//!    score matrix exists.
//! 4. `out = acc / l`, written straight into the item's rows and heads of `out`.
//!
//! Scratch is the calling thread's, one region per task, sized from `QT`, `g`, `head_dim` and the
//! step (never the context), so a warm call allocates nothing.

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

/// Query tokens per work item (`g · QT` query rows share each key and value while it is hot).
const QT: usize = 16;
/// Floats of converted keys per step over an f16 pool (`KC / head_dim` positions, 16 to 64; with
/// the values 32 KiB, beside the accumulators in L1). Steps span blocks, so they stay long when
/// blocks are short: per-step costs dominated steps of one 16-slot block, and 64 positions were
/// ~6% faster than 32 in prefill.
const KC: usize = 4096;

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

/// A pool element: f32 is read in place, f16 converted a step at a time.
trait PagedElem: KvElem + Sync {
    /// The slice itself when it already is f32.
    fn as_f32(src: &[Self]) -> Option<&[f32]>;
    /// `dst = src` as f32; `F16C`: on the AVX2 build (the CPU has F16C), one instruction per eight.
    #[inline(always)]
    fn convert<const F16C: bool>(src: &[Self], dst: &mut [f32]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
    }
}

impl PagedElem for f32 {
    fn as_f32(src: &[f32]) -> Option<&[f32]> {
        Some(src)
    }
}

impl PagedElem for half::f16 {
    fn as_f32(_: &[half::f16]) -> Option<&[f32]> {
        None
    }
    #[inline(always)]
    fn convert<const F16C: bool>(src: &[half::f16], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if F16C {
            // SAFETY: F16C is only set on the AVX2 build, which runs when the CPU has F16C.
            return unsafe { f16c_convert(src, dst) };
        }
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
    }
}

/// `dst = src` as f32 with `vcvtph2ps`, eight at a time (then one at a time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn f16c_convert(src: &[half::f16], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = src.len().min(dst.len());
    let (s, d) = (src.as_ptr() as *const u16, dst.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n {
        let h = _mm_loadu_si128(s.add(i) as *const __m128i);
        _mm256_storeu_ps(d.add(i), _mm256_cvtph_ps(h));
        i += 8;
    }
    for i in i..n {
        *d.add(i) = super::f16_bits_to_f32(*s.add(i));
    }
}

/// Positions per step of an item: a block when read in place, else `KC / head_dim` (16 to 64).
fn span<E: PagedElem>(block_size: usize, head_dim: usize) -> usize {
    match E::as_f32(&[]) {
        Some(_) => block_size,
        None => (KC / head_dim).clamp(16, 64),
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

/// Floats of scratch one task needs: `acc [g·QT, head_dim]`, `m`, `l [g·QT]`, one score row
/// `[span]` with its lane sums `[span, 8]`, and converted keys and values `[span, head_dim]` each,
/// rounded up to a cache line so tasks never share one.
fn task_scratch(p: &AttnParams, span: usize) -> usize {
    let (rows, hd) = (p.n_heads / p.n_kv_heads * QT, p.head_dim);
    (rows * (hd + 2) + span * (9 + 2 * hd)).next_multiple_of(16)
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
    let out_len = out.len();
    let call = Call {
        q,
        kv,
        table,
        p,
        out: SendPtr(out.as_mut_ptr()),
    };
    check(&call, seqs, out_len);
    let n_kv = p.n_kv_heads;
    let items_of = |s: &AttnSeq| s.rows.div_ceil(QT) * n_kv;
    let total: usize = seqs.iter().map(items_of).sum();
    if total == 0 {
        return;
    }
    let tasks = total.min(pool.threads());
    let need = task_scratch(p, span::<E>(kv.block_size, p.head_dim));
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
        let out = SendPtr(out.as_mut_ptr());
        let call = Call { q, kv, table, p, out };
        let next = AtomicUsize::new(0);
        pool.run(tasks, |task| {
            // SAFETY: task `task` alone uses this region of the scratch.
            let scratch = unsafe { std::slice::from_raw_parts_mut(scratch_ptr.ptr().add(task * need), need) };
            // the items this task claims only grow, so its cursor into `seqs` only moves on:
            // seqs[si] holds items first..first + items_of(seqs[si])
            let (mut si, mut first) = (0, 0);
            let mut item_at = |i: usize| {
                while i >= first + items_of(&seqs[si]) {
                    first += items_of(&seqs[si]);
                    si += 1;
                }
                let (seq, j) = (seqs[si], i - first);
                let t0 = (seq.rows.div_ceil(QT) - 1 - j / n_kv) * QT;
                let (kvh, nt) = (j % n_kv, QT.min(seq.rows - t0));
                Item { seq, kvh, t0, nt }
            };
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= total {
                    break;
                }
                let item = item_at(i);
                // the next item's first step, whichever thread takes it (its first step is the
                // only one not prefetched a step ahead; a decode item is often one step long)
                if i + 1 < total {
                    prefetch_first_step(&call, &item_at(i + 1));
                }
                item_dispatch(&call, &item, scratch);
            }
        });
    });
}

/// The shapes, the block table's reach and (for the raw writes) that no two sequences share a row.
fn check<E>(c: &Call<'_, E>, seqs: &[AttnSeq], out: usize) {
    let need = |ok: bool, what: &str| assert!(ok, "paged_attention: {what}");
    let (p, bs, n) = (c.p, c.kv.block_size, c.q.len());
    let (width, block) = (p.n_heads * p.head_dim, bs * p.n_kv_heads * p.head_dim);
    let grouped = p.n_kv_heads > 0 && p.n_heads.is_multiple_of(p.n_kv_heads);
    need(grouped && width > 0 && block > 0, "heads or block size");
    need(n == out && n.is_multiple_of(width), "q, out shapes");
    let (keys, values) = (c.kv.keys.len(), c.kv.values.len());
    need(keys == values && keys.is_multiple_of(block), "keys, values shapes");
    for s in seqs.iter().filter(|s| s.rows > 0) {
        let blocks = (s.pos0 + s.rows).div_ceil(bs);
        let fits = s.row0 + s.rows <= n / width && s.block0 + blocks <= c.table.len();
        need(fits, "a sequence past the rows or the table");
    }
    let apart =
        |a: &AttnSeq, b: &AttnSeq| a.rows == 0 || b.rows == 0 || a.row0 + a.rows <= b.row0 || b.row0 + b.rows <= a.row0;
    // in row order: one pass, else every pair
    if !seqs.windows(2).all(|w| w[0].row0 + w[0].rows <= w[1].row0) {
        for (i, a) in seqs.iter().enumerate() {
            let ok = seqs[i + 1..].iter().all(|b| apart(a, b));
            need(ok, "sequences share query rows");
        }
    }
}

/// Asks for the keys and values of the first step `attend` takes of `item`.
fn prefetch_first_step<E: PagedElem>(call: &Call<'_, E>, item: &Item) {
    let (p, s, bs) = (call.p, &item.seq, call.kv.block_size);
    let hd = p.head_dim;
    let span = span::<E>(bs, hd);
    let first = s.pos0 + item.t0;
    let start = p.window.map_or(0, |w| (first + 1).saturating_sub(w));
    let end = (first + item.nt).min((start / span + 1) * span);
    for pos in start..end {
        let block = call.table[s.block0 + pos / bs] as usize;
        let at = (block * bs + pos % bs) * p.n_kv_heads * hd + item.kvh * hd;
        prefetch(call.kv.keys, at, hd);
        prefetch(call.kv.values, at, hd);
    }
}

/// `attend` on the AVX2 build when available, else the same body on the baseline.
fn item_dispatch<E: PagedElem>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::fast() {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn avx2<E: PagedElem>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
            attend::<E, true>(call, item, scratch)
        }
        // SAFETY: `fast()` is only true when the CPU has AVX2, FMA and F16C (`Isa::Avx2`).
        return unsafe { avx2(call, item, scratch) };
    }
    attend::<E, false>(call, item, scratch)
}

/// One item: rows `r = i·g + h` (token i of the tile, query head `kvh·g + h`) over the positions
/// any of them sees, a step at a time, then `out = acc / l`.
#[inline(always)]
fn attend<E: PagedElem, const F16C: bool>(call: &Call<'_, E>, item: &Item, scratch: &mut [f32]) {
    let (p, s, bs) = (call.p, &item.seq, call.kv.block_size);
    let (hd, g) = (p.head_dim, p.n_heads / p.n_kv_heads);
    let span = span::<E>(bs, hd);
    let (width, slot) = (p.n_heads * hd, p.n_kv_heads * hd);
    let rows = g * item.nt;
    let (acc, rest) = scratch.split_at_mut(g * QT * hd);
    let (m, rest) = rest.split_at_mut(g * QT);
    let (l, rest) = rest.split_at_mut(g * QT);
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
    // the step b0..b0 + span (one block when read in place)
    for b in start / span..end.div_ceil(span) {
        let b0 = b * span;
        // positions b0 + j0..b0 + j1 are the ones some row sees
        let (j0, j1) = (start.saturating_sub(b0), (end - b0).min(span));
        // the key and value of position b0 + j at `k[j * stride..][..hd]`, `v[..]`
        let (k, v, stride): (&[f32], &[f32], usize) = match (E::as_f32(call.kv.keys), E::as_f32(call.kv.values)) {
            (Some(k), Some(v)) => (&k[at(b0)..], &v[at(b0)..], slot),
            _ => {
                for j in j0..j1 {
                    // ask for the next step's position j now (~20% off a decode batch
                    // whose pool is out of cache)
                    if b0 + span + j < end {
                        prefetch(call.kv.keys, at(b0 + span + j), hd);
                        prefetch(call.kv.values, at(b0 + span + j), hd);
                    }
                    let from = at(b0 + j);
                    E::convert::<F16C>(&call.kv.keys[from..][..hd], &mut kbuf[j * hd..][..hd]);
                    E::convert::<F16C>(&call.kv.values[from..][..hd], &mut vbuf[j * hd..][..hd]);
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
                    let alpha = exp(m[r] - new_max); // 0 on the first step (m = -inf)
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
        // SAFETY: item (seq, kvh, tile) alone owns heads kvh·g..(kvh+1)·g of the tile's rows of
        // out, and `check` saw that no two sequences share a row.
        let o = unsafe { std::slice::from_raw_parts_mut(call.out.ptr().add(at), hd) };
        // (a window of 0 sees nothing: zeros, as the reference)
        let inv = if l[r] > 0.0 { 1.0 / l[r] } else { 0.0 };
        o.iter_mut().zip(&acc[r * hd..]).for_each(|(o, a)| *o = a * inv);
    }
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
/// makes the vectorizer split the lanes into shuffled 128-bit halves (ops::dot has that problem).
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
    let chunks = q.chunks_exact(8).zip(key(0)).zip(key(1)).zip(key(2)).zip(key(3));
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
        *a += w.iter().enumerate().map(|(j, wj)| wj * v[j * stride + d]).sum::<f32>();
    }
}

/// `add_weighted` for the first `N` lanes of `acc`.
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

/// Ask for the cache lines of `src[at..at + n]` ahead of their use.
#[inline(always)]
fn prefetch<E>(src: &[E], at: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = src[at..at + n].as_ptr() as *const i8;
        for off in (0..n * size_of::<E>()).step_by(64) {
            // SAFETY: SSE is part of x86_64, and a prefetch never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
}

#[cfg(test)]
pub(crate) fn scratch_len() -> usize {
    SCRATCH.with(|c| c.borrow().len())
}

#[cfg(test)]
#[path = "paged_tests.rs"]
mod tests;
