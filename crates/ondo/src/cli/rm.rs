//! `ondo rm ORG/NAME`: delete a model's folder (refs, blobs, snapshots) from the HF cache;
//! `ondo rm ORG/NAME:QUANT` deletes only that quant's GGUF files of a GGUF repo.

use ondo::hub::{self, HubId, HubOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The hub id to remove: org/name, or org/name:QUANT for one quant of a GGUF repo
    model: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let id = HubId::parse(&args.model)?;
    let cache = HubOptions::from_env().cache_dir();
    let freed = hub::remove_model(&id, &cache)?;
    println!(
        "removed {id} ({}) from {}",
        super::models::human_size(freed),
        cache.display()
    );
    Ok(())
}
