//! `ondo chain FILE.toml --var key=value ...`: run a chain file (steps of template + backend +
//! sampling options, see `ondo_chain::file`). The last step's text streams to stdout; `--json`
//! prints every step's rendered prompt and output as one JSON object instead.

use anyhow::{anyhow, bail};
use ondo_chain::{ChainFile, Vars};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The chain file: [defaults] and [[step]] tables (see the README)
    file: PathBuf,
    /// An input of the chain, KEY=VALUE (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// Print every step's prompt and output as JSON instead of streaming the last step
    #[arg(long)]
    json: bool,
    /// Never use the network to find local models (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
    /// Worker threads of local models (default: ONDO_NUM_THREADS, else the number of cores)
    #[arg(long, short = 't')]
    threads: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let file = ChainFile::from_path(&args.file)?;
    let vars = parse_vars(&args.vars)?;
    // Name a missing or unknown --var before any model loads.
    let inputs = file.input_variables();
    if let Some(extra) = vars.keys().find(|k| !inputs.contains(k)) {
        bail!(
            "--var {extra}: the chain has no input {extra:?} (its inputs: {})",
            names(&inputs)
        );
    }
    if let Some(missing) = inputs.iter().find(|v| !vars.contains_key(*v)) {
        bail!("the chain needs --var {missing}=VALUE (its inputs: {})", names(&inputs));
    }
    let offline = args.offline || std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
    let load = ondo::LoadOptions {
        offline,
        threads: args.threads,
        ..Default::default()
    };
    let chain = file.build(&load)?;
    if args.json {
        let steps = chain.run(vars.clone())?;
        let outputs: Vars = steps.iter().map(|s| (s.output_key.clone(), s.text.clone())).collect();
        let report = json!({"inputs": vars, "steps": steps, "outputs": outputs});
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let mut sink = |delta: &str| match stdout.write_all(delta.as_bytes()).and_then(|_| stdout.flush()) {
        Ok(()) => true,
        Err(e) => {
            write_error = Some(e);
            false
        }
    };
    chain.run_streaming(vars, &mut sink)?;
    if let Some(e) = write_error {
        return Err(anyhow!("writing to stdout: {e}"));
    }
    writeln!(stdout)?;
    Ok(())
}

/// `KEY=VALUE` pairs; a key given twice is an error.
fn parse_vars(pairs: &[String]) -> anyhow::Result<Vars> {
    let mut vars = Vars::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--var {pair}: expected KEY=VALUE"))?;
        if vars.insert(k.trim().to_string(), v.to_string()).is_some() {
            bail!("--var {}: given twice", k.trim());
        }
    }
    Ok(vars)
}

fn names(vars: &[String]) -> String {
    if vars.is_empty() {
        return "none".into();
    }
    vars.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn vars_parse_and_duplicates_are_refused() {
        let v = super::parse_vars(&["country=대한민국".into(), "q=a=b".into()]).unwrap();
        assert_eq!((v["country"].as_str(), v["q"].as_str()), ("대한민국", "a=b"));
        assert!(super::parse_vars(&["x".into()])
            .unwrap_err()
            .to_string()
            .contains("expected KEY=VALUE"));
        assert!(super::parse_vars(&["a=1".into(), "a=2".into()])
            .unwrap_err()
            .to_string()
            .contains("given twice"));
    }
}
