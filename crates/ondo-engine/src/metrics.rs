//! What the engine counts, for `/metrics` and tests: gauges the engine loop sets each step,
//! monotonic counters, and latency histograms. Atomics only: any thread may read while the
//! engine thread writes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of the latency histogram buckets (vLLM's for time to first token,
/// which also covers inter-token latency on a CPU).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A cumulative histogram of seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound of `LATENCY_BUCKETS`; the last slot counts all.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of observations in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.buckets[LATENCY_BUCKETS.len()].fetch_add(1, Relaxed);
        self.sum_us.fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    /// `(bound, cumulative count)` per bucket, then `(+Inf, count)`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| (*b, c.load(Relaxed)))
            .collect();
        out.push((f64::INFINITY, self.count()));
        out
    }
    pub fn count(&self) -> u64 {
        self.buckets[LATENCY_BUCKETS.len()].load(Relaxed)
    }
    pub fn sum(&self) -> f64 {
        self.sum_us.load(Relaxed) as f64 / 1e6
    }
}

#[derive(Debug, Default)]
pub struct EngineStats {
    // gauges, set by the engine loop every step
    pub requests_running: AtomicU64,
    pub requests_waiting: AtomicU64,
    pub kv_blocks_used: AtomicU64,
    pub kv_blocks_free: AtomicU64,
    pub kv_blocks_total: AtomicU64,
    // counters
    pub requests_finished: AtomicU64,
    pub requests_aborted: AtomicU64,
    pub requests_failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub prefix_cache_queries: AtomicU64,
    pub prefix_cache_hits: AtomicU64,
    pub preemptions: AtomicU64,
    pub steps: AtomicU64,
    /// Tokens run through the model (prompt, recomputed and decode tokens).
    pub computed_tokens: AtomicU64,
    pub time_to_first_token: Histogram,
    pub inter_token_latency: Histogram,
}

impl EngineStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}
