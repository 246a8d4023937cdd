//! Command-line parsing and dispatch. The flags of sampling parameters are named after
//! `SamplingParams` fields (vLLM's names).

mod bench;
mod chain;
mod chat;
mod first_run;
mod generate;
mod models;
mod perplexity;
mod pull;
mod quantize;
mod rm;
mod run;
mod sampling;
mod serve;
mod show;
mod structured;
mod template;
mod tokenize;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ondo", version, about = "Run open language models on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the model comes from, shared by every subcommand that loads one.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A model folder, a .gguf file, or a hub id (org/name[@revision], org/name:QUANT for a GGUF repo)
    pub model: String,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,
    /// Worker threads (default: ONDO_NUM_THREADS, else the number of cores)
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// KV cache memory, e.g. 4GiB or 512MiB (default: a quarter of free memory, at most 4 GiB)
    #[arg(long, value_parser = parse_bytes)]
    pub kv_cache_memory: Option<usize>,
    /// Sequences one engine step runs at most
    #[arg(long, default_value_t = ondo::EngineConfig::default().max_num_seqs)]
    pub max_num_seqs: usize,
    /// Tokens one engine step runs at most (prompt chunks + one per decoding sequence)
    #[arg(long, default_value_t = ondo::EngineConfig::default().max_num_batched_tokens)]
    pub max_num_batched_tokens: usize,
    /// Turn off prefix caching (reuse of the KV of a prompt's first blocks across requests)
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// Quantize the weights while loading: q4_k_m, q4_k_s, q5_k_m, q6_k, q8_0, q4_0, ... (llama.cpp's mixtures)
    #[arg(long, value_parser = parse_scheme)]
    pub quantize: Option<ondo::model::Scheme>,
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<ondo::Llm> {
        let offline = self.offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
        if self.max_num_seqs == 0 || self.max_num_batched_tokens == 0 {
            anyhow::bail!("--max-num-seqs and --max-num-batched-tokens must be at least 1");
        }
        let engine = ondo::EngineConfig {
            kv_cache_memory: self.kv_cache_memory,
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
            enable_prefix_caching: !self.no_enable_prefix_caching,
            ..ondo::EngineConfig::default()
        };
        let opts = ondo::LoadOptions {
            offline,
            threads: self.threads,
            engine,
            quantize: self.quantize,
            ..Default::default()
        };
        load_timed(&self.model, &opts)
    }
}

/// `Llm::load`, printing the load time to stderr when the weights were quantized on the way.
pub fn load_timed(model: &str, opts: &ondo::LoadOptions) -> anyhow::Result<ondo::Llm> {
    let start = std::time::Instant::now();
    let llm = ondo::Llm::load(model, opts)?;
    if let Some(scheme) = opts.quantize {
        let secs = start.elapsed().as_secs_f64();
        eprintln!("[loaded {model} quantized to {} in {secs:.2} s]", scheme.name());
    }
    Ok(llm)
}

/// A `--quantize` / `--type` value.
pub fn parse_scheme(s: &str) -> Result<ondo::model::Scheme, String> {
    ondo::model::Scheme::parse(s).map_err(|e| e.to_string())
}

/// `4GiB`, `512MiB`, `1.5G`, `1000000` (bytes): 1024-based for K/M/G/KiB/MiB/GiB, 1000-based
/// for KB/MB/GB.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 4GiB or 512MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    let bytes = n * scale;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(format!("{s:?}: the KV cache needs at least one byte"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(super::parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(super::parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(super::parse_bytes("2gb"), Ok(2_000_000_000));
        assert_eq!(super::parse_bytes("1000"), Ok(1000));
        assert!(super::parse_bytes("4 parsecs").is_err());
        assert!(super::parse_bytes("0").is_err());
        assert!(super::parse_bytes("GiB").is_err());
    }
}

#[derive(Subcommand)]
enum Command {
    /// Stream a completion of PROMPT to stdout
    Run(run::Args),
    /// Offline batch generation; prints RequestOutputs (vLLM's shape) with --json
    Generate(generate::Args),
    /// Interactive multi-turn chat with history
    Chat(chat::Args),
    /// Token ids of TEXT (also with a vocabulary-only GGUF)
    Tokenize(tokenize::Args),
    /// Architecture, parameters, quant mix, context length, special tokens
    Show(show::Args),
    /// Prompt processing and generation speed (tokens/s), like llama-bench
    Bench(bench::Args),
    /// Render a chat template over messages from a JSON file
    Template(template::Args),
    /// OpenAI-compatible HTTP server (chat/completions, completions, models; SSE streaming)
    Serve(serve::Args),
    /// Run a chain file (TOML steps of template + model); streams the last step's text
    Chain(chain::Args),
    /// Download a model into the HF cache (progress bar, resumes); org/name:QUANT for one GGUF
    Pull(pull::Args),
    /// List the models in the HF cache and local GGUFs: id, arch, quant, size, path
    #[command(visible_alias = "ls")]
    Models(models::Args),
    /// Remove a model from the HF cache
    Rm(rm::Args),
    /// Write an HF folder or a GGUF as a GGUF file of one quantization type (q4_k_m, q8_0, ...)
    Quantize(quantize::Args),
    /// Perplexity over a text file, and KL divergence against a base model (--kl-base)
    Perplexity(perplexity::Args),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return first_run::on_parse_error(e),
    };
    let Some(command) = cli.command else {
        first_run::print_help();
        return ExitCode::SUCCESS;
    };
    let result = match command {
        Command::Run(args) => run::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Show(args) => show::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Template(args) => template::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Chain(args) => chain::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Models(args) => models::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Perplexity(args) => perplexity::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
