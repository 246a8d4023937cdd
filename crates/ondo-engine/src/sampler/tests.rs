//! Sampler-level tests: the draw follows the intended distribution (chi-square against an
//! independent f64 reference, fixed seeds), seeding, masks, logprobs, chain order, no allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::*;
use crate::params::SamplingParams;

const LOGITS: [f32; 8] = [1.0, 2.0, 0.5, -1.0, 3.0, 0.0, 2.5, -0.5];
const DRAWS: usize = 100_000;

// ---- reference distributions (f64, full sorts, written independently of the processors) ----

fn softmax64(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| v / s).collect()
}

/// Probabilities after temperature, min_p, top_k, top_p (each off when None), vLLM semantics.
fn reference(logits: &[f32], t: f64, min_p: Option<f64>, top_k: Option<usize>, top_p: Option<f64>) -> Vec<f64> {
    let mut l: Vec<f64> = logits.iter().map(|&v| f64::from(v) / t).collect();
    if let Some(m) = min_p {
        let p = softmax64(&l);
        let max = p.iter().cloned().fold(0.0, f64::max);
        (0..l.len())
            .filter(|&i| p[i] < m * max)
            .for_each(|i| l[i] = f64::NEG_INFINITY);
    }
    let mut order: Vec<usize> = (0..l.len()).collect();
    order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
    if let Some(k) = top_k {
        order[k..].iter().for_each(|&i| l[i] = f64::NEG_INFINITY);
    }
    if let Some(p) = top_p {
        let probs = softmax64(&l);
        let mut before = 0.0;
        for &i in &order {
            if before >= p {
                l[i] = f64::NEG_INFINITY;
            }
            before += probs[i];
        }
    }
    softmax64(&l)
}

// ---- chi-square ----

/// Upper 0.1% point of chi-square with `df` degrees of freedom (Wilson–Hilferty).
fn chi2_critical(df: usize) -> f64 {
    let d = df as f64;
    let z = 3.0902; // standard normal 0.999 quantile
    d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3)
}

/// Chi-square statistic of `counts` against `probs`; panics if a zero-probability token was drawn.
fn chi2(counts: &[usize], probs: &[f64]) -> (f64, usize) {
    let n: usize = counts.iter().sum();
    let mut stat = 0.0;
    let mut cells = 0usize;
    for (&c, &p) in counts.iter().zip(probs) {
        if p == 0.0 {
            assert_eq!(c, 0, "a masked token was drawn");
            continue;
        }
        let e = n as f64 * p;
        stat += (c as f64 - e).powi(2) / e;
        cells += 1;
    }
    (stat, cells.saturating_sub(1).max(1))
}

fn assert_fits(counts: &[usize], probs: &[f64]) {
    let (stat, df) = chi2(counts, probs);
    assert!(
        stat < chi2_critical(df),
        "chi2 {stat:.1} >= {:.1} (df {df}): counts {counts:?} vs {probs:?}",
        chi2_critical(df)
    );
}

fn draw_counts(params: &SamplingParams, logits: &[f32], seed: u64, draws: usize) -> Vec<usize> {
    let mut sampler = Sampler::new(params, &[]);
    let hist = SeqHistory::new(vec![]);
    let mut rng = Rng::new(seed);
    let mut counts = vec![0; logits.len()];
    let mut buf = vec![0.0; logits.len()];
    for _ in 0..draws {
        buf.copy_from_slice(logits);
        counts[sampler.sample(&mut buf, &hist.ctx(), &mut rng) as usize] += 1;
    }
    counts
}

fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
    let mut p = SamplingParams::default();
    f(&mut p);
    p
}

// ---- distributions ----

#[test]
fn chi2_critical_values_match_tables() {
    // Tabulated 0.999 quantiles: df 1 → 10.83, 5 → 20.52, 7 → 24.32, 20 → 45.31.
    for (df, table) in [(5, 20.52), (7, 24.32), (20, 45.31)] {
        assert!(
            (chi2_critical(df) - table).abs() / table < 0.02,
            "df {df}: {}",
            chi2_critical(df)
        );
    }
    assert!(chi2_critical(1) > 10.0);
}

#[test]
fn plain_sampling_follows_softmax() {
    let counts = draw_counts(&SamplingParams::default(), &LOGITS, 1, DRAWS);
    assert_fits(&counts, &reference(&LOGITS, 1.0, None, None, None));
}

