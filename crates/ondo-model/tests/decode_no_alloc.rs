//! A warm decode step (forward of one token with the KV cache, then picking the next token)
//! allocates nothing: SmolLM2-135M Q4_1 (quantized kernels, f16 KV cache) and stories260K (f32).
//!
//! Runs without the libtest harness (`harness = false`): the counting allocator sees every
//! thread, and the harness's own threads allocate at times of their choosing.

use ondo_model::{load_model, KvCache, KvDtype, LogitsFor, Workspace};
use std::path::Path;

#[global_allocator]
static GLOBAL: ondo_testdata::CountingAlloc = ondo_testdata::CountingAlloc;

fn main() {
    let smollm2 = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf");
    let stories = ondo_testdata::shared("models/stories260K").map(|d| d.join("stories260K.gguf"));
    for path in [smollm2, stories].into_iter().flatten() {
        decode_steps_do_not_allocate(&path);
    }
    println!("decode_no_alloc: ok");
}

fn decode_steps_do_not_allocate(path: &Path) {
    let model = load_model(path).unwrap();
    let hp = model.hparams();
    let mut kv = KvCache::with_dtype(hp, 64, KvDtype::F16);
    let mut ws = Workspace::new(hp, 16);
    let logits = model.forward(&[1, 45, 99], &mut kv, &mut ws, LogitsFor::Last).unwrap();
    let mut token = ondo_testdata::argmax(logits);
    let mut step = |token: &mut u32| {
        let logits = model.forward(&[*token], &mut kv, &mut ws, LogitsFor::Last).unwrap();
        *token = ondo_testdata::argmax(logits);
    };
    for _ in 0..4 {
        step(&mut token); // warm: thread-local scratch grows here
    }
    let before = ondo_testdata::allocations();
    for _ in 0..16 {
        step(&mut token);
    }
    let allocs = ondo_testdata::allocations() - before;
    assert_eq!(allocs, 0, "{}: 16 decode steps allocated {allocs} times", path.display());
    println!("{}: 16 decode steps, 0 allocations", path.display());
}
