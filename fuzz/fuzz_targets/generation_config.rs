//! Fuzz target: any bytes as generation_config.json give sampling defaults that sample (or an
//! error), never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_engine::fuzz::generation_config(data);
});
