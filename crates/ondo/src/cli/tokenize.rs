//! `ondo tokenize MODEL TEXT [--no-add-special] [--no-parse-special] [--json]`: the token ids
//! and vocabulary entries of TEXT.
//!
//! Only the tokenizer is read: a `.gguf` file may hold a vocabulary and no tensors, and a model
//! folder needs tokenizer.json but no weights. [`TextSide`] (tokenizer + chat template) is what
//! `show` and `template` read too.

use anyhow::Context;
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A model folder, a .gguf file (a vocabulary-only one will do), or a hub id
    model: String,
    /// The text (read from stdin when absent)
    #[arg(allow_hyphen_values = true)]
    text: Option<String>,
    /// Do not add BOS/EOS the way the tokenizer is configured to
    #[arg(long)]
    no_add_special: bool,
    /// Treat special-token text such as "<|im_start|>" as plain text
    #[arg(long)]
    no_parse_special: bool,
    /// Print {"ids": [...], "tokens": [...]}
    #[arg(long)]
    json: bool,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = match args.text {
        Some(t) => t,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the text from stdin")?;
            s
        }
    };
    let side = ondo_engine::load::load_text(&resolve(&args.model, args.offline)?)?;
    let tok = &side.tokenizer;
    let ids = tok.encode_with(&text, !args.no_add_special, !args.no_parse_special)?;
    let tokens: Vec<String> = ids.iter().map(|&id| tok.id_to_token(id).unwrap_or_default()).collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", json!({"ids": ids, "tokens": tokens}))?;
        return Ok(());
    }
    for (id, token) in ids.iter().zip(&tokens) {
        let piece = tok.decode(&[*id], false)?;
        writeln!(out, "{id:>7} {token:<20} {piece:?}")?;
    }
    Ok(())
}

/// What a user typed as MODEL, as a path: an existing path, else a hub id in the HF cache.
pub fn resolve(model: &str, offline: bool) -> anyhow::Result<PathBuf> {
    let offline = offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
    Ok(ondo_engine::load::resolve(model, offline)?)
}

/// The text side of a model (tokenizer, chat template), read without its weights.
pub use ondo_engine::load::TextSide;
