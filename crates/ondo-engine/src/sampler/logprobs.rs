//! Logprob helpers: log-softmax of a row and the `{token_id: logprob}` entries vLLM returns.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// In-place log-softmax of one row (the kernels' reference, f64 accumulation).
pub use ondo_kernels::ops::log_softmax;

/// A token ranked by logprob: higher value first, then lower id; NaN ranks as -inf.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked {
    value: f32,
    id: u32,
}

impl Ranked {
    fn new(id: u32, value: f32) -> Self {
        Self {
            value: if value.is_nan() { f32::NEG_INFINITY } else { value },
            id,
        }
    }
}

impl Eq for Ranked {}

impl Ord for Ranked {
    /// Greater = better.
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.total_cmp(&other.value).then(other.id.cmp(&self.id))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` largest logprobs (best first, ties → lower id), followed by `chosen` when it is not
/// among them, as `(token_id, logprob)`: the entries of vLLM's `{token_id: logprob}` map for one
/// position. `chosen` outside `logprobs` is left out.
pub fn top_logprobs(logprobs: &[f32], k: usize, chosen: u32) -> Vec<(u32, f32)> {
    let k = k.min(logprobs.len());
    let mut heap: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(k + 1);
    if k > 0 {
        for (i, &v) in logprobs.iter().enumerate() {
            let r = Ranked::new(i as u32, v);
            if heap.len() < k {
                heap.push(Reverse(r));
            } else if heap.peek().is_some_and(|worst| r > worst.0) {
                heap.pop();
                heap.push(Reverse(r));
            }
        }
    }
    let mut top: Vec<(u32, f32)> = heap
        .into_sorted_vec()
        .into_iter()
        .map(|Reverse(r)| (r.id, logprobs[r.id as usize]))
        .collect();
    if let Some(&v) = logprobs.get(chosen as usize) {
        if !top.iter().any(|&(id, _)| id == chosen) {
            top.push((chosen, v));
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_best_first_plus_chosen() {
        let lp = [-3.0, -0.5, -2.0, -0.5, -9.0, -1.0];
        assert_eq!(top_logprobs(&lp, 3, 4), [(1, -0.5), (3, -0.5), (5, -1.0), (4, -9.0)]);
        assert_eq!(top_logprobs(&lp, 3, 5), [(1, -0.5), (3, -0.5), (5, -1.0)]);
        assert_eq!(top_logprobs(&lp, 0, 2), [(2, -2.0)]);
        assert_eq!(top_logprobs(&lp, 100, 0).len(), 6);
        assert_eq!(top_logprobs(&lp, 1, 99), [(1, -0.5)]);
        assert!(top_logprobs(&[], 5, 0).is_empty());
    }

    #[test]
    fn top_k_matches_a_full_sort_on_a_larger_row() {
        let lp: Vec<f32> = (0..1000u32).map(|i| -(((i * 7919) % 1000) as f32) / 100.0).collect();
        let mut sorted: Vec<(u32, f32)> = lp.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(top_logprobs(&lp, 20, sorted[0].0), sorted[..20]);
    }

    #[test]
    fn log_softmax_gives_normalized_logprobs() {
        let mut row = [1.0f32, 2.0, 3.0];
        log_softmax(&mut row);
        let sum: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((row[2] - row[1] - 1.0).abs() < 1e-6);
    }
}
