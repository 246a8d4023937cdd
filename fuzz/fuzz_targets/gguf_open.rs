//! Fuzz target: any bytes given to the GGUF reader give a file or an error, never a panic, and
//! everything a loader would then ask of an opened file works without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_model::fuzz::gguf_file(data);
});
