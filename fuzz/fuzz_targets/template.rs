//! Fuzz target: any template text and render inputs (text, NUL, JSON) render within the
//! sandbox's bounds or give an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_text::fuzz::template(data);
});