#[test]
fn temperature_sharpens_and_flattens() {
    for (t, seed) in [(0.7, 2), (1.8, 3)] {
        let counts = draw_counts(&params(|p| p.temperature = t as f32), &LOGITS, seed, DRAWS);
        assert_fits(&counts, &reference(&LOGITS, t, None, None, None));
    }
}

#[test]
fn chi2_test_rejects_a_wrong_distribution() {
    // Draws at temperature 1 must not pass for temperature 0.8, nor top_k 3 for top_k 4.
    let counts = draw_counts(&SamplingParams::default(), &LOGITS, 4, DRAWS);
    let (stat, df) = chi2(&counts, &reference(&LOGITS, 0.8, None, None, None));
    assert!(stat > chi2_critical(df), "{stat}");
    let counts = draw_counts(&params(|p| p.top_k = 4), &LOGITS, 5, DRAWS);
    let probs = reference(&LOGITS, 1.0, None, Some(3), None);
    assert!(
        counts.iter().zip(&probs).any(|(&c, &p)| c > 0 && p == 0.0),
        "the 4th token is drawn but masked for k=3"
    );
}

#[test]
fn top_k_follows_truncated_softmax() {
    for (k, seed) in [(1, 6), (3, 7), (5, 8)] {
        let counts = draw_counts(&params(|p| p.top_k = k as i32), &LOGITS, seed, DRAWS);
        assert_fits(&counts, &reference(&LOGITS, 1.0, None, Some(k), None));
    }
}

#[test]
fn top_p_follows_nucleus_softmax() {
    for (top_p, seed) in [(0.3, 9), (0.6, 10), (0.9, 11)] {
        let counts = draw_counts(&params(|p| p.top_p = top_p as f32), &LOGITS, seed, DRAWS);
        let probs = reference(&LOGITS, 1.0, None, None, Some(top_p));
        assert!(
            probs.iter().filter(|&&p| p > 0.0).count() < LOGITS.len(),
            "top_p should cut something"
        );
        assert_fits(&counts, &probs);
    }
}

#[test]
fn min_p_follows_filtered_softmax() {
    for (min_p, seed) in [(0.1, 12), (0.3, 13)] {
        let counts = draw_counts(&params(|p| p.min_p = min_p as f32), &LOGITS, seed, DRAWS);
        assert_fits(&counts, &reference(&LOGITS, 1.0, Some(min_p), None, None));
    }
}

#[test]
fn combined_chain_follows_the_composed_reference() {
    let p = params(|p| {
        p.temperature = 0.8;
        p.min_p = 0.02;
        p.top_k = 5;
        p.top_p = 0.9;
    });
    let counts = draw_counts(&p, &LOGITS, 14, DRAWS);
    let probs = reference(&LOGITS, 0.8, Some(0.02), Some(5), Some(0.9));
    // min_p cuts 2 tokens, top_k 1 more, top_p 2 more.
    assert_eq!(
        probs.iter().filter(|&&p| p > 0.0).count(),
        3,
        "the reference keeps 3 tokens"
    );
    assert_fits(&counts, &probs);
}

#[test]
fn top_p_on_a_large_vocabulary_follows_the_reference() {
    // 3000 tokens with logits spread over 10 nats: thousands of candidates for the quickselect.
    let logits: Vec<f32> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 20) as f32 / 400.0)
        .collect();
    let p = params(|p| p.top_p = 0.5);
    let counts = draw_counts(&p, &logits, 15, 20_000);
    let probs = reference(&logits, 1.0, None, None, Some(0.5));
    // Pool the kept tokens into ~10 cells of similar mass so each has a large expectation.
    let mut kept: Vec<usize> = (0..logits.len()).filter(|&i| probs[i] > 0.0).collect();
    kept.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    assert!(kept.len() > 20, "{}", kept.len());
    let (mut pc, mut pp) = (vec![0usize; 10], vec![0.0; 10]);
    for (j, &i) in kept.iter().enumerate() {
        pc[j % 10] += counts[i];
        pp[j % 10] += probs[i];
    }
    assert_eq!(pc.iter().sum::<usize>(), 20_000, "only kept tokens are drawn");
    assert_fits(&pc, &pp);
}

