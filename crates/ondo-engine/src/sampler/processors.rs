//! The logits processors, in chain order. Each rewrites one position's logits in place; a masked
//! token gets -inf. Token ids at or beyond the vocabulary are ignored (never a panic).

use std::collections::BTreeMap;

use super::{LogitsProcessor, Scratch, SeqContext};

const MASKED: f32 = f32::NEG_INFINITY;

/// The largest logit that is not NaN (-inf when there is none).
fn max_logit(logits: &[f32]) -> f32 {
    ondo_kernels::ops::max(logits)
}

/// Masks every logit below `floor`, and NaNs (a select per element, so it vectorizes).
fn mask_below(logits: &mut [f32], floor: f32) {
    logits
        .iter_mut()
        .for_each(|l| *l = if *l >= floor { *l } else { MASKED });
}

/// Fills `weights` with the unnormalized softmax `exp(l - max)` (0 for -inf and NaN) and returns
/// `(max, sum of weights)`, or `None` when no logit is finite or one is +inf.
pub(crate) fn softmax_weights(logits: &[f32], weights: &mut Vec<f32>) -> Option<(f32, f64)> {
    let max = max_logit(logits);
    if !max.is_finite() {
        return None;
    }
    weights.resize(logits.len(), 0.0); // (every entry is written next)
    Some((max, ondo_kernels::ops::exp_shifted_sum(logits, max, weights)))
}

/// Masks every token not in the allowed set.
#[derive(Debug, Clone)]
pub struct AllowedTokens {
    sorted_ids: Vec<u32>,
}

impl AllowedTokens {
    pub fn new(ids: &[u32]) -> Self {
        let mut sorted_ids = ids.to_vec();
        sorted_ids.sort_unstable();
        sorted_ids.dedup();
        Self { sorted_ids }
    }
}

impl LogitsProcessor for AllowedTokens {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, _: &mut Scratch) {
        let mut allowed = self.sorted_ids.iter().peekable();
        for (i, l) in logits.iter_mut().enumerate() {
            if allowed.next_if_eq(&&(i as u32)).is_none() {
                *l = MASKED;
            }
        }
    }

    fn name(&self) -> &'static str {
        "allowed_token_ids"
    }
}

/// Masks the stop tokens (eos and `stop_token_ids`) while the output is shorter than `min_tokens`.
#[derive(Debug, Clone)]
pub struct MinTokens {
    min_tokens: usize,
    stop_ids: Vec<u32>,
}

impl MinTokens {
    pub fn new(min_tokens: usize, stop_ids: &[u32]) -> Self {
        Self {
            min_tokens,
            stop_ids: stop_ids.to_vec(),
        }
    }
}

impl LogitsProcessor for MinTokens {
    fn apply(&self, logits: &mut [f32], ctx: &SeqContext<'_>, _: &mut Scratch) {
        if ctx.output_ids.len() >= self.min_tokens {
            return;
        }
        for &t in &self.stop_ids {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = MASKED;
            }
        }
    }

    fn name(&self) -> &'static str {
        "min_tokens"
    }
}

/// Adds a per-token bias, clamped to [-100, 100] as OpenAI does.
#[derive(Debug, Clone)]
pub struct LogitBias {
    bias: Vec<(u32, f32)>,
}

impl LogitBias {
    pub fn new(bias: &BTreeMap<u32, f32>) -> Self {
        let bias = bias
            .iter()
            .filter(|(_, b)| !b.is_nan())
            .map(|(&t, &b)| (t, b.clamp(-100.0, 100.0)))
            .collect();
        Self { bias }
    }
}

impl LogitsProcessor for LogitBias {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, _: &mut Scratch) {
        for &(t, b) in &self.bias {
            if let Some(l) = logits.get_mut(t as usize) {
                *l += b;
            }
        }
    }

    fn name(&self) -> &'static str {
        "logit_bias"
    }
}

/// vLLM's repetition penalty: every token seen in the prompt or the output has a positive logit
/// divided by the penalty and a negative one multiplied by it (once per distinct token).
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    penalty: f32,
}

impl RepetitionPenalty {
    pub fn new(penalty: f32) -> Self {
        Self { penalty }
    }

    fn penalize(&self, logits: &mut [f32], token: u32) {
        if let Some(l) = logits.get_mut(token as usize) {
            *l = if *l > 0.0 { *l / self.penalty } else { *l * self.penalty };
        }
    }
}

