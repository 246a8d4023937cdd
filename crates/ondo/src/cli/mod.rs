//! Command-line parsing and dispatch. The flags of sampling parameters are named after
//! `SamplingParams` fields (vLLM's names).

mod bench;
mod chat;
mod generate;
mod run;
mod sampling;
mod serve;
mod show;
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
}

impl ModelArgs {
    pub fn load(&self) -> anyhow::Result<ondo::Llm> {
        let offline = self.offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
        let opts = ondo::LoadOptions { offline, threads: self.threads, ..Default::default() };
        Ok(ondo::Llm::load(&self.model, &opts)?)
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
