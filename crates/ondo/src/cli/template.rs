//! `ondo template (MODEL | --template FILE.jinja [--bos-token T] [--eos-token T]) --messages
//! FILE.json [--add-generation-prompt] [--tools FILE.json] [--now TIME]`: print the prompt a chat
//! template renders, byte for byte (no newline added).
//!
//! With MODEL only its text side is read (no weights). A template that calls
//! `raise_exception(msg)` fails with `msg` itself as the error.

use super::tokenize::resolve;
use anyhow::{anyhow, bail, Context};
use ondo_text::template::DateTime;
use ondo_text::{ChatTemplate, RenderOptions};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A model folder, a .gguf file, or a hub id whose chat template to use
    #[arg(required_unless_present = "template", conflicts_with = "template")]
    model: Option<String>,
    /// A Jinja chat template file to render instead of a model's
    #[arg(long)]
    template: Option<PathBuf>,
    /// bos_token for --template
    #[arg(long, requires = "template")]
    bos_token: Option<String>,
    /// eos_token for --template
    #[arg(long, requires = "template")]
    eos_token: Option<String>,
    /// A JSON file: a list of messages, or {"messages": [...]}
    #[arg(long)]
    messages: PathBuf,
    /// Open the assistant's turn at the end
    #[arg(long)]
    add_generation_prompt: bool,
    /// A JSON file: the list of tool definitions passed as `tools`
    #[arg(long)]
    tools: Option<PathBuf>,
    /// The time strftime_now reads, e.g. 2026-02-03T09:05:07 (default: now, UTC)
    #[arg(long)]
    now: Option<String>,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let template = load_template(&args)?;
    let opts = RenderOptions {
        add_generation_prompt: args.add_generation_prompt,
        tools: args.tools.as_deref().map(read_list).transpose()?,
        now: args.now.as_deref().map(parse_now).transpose()?,
        ..Default::default()
    };
    let messages = read_messages(&args.messages)?;
    // No context added: a raised error reads as the template's own message.
    let text = template.render(&messages, &opts)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn load_template(args: &Args) -> anyhow::Result<ChatTemplate> {
    if let Some(file) = &args.template {
        return Ok(ChatTemplate::from_file(
            file,
            args.bos_token.as_deref(),
            args.eos_token.as_deref(),
        )?);
    }
    let model = args
        .model
        .as_deref()
        .ok_or_else(|| anyhow!("give MODEL or --template FILE"))?;
    let path = resolve(model, args.offline)?;
    ondo_engine::load::load_text(&path)?
        .chat_template
        .ok_or_else(|| anyhow!("{}: the model has no chat template", path.display()))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

/// A list of messages, or an object with a `messages` list.
fn read_messages(path: &Path) -> anyhow::Result<Vec<Value>> {
    match read_json(path)? {
        Value::Array(items) => Ok(items),
        Value::Object(mut obj) => match obj.remove("messages") {
            Some(Value::Array(items)) => Ok(items),
            _ => bail!(
                "{}: expected a list of messages or {{\"messages\": [...]}}",
                path.display()
            ),
        },
        _ => bail!(
            "{}: expected a list of messages or {{\"messages\": [...]}}",
            path.display()
        ),
    }
}

/// A JSON list (tool definitions).
fn read_list(path: &Path) -> anyhow::Result<Vec<Value>> {
    match read_json(path)? {
        Value::Array(items) => Ok(items),
        _ => bail!("{}: expected a JSON list", path.display()),
    }
}

fn parse_now(text: &str) -> anyhow::Result<DateTime> {
    DateTime::parse(text).ok_or_else(|| anyhow!("--now {text:?}: expected YYYY-MM-DD[THH:MM[:SS]]"))
}
