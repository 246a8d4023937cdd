//! `ondo bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]`: prompt processing and
//! generation speed, measured as llama-bench measures them.
//!
//! - `ppN`: N token ids in one `Model::forward` call on an empty KV cache.
//! - `tgN`: N forward calls of one token each, from an empty KV cache.
//!
//! The ids are deterministic pseudo-random draws from the vocabulary (no tokenizer involved).
//! Each test runs once untimed to page the weights in, then REPS timed times; the result is
//! the mean tokens/s and its sample standard deviation.

use super::tokenize::resolve;
use anyhow::{bail, Context};
use ondo_kernels::ThreadPool;
use ondo_model::{KvCache, KvDtype, LogitsFor, Model, Workspace};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A model folder, a .gguf file, or a hub id
    model: String,
    /// Prompt tokens of the pp test (0 = skip it)
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens of the tg test (0 = skip it)
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Worker threads (default: ONDO_NUM_THREADS, else the number of cores)
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// Timed repetitions of each test
    #[arg(short = 'r', long, default_value_t = 5)]
    reps: usize,
    /// Tokens per forward chunk (the engine's default is 64)
    #[arg(long, default_value_t = 64)]
    chunk: usize,
    /// Print a JSON list of results
    #[arg(long)]
    json: bool,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

/// One test's result.
#[derive(Serialize, Debug)]
struct Sample {
    test: String,
    threads: usize,
    tokens_per_second: f64,
    stddev: f64,
    reps: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let path = resolve(&args.model, args.offline)?;
    let loaded = ondo_engine::load::load_path(&path)?;
    // The KV cache type the engine would use for this format (f16 for GGUF, as llama-bench).
    let kv_dtype = loaded.kv_dtype;
    let model = loaded.model;
    let hp = model.hparams();
    let needed = args.n_prompt.max(args.n_gen);
    if needed > hp.max_position_embeddings {
        bail!("{}: {needed} tokens exceed the context length {}", path.display(), hp.max_position_embeddings);
    }
    let pool = Arc::new(args.threads.map_or_else(ThreadPool::from_env, ThreadPool::new));
    let ws = Workspace::with_pool(hp, args.chunk, pool.clone());
    let mut bench = Bench { model: &*model, ws, kv_dtype, ids: Ids(0x5eed) };
    let mut results = vec![];
    if args.n_prompt > 0 {
        let times = bench.repeat(args.reps, |b| b.prompt(args.n_prompt))?;
        results.push(summarize(format!("pp{}", args.n_prompt), pool.threads(), args.n_prompt, &times));
    }
    if args.n_gen > 0 {
        let times = bench.repeat(args.reps, |b| b.generate(args.n_gen))?;
        results.push(summarize(format!("tg{}", args.n_gen), pool.threads(), args.n_gen, &times));
    }
    print(&args, &path, hp, &results)
}

struct Bench<'m> {
    model: &'m dyn Model,
    ws: Workspace,
    kv_dtype: KvDtype,
    ids: Ids,
}

impl Bench<'_> {
    /// One untimed warm-up run, then `reps` timed ones (seconds each).
    fn repeat(&mut self, reps: usize, test: impl Fn(&mut Self) -> anyhow::Result<()>) -> anyhow::Result<Vec<f64>> {
        test(self)?;
        (0..reps)
            .map(|_| {
                let start = Instant::now();
                test(self)?;
                Ok(start.elapsed().as_secs_f64())
            })
            .collect()
    }

    fn prompt(&mut self, n: usize) -> anyhow::Result<()> {
        let vocab = self.model.hparams().vocab_size;
        let tokens: Vec<u32> = (0..n).map(|_| self.ids.next(vocab)).collect();
        let mut kv = KvCache::with_dtype(self.model.hparams(), n, self.kv_dtype);
        self.model.forward(&tokens, &mut kv, &mut self.ws, LogitsFor::Last).context("prompt processing")?;
        Ok(())
    }

    fn generate(&mut self, n: usize) -> anyhow::Result<()> {
        let vocab = self.model.hparams().vocab_size;
        let mut kv = KvCache::with_dtype(self.model.hparams(), n, self.kv_dtype);
        for _ in 0..n {
            let token = self.ids.next(vocab);
            self.model.forward(&[token], &mut kv, &mut self.ws, LogitsFor::Last).context("generation")?;
        }
        Ok(())
    }
}

/// Deterministic token ids (splitmix64).
struct Ids(u64);

impl Ids {
    fn next(&mut self, vocab: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % vocab.max(1) as u64) as u32
    }
}

/// Mean tokens/s and its sample standard deviation over the timed runs.
fn summarize(test: String, threads: usize, tokens: usize, seconds: &[f64]) -> Sample {
    let rates: Vec<f64> = seconds.iter().map(|s| tokens as f64 / s.max(1e-12)).collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let var = if rates.len() > 1 {
        rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (rates.len() - 1) as f64
    } else {
        0.0
    };
    Sample { test, threads, tokens_per_second: mean, stddev: var.sqrt(), reps: seconds.len() }
}

fn print(args: &Args, path: &std::path::Path, hp: &ondo_model::Hparams, results: &[Sample]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(results)?)?;
        return Ok(());
    }
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    writeln!(out, "| model | arch | threads | test | t/s |")?;
    writeln!(out, "| --- | --- | ---: | ---: | ---: |")?;
    for r in results {
        let rate = format!("{:.2} ± {:.2}", r.tokens_per_second, r.stddev);
        writeln!(out, "| {name} | {} | {} | {} | {rate} |", hp.arch_name, r.threads, r.test)?;
    }
    Ok(())
}