impl LogitsProcessor for RepetitionPenalty {
    fn apply(&self, logits: &mut [f32], ctx: &SeqContext<'_>, _: &mut Scratch) {
        for (t, _) in ctx.prompt_counts.iter() {
            self.penalize(logits, t);
        }
        for (t, _) in ctx
            .output_counts
            .iter()
            .filter(|&(t, _)| !ctx.prompt_counts.contains(t))
        {
            self.penalize(logits, t);
        }
    }

    fn name(&self) -> &'static str {
        "repetition_penalty"
    }
}

/// OpenAI's presence and frequency penalties over the output tokens:
/// `logit -= frequency * count + presence * (count > 0)`.
#[derive(Debug, Clone)]
pub struct PresenceFrequencyPenalty {
    presence: f32,
    frequency: f32,
}

impl PresenceFrequencyPenalty {
    pub fn new(presence: f32, frequency: f32) -> Self {
        Self { presence, frequency }
    }
}

impl LogitsProcessor for PresenceFrequencyPenalty {
    fn apply(&self, logits: &mut [f32], ctx: &SeqContext<'_>, _: &mut Scratch) {
        for (t, count) in ctx.output_counts.iter() {
            if let Some(l) = logits.get_mut(t as usize) {
                *l -= self.frequency * count as f32;
                *l -= self.presence;
            }
        }
    }

    fn name(&self) -> &'static str {
        "presence_frequency_penalty"
    }
}

/// Divides the logits by the temperature. Temperatures in (0, 0.01) are raised to 0.01, as vLLM
/// does, to keep the softmax finite.
#[derive(Debug, Clone)]
pub struct Temperature {
    temperature: f32,
}

impl Temperature {
    pub const MIN: f32 = 0.01;

    pub fn new(temperature: f32) -> Self {
        Self {
            temperature: temperature.max(Self::MIN),
        }
    }
}

impl LogitsProcessor for Temperature {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, _: &mut Scratch) {
        logits.iter_mut().for_each(|l| *l /= self.temperature);
    }

    fn name(&self) -> &'static str {
        "temperature"
    }
}

/// Masks tokens whose probability is below `min_p` times the largest probability
/// (in logit space: `logit < max + ln(min_p)`).
#[derive(Debug, Clone)]
pub struct MinP {
    ln_min_p: f32,
}

impl MinP {
    pub fn new(min_p: f32) -> Self {
        Self { ln_min_p: min_p.ln() }
    }
}

impl LogitsProcessor for MinP {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, _: &mut Scratch) {
        let max = max_logit(logits);
        if !max.is_finite() {
            return;
        }
        mask_below(logits, max + self.ln_min_p);
    }

    fn name(&self) -> &'static str {
        "min_p"
    }
}

/// Keeps the `k` largest logits; tokens tied with the k-th largest are kept too (as vLLM).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self { k }
    }
}

/// Values per chunk in `kth_largest`'s first pass.
const CHUNK: usize = 64;

/// The `k`-th largest of `logits` counted with repeats (NaN counts as masked), for
/// `1 <= k < logits.len()`; `scratch` holds the chunk maxima and the gathered values.
///
/// The k-th largest of the chunk maxima is at most the answer (those are k distinct entries), so
/// only the chunks whose maximum reaches it can hold the top k: they are gathered and the
/// selection runs over them. For a vocabulary row and a small k that is one vector pass and a
/// few chunks instead of a quickselect over the whole row.
fn kth_largest(logits: &[f32], k: usize, scratch: &mut Scratch) -> f32 {
    let by_desc = |a: &f32, b: &f32| b.total_cmp(a);
    let unmasked = |&l: &f32| if l.is_nan() { MASKED } else { l };
    let (values, maxima) = (&mut scratch.values, &mut scratch.candidates);
    maxima.clear();
    maxima.extend(logits.chunks(CHUNK).enumerate().map(|(c, v)| (c as u32, max_logit(v))));
    values.clear();
    if k < maxima.len() {
        let (_, &mut (_, floor), _) = maxima.select_nth_unstable_by(k - 1, |a, b| by_desc(&a.1, &b.1));
        for &(c, _) in maxima.iter().filter(|m| m.1 >= floor) {
            let at = c as usize * CHUNK;
            let chunk = &logits[at..(at + CHUNK).min(logits.len())];
            values.extend(chunk.iter().map(unmasked).filter(|&l| l >= floor));
        }
        // (each of those chunks gave its maximum, or MASKED entries when floor is MASKED: so
        // at least k values were gathered)
    } else {
        values.extend(logits.iter().map(unmasked));
    }
    *values.select_nth_unstable_by(k - 1, by_desc).1
}