// ---- seeding ----

/// A toy model: logits that depend on the history, so a different draw changes the future.
fn toy_logits(hist: &SeqHistory, out: &mut [f32]) {
    let last = hist.output_ids.last().copied().unwrap_or(7) as usize;
    for (i, l) in out.iter_mut().enumerate() {
        *l = (((i * 31 + last * 17) % 23) as f32) / 6.0;
    }
}

fn generate(seed: u64, index: usize, len: usize) -> Vec<u32> {
    let p = params(|p| p.top_p = 0.95);
    let mut sampler = Sampler::new(&p, &[]);
    let mut rng = Rng::for_sequence(seed, index);
    let mut hist = SeqHistory::new(vec![1, 2, 3]);
    let mut logits = vec![0.0; 50];
    for _ in 0..len {
        toy_logits(&hist, &mut logits);
        let t = sampler.sample(&mut logits, &hist.ctx(), &mut rng);
        hist.push(t);
    }
    hist.output_ids
}

#[test]
fn same_seed_same_tokens_different_seed_differs() {
    assert_eq!(generate(42, 0, 40), generate(42, 0, 40));
    assert_ne!(generate(42, 0, 40), generate(43, 0, 40));
    assert_ne!(generate(42, 0, 40), generate(42, 1, 40));
}

#[test]
fn sequence_streams_do_not_depend_on_interleaving() {
    // Three sequences of one request stepped round-robin equal the same ones run alone.
    let p = params(|p| p.temperature = 1.3);
    let mut sampler = Sampler::new(&p, &[]);
    let mut rngs: Vec<Rng> = (0..3).map(|i| Rng::for_sequence(9, i)).collect();
    let mut hists: Vec<SeqHistory> = (0..3).map(|_| SeqHistory::new(vec![1, 2, 3])).collect();
    let mut logits = vec![0.0; 50];
    for _ in 0..30 {
        for (h, r) in hists.iter_mut().zip(&mut rngs) {
            toy_logits(h, &mut logits);
            let t = sampler.sample(&mut logits, &h.ctx(), r);
            h.push(t);
        }
    }
    for (i, h) in hists.iter().enumerate() {
        let alone = {
            let mut s = Sampler::new(&p, &[]);
            let mut r = Rng::for_sequence(9, i);
            let mut h = SeqHistory::new(vec![1, 2, 3]);
            for _ in 0..30 {
                toy_logits(&h, &mut logits);
                let t = s.sample(&mut logits, &h.ctx(), &mut r);
                h.push(t);
            }
            h.output_ids
        };
        assert_eq!(h.output_ids, alone, "sequence {i}");
    }
}

// ---- greedy, masks, biases ----

#[test]
fn greedy_is_argmax_with_lowest_id_on_ties_and_ignores_truncation() {
    let p = params(|p| {
        p.temperature = 0.0;
        p.top_k = 1;
        p.top_p = 0.1;
    });
    let mut s = Sampler::new(&p, &[]);
    assert_eq!(s.chain_names(), Vec::<&str>::new());
    let hist = SeqHistory::new(vec![]);
    let mut rng = Rng::new(0);
    assert_eq!(s.sample(&mut [1.0, 3.0, 2.0, 3.0], &hist.ctx(), &mut rng), 1);
    assert_eq!(s.sample(&mut [f32::NAN, -1.0, -2.0], &hist.ctx(), &mut rng), 1);
    assert_eq!(s.sample(&mut [], &hist.ctx(), &mut rng), 0);
}

#[test]
fn greedy_still_applies_penalties_and_biases() {
    let hist = SeqHistory::new(vec![1]);
    let mut rng = Rng::new(0);
    let mut s = Sampler::new(
        &params(|p| {
            p.temperature = 0.0;
            p.repetition_penalty = 2.0;
        }),
        &[],
    );
    assert_eq!(s.sample(&mut [1.0, 3.0, 2.0], &hist.ctx(), &mut rng), 2, "3 / 2 < 2");
    let mut s = Sampler::new(
        &params(|p| {
            p.temperature = 0.0;
            p.logit_bias = [(0, 5.0)].into();
        }),
        &[],
    );
    assert_eq!(s.sample(&mut [1.0, 3.0, 2.0], &hist.ctx(), &mut rng), 0);
}

