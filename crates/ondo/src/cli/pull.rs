//! `ondo pull ORG/NAME[@rev][:QUANT] [--include GLOB]`: download a model into the HF cache (the
//! one Python's huggingface_hub uses), with a progress bar per file; an interrupted download
//! resumes where it stopped. `:QUANT` picks one file of a GGUF repo; `--include` takes the repo
//! files matching the globs instead of the model's own files.

use anyhow::Context;
use ondo::hub::{self, HubError, HubOptions};

#[derive(clap::Args)]
pub struct Args {
    /// A hub id: org/name, org/name@revision, or org/name:QUANT (one file of a GGUF repo)
    model: String,
    /// Only the repo files matching this glob (repeatable; `*` and `?`), e.g. '*Q4_K_M.gguf'
    #[arg(long)]
    include: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = HubOptions::from_env();
    let dir = match hub::pull_model(&args.model, &opts, &args.include) {
        Ok(dir) => dir,
        // The library's advice (a local path, --offline) is for commands that load; pull needs the hub.
        Err(HubError::Unreachable { endpoint, reason, .. }) => {
            anyhow::bail!(
                "cannot reach the hub at {endpoint} ({reason}); `ondo pull` needs it (HF_ENDPOINT names another)"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("pulling {}", args.model)),
    };
    // What `ondo run ID` will load, found in the cache now without the network.
    let offline = HubOptions { offline: true, ..opts };
    let path = match args.include.is_empty() {
        true => hub::resolve_model(&args.model, &offline)?,
        false => dir,
    };
    eprintln!("pulled {} into the HF cache", args.model);
    println!("{}", path.display());
    Ok(())
}
