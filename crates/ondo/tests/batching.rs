//! The batched engine changes no output: greedy tokens of 1, 3 and 16 prompts of different
//! lengths run together equal each prompt run alone, with logprobs within 1e-4 (stories260K,
//! SmolLM2-135M Q4_1, a tiny HF llama); a seeded sampled request gives the same text beside 15
//! others; best_of sequences share the prompt's blocks; a shared prefix is computed once; a pool
//! of 4 blocks preempts and still finishes every request with the same output.

use ondo::{EngineConfig, Event, Llm, LoadOptions, NewRequest, Prompt, RequestOutput, SamplingParams};
use ondo_engine::core::EngineCore;
use ondo_engine::EngineStats;
use std::path::PathBuf;
use std::sync::Arc;

fn load(path: &str, engine: EngineConfig) -> Llm {
    Llm::load(
        path,
        &LoadOptions {
            offline: true,
            engine,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The three models: stories260K (f32 GGUF), SmolLM2 Q4_1, a tiny HF llama with GQA.
fn models() -> Vec<String> {
    let tiny = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tiny-models/llama-gqa"
    ));
    let stories = ondo_testdata::shared("models/stories260K").map(|d| d.join("stories260K.gguf"));
    let smol = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf");
    [stories, smol, Some(tiny)]
        .into_iter()
        .flatten()
        .map(|p| p.to_str().unwrap().to_string())
        .collect()
}

/// `n` prompts of different lengths (1 to 70 tokens) of ids from the vocabulary.
fn prompts(vocab: usize, n: usize) -> Vec<Prompt> {
    (0..n)
        .map(|i| {
            let len = 1 + (i * 37) % 70;
            Prompt::Ids(
                (0..len)
                    .map(|j| (1 + (i * 131 + j * 17) % (vocab - 1)) as u32)
                    .collect(),
            )
        })
        .collect()
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ignore_eos: true,
        logprobs: Some(0),
        ..Default::default()
    }
}

/// Same tokens, and each token's logprob within 1e-4.
fn assert_same(what: &str, got: &RequestOutput, want: &RequestOutput) {
    assert_close(what, got, want, 1e-4)
}

/// Same tokens, and each token's logprob within `tol`.
fn assert_close(what: &str, got: &RequestOutput, want: &RequestOutput, tol: f32) {
    let (g, w) = (&got.outputs[0], &want.outputs[0]);
    assert_eq!(g.token_ids, w.token_ids, "{what}: greedy tokens");
    for (step, (a, b)) in g
        .logprobs
        .as_ref()
        .unwrap()
        .iter()
        .zip(w.logprobs.as_ref().unwrap())
        .enumerate()
    {
        for (id, lp) in b {
            let ours = a[id];
            assert!(
                (ours - lp).abs() <= tol,
                "{what} step {step}: logprob({id}) {ours} vs alone {lp}"
            );
        }
    }
}

#[test]
fn batched_greedy_equals_each_prompt_alone() {
    let no_cache = EngineConfig {
        enable_prefix_caching: false,
        ..EngineConfig::default()
    };
    for path in models() {
        let llm = load(&path, EngineConfig::default());
        let alone_llm = load(&path, no_cache.clone());
        let vocab = llm.model().hparams().vocab_size;
        let all = prompts(vocab, 16);
        let params = greedy(12);
        let alone: Vec<RequestOutput> = all
            .iter()
            .map(|p| alone_llm.generate(std::slice::from_ref(p), &params).unwrap().remove(0))
            .collect();
        for n in [1, 3, 16] {
            let together = llm.generate(&all[..n], &params).unwrap();
            for (i, (got, want)) in together.iter().zip(&alone).enumerate() {
                assert_same(&format!("{path}: {n} together, prompt {i}"), got, want);
            }
        }
    }
}

#[test]
fn a_seeded_request_gives_the_same_text_beside_15_others() {
    let Some(path) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let llm = load(path.to_str().unwrap(), EngineConfig::default());
    let seeded = SamplingParams {
        temperature: 0.8,
        top_p: 0.95,
        seed: Some(11),
        max_tokens: Some(20),
        ..Default::default()
    };
    let prompt = Prompt::Text("Once upon a time".into());
    let alone = llm.generate(std::slice::from_ref(&prompt), &seeded).unwrap().remove(0);
    // 15 other requests submitted first, then the seeded one joins the running batch
    let others: Vec<_> = prompts(llm.model().hparams().vocab_size, 15)
        .iter()
        .map(|p| llm.submit("other".into(), p, &greedy(30), false).unwrap())
        .collect();
    let beside = llm.generate(&[prompt], &seeded).unwrap().remove(0);
    assert_eq!(beside.outputs[0].text, alone.outputs[0].text);
    assert_eq!(beside.outputs[0].token_ids, alone.outputs[0].token_ids);
    drop(others);
}

