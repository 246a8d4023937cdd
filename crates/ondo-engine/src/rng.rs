//! A small seedable PRNG for sampling: xoshiro256** seeded through splitmix64.
//!
//! Deterministic across platforms (pure integer arithmetic). Each request has one seed (its
//! `seed`, or [`Rng::entropy_seed`] when none was given); each of its sequences draws from its own
//! stream, [`Rng::for_sequence`], so the same seed gives the same text whatever else runs beside
//! it and in whatever order the engine steps the sequences.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// xoshiro256** state (never all zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator for one seed: the state is four splitmix64 outputs of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [0; 4].map(|_| splitmix64(&mut sm));
        Self::from_state(s)
    }

    /// The stream of sequence `index` of a request seeded with `seed`.
    ///
    /// Streams of different indices (and different seeds) are independent for all practical
    /// purposes: the index is mixed into the seed before the state is expanded.
    pub fn for_sequence(seed: u64, index: usize) -> Self {
        let mut key = (index as u64).wrapping_add(0x5851_F42D_4C95_7F2D);
        Self::new(mix64(seed) ^ splitmix64(&mut key))
    }

    /// A fresh generator from [`Rng::entropy_seed`].
    pub fn from_entropy() -> Self {
        Self::new(Self::entropy_seed())
    }

    /// A seed for a request that gave none: process-random hasher keys, the clock and a global
    /// counter, so two calls never return the same value in one process.
    pub fn entropy_seed() -> u64 {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(nanos);
        h.write_u64(count);
        mix64(h.finish() ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The generator with exactly this state (an all-zero state is replaced by `new(0)`'s).
    pub fn from_state(s: [u64; 4]) -> Self {
        if s == [0; 4] {
            return Self::new(0);
        }
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// One splitmix64 step: advances `state` and returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// splitmix64's output finalizer (a bijection on u64).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_vector() {
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn xoshiro256starstar_matches_reference_vector() {
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn same_seed_same_stream_different_seed_differs() {
        let take = |mut r: Rng| (0..8).map(|_| r.next_u64()).collect::<Vec<_>>();
        assert_eq!(take(Rng::new(42)), take(Rng::new(42)));
        assert_ne!(take(Rng::new(42)), take(Rng::new(43)));
        assert_eq!(take(Rng::for_sequence(7, 3)), take(Rng::for_sequence(7, 3)));
        assert_ne!(take(Rng::for_sequence(7, 3)), take(Rng::for_sequence(7, 4)));
        assert_ne!(take(Rng::for_sequence(7, 0)), take(Rng::new(7)));
    }

    #[test]
    fn entropy_seeds_differ() {
        assert_ne!(Rng::entropy_seed(), Rng::entropy_seed());
    }

    #[test]
    fn next_f64_is_in_unit_interval_with_mean_one_half() {
        let mut r = Rng::new(1);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
            sum += u;
        }
        // sd of the mean = sqrt(1/12 / n) ≈ 0.00091; 5 sd.
        assert!((sum / n as f64 - 0.5).abs() < 0.0046);
    }
}
