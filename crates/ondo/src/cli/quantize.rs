//! `ondo quantize SRC OUT.gguf --type q4_k_m`: an HF folder or a GGUF file written as a GGUF
//! file (llama.cpp's layout, so llama.cpp, Ollama and GPT4All load it), tensor by tensor.
//! `--check FILE.txt` then scores the new file against the source (perplexity, KL divergence).

use super::perplexity::{print_score, ScoreArgs};
use anyhow::Context;
use ondo::model::export::ExportOptions;
use ondo::model::Scheme;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// An HF model folder (config.json + safetensors + tokenizer.json) or a .gguf file
    src: PathBuf,
    /// The GGUF file to write (written to OUT.partial, renamed when complete)
    out: PathBuf,
    /// q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k, q8_0, q4_0, q4_1, q5_0, q5_1, q3_k_m, q2_k, f16, bf16, f32
    #[arg(long = "type", value_parser = super::parse_scheme)]
    scheme: Scheme,
    /// Worker threads (default: ONDO_NUM_THREADS, else the number of cores)
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// No progress bar
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Score the written file against SRC over this text: perplexity and KL divergence
    #[arg(long, value_name = "FILE.txt")]
    check: Option<PathBuf>,
    #[command(flatten)]
    score: ScoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args
        .threads
        .map_or_else(ondo::kernels::ThreadPool::from_env, ondo::kernels::ThreadPool::new);
    let opts = ExportOptions {
        scheme: args.scheme,
        pool: &threads,
        progress: !args.quiet,
    };
    let start = Instant::now();
    let report = ondo::engine::export::quantize_model(&args.src, &args.out, &opts)
        .with_context(|| format!("quantizing {} to {}", args.src.display(), args.out.display()))?;
    let mut counts: Vec<(String, usize)> = vec![];
    for (_, d) in &report.tensors {
        match counts.iter_mut().find(|(n, _)| n == d.name()) {
            Some(c) => c.1 += 1,
            None => counts.push((d.name().to_string(), 1)),
        }
    }
    let mix: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    eprintln!(
        "wrote {} ({}, {} tensors: {}; {:.1} MiB) in {:.2} s",
        args.out.display(),
        args.scheme.name(),
        report.tensors.len(),
        mix.join(", "),
        report.bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64()
    );
    drop(threads);
    if let Some(text) = &args.check {
        let model = args.out.to_string_lossy().into_owned();
        let base = args.src.to_string_lossy().into_owned();
        let score = args.score.run(&model, Some(&base), text, args.threads)?;
        print_score(&score, true);
    }
    Ok(())
}
