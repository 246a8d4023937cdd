//! `ondo perplexity MODEL FILE.txt [--kl-base BASE]`: perplexity over a text and, against a
//! base model (the unquantized one), the KL divergence of the next-token distributions, as
//! llama-perplexity (`--kl-divergence`) reports them.

use anyhow::Context;
use ondo::engine::perplexity::{score, Score, ScoreOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The model to score (a folder, a .gguf file or a hub id)
    model: String,
    /// A UTF-8 text file
    text: PathBuf,
    /// The model whose next-token distributions the KL divergence is measured against
    #[arg(long)]
    kl_base: Option<String>,
    /// Quantize MODEL while loading (as `ondo run --quantize`)
    #[arg(long, value_parser = super::parse_scheme)]
    quantize: Option<ondo::model::Scheme>,
    /// Worker threads (default: ONDO_NUM_THREADS, else the number of cores)
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    score: ScoreArgs,
}

/// Chunking shared with `ondo quantize --check`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScoreArgs {
    /// Tokens per chunk; the second half of each is scored (llama-perplexity's -c)
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Score at most this many chunks
    #[arg(long)]
    pub chunks: Option<usize>,
}

impl ScoreArgs {
    /// Load `model` (and `base`) and score the text of `file`.
    pub fn run(&self, model: &str, base: Option<&str>, file: &Path, threads: Option<usize>) -> anyhow::Result<Score> {
        self.run_with(model, None, base, file, threads)
    }

    fn run_with(
        &self,
        model: &str,
        quantize: Option<ondo::model::Scheme>,
        base: Option<&str>,
        file: &Path,
        threads: Option<usize>,
    ) -> anyhow::Result<Score> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let opts = ondo::LoadOptions {
            threads,
            quantize,
            ..Default::default()
        };
        let llm = super::load_timed(model, &opts)?;
        let base = base
            .map(|b| {
                ondo::Llm::load(
                    b,
                    &ondo::LoadOptions {
                        threads,
                        ..Default::default()
                    },
                )
            })
            .transpose()?;
        let ids = llm.tokenizer().encode(&text, false)?;
        let opts = ScoreOptions {
            ctx: self.ctx,
            max_chunks: self.chunks,
        };
        Ok(score(llm.parts(), base.as_ref().map(|b| b.parts()), &ids, opts)?)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let s = args.score.run_with(
        &args.model,
        args.quantize,
        args.kl_base.as_deref(),
        &args.text,
        args.threads,
    )?;
    print_score(&s, args.kl_base.is_some() && !args.json);
    if args.json {
        let mut v = serde_json::json!({"chunks": s.chunks, "tokens": s.tokens, "perplexity": s.perplexity()});
        if args.kl_base.is_some() {
            v["mean_kl"] = s.mean_kl().into();
            v["kl_p99"] = s.kl_quantile(0.99).into();
            v["same_top"] = (s.same_top as f64 / s.tokens.max(1) as f64).into();
        }
        println!("{v}");
    }
    Ok(())
}

/// The summary lines on stderr.
pub fn print_score(s: &Score, kl: bool) {
    eprintln!(
        "{} chunks, {} tokens scored: perplexity {:.4}",
        s.chunks,
        s.tokens,
        s.perplexity()
    );
    if kl {
        eprintln!(
            "KL divergence vs base: mean {:.6}, p99 {:.6}, max {:.6}; same top token {:.2}%",
            s.mean_kl(),
            s.kl_quantile(0.99),
            s.kl_quantile(1.0),
            100.0 * s.same_top as f64 / s.tokens.max(1) as f64
        );
    }
}