#[test]
fn logit_bias_forces_and_bans_tokens() {
    let forced = draw_counts(&params(|p| p.logit_bias = [(3, 100.0)].into()), &LOGITS, 16, 2000);
    assert_eq!(forced[3], 2000);
    let banned = draw_counts(
        &params(|p| p.logit_bias = [(4, -100.0), (6, -100.0)].into()),
        &LOGITS,
        17,
        DRAWS,
    );
    let mut biased = LOGITS;
    biased[4] -= 100.0;
    biased[6] -= 100.0;
    assert_eq!((banned[4], banned[6]), (0, 0));
    assert_fits(&banned, &reference(&biased, 1.0, None, None, None));
}

#[test]
fn allowed_token_ids_restricts_and_renormalizes() {
    let counts = draw_counts(
        &params(|p| p.allowed_token_ids = Some(vec![0, 3, 5])),
        &LOGITS,
        18,
        DRAWS,
    );
    let mut masked = [f32::NEG_INFINITY; 8];
    for i in [0, 3, 5] {
        masked[i] = LOGITS[i];
    }
    assert_fits(&counts, &reference(&masked, 1.0, None, None, None));
}

#[test]
fn min_tokens_masks_eos_and_stop_ids_until_reached() {
    let p = params(|p| {
        p.min_tokens = 3;
        p.stop_token_ids = vec![6];
        p.logit_bias = [(4, 50.0), (6, 50.0)].into();
    });
    let mut s = Sampler::new(&p, &[4]);
    let mut hist = SeqHistory::new(vec![]);
    let mut rng = Rng::new(19);
    for step in 0..6 {
        let mut logits = LOGITS;
        let t = s.sample(&mut logits, &hist.ctx(), &mut rng);
        if step < 3 {
            assert!(t != 4 && t != 6, "step {step}: stop token {t} before min_tokens");
        } else {
            assert!(t == 4 || t == 6, "step {step}: biased stop tokens should win, got {t}");
        }
        hist.push(t);
    }
}

// ---- logprobs ----

#[test]
fn raw_logprobs_ignore_processing_and_processed_ones_follow_it() {
    let hist = SeqHistory::new(vec![]);
    let mut rng = Rng::new(20);
    let mut raw = LOGITS;
    log_softmax(&mut raw);

    let p = params(|p| {
        p.temperature = 0.5;
        p.top_k = 2;
        p.logprobs = Some(2);
    });
    let mut s = Sampler::new(&p, &[]);
    let t = s.sample(&mut LOGITS.clone(), &hist.ctx(), &mut rng);
    assert_eq!(s.logprobs(), Some(raw.as_slice()));
    assert_eq!(s.logprob_of(t), Some(raw[t as usize]));
    assert_eq!(s.top_logprobs(2, 0).map(|v| v.len()), Some(3));

    let p = SamplingParams {
        logprobs_mode: LogprobsMode::ProcessedLogprobs,
        ..p
    };
    let mut s = Sampler::new(&p, &[]);
    s.sample(&mut LOGITS.clone(), &hist.ctx(), &mut rng);
    let lp = s.logprobs().expect("tracked");
    // Only tokens 4 (3.0) and 6 (2.5) survive top_k 2; at T=0.5 their logits are 6 and 5.
    let p4 = 1.0 / (1.0 + (-1.0f32).exp());
    assert!(
        (lp[4] - p4.ln()).abs() < 1e-5 && (lp[6] - (1.0 - p4).ln()).abs() < 1e-5,
        "{lp:?}"
    );
    assert!(lp
        .iter()
        .enumerate()
        .all(|(i, v)| i == 4 || i == 6 || *v == f32::NEG_INFINITY));
}

#[test]
fn logprobs_are_tracked_only_when_needed() {
    let hist = SeqHistory::new(vec![]);
    let mut rng = Rng::new(21);
    let mut s = Sampler::new(&SamplingParams::default(), &[]);
    s.sample(&mut LOGITS.clone(), &hist.ctx(), &mut rng);
    assert_eq!(s.logprobs(), None);
    let mut s = Sampler::new(&params(|p| p.best_of = Some(3)), &[]);
    s.sample(&mut LOGITS.clone(), &hist.ctx(), &mut rng);
    assert!(s.logprobs().is_some(), "best_of > n needs cumulative logprobs");
    let mut s = Sampler::new(&SamplingParams::default(), &[]).with_logprobs(true);
    s.sample(&mut LOGITS.clone(), &hist.ctx(), &mut rng);
    assert!(s.logprobs().is_some());
}

