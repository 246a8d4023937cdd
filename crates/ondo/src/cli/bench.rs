//! `ondo bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--concurrent 1,4,16] [--json]`:
//! prompt processing and generation speed, measured as llama-bench measures them, on the same
//! engine every request runs on.
//!
//! - `ppN`: one request of N token ids and one output token (time to first token).
//! - `tgN`: one request of one token generating N tokens (greedy, eos ignored).
//! - `--concurrent B,..`: B requests at once, each with its own `-p`-token prompt generating `-n`
//!   tokens, as llama-batched-bench reports them: aggregate and per-stream tokens/s.
//!
//! The ids are deterministic pseudo-random draws from the vocabulary (no tokenizer involved).
//! Each test runs once untimed to page the weights in, then REPS timed times; the result is
//! the mean tokens/s and its sample standard deviation.

use anyhow::{bail, Context};
use ondo_engine::{EngineConfig, Event, Llm, LoadOptions, NewRequest, SamplingParams};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

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
    /// Tokens per engine step (--max-num-batched-tokens); llama-bench's default batch is 512
    #[arg(long, default_value_t = 512)]
    chunk: usize,
    /// Concurrent requests to measure, e.g. 1,4,16,64 (each -p prompt tokens, -n generated)
    #[arg(long, value_delimiter = ',')]
    concurrent: Vec<usize>,
    /// Print a JSON list of results
    #[arg(long)]
    json: bool,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// Quantize the weights while loading (q4_k_m, q8_0, ...; as `ondo run --quantize`)
    #[arg(long, value_parser = super::parse_scheme)]
    quantize: Option<ondo::model::Scheme>,
}

/// One test's result.
#[derive(Serialize, Debug)]
struct Sample {
    test: String,
    threads: usize,
    tokens_per_second: f64,
    stddev: f64,
    reps: usize,
    /// `--concurrent` runs: tokens_per_second is the aggregate of generated tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrent: Option<Batched>,
}

/// One `--concurrent` level, as llama-batched-bench reports it (mean seconds over the reps).
#[derive(Serialize, Debug, Clone, Copy)]
struct Batched {
    b: usize,
    pp: usize,
    tg: usize,
    /// Until every prompt was processed (each request had its first token).
    t_pp: f64,
    /// Until every request finished.
    t: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let max_seqs = args.concurrent.iter().copied().max().unwrap_or(1).max(1);
    let engine = EngineConfig {
        max_num_batched_tokens: args.chunk.max(1),
        max_num_seqs: max_seqs,
        enable_prefix_caching: false,
        ..EngineConfig::default()
    };
    let opts = LoadOptions {
        offline: args.offline,
        threads: args.threads,
        engine,
        quantize: args.quantize,
        ..LoadOptions::default()
    };
    let llm = super::load_timed(&args.model, &opts)?;
    let hp = llm.model().hparams();
    let needed = args.n_prompt + args.n_gen;
    if needed > hp.max_position_embeddings {
        bail!(
            "{}: {needed} tokens exceed the context length {}",
            llm.source().display(),
            hp.max_position_embeddings
        );
    }
    let threads = llm.parts().pool.threads();
    let mut bench = Bench {
        llm: &llm,
        ids: Ids(0x5eed),
    };
    let mut results = vec![];
    if args.n_prompt > 0 && args.concurrent.is_empty() {
        let times: Vec<f64> = bench
            .repeat(args.reps, 1, args.n_prompt, 1)?
            .iter()
            .map(|t| t.first)
            .collect();
        results.push(summarize(
            format!("pp{}", args.n_prompt),
            threads,
            args.n_prompt,
            &times,
        ));
    }
    if args.n_gen > 0 && args.concurrent.is_empty() {
        let times: Vec<f64> = bench
            .repeat(args.reps, 1, 1, args.n_gen)?
            .iter()
            .map(|t| t.total)
            .collect();
        results.push(summarize(format!("tg{}", args.n_gen), threads, args.n_gen, &times));
    }
    for &b in &args.concurrent {
        let (prompt, gen, b) = (args.n_prompt.max(1), args.n_gen.max(1), b.max(1));
        let timings = bench.repeat(args.reps, b, prompt, gen)?;
        let mean = |f: fn(&Timing) -> f64| timings.iter().map(f).sum::<f64>() / timings.len() as f64;
        let totals: Vec<f64> = timings.iter().map(|t| t.total).collect();
        let mut sample = summarize(format!("pp{prompt}+tg{gen} x{b}"), threads, b * gen, &totals);
        sample.concurrent = Some(Batched {
            b,
            pp: prompt,
            tg: gen,
            t_pp: mean(|t| t.first),
            t: mean(|t| t.total),
        });
        results.push(sample);
    }
    print(&args, &llm, &results)
}

