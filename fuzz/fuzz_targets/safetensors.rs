//! Fuzz target: any bytes as a safetensors file give its tensors or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_model::fuzz::safetensors_file(data);
});
