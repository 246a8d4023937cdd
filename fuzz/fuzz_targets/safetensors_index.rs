//! Fuzz target: any bytes as `model.safetensors.index.json` give its shards or an error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_model::fuzz::safetensors_index(data);
});