struct Bench<'m> {
    llm: &'m Llm,
    ids: Ids,
}

/// Seconds until every request had its first token (all prompts processed), and to the end.
struct Timing {
    first: f64,
    total: f64,
}

impl Bench<'_> {
    /// One untimed warm-up run, then `reps` timed ones.
    fn repeat(&mut self, reps: usize, b: usize, prompt: usize, gen: usize) -> anyhow::Result<Vec<Timing>> {
        self.run(b, prompt, gen)?;
        (0..reps).map(|_| self.run(b, prompt, gen)).collect()
    }

    /// `b` requests at once, each `prompt` random ids generating `gen` tokens.
    fn run(&mut self, b: usize, prompt: usize, gen: usize) -> anyhow::Result<Timing> {
        let vocab = self.llm.model().hparams().vocab_size;
        let params = SamplingParams {
            temperature: 0.0,
            max_tokens: Some(gen),
            ignore_eos: true,
            ..Default::default()
        };
        let engine = self.llm.engine()?;
        let start = Instant::now();
        let receivers: Vec<UnboundedReceiver<Event>> = (0..b)
            .map(|i| {
                let prompt_ids = (0..prompt).map(|_| self.ids.next(vocab)).collect();
                let req = NewRequest {
                    id: i.to_string(),
                    prompt: None,
                    prompt_ids,
                    params: params.clone(),
                    stream: true,
                    cancel: None,
                };
                engine.submit(req).context("bench request")
            })
            .collect::<anyhow::Result<_>>()?;
        // each request read on its own thread, so every first token is timed when it comes
        let firsts: Vec<anyhow::Result<f64>> = std::thread::scope(|scope| {
            let readers: Vec<_> = receivers
                .into_iter()
                .map(|mut rx| {
                    scope.spawn(move || {
                        let mut first = None;
                        while let Some(event) = rx.blocking_recv() {
                            match event {
                                Event::Delta { .. } => {
                                    first.get_or_insert_with(|| start.elapsed().as_secs_f64());
                                }
                                Event::Done(_) => break,
                                Event::Failed(e) => return Err(e.into()),
                            }
                        }
                        Ok(first.unwrap_or_else(|| start.elapsed().as_secs_f64()))
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a reader panicked"))))
                .collect()
        });
        let total = start.elapsed().as_secs_f64();
        let first = firsts
            .into_iter()
            .collect::<anyhow::Result<Vec<f64>>>()?
            .into_iter()
            .fold(0.0, f64::max);
        Ok(Timing { first, total })
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
    Sample {
        test,
        threads,
        tokens_per_second: mean,
        stddev: var.sqrt(),
        reps: seconds.len(),
        concurrent: None,
    }
}

fn print(args: &Args, llm: &Llm, results: &[Sample]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(results)?)?;
        return Ok(());
    }
    let path = llm.source();
    let arch = &llm.model().hparams().arch_name;
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    if !args.concurrent.is_empty() {
        writeln!(
            out,
            "{name}, {} threads (llama-batched-bench columns; S_TG per stream in the last)",
            results.first().map_or(0, |r| r.threads)
        )?;
        writeln!(out, "|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s | S_TG/B t/s |")?;
        writeln!(out, "|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|------------|")?;
    } else {
        writeln!(out, "| model | arch | threads | test | t/s |")?;
        writeln!(out, "| --- | --- | ---: | ---: | ---: |")?;
    }
    for r in results {
        let rate = format!("{:.2} ± {:.2}", r.tokens_per_second, r.stddev);
        match r.concurrent {
            Some(c) => {
                let t_tg = (c.t - c.t_pp).max(1e-9);
                // after its first token each request generates tg - 1 more
                let s_tg = (c.b * (c.tg - 1)) as f64 / t_tg;
                writeln!(
                    out,
                    "| {:5} | {:6} | {:4} | {:6} | {:8.3} | {:8.2} | {:8.3} | {:8.2} | {:8.3} | {:8.2} | {:10.2} |",
                    c.pp,
                    c.tg,
                    c.b,
                    c.b * (c.pp + c.tg),
                    c.t_pp,
                    (c.b * c.pp) as f64 / c.t_pp.max(1e-9),
                    t_tg,
                    s_tg,
                    c.t,
                    (c.b * (c.pp + c.tg)) as f64 / c.t.max(1e-9),
                    s_tg / c.b as f64
                )?;
            }
            None => writeln!(out, "| {name} | {arch} | {} | {} | {rate} |", r.threads, r.test)?,
        }
    }
    Ok(())
}
