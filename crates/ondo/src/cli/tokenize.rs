//! `ondo tokenize MODEL TEXT [--no-add-special] [--no-parse-special] [--json]`: the token ids
//! and vocabulary entries of TEXT.
//!
//! Only the tokenizer is read: a `.gguf` file may hold a vocabulary and no tensors, and a model
//! folder needs tokenizer.json but no weights. [`TextSide`] (tokenizer + chat template) is what
//! `show` and `template` read too.

use anyhow::{anyhow, Context};
use ondo_engine::load::vocab_from_gguf;
use ondo_model::gguf::GgufFile;
use ondo_model::load::is_gguf;
use ondo_text::{ChatTemplate, Tokenizer};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
            std::io::stdin().read_to_string(&mut s).context("reading the text from stdin")?;
            s
        }
    };
    let side = TextSide::load(&resolve(&args.model, args.offline)?)?;
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

/// The text side of a model: its tokenizer and chat template, read without its weights.
pub struct TextSide {
    pub tokenizer: Tokenizer,
    pub chat_template: Option<ChatTemplate>,
}

impl TextSide {
    /// From a `.gguf` file, a folder with one `.gguf` and no config.json, or an HF folder.
    pub fn load(path: &Path) -> anyhow::Result<TextSide> {
        if is_gguf(path) {
            return TextSide::from_gguf(&GgufFile::open(path).with_context(|| format!("reading {}", path.display()))?);
        }
        if path.is_dir() && !path.join("config.json").exists() {
            if let Some(file) = single_gguf(path) {
                return TextSide::load(&file);
            }
        }
        TextSide::from_hf_folder(path)
    }

    pub fn from_gguf(g: &GgufFile) -> anyhow::Result<TextSide> {
        let at = || format!("the vocabulary of {}", g.path().display());
        let vocab = vocab_from_gguf(g).with_context(at)?;
        let tokenizer = Tokenizer::from_gguf_vocab(&vocab).with_context(at)?;
        let token = |id: Option<u32>| id.and_then(|i| vocab.tokens.get(i as usize)).map(String::as_str);
        let chat_template = match vocab.chat_template.as_deref() {
            Some(t) => Some(
                ChatTemplate::new(t, token(vocab.bos_id), token(vocab.eos_id))
                    .with_context(|| format!("the chat template of {}", g.path().display()))?,
            ),
            None => None,
        };
        Ok(TextSide { tokenizer, chat_template })
    }

    /// tokenizer.json (+ tokenizer_config.json); the template from chat_template.jinja, else
    /// tokenizer_config.json, as the engine reads them.
    fn from_hf_folder(dir: &Path) -> anyhow::Result<TextSide> {
        let json = dir.join("tokenizer.json");
        if !json.is_file() {
            return Err(anyhow!("{}: no tokenizer.json (and not a .gguf file)", dir.display()));
        }
        let config = Some(dir.join("tokenizer_config.json")).filter(|p| p.is_file());
        let tokenizer = Tokenizer::from_files(&json, config.as_deref())?;
        let chat_template = hf_chat_template(dir, tokenizer.config())?;
        Ok(TextSide { tokenizer, chat_template })
    }
}

fn hf_chat_template(dir: &Path, config: Option<&Value>) -> anyhow::Result<Option<ChatTemplate>> {
    let null = Value::Null;
    let config = config.unwrap_or(&null);
    let file = dir.join("chat_template.jinja");
    if !file.is_file() {
        return Ok(ChatTemplate::from_tokenizer_config(config, None)?);
    }
    let content = |key: &str| match config.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => v.get("content").and_then(Value::as_str).map(str::to_string),
        None => None,
    };
    Ok(Some(ChatTemplate::from_file(&file, content("bos_token").as_deref(), content("eos_token").as_deref())?))
}

/// The only `.gguf` file in a folder (a GGUF-only hub snapshot).
fn single_gguf(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_gguf(p));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}
