//! `ondo generate MODEL (--prompt TEXT | --prompt-ids 1,2,3 | --prompts FILE.jsonl) [--json]`:
//! offline batch generation, one `RequestOutput` per prompt.

use super::sampling::SamplingArgs;
use super::ModelArgs;
use anyhow::{bail, Context};
use ondo::{Prompt, SamplingParams};
use serde_json::Value;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// One prompt as text
    #[arg(long, conflicts_with_all = ["prompt_ids", "prompts"])]
    prompt: Option<String>,
    /// One prompt as token ids, comma-separated
    #[arg(long, value_delimiter = ',', conflicts_with = "prompts")]
    prompt_ids: Option<Vec<u32>>,
    /// A JSONL file: one {"prompt": TEXT or "prompt_token_ids": [..], optional sampling fields} per line
    #[arg(long)]
    prompts: Option<std::path::PathBuf>,
    /// Print each RequestOutput as one JSON line (vLLM's fields)
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let llm = args.model.load()?;
    let base = args.sampling.apply(llm.default_params())?;
    let jobs = match (&args.prompt, &args.prompt_ids, &args.prompts) {
        (Some(text), _, _) => vec![(Prompt::Text(text.clone()), base)],
        (_, Some(ids), _) => vec![(Prompt::Ids(ids.clone()), base)],
        (_, _, Some(file)) => read_jsonl(file, &base)?,
        _ => bail!("give --prompt, --prompt-ids or --prompts"),
    };
    // every prompt is queued at once: the engine batches them
    let receivers = jobs
        .iter()
        .enumerate()
        .map(|(i, (prompt, params))| {
            llm.submit(i.to_string(), prompt, params, false)
                .with_context(|| prompt_name(&args, i))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut stdout = std::io::stdout().lock();
    for (i, rx) in receivers.into_iter().enumerate() {
        let out = ondo::Llm::wait(rx).with_context(|| prompt_name(&args, i))?;
        if args.json {
            writeln!(stdout, "{}", serde_json::to_string(&out)?)?;
        } else {
            for o in &out.outputs {
                writeln!(stdout, "{}", o.text)?;
            }
        }
    }
    Ok(())
}

/// Which prompt an error is about: the JSONL line, or the one prompt.
fn prompt_name(args: &Args, i: usize) -> String {
    match &args.prompts {
        Some(file) => format!("{}: prompt {}", file.display(), i + 1),
        None => "the prompt".to_string(),
    }
}

/// Each line: a prompt plus optional per-prompt sampling fields over `base`. Errors name the
/// file, the line and, where one is to blame, the field.
fn read_jsonl(file: &std::path::Path, base: &SamplingParams) -> anyhow::Result<Vec<(Prompt, SamplingParams)>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let base_json = serde_json::to_value(base)?;
    let mut jobs = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", file.display(), n + 1);
        let obj: Value = serde_json::from_str(line).with_context(|| format!("{}: invalid JSON", at()))?;
        let Value::Object(mut obj) = obj else {
            bail!("{}: expected a JSON object, got {}", at(), kind(&obj));
        };
        let prompt = match (obj.remove("prompt"), obj.remove("prompt_token_ids")) {
            (Some(Value::String(s)), None) => Prompt::Text(s),
            (None, Some(ids)) => Prompt::Ids(
                serde_json::from_value(ids)
                    .with_context(|| format!("{}: prompt_token_ids must be a list of token ids", at()))?,
            ),
            (Some(_), Some(_)) => bail!("{}: give \"prompt\" or \"prompt_token_ids\", not both", at()),
            (Some(other), None) => bail!("{}: prompt must be a string, got {}", at(), kind(&other)),
            (None, None) => bail!("{}: expected \"prompt\" (a string) or \"prompt_token_ids\"", at()),
        };
        let params = line_params(&base_json, obj).with_context(at)?;
        jobs.push((prompt, params));
    }
    Ok(jobs)
}

/// `base` with the line's fields over it, validated. A field of the wrong type is named.
fn line_params(base: &Value, fields: serde_json::Map<String, Value>) -> anyhow::Result<SamplingParams> {
    let merged = |fields: &mut dyn Iterator<Item = (String, Value)>| {
        let mut m = base.clone();
        if let Value::Object(o) = &mut m {
            o.extend(fields);
        }
        serde_json::from_value::<SamplingParams>(m)
    };
    let params = match merged(&mut fields.clone().into_iter()) {
        Ok(p) => p,
        Err(e) => {
            // Find the field to blame: the first that fails on its own.
            for (key, value) in &fields {
                if let Err(e) = merged(&mut std::iter::once((key.clone(), value.clone()))) {
                    let msg = e.to_string();
                    if msg.contains(key.as_str()) {
                        bail!("{msg}");
                    }
                    bail!("{key}: {msg}");
                }
            }
            return Err(e.into());
        }
    };
    params.validate()?;
    Ok(params)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
