//! Where a batched decode step's time goes, in-process, by difference (no profiler needed):
//!
//!     cargo run --release -p ondo-model --example step_breakdown -- MODEL.gguf [CTX]
//!
//! 16 sequences each hold CTX cached positions (default 64). Each line times one forward pass:
//! 16 decode rows with and without logits (the difference is the LM head, paid by every decoded
//! token and by no prefill token but the last), the same rows at position 0 (the difference is
//! attention over the context), a 16-token prompt chunk, a 128-token prompt (pp128) and one
//! decode row. `REPS` (default 20) passes each after 3 warm-up passes; `ONLY=prefix` runs the
//! lines whose name starts with it.

use ondo_model::{load_model, Batch, KvDtype, KvPool, LogitsFor, Workspace};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: step_breakdown MODEL [CTX]");
    let ctx: usize = args.next().map_or(64, |s| s.parse().expect("CTX is a number"));
    let reps: usize = std::env::var("REPS").map_or(20, |v| v.parse().expect("REPS is a number"));
    let only = std::env::var("ONLY").unwrap_or_default();
    let model = load_model(std::path::Path::new(&path)).expect("the model loads");
    let hp = model.hparams();
    let n = 16;
    // each sequence: its context, then room for the 128-token line's positions
    let per_seq = (ctx + 130).div_ceil(16);
    let mut pool = KvPool::new(hp, n * per_seq, 16, KvDtype::F16);
    let tables: Vec<Vec<u32>> = (0..n)
        .map(|s| (0..per_seq as u32).map(|b| b * n as u32 + s as u32).collect())
        .collect();
    let mut ws = Workspace::new(hp, 256);
    let mut batch = Batch::default();
    let prompt: Vec<u32> = (0..ctx as u32).map(|i| 10 + i * 7 % 1000).collect();
    for table in &tables {
        batch.clear();
        batch.push(&prompt, 0, table, LogitsFor::Last);
        model.forward(&batch, &mut pool, &mut ws).expect("prefill");
    }
    let decode = |pos: usize, logits: LogitsFor| {
        move |b: &mut Batch, t: &[Vec<u32>]| t.iter().for_each(|t| b.push(&[5], pos, t, logits))
    };
    type Build<'a> = Box<dyn Fn(&mut Batch, &[Vec<u32>]) + 'a>;
    let lines: Vec<(&str, usize, Build)> = vec![
        ("decode16 logits all", n, Box::new(decode(ctx, LogitsFor::Last))),
        ("decode16 logits none", n, Box::new(decode(ctx, LogitsFor::None))),
        (
            "decode16 at pos 0, logits none",
            n,
            Box::new(decode(0, LogitsFor::None)),
        ),
        (
            "chunk16 of one seq",
            16,
            Box::new(|b, t| b.push(&prompt[..16.min(ctx)], ctx, &t[0], LogitsFor::Last)),
        ),
        (
            "chunk128 of one seq (pp128)",
            128,
            Box::new(|b, t| b.push(&[7; 128], 0, &t[1], LogitsFor::Last)),
        ),
        ("decode1", 1, Box::new(|b, t| b.push(&[5], ctx, &t[0], LogitsFor::Last))),
    ];
    for (name, tokens, build) in lines.iter().filter(|l| l.0.starts_with(&only)) {
        batch.clear();
        build(&mut batch, &tables);
        for _ in 0..3 {
            model.forward(&batch, &mut pool, &mut ws).expect("forward");
        }
        let t = Instant::now();
        for _ in 0..reps {
            model.forward(&batch, &mut pool, &mut ws).expect("forward");
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!("{name:32} {:8.2} ms/step {:8.1} tok/s", s * 1e3, *tokens as f64 / s);
    }
}
