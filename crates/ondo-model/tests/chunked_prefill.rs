//! A prompt run in chunks (as the scheduler splits long prompts) gives the logits of one pass,
//! and a sequence run beside others gives its logits alone: stories260K (f16 KV, head_dim 8)
//! (f32 weights), SmolLM2 Q4_1 and SmolLM2's bf16 HF folder. Bit for bit: every kernel sums a
//! token's products in the same order whatever the batch.

use ondo_model::{load_model, Batch, KvDtype, KvPool, LogitsFor, SeqCache, Workspace};

fn models() -> Vec<std::path::PathBuf> {
    let stories = ondo_testdata::shared("models/stories260K").map(|d| d.join("stories260K.gguf"));
    let smol = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf");
    let hf =
        ondo_testdata::fetched("smollm2-135m-instruct-hf/model.safetensors").map(|p| p.parent().unwrap().to_path_buf());
    [stories, smol, hf].into_iter().flatten().collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn chunked_prefill_matches_one_pass() {
    for path in models() {
        let model = load_model(&path).unwrap();
        let hp = model.hparams();
        let prompt: Vec<u32> = (0..100).map(|i| (1 + i * 7) % hp.vocab_size as u32).collect();
        let mut whole = Workspace::new(hp, 256);
        let mut kv = SeqCache::new(hp, 100, KvDtype::F16);
        let want = kv
            .forward(&*model, &prompt, &mut whole, LogitsFor::All)
            .unwrap()
            .to_vec();
        for chunk in [1, 7, 16, 50] {
            let mut ws = Workspace::new(hp, chunk);
            let mut kv = SeqCache::new(hp, 100, KvDtype::F16);
            let got = kv.forward(&*model, &prompt, &mut ws, LogitsFor::All).unwrap();
            let d = max_diff(got, &want);
            assert!(d == 0.0, "{}: chunks of {chunk}: logits differ by {d}", path.display());
        }
    }
}

#[test]
fn a_sequence_beside_others_gets_its_logits_alone() {
    for path in models() {
        let model = load_model(&path).unwrap();
        let hp = model.hparams();
        let prompts: Vec<Vec<u32>> = (0..5)
            .map(|s| {
                (0..(3 + s * 11))
                    .map(|i| ((1 + i * 13 + s * 5) % hp.vocab_size) as u32)
                    .collect()
            })
            .collect();
        let mut ws = Workspace::new(hp, 128);
        let alone: Vec<Vec<f32>> = prompts
            .iter()
            .map(|p| {
                let mut kv = SeqCache::new(hp, 64, KvDtype::F16);
                kv.forward(&*model, p, &mut ws, LogitsFor::Last).unwrap().to_vec()
            })
            .collect();
        let mut pool = KvPool::new(hp, 5 * 4, 16, KvDtype::F16);
        let mut batch = Batch::default();
        for (s, p) in prompts.iter().enumerate() {
            let table: Vec<u32> = (0..4).map(|b| (b * 5 + s) as u32).collect();
            batch.push(p, 0, &table, LogitsFor::Last);
        }
        let got = model.forward(&batch, &mut pool, &mut ws).unwrap();
        for (s, want) in alone.iter().enumerate() {
            let d = max_diff(&got[s * hp.vocab_size..(s + 1) * hp.vocab_size], want);
            assert!(
                d == 0.0,
                "{}: sequence {s} beside others: logits differ by {d}",
                path.display()
            );
        }
    }
}

/// Longrope picks its factors from the sequence's length (as transformers does for one pass over
/// the prompt). A prompt past `original_max_position_embeddings` (128 in the tiny Phi-3) run in
/// two steps, as the scheduler chunks it, each step told the prompt's length (`Batch::set_len`),
/// gives the logits of one pass; without the length its first step gets the short factors.
#[test]
fn a_long_prompt_in_steps_gets_the_rope_of_one_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models/phi3");
    let model = load_model(&dir).unwrap();
    let hp = model.hparams();
    let (n, split, bs) = (200usize, 100usize, 16usize);
    let prompt: Vec<u32> = (0..n as u32).map(|i| (1 + i * 7) % hp.vocab_size as u32).collect();
    let blocks: Vec<u32> = (0..n.div_ceil(bs) as u32).collect();
    let mut ws = Workspace::new(hp, 256);
    let mut run = |steps: &[(usize, usize, Option<usize>)]| {
        let mut pool = KvPool::new(hp, blocks.len(), bs, KvDtype::F32);
        let mut out = vec![];
        for &(a, b, len) in steps {
            let mut batch = Batch::default();
            batch.push(&prompt[a..b], a, &blocks, LogitsFor::All);
            if let Some(len) = len {
                batch.set_len(len);
            }
            out.extend_from_slice(model.forward(&batch, &mut pool, &mut ws).unwrap());
        }
        out
    };
    let want = run(&[(0, n, None)]);
    let got = run(&[(0, split, Some(n)), (split, n, Some(n))]);
    assert!(
        max_diff(&got, &want) == 0.0,
        "in two steps: logits differ by {}",
        max_diff(&got, &want)
    );
    let short = run(&[(0, split, None)]);
    let d = max_diff(&short, &want[..short.len()]);
    assert!(
        d > 1e-3,
        "the first 100 positions alone take the short factors (differ by {d})"
    );
}
