//! Fuzz target: any bytes as tokenizer_config.json beside a tiny model's tokenizer.json give the
//! tokenizer and its chat template (rendering a short chat) or an error, never a panic.
#![no_main]

use ondo_text::fuzz::{tokenizer_config, BaseTokenizer};
use std::path::Path;
use std::sync::OnceLock;

static BASE: OnceLock<BaseTokenizer> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = BASE.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tiny-models/qwen2/tokenizer.json");
        BaseTokenizer::open(&path).expect("fixtures/tiny-models/qwen2/tokenizer.json")
    });
    let _ = tokenizer_config(data, base);
});
