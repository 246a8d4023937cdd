//! Fuzz target: any bytes as config.json, loaded against the tiny models' weights and run for
//! three tokens, give logits or an error, never a panic.
#![no_main]

use ondo_model::fuzz::{config_load, FakeWeights};
use std::path::Path;
use std::sync::OnceLock;

static WEIGHTS: OnceLock<FakeWeights> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let weights = WEIGHTS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tiny-models");
        FakeWeights::open(&dir).expect("fixtures/tiny-models")
    });
    let _ = config_load(data, weights);
});
