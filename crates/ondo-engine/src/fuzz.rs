//! Entry points of the cargo-fuzz targets (top-level `fuzz/`) and of the tests that replay their
//! corpora and crash inputs on stable (`tests/fuzz_replay.rs`). Each takes arbitrary bytes and
//! returns `Ok` or a clean `Err`: a panic, a hang or an unbounded allocation is a bug. Not an API.
//!
//! - [`generation_config`]: generation_config.json → the end-of-generation ids and the sampling
//!   defaults → validated → [`sample_once`].
//! - [`sample_once`]: a few draws with any validated parameters from fixed logits (the server's
//!   request target ends here too).

use crate::llm::defaults_from;
use crate::load::listed_eos;
use crate::{ParamError, Rng, Sampler, SamplingParams, SeqHistory};
use serde_json::Value;

/// Vocabulary of the fixed logits [`sample_once`] draws from.
pub const VOCAB: usize = 64;

/// generation_config.json bytes → eos ids and defaults → (when valid) four sampled tokens.
pub fn generation_config(data: &[u8]) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
    let config: Value = serde_json::from_slice(data)?;
    let eos = listed_eos(&config);
    let params = defaults_from(Some(&config));
    Ok(sample_once(&params, &eos)?)
}

/// Validates `params` (against [`VOCAB`] too) and draws four tokens in a row from fixed,
/// varied logits, with a short prompt as history.
pub fn sample_once(params: &SamplingParams, eos_ids: &[u32]) -> Result<Vec<u32>, ParamError> {
    params.validate()?;
    params.validate_vocab(VOCAB)?;
    let mut sampler = Sampler::new(params, eos_ids).with_logprobs(true);
    let mut history = SeqHistory::new(vec![1, 2, 3, 2]);
    let mut rng = Rng::new(params.seed.unwrap_or(0));
    let mut drawn = vec![];
    for step in 0..4 {
        let mut logits: Vec<f32> = (0..VOCAB).map(|i| ((i * 7 + step) % 13) as f32 - 6.0).collect();
        let token = sampler.sample(&mut logits, &history.ctx(), &mut rng);
        let _ = sampler.top_logprobs(params.logprobs.unwrap_or(0), token);
        history.push(token);
        drawn.push(token);
    }
    Ok(drawn)
}
