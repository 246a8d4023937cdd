//! `paged_attention` against the contiguous one-query-at-a-time reference, on random batches
//! scattered over shuffled blocks.

use super::*;
use crate::ops::{attention_tokens_f16, reference};
use crate::testutil::Rng;

/// Contiguous keys and values `[len, n_kv_heads, head_dim]` of each sequence, scattered into a
/// shuffled pool of blocks (a spare block and every unused slot hold NaN: reading one shows).
struct Batch {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    pool_k: Vec<f32>,
    pool_v: Vec<f32>,
    table: Vec<u32>,
    seqs: Vec<AttnSeq>,
    q: Vec<f32>,
}

/// `shape`: (pos0, rows) per sequence; the rows are laid out in `q` in reverse order with a
/// spare row before each, which no sequence covers.
fn batch(rng: &mut Rng, p: &AttnParams, bs: usize, shape: &[(usize, usize)], f16: bool) -> Batch {
    let slot = p.n_kv_heads * p.head_dim;
    let round = |v: Vec<f32>| match f16 {
        true => v.into_iter().map(|x| half::f16::from_f32(x).to_f32()).collect(),
        false => v,
    };
    let lens: Vec<usize> = shape.iter().map(|(pos0, rows)| pos0 + rows).collect();
    let keys: Vec<Vec<f32>> = lens.iter().map(|n| round(rng.normals(n * slot))).collect();
    let values: Vec<Vec<f32>> = lens.iter().map(|n| round(rng.normals(n * slot))).collect();
    let blocks: usize = lens.iter().map(|n| n.div_ceil(bs)).sum::<usize>() + 1;
    let mut order: Vec<u32> = (0..blocks as u32).collect();
    for i in (1..blocks).rev() {
        order.swap(i, rng.next_u64() as usize % (i + 1));
    }
    let (mut pool_k, mut pool_v) = (vec![f32::NAN; blocks * bs * slot], vec![f32::NAN; blocks * bs * slot]);
    let (mut table, mut seqs) = (Vec::new(), Vec::new());
    let mut row = 0;
    let mut rows_of = vec![0; shape.len()];
    for (i, (_, rows)) in shape.iter().enumerate().rev() {
        rows_of[i] = row + 1;
        row += 1 + rows;
    }
    for (s, (&(pos0, rows), len)) in shape.iter().zip(&lens).enumerate() {
        let block0 = table.len();
        table.extend_from_slice(&order[block0..block0 + len.div_ceil(bs)]);
        for pos in 0..*len {
            let at = (table[block0 + pos / bs] as usize * bs + pos % bs) * slot;
            pool_k[at..at + slot].copy_from_slice(&keys[s][pos * slot..][..slot]);
            pool_v[at..at + slot].copy_from_slice(&values[s][pos * slot..][..slot]);
        }
        seqs.push(AttnSeq {
            row0: rows_of[s],
            rows,
            pos0,
            block0,
        });
    }
    let q = rng.normals(row * p.n_heads * p.head_dim);
    Batch {
        keys,
        values,
        pool_k,
        pool_v,
        table,
        seqs,
        q,
    }
}

fn to_f16(v: &[f32]) -> Vec<half::f16> {
    v.iter().map(|x| half::f16::from_f32(*x)).collect()
}

/// `paged_attention(_f16)` of the batch into an `out` of NaN.
fn run_paged(pool: &ThreadPool, b: &Batch, p: &AttnParams, bs: usize, f16: bool) -> Vec<f32> {
    let mut out = vec![f32::NAN; b.q.len()];
    if f16 {
        let (k, v) = (to_f16(&b.pool_k), to_f16(&b.pool_v));
        let kv = PagedKv {
            keys: &k[..],
            values: &v[..],
            block_size: bs,
        };
        paged_attention_f16(pool, &b.q, kv, &b.table, &b.seqs, p, &mut out);
    } else {
        let kv = PagedKv {
            keys: &b.pool_k[..],
            values: &b.pool_v[..],
            block_size: bs,
        };
        paged_attention(pool, &b.q, kv, &b.table, &b.seqs, p, &mut out);
    }
    out
}

/// Every covered row against `reference::attention(_f16)` over the sequence's contiguous keys;
/// every other row still NaN.
fn check_batch(b: &Batch, p: &AttnParams, f16: bool, out: &[f32], what: &str) {
    let width = p.n_heads * p.head_dim;
    let mut covered = vec![false; out.len() / width];
    for (s, seq) in b.seqs.iter().enumerate() {
        let (k16, v16) = (to_f16(&b.keys[s]), to_f16(&b.values[s]));
        let mut scores = vec![0f32; seq.pos0 + seq.rows];
        for i in 0..seq.rows {
            let row = seq.row0 + i;
            covered[row] = true;
            let (q, mut want) = (&b.q[row * width..][..width], vec![0f32; width]);
            let len = seq.pos0 + i + 1;
            if f16 {
                reference::attention_f16(q, &k16, &v16, len, p, &mut scores, &mut want);
            } else {
                reference::attention(q, &b.keys[s], &b.values[s], len, p, &mut scores, &mut want);
            }
            for (d, (got, want)) in out[row * width..][..width].iter().zip(&want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{what}: seq {s} token {i} [{d}]: {got} vs {want}"
                );
            }
        }
    }
    for (row, _) in covered.iter().enumerate().filter(|(_, c)| !**c) {
        assert!(
            out[row * width..][..width].iter().all(|v| v.is_nan()),
            "{what}: row {row} written"
        );
    }
}

fn params(n_heads: usize, n_kv_heads: usize, head_dim: usize) -> AttnParams {
    AttnParams {
        n_heads,
        n_kv_heads,
        head_dim,
        scale: 1.0 / (head_dim as f32).sqrt(),
        softcap: None,
        window: None,
    }
}

