//! `ondo run MODEL [PROMPT]`: stream a completion to stdout as it is generated.

use super::sampling::SamplingArgs;
use super::ModelArgs;
use anyhow::Context;
use ondo::Prompt;
use serde_json::json;
use std::io::{Read, Write};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt (read from stdin when absent)
    prompt: Option<String>,
    /// Treat PROMPT as a user message and apply the model's chat template
    #[arg(long)]
    chat: bool,
    /// A system message (with --chat)
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let prompt = match args.prompt {
        Some(p) => p,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the prompt from stdin")?;
            s
        }
    };
    let llm = args.model.load()?;
    let mut params = llm.default_params();
    if args.sampling.max_tokens.is_none() && params.max_tokens == Some(16) {
        params.max_tokens = Some(256); // a CLI run wants more than vLLM's 16-token default
    }
    let params = args.sampling.apply(params)?;
    let mut stdout = std::io::stdout().lock();
    let mut sink = |_: usize, delta: &str| stdout.write_all(delta.as_bytes()).and_then(|_| stdout.flush()).is_ok();
    let out = if args.chat {
        let mut messages = vec![];
        if let Some(system) = &args.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        llm.chat(&messages, &params, &mut sink)?
    } else {
        llm.generate_streaming(&Prompt::Text(prompt), &params, &mut sink)?
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout)?;
    let reason = out
        .outputs
        .first()
        .and_then(|o| o.finish_reason)
        .map_or("none", |r| r.as_str());
    eprintln!(
        "[{} prompt tokens, {} generated, finish_reason: {reason}]",
        out.prompt_token_ids.len(),
        out.outputs.first().map_or(0, |o| o.token_ids.len())
    );
    Ok(())
}
