//! Fuzz target: any bytes given to the GGUF reader give a file or an error, never a panic, and
//! everything a loader would then ask of an opened file works without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/gguf.rs"]
mod gguf;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = gguf::GgufFile::from_vec("fuzz.gguf", data.to_vec()) else { return };
    for (key, value) in f.metadata() {
        let _ = (value.type_name(), f.get_u32(key), f.get_f32(key), f.get_str(key));
        let _ = (f.get_str_array(key), f.get_f32_array(key), f.get_i32_array(key));
    }
    for t in f.tensors() {
        let _ = f.bytes(t);
        if let Ok(w) = f.weight(&t.name) {
            let _ = w.to_f32();
        }
    }
});