/// Drive an `EngineCore` by hand: one request, step until done; returns the output and the
/// most blocks in use at any step.
fn run_core(
    llm: &Llm,
    cfg: &EngineConfig,
    prompt: Vec<u32>,
    params: SamplingParams,
) -> (RequestOutput, usize, EngineCore) {
    let mut core = EngineCore::new(llm.parts().clone(), cfg, Arc::new(EngineStats::default()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let req = NewRequest {
        id: "r".into(),
        prompt: None,
        prompt_ids: prompt,
        params,
        stream: false,
        cancel: None,
    };
    core.add_request(req, tx).unwrap();
    let mut most = 0;
    while !core.is_idle() {
        core.step();
        let blocks = &core.scheduler().blocks;
        most = most.max(blocks.num_blocks() - blocks.num_free());
    }
    match rx.try_recv() {
        Ok(Event::Done(out)) => (*out, most, core),
        other => panic!("expected the output, got {other:?}"),
    }
}

#[test]
fn best_of_13_shares_the_prompt_blocks() {
    let Some(path) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let llm = load(path.to_str().unwrap(), EngineConfig::default());
    let cfg = EngineConfig {
        kv_cache_memory: Some(64 << 20),
        ..EngineConfig::default()
    };
    // 40 prompt tokens: 2 full blocks of 16 and one partial (8); 8 new tokens fit the partial one
    let prompt: Vec<u32> = (0..40).map(|i| 100 + i * 7).collect();
    let params = SamplingParams {
        n: 6,
        best_of: Some(13),
        temperature: 0.8,
        top_k: 5,
        seed: Some(3),
        max_tokens: Some(8),
        ignore_eos: true,
        ..Default::default()
    };
    let (out, most, core) = run_core(&llm, &cfg, prompt, params);
    assert_eq!(out.outputs.len(), 6);
    assert!(out.outputs.iter().all(|o| o.token_ids.len() == 8));
    // shared: 2 full prompt blocks + one partial block per sequence (12 copies + the original)
    assert_eq!(
        most,
        2 + 13,
        "blocks in use at the peak (13 private copies would be {})",
        13 * 3
    );
    let blocks = &core.scheduler().blocks;
    assert_eq!(blocks.num_free(), blocks.num_blocks(), "every block is back");
    assert_eq!(
        core.scheduler().counters.computed_tokens,
        40 + 13 * 7,
        "the prompt computed once"
    );
}

#[test]
fn a_shared_200_token_prefix_is_computed_once_and_changes_nothing() {
    let Some(path) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let path = path.to_str().unwrap();
    let cached = load(path, EngineConfig::default());
    let uncached = load(
        path,
        EngineConfig {
            enable_prefix_caching: false,
            ..EngineConfig::default()
        },
    );
    let prefix: Vec<u32> = (0..200).map(|i| 300 + (i * 13) % 5000).collect();
    let with = |tail: &[u32]| Prompt::Ids(prefix.iter().chain(tail).copied().collect());
    let (a, b) = (with(&[11, 12, 13]), with(&[21, 22, 23, 24, 25]));
    let params = greedy(10);
    let engine = cached.engine().unwrap();
    let computed = || EngineStats::get(&engine.stats().computed_tokens);
    let out_a = cached.generate(std::slice::from_ref(&a), &params).unwrap().remove(0);
    let before = computed();
    let out_b = cached.generate(std::slice::from_ref(&b), &params).unwrap().remove(0);
    let b_prompt_computed = computed() - before - 9; // 9 decode steps after the prompt
                                                     // 200 shared tokens = 12 full blocks of 16 (192 tokens) from the cache
    assert_eq!(
        b_prompt_computed,
        205 - 192,
        "b computes only what follows the cached blocks"
    );
    assert_eq!(EngineStats::get(&engine.stats().prefix_cache_hits), 192);
    for (p, out) in [(a, out_a), (b, out_b)] {
        let plain = uncached.generate(&[p], &params).unwrap().remove(0);
        assert_same("prefix cache on vs off", &out, &plain);
    }
}

#[test]
fn a_4_block_pool_preempts_and_every_request_finishes_with_the_same_output() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let path = dir.join("stories260K.gguf");
    let path = path.to_str().unwrap();
    let roomy = load(path, EngineConfig::default());
    let hp = roomy.model().hparams();
    let block = ondo::model::KvPool::block_bytes(hp, 16, roomy.parts().kv_dtype);
    let tiny = load(
        path,
        EngineConfig {
            kv_cache_memory: Some(4 * block),
            ..EngineConfig::default()
        },
    );
    // three requests of 10 + 30 tokens (3 blocks each) in a pool of 4 blocks
    let all = prompts(hp.vocab_size, 3).into_iter().map(|p| match p {
        Prompt::Ids(ids) => Prompt::Ids(ids.into_iter().cycle().take(10).collect()),
        p => p,
    });
    let all: Vec<Prompt> = all.collect();
    let params = greedy(30);
    let got = tiny.generate(&all, &params).unwrap();
    let stats = tiny.engine().unwrap().stats();
    assert!(
        EngineStats::get(&stats.preemptions) > 0,
        "the pool is too small for all three at once"
    );
    assert_eq!(EngineStats::get(&stats.kv_blocks_used), 0);
    for (i, (g, p)) in got.iter().zip(&all).enumerate() {
        let want = roomy.generate(std::slice::from_ref(p), &params).unwrap().remove(0);
        assert_eq!(g.outputs[0].token_ids.len(), 30);
        // recomputed keys and values come from the prompt-sized kernels, not the one-token ones,
        // so logprobs agree to float rounding (3e-4 seen), tokens exactly
        assert_close(&format!("preempted request {i}"), g, &want, 2e-3);
    }
}
