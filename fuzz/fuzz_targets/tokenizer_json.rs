//! Fuzz target: any bytes as tokenizer.json give ondo's tokenizer (which then encodes, decodes
//! and streams a fixed text) or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_text::fuzz::tokenizer_json(data);
});
