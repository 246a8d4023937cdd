//! A warm decode step (forward of one token with the KV cache, then picking the next token)
//! allocates nothing: SmolLM2-135M Q4_1 (quantized kernels, f16 KV cache) and stories260K (f32).
//!
//! Runs without the libtest harness (`harness = false`): the counting allocator sees every
//! thread, and the harness's own threads allocate at times of their choosing.

use ondo_model::{load_model, Batch, KvDtype, KvPool, LogitsFor, SeqCache, Workspace};
use std::path::Path;

#[global_allocator]
static GLOBAL: ondo_testdata::CountingAlloc = ondo_testdata::CountingAlloc;

fn main() {
    // Two threads that keep both cores busy, as other jobs do on a loaded CI machine: pool
    // workers then start late and run at odd moments (an allocation hid there once).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let smollm2 = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf");
    let stories = ondo_testdata::shared("models/stories260K").map(|d| d.join("stories260K.gguf"));
    for path in [smollm2, stories].into_iter().flatten() {
        decode_steps_do_not_allocate(&path);
        batched_steps_do_not_allocate(&path, 16);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.into_iter().for_each(|t| t.join().unwrap());
    println!("decode_no_alloc: ok");
}

fn decode_steps_do_not_allocate(path: &Path) {
    let model = load_model(path).unwrap();
    let hp = model.hparams();
    let mut kv = SeqCache::new(hp, 64, KvDtype::F16);
    let mut ws = Workspace::new(hp, 16);
    let logits = kv.forward(&*model, &[1, 45, 99], &mut ws, LogitsFor::Last).unwrap();
    let mut token = ondo_testdata::argmax(logits);
    let mut step = |token: &mut u32| {
        let logits = kv.forward(&*model, &[*token], &mut ws, LogitsFor::Last).unwrap();
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
    assert_eq!(
        allocs,
        0,
        "{}: 16 decode steps allocated {allocs} times",
        path.display()
    );
    println!("{}: 16 decode steps, 0 allocations", path.display());
}

/// `n` sequences decoding side by side in one batch per step, on one shared pool.
fn batched_steps_do_not_allocate(path: &Path, n: usize) {
    let model = load_model(path).unwrap();
    let hp = model.hparams();
    let (block, per_seq) = (16, 4); // 64 positions each
    let mut pool = KvPool::new(hp, n * per_seq, block, KvDtype::F16);
    let tables: Vec<Vec<u32>> = (0..n)
        .map(|s| (0..per_seq as u32).map(|b| b * n as u32 + s as u32).collect())
        .collect();
    let mut ws = Workspace::new(hp, 64);
    let mut batch = Batch::default();
    for (s, table) in tables.iter().enumerate() {
        batch.push(&[1, 45 + s as u32, 99], 0, table, LogitsFor::Last);
    }
    let logits = model.forward(&batch, &mut pool, &mut ws).unwrap();
    let vocab = hp.vocab_size;
    let mut tokens: Vec<u32> = logits.chunks_exact(vocab).map(ondo_testdata::argmax).collect();
    let mut len = 3;
    let mut step = |tokens: &mut Vec<u32>, len: &mut usize| {
        batch.clear();
        for (s, table) in tables.iter().enumerate() {
            batch.push(&[tokens[s]], *len, table, LogitsFor::Last);
        }
        let logits = model.forward(&batch, &mut pool, &mut ws).unwrap();
        for (t, row) in tokens.iter_mut().zip(logits.chunks_exact(vocab)) {
            *t = ondo_testdata::argmax(row);
        }
        *len += 1;
    };
    for _ in 0..4 {
        step(&mut tokens, &mut len);
    }
    let before = ondo_testdata::allocations();
    for _ in 0..16 {
        step(&mut tokens, &mut len);
    }
    let allocs = ondo_testdata::allocations() - before;
    assert_eq!(
        allocs,
        0,
        "{}: 16 batched decode steps of {n} sequences allocated {allocs} times",
        path.display()
    );
    println!("{}: 16 decode steps of {n} sequences, 0 allocations", path.display());
}