#[test]
fn paged_attention_matches_contiguous_reference() {
    let mut rng = Rng::new(41);
    let pool = ThreadPool::new(2);
    for (n_heads, n_kv_heads, head_dim) in [(6, 2, 64), (4, 4, 40)] {
        for bs in [16, 5] {
            // decode at 37, prefill of 50 from 0, a chunk 21..40, a length of 3 blocks
            let shape = [(37, 1), (0, 50), (21, 19), (bs, 2 * bs)];
            for f16 in [false, true] {
                for (window, softcap, scale) in
                    [(None, None, None), (Some(7), None, None), (None, Some(30.0), Some(2.0))]
                {
                    let p = AttnParams {
                        window,
                        softcap,
                        scale: scale.unwrap_or(1.0 / (head_dim as f32).sqrt()),
                        ..params(n_heads, n_kv_heads, head_dim)
                    };
                    let what =
                        format!("heads {n_heads}/{n_kv_heads}x{head_dim} bs {bs} f16 {f16} {window:?} {softcap:?}");
                    let b = batch(&mut rng, &p, bs, &shape, f16);
                    let out = run_paged(&pool, &b, &p, bs, f16);
                    check_batch(&b, &p, f16, &out, &what);
                }
            }
        }
    }
}

#[test]
fn paged_attention_same_on_any_thread_count() {
    let mut rng = Rng::new(42);
    let p = AttnParams {
        window: Some(40),
        ..params(9, 3, 64)
    };
    // a decode batch and a long prefill mixed: many items of very different sizes
    let mut shape: Vec<(usize, usize)> = (0..12).map(|i| (30 + 17 * i, 1)).collect();
    shape.push((0, 100));
    shape.push((60, 33));
    for f16 in [false, true] {
        let b = batch(&mut rng, &p, 16, &shape, f16);
        let one = run_paged(&ThreadPool::new(1), &b, &p, 16, f16);
        check_batch(&b, &p, f16, &one, "1 thread");
        for threads in [2, 3] {
            let many = run_paged(&ThreadPool::new(threads), &b, &p, 16, f16);
            let same = one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{threads} threads differ from 1 (f16 {f16})");
        }
    }
}

#[test]
fn paged_attention_reuses_its_scratch() {
    let mut rng = Rng::new(43);
    let p = params(6, 2, 64);
    let pool = ThreadPool::new(2);
    let b = batch(&mut rng, &p, 16, &[(0, 40), (100, 1), (7, 1)], true);
    let first = run_paged(&pool, &b, &p, 16, true);
    let len = scratch_len();
    assert!(len > 0);
    let second = run_paged(&pool, &b, &p, 16, true);
    assert_eq!(scratch_len(), len, "the second call grew the scratch");
    assert_eq!(
        first.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        second.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn paged_attention_rejects_overlapping_sequences() {
    let mut rng = Rng::new(44);
    let p = params(2, 1, 8);
    let mut b = batch(&mut rng, &p, 4, &[(0, 3), (0, 3)], false);
    b.seqs[1].row0 = b.seqs[0].row0 - 1; // shares two rows with seqs[0]
    let res = std::panic::catch_unwind(|| run_paged(&ThreadPool::new(1), &b, &p, 4, false));
    let msg = res.expect_err("overlapping sequences ran");
    let msg = (msg.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| msg.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("share"), "{msg}");
}

/// ns per call, SmolLM2-135M-like heads over f16: a decode batch and a long prefill, paged,
/// against the one-query-at-a-time `attention_tokens_f16` over contiguous keys.
/// `cargo test -p ondo-kernels --release --lib paged -- --ignored --nocapture`
#[test]
#[ignore]
fn paged_attention_timing_probe() {
    let mut rng = Rng::new(45);
    let p = params(9, 3, 64);
    let width = p.n_heads * p.head_dim;
    // the best of five rounds (other work on the machine only ever adds time)
    let time = |reps: usize, f: &mut dyn FnMut()| {
        f();
        let round = |f: &mut dyn FnMut()| {
            let t = std::time::Instant::now();
            (0..reps).for_each(|_| f());
            t.elapsed().as_nanos() as f64 / reps as f64
        };
        (0..5).map(|_| round(f)).fold(f64::INFINITY, f64::min)
    };
    for (name, shape, reps) in [
        ("decode 16 seqs x 1 row at 512", vec![(511, 1); 16], 50),
        ("prefill 2048 rows from 0", vec![(0, 2048)], 1),
    ] {
        let b = batch(&mut rng, &p, 16, &shape, true);
        let (k, v) = (to_f16(&b.pool_k), to_f16(&b.pool_v));
        let kv = PagedKv {
            keys: &k[..],
            values: &v[..],
            block_size: 16,
        };
        let contiguous: Vec<_> = b
            .keys
            .iter()
            .zip(&b.values)
            .map(|(k, v)| (to_f16(k), to_f16(v)))
            .collect();
        let mut out = vec![0f32; b.q.len()];
        for threads in [1, 2] {
            let pool = ThreadPool::new(threads);
            let paged = time(reps, &mut || {
                paged_attention_f16(&pool, &b.q, kv, &b.table, &b.seqs, &p, &mut out)
            });
            let old = time(reps, &mut || {
                for (s, (k, v)) in b.seqs.iter().zip(&contiguous) {
                    let rows = s.row0 * width..(s.row0 + s.rows) * width;
                    attention_tokens_f16(&pool, &b.q[rows.clone()], k, v, s.pos0, &p, &mut out[rows]);
                }
            });
            println!(
                "{name}, {threads} thread(s): paged_attention_f16 {paged:.0} ns, \
                 attention_tokens_f16 {old:.0} ns ({:.1}x)",
                old / paged
            );
        }
    }
}
