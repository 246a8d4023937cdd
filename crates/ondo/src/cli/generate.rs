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
    let mut stdout = std::io::stdout().lock();
    for (i, (prompt, params)) in jobs.iter().enumerate() {
        let mut out = llm.generate_streaming(prompt, params, &mut |_, _| true)?;
        out.request_id = i.to_string();
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

/// Each line: a prompt plus optional per-prompt sampling fields over `base`.
fn read_jsonl(file: &std::path::Path, base: &SamplingParams) -> anyhow::Result<Vec<(Prompt, SamplingParams)>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let base_json = serde_json::to_value(base)?;
    let mut jobs = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", file.display(), n + 1);
        let mut obj: serde_json::Map<String, Value> = serde_json::from_str(line).with_context(at)?;
        let prompt = match (obj.remove("prompt"), obj.remove("prompt_token_ids")) {
            (Some(Value::String(s)), _) => Prompt::Text(s),
            (_, Some(ids)) => Prompt::Ids(serde_json::from_value(ids).with_context(at)?),
            _ => bail!("{}: expected \"prompt\" (a string) or \"prompt_token_ids\"", at()),
        };
        let mut merged = base_json.clone();
        if let Value::Object(m) = &mut merged {
            m.extend(obj);
        }
        let params: SamplingParams = serde_json::from_value(merged).with_context(at)?;
        params.validate().with_context(at)?;
        jobs.push((prompt, params));
    }
    Ok(jobs)
}
