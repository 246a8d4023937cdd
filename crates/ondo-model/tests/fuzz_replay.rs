//! The kept inputs of the model-file fuzz targets (`fuzz/regressions/<target>/`: every crash
//! input and a slice of each corpus), replayed through the same entries the targets call
//! (`ondo_model::fuzz`): each gives Ok or a clean error, without a panic or a hang.

use ondo_model::fuzz::{config_load, safetensors_file, safetensors_index, FakeWeights};
use ondo_testdata::fuzz::replay;
use std::path::Path;

fn tiny_models() -> FakeWeights {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models");
    FakeWeights::open(&dir).expect("fixtures/tiny-models")
}

#[test]
fn safetensors_inputs() {
    let (ok, failed) = replay("safetensors", safetensors_file);
    assert!(ok > 0 && failed > 0, "the slice has both valid and broken files");
}

#[test]
fn safetensors_index_inputs() {
    let (ok, failed) = replay("safetensors_index", safetensors_index);
    assert!(ok > 0 && failed > 0, "the slice has both valid and broken indexes");
}

#[test]
fn config_inputs() {
    let weights = tiny_models();
    let (ok, failed) = replay("config", move |data| config_load(data, &weights));
    assert!(
        ok > 0 && failed > 0,
        "the slice has configs that run and configs that are refused"
    );
}

/// The harness reaches the forward pass: every tiny model's own config.json loads against the
/// fake weights and gives logits.
#[test]
fn every_tiny_model_config_runs() {
    let weights = tiny_models();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let config = entry.unwrap().path().join("config.json");
        let Ok(bytes) = std::fs::read(&config) else { continue };
        let logits = config_load(&bytes, &weights).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        assert!(logits > 0, "{}", config.display());
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} tiny models");
}