// ---- chain shape and steady-state allocation ----

#[test]
fn chain_runs_in_vllm_order_and_skips_no_ops() {
    let p = params(|p| {
        p.allowed_token_ids = Some(vec![1]);
        p.min_tokens = 1;
        p.logit_bias = [(1, 1.0)].into();
        p.repetition_penalty = 1.1;
        p.presence_penalty = 0.1;
        p.temperature = 0.9;
        p.min_p = 0.1;
        p.top_k = 5;
        p.top_p = 0.9;
    });
    assert_eq!(
        Sampler::new(&p, &[0]).chain_names(),
        [
            "allowed_token_ids",
            "min_tokens",
            "logit_bias",
            "repetition_penalty",
            "presence_frequency_penalty",
            "temperature",
            "min_p",
            "top_k",
            "top_p"
        ]
    );
    assert!(Sampler::new(&SamplingParams::default(), &[0]).chain_names().is_empty());
    assert_eq!(
        Sampler::new(&params(|p| p.top_k = -1), &[0]).chain_names(),
        Vec::<&str>::new()
    );
}

struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn a_step_allocates_nothing_once_warm() {
    let p = params(|p| {
        p.repetition_penalty = 1.2;
        p.frequency_penalty = 0.5;
        p.logit_bias = [(3, 1.0)].into();
        p.min_tokens = 2;
        p.temperature = 0.8;
        p.min_p = 0.01;
        p.top_k = 40;
        p.top_p = 0.9;
        p.logprobs = Some(5);
    });
    let mut s = Sampler::new(&p, &[0]);
    let mut hist = SeqHistory::new((0..100).collect());
    let mut rng = Rng::new(22);
    let mut logits = vec![0.0f32; 4096];
    let mut step = |hist: &mut SeqHistory, logits: &mut Vec<f32>| {
        toy_logits(hist, logits);
        let before = ALLOCS.with(Cell::get);
        let t = s.sample(logits, &hist.ctx(), &mut rng);
        let n = ALLOCS.with(Cell::get) - before;
        hist.push(t % 8); // a small output alphabet keeps the history's maps from growing
        n
    };
    for _ in 0..5 {
        step(&mut hist, &mut logits);
    }
    let steady: usize = (0..20).map(|_| step(&mut hist, &mut logits)).sum();
    assert_eq!(steady, 0);
}

#[test]
fn top_k_on_a_large_vocabulary_keeps_what_a_full_sort_keeps() {
    let mut rng = Rng::new(23);
    let ctx_hist = SeqHistory::new(vec![]);
    for (case, k) in [1, 2, 5, 50, 2373, 2374, 2375, 40_000].into_iter().enumerate() {
        // ties (values on a 0.25 grid), masked and NaN entries, and a row of 152k
        let row: Vec<f32> = (0..151_936)
            .map(|i| match (i * 7 + case) % 97 {
                0 => f32::NEG_INFINITY,
                1 => f32::NAN,
                _ => ((rng.next_f64() * 40.0 - 20.0) * 4.0).round() as f32 / 4.0,
            })
            .collect();
        let mut sorted: Vec<f32> = row
            .iter()
            .map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l })
            .collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        let mut got = row.clone();
        TopK::new(k).apply(&mut got, &ctx_hist.ctx(), &mut Scratch::default());
        for (i, (&g, &l)) in got.iter().zip(&row).enumerate() {
            let keep = l >= kth;
            assert!(
                if keep { g == l } else { g == f32::NEG_INFINITY },
                "k={k} [{i}]: {l} -> {g} (k-th {kth})"
            );
        }
    }
    // a row that is mostly masked: the k-th largest is -inf, nothing finite is cut
    let mut row = vec![f32::NAN; 10_000];
    row[17] = 1.0;
    row[9000] = f32::NEG_INFINITY;
    TopK::new(5).apply(&mut row, &ctx_hist.ctx(), &mut Scratch::default());
    assert_eq!(row[17], 1.0);
    assert!(row.iter().enumerate().all(|(i, &v)| i == 17 || v == f32::NEG_INFINITY));
}