impl LogitsProcessor for TopK {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, scratch: &mut Scratch) {
        if self.k == 0 || self.k >= logits.len() {
            return;
        }
        let kth = kth_largest(logits, self.k, scratch);
        mask_below(logits, kth);
    }

    fn name(&self) -> &'static str {
        "top_k"
    }
}

/// Nucleus sampling: keeps the most probable tokens, in order, while the mass of the tokens
/// before them is below `p` (so the token that crosses `p` is kept; at least one is kept).
/// Among tied logits the lower id comes first.
///
/// Expected O(vocab): only the tokens near the top are gathered (the window widens until their
/// mass reaches p, so the nucleus lies among them), and the cut is found by quickselect rather
/// than a full sort.
#[derive(Debug, Clone)]
pub struct TopP {
    p: f64,
}

/// Candidate order: larger logit first, then lower id (a total order on distinct ids).
fn better_first(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

impl TopP {
    pub fn new(p: f32) -> Self {
        Self { p: f64::from(p) }
    }

    /// Collects into `cands` the finite tokens within `delta` of `max` and returns their mass.
    fn collect(logits: &[f32], weights: &[f32], max: f32, delta: f32, cands: &mut Vec<(u32, f32)>) -> f64 {
        cands.clear();
        let floor = max - delta;
        let mut mass = 0.0;
        for (i, &l) in logits.iter().enumerate() {
            if l >= floor && l > MASKED {
                cands.push((i as u32, l));
                mass += f64::from(weights[i]);
            }
        }
        mass
    }

    /// Moves the nucleus to the front of `cands` and returns its length: the tokens, in
    /// `better_first` order, whose preceding mass is below `need` (at least one).
    fn nucleus(cands: &mut [(u32, f32)], weights: &[f32], need: f64) -> usize {
        let weight = |c: &(u32, f32)| f64::from(weights[c.0 as usize]);
        // Invariant: cands[..lo] are kept (mass `acc`), cands[hi..] are not.
        let (mut lo, mut hi, mut acc) = (0, cands.len(), 0.0);
        while hi - lo > 32 {
            let mid = lo + (hi - lo) / 2;
            cands[lo..hi].select_nth_unstable_by(mid - lo, better_first);
            let ahead: f64 = cands[lo..mid].iter().map(weight).sum();
            if acc + ahead >= need {
                hi = mid;
            } else {
                acc += ahead + weight(&cands[mid]);
                lo = mid + 1;
            }
        }
        cands[lo..hi].sort_unstable_by(better_first);
        let mut kept = lo;
        while kept < hi && (kept == 0 || acc < need) {
            acc += weight(&cands[kept]);
            kept += 1;
        }
        kept
    }
}

impl LogitsProcessor for TopP {
    fn apply(&self, logits: &mut [f32], _: &SeqContext<'_>, scratch: &mut Scratch) {
        let Some((max, total)) = softmax_weights(logits, &mut scratch.values) else {
            return;
        };
        if self.p >= 1.0 {
            return;
        }
        let (weights, cands) = (&scratch.values, &mut scratch.candidates);
        let need = self.p * total;
        for delta in [10.0, 30.0, f32::INFINITY] {
            if Self::collect(logits, weights, max, delta, cands) >= need {
                break;
            }
        }
        let kept = Self::nucleus(cands, weights, need);
        let boundary = cands[..kept].iter().fold(f32::INFINITY, |m, c| m.min(c.1));
        mask_below(logits, boundary);
        for &(t, l) in &cands[kept..] {
            if l == boundary {
                logits[t as usize] = MASKED;
            }
        }
    }

    fn name(&self) -> &'static str {
        "top_p"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::SeqHistory;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(p: &dyn LogitsProcessor, logits: &[f32], hist: &SeqHistory) -> Vec<f32> {
        let mut out = logits.to_vec();
        p.apply(&mut out, &hist.ctx(), &mut Scratch::default());
        out
    }

    fn fresh() -> SeqHistory {
        SeqHistory::new(vec![])
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x - y).abs() < 1e-6)
    }

    #[test]
    fn allowed_tokens_masks_the_rest_and_ignores_out_of_vocab_ids() {
        let p = AllowedTokens::new(&[3, 1, 3, 99]);
        assert_eq!(run(&p, &[1.0, 2.0, 3.0, 4.0, 5.0], &fresh()), [NEG, 2.0, NEG, 4.0, NEG]);
    }

    #[test]
    fn min_tokens_masks_stop_ids_only_while_output_is_short() {
        let p = MinTokens::new(2, &[0, 3, 77]);
        let mut h = fresh();
        assert_eq!(run(&p, &[1.0, 2.0, 3.0, 4.0], &h), [NEG, 2.0, 3.0, NEG]);
        h.push(1);
        assert_eq!(run(&p, &[1.0, 2.0, 3.0, 4.0], &h), [NEG, 2.0, 3.0, NEG]);
        h.push(2);
        assert_eq!(run(&p, &[1.0, 2.0, 3.0, 4.0], &h), [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn logit_bias_adds_clamped_bias() {
        let p = LogitBias::new(&[(0, 500.0), (2, -0.5), (3, -1000.0), (9, 1.0)].into());
        assert_eq!(run(&p, &[1.0, 2.0, 3.0, 4.0], &fresh()), [101.0, 2.0, 2.5, -96.0]);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_once_per_token() {
        let mut h = SeqHistory::new(vec![0, 1, 1]);
        h.push(1);
        h.push(3);
        h.push(3);
        let p = RepetitionPenalty::new(2.0);
        assert_eq!(run(&p, &[2.0, -2.0, 5.0, 0.5, 7.0], &h), [1.0, -4.0, 5.0, 0.25, 7.0]);
        // A penalty below 1 encourages instead.
        let p = RepetitionPenalty::new(0.5);
        assert_eq!(run(&p, &[2.0, -2.0, 5.0, 0.5, 7.0], &h), [4.0, -1.0, 5.0, 1.0, 7.0]);
    }

    #[test]
    fn presence_and_frequency_penalties_use_output_counts_only() {
        let mut h = SeqHistory::new(vec![0, 0, 0]);
        for t in [1, 2, 2, 2] {
            h.push(t);
        }
        let p = PresenceFrequencyPenalty::new(0.5, 0.25);
        // token 1: 1 - 0.25 - 0.5; token 2: 1 - 0.75 - 0.5; prompt token 0 untouched.
        assert!(close(&run(&p, &[1.0, 1.0, 1.0, 1.0], &h), &[1.0, 0.25, -0.25, 1.0]));
        let p = PresenceFrequencyPenalty::new(-1.0, 0.0);
        assert!(close(&run(&p, &[1.0, 1.0, 1.0, 1.0], &h), &[1.0, 2.0, 2.0, 1.0]));
    }

    #[test]
    fn temperature_divides_and_is_floored() {
        assert_eq!(run(&Temperature::new(0.5), &[1.0, -2.0], &fresh()), [2.0, -4.0]);
        assert!(close(
            &run(&Temperature::new(1e-4), &[1.0, -2.0], &fresh()),
            &[100.0, -200.0]
        ));
    }

    #[test]
    fn min_p_masks_below_fraction_of_max_probability() {
        // probs ∝ e^l: relative to max (l=2): 1, e^-1 ≈ 0.37, e^-2 ≈ 0.14, e^-3 ≈ 0.05.
        let logits = [1.0, 2.0, 0.0, -1.0];
        assert_eq!(run(&MinP::new(0.1), &logits, &fresh()), [1.0, 2.0, 0.0, NEG]);
        assert_eq!(run(&MinP::new(0.3), &logits, &fresh()), [1.0, 2.0, NEG, NEG]);
        assert_eq!(run(&MinP::new(1.0), &logits, &fresh()), [NEG, 2.0, NEG, NEG]);
    }

    #[test]
    fn top_k_keeps_k_largest_and_ties_at_the_boundary() {
        let logits = [1.0, 5.0, 3.0, 3.0, -1.0, 4.0];
        assert_eq!(run(&TopK::new(2), &logits, &fresh()), [NEG, 5.0, NEG, NEG, NEG, 4.0]);
        assert_eq!(run(&TopK::new(3), &logits, &fresh()), [NEG, 5.0, 3.0, 3.0, NEG, 4.0]);
        assert_eq!(run(&TopK::new(1), &logits, &fresh()), [NEG, 5.0, NEG, NEG, NEG, NEG]);
        assert_eq!(run(&TopK::new(6), &logits, &fresh()), logits);
    }

    #[test]
    fn top_p_keeps_the_token_that_crosses_p() {
        // probs 0.5, 0.25, 0.125, 0.125 (logits = ln probs).
        let logits = [0.5f32, 0.25, 0.125, 0.125].map(f32::ln);
        let kept = |p: f32| {
            run(&TopP::new(p), &logits, &fresh())
                .iter()
                .map(|l| l.is_finite())
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(0.3), [true, false, false, false]);
        assert_eq!(kept(0.5), [true, false, false, false]);
        assert_eq!(kept(0.6), [true, true, false, false]);
        assert_eq!(
            kept(0.8),
            [true, true, true, false],
            "tie at the boundary: lower id kept first"
        );
        assert_eq!(kept(0.9), [true, true, true, true]);
        assert_eq!(kept(1e-9), [true, false, false, false]);
    }

    #[test]
    fn top_p_widens_its_window_for_flat_tails() {
        // One large token and 1000 tokens 12 nats below it: the window of 10 nats holds too
        // little mass, so the tail must be considered.
        let mut logits = vec![-12.0f32; 1001];
        logits[500] = 0.0;
        let out = run(&TopP::new(0.9), &logits, &fresh());
        let kept: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, _)| i)
            .collect();
        // p(top) = 1 / (1 + 1000 e^-12) ≈ 0.9939 ≥ 0.9, so only it stays.
        assert_eq!(kept, [500]);
        let out = run(&TopP::new(0.995), &logits, &fresh());
        let kept = out.iter().filter(|l| l.is_finite()).count();
        // The tail tokens needed to bring the kept mass to 0.995 (about 181), lowest ids first.
        let tail = (1.0 + 1000.0 * (-12.0f64).exp()).recip() * (-12.0f64).exp();
        let head = 1.0 - 1000.0 * tail;
        let expect = 1 + ((0.995 - head) / tail).ceil() as usize;
        assert_eq!(kept, expect);
        assert!(out[0].is_finite(), "tied tail: lowest ids first");
    }

    #[test]
    fn top_p_matches_a_full_sort_with_many_ties() {
        // 600 logits on a coarse grid (many ties) and a few masked ones.
        let logits: Vec<f32> = (0..600u32)
            .map(|i| {
                if i % 97 == 5 {
                    NEG
                } else {
                    (i.wrapping_mul(2654435761) >> 28) as f32 * 0.7 - 4.0
                }
            })
            .collect();
        let max = logits.iter().cloned().fold(NEG, f32::max);
        let w = |l: f32| f64::from((l - max).exp());
        let total: f64 = logits.iter().filter(|l| l.is_finite()).map(|&l| w(l)).sum();
        let mut order: Vec<usize> = (0..600).filter(|&i| logits[i].is_finite()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        for p in [0.01f32, 0.13, 0.5, 0.77, 0.95, 0.999] {
            let need = f64::from(p) * total;
            let (mut before, mut expect) = (0.0, vec![false; 600]);
            for &i in &order {
                if before >= need && before > 0.0 {
                    break;
                }
                before += w(logits[i]);
                expect[i] = true;
            }
            let got: Vec<bool> = run(&TopP::new(p), &logits, &fresh())
                .iter()
                .map(|l| l.is_finite())
                .collect();
            assert_eq!(got, expect, "p = {p}");
        }
    }

    #[test]
    fn processors_tolerate_empty_and_fully_masked_logits() {
        let h = fresh();
        let all: Vec<Box<dyn LogitsProcessor>> = vec![
            Box::new(MinP::new(0.5)),
            Box::new(TopK::new(1)),
            Box::new(TopP::new(0.5)),
            Box::new(Temperature::new(0.5)),
            Box::new(AllowedTokens::new(&[0])),
        ];
        for p in &all {
            assert!(run(p.as_ref(), &[], &h).is_empty());
            assert_eq!(run(p.as_ref(), &[NEG, NEG], &h), [NEG, NEG], "{}", p.name());
        }
    }
}
