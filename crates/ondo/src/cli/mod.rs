//! Command-line parsing and dispatch. The flags of sampling parameters are named after
//! `SamplingParams` fields (vLLM's names).

mod bench;
mod chain;
mod chat;
mod generate;
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
    command: Command,
}

/// Where the model comes from, shared by every subcommand that loads one.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A model folder, a .gguf file, or a hub id (org/name[@revision])
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
            ..Default::default()
        };
        Ok(ondo::Llm::load(&self.model, &opts)?)
    }
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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Show(args) => show::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Template(args) => template::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Chain(args) => chain::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
