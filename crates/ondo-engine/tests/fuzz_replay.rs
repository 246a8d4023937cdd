//! The kept inputs of the `generation_config` fuzz target (`fuzz/regressions/generation_config/`),
//! replayed through the entry it calls (`ondo_engine::fuzz`): each gives sampled tokens or a
//! clean error, without a panic or a hang.

use ondo_engine::fuzz::{generation_config, VOCAB};
use ondo_testdata::fuzz::replay;

#[test]
fn generation_config_inputs() {
    let (ok, failed) = replay("generation_config", generation_config);
    assert!(
        ok > 0 && failed > 0,
        "the slice has configs that sample and ones that are refused"
    );
}

/// Defaults as transformers reads them: greedy without `do_sample`, so the draws are the
/// argmax of the harness's fixed logits; an out-of-range temperature is refused by name.
#[test]
fn the_harness_samples_with_the_defaults() {
    let greedy = generation_config(br#"{"eos_token_id": 2, "do_sample": false}"#).expect("greedy");
    assert_eq!(greedy.len(), 4);
    assert!(greedy.iter().all(|&t| (t as usize) < VOCAB));
    assert!(
        greedy.windows(2).any(|w| w[0] != w[1]),
        "the fixed logits change per step"
    );
    let err = generation_config(br#"{"do_sample": true, "temperature": -1}"#).expect_err("negative temperature");
    assert!(err.to_string().contains("temperature"), "{err}");
}
