//! Fuzz target: any bytes as a chat or completions request body give a plan or a 4xx, never a
//! panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ondo_server::fuzz::request_body(data);
});
