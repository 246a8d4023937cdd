//! `ondo models` (alias `ls`): the models ondo can load without the network, one row each: id,
//! architecture, quant, size, path. They are the complete snapshots in the HF cache (an HF folder
//! is one row; each `.gguf` of a GGUF repo is its own row, `org/name:QUANT`) and the `.gguf`
//! files in the folders named by `--dir` and `ONDO_MODELS` (`:`-separated).

use ondo::hub::{self, CachedModel, HubOptions};
use ondo::model::gguf::{ggml_type_name, GgufFile};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Also list the .gguf files in this folder (repeatable; ONDO_MODELS adds more)
    #[arg(long)]
    dir: Vec<PathBuf>,
    /// One JSON object per line instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    id: String,
    arch: String,
    quant: String,
    size: u64,
    path: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cache = HubOptions::from_env().cache_dir();
    let mut rows: Vec<Row> = hub::cached_models(&cache).iter().flat_map(cached_rows).collect();
    for dir in args.dir.iter().cloned().chain(env_dirs()) {
        rows.extend(local_ggufs(&dir));
    }
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
    } else if rows.is_empty() {
        println!("no models in {} (fetch one with `ondo pull ORG/NAME`)", cache.display());
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

fn env_dirs() -> Vec<PathBuf> {
    let value = std::env::var_os("ONDO_MODELS").unwrap_or_default();
    std::env::split_paths(&value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// One row per HF snapshot, one per `.gguf` in a GGUF snapshot. A repo with several snapshots
/// names each by its ref (or short commit) after `@`.
fn cached_rows(model: &CachedModel) -> Vec<Row> {
    let several = model.snapshots.len() > 1;
    let mut rows = vec![];
    for snap in &model.snapshots {
        let commit = snap
            .file_name()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match several {
            true => format!("{}@{}", model.id, ref_name(model, &commit)),
            false => model.id.clone(),
        };
        if snap.join("config.json").is_file() {
            rows.push(folder_row(name, snap));
        } else {
            rows.extend(ggufs_in(snap).iter().map(|f| gguf_row(Some(&name), f)));
        }
    }
    rows
}

fn ref_name(model: &CachedModel, commit: &str) -> String {
    match model.refs.iter().find(|(_, c)| c == commit) {
        Some((name, _)) => name.clone(),
        None => commit.chars().take(12).collect(),
    }
}

fn folder_row(id: String, dir: &Path) -> Row {
    let config: serde_json::Value = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let arch = config["architectures"][0].as_str().or(config["model_type"].as_str());
    let dtype = config["torch_dtype"].as_str().or(config["dtype"].as_str());
    Row {
        id,
        arch: arch.unwrap_or("?").to_string(),
        quant: dtype.map_or("?".to_string(), dtype_name),
        size: folder_size(dir),
        path: dir.display().to_string(),
    }
}

/// `bfloat16` -> `BF16`, as GGUF names it.
fn dtype_name(dtype: &str) -> String {
    match dtype {
        "bfloat16" => "BF16".into(),
        "float16" => "F16".into(),
        "float32" => "F32".into(),
        other => other.to_string(),
    }
}

/// A `.gguf`: `org/name:QUANT` for a cached one, its file name for a local one.
fn gguf_row(repo: Option<&str>, file: &Path) -> Row {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (arch, quant) = gguf_facts(file, &name);
    let id = match repo {
        Some(repo) if quant != "?" => format!("{repo}:{quant}"),
        Some(repo) => repo.to_string(),
        None => name.trim_end_matches(".gguf").to_string(),
    };
    Row {
        id,
        arch,
        quant,
        size: std::fs::metadata(file).map_or(0, |m| m.len()),
        path: file.display().to_string(),
    }
}

/// The architecture from the metadata; the quant from the file name, else the tensor type
/// holding the most bytes.
fn gguf_facts(file: &Path, name: &str) -> (String, String) {
    let Ok(g) = GgufFile::open(file) else {
        return ("unreadable".into(), "?".into());
    };
    let arch = g
        .get_str("general.architecture")
        .ok()
        .flatten()
        .unwrap_or("?")
        .to_string();
    let quant = hub::quant_of(name)
        .map(str::to_ascii_uppercase)
        .or_else(|| main_type(&g));
    (arch, quant.unwrap_or_else(|| "?".into()))
}

fn main_type(g: &GgufFile) -> Option<String> {
    let mut bytes: std::collections::BTreeMap<&str, u64> = Default::default();
    for t in g.tensors() {
        *bytes.entry(ggml_type_name(t.ggml_type)).or_default() += t.size_bytes.unwrap_or(0);
    }
    bytes
        .into_iter()
        .max_by_key(|&(_, b)| b)
        .map(|(name, _)| name.to_string())
}

fn ggufs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("gguf")) && p.is_file())
        .collect();
    files.sort();
    files
}

fn local_ggufs(dir: &Path) -> Vec<Row> {
    if !dir.is_dir() {
        eprintln!("warning: {} is not a folder; skipped", dir.display());
    }
    ggufs_in(dir).iter().map(|f| gguf_row(None, f)).collect()
}

/// The bytes of a snapshot's files (symlinks followed to their blobs).
fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match std::fs::metadata(e.path()) {
            Ok(m) if m.is_dir() => folder_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// `1.5 GiB`, `270.6 MiB`, `12 KiB`, `900 B`.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", units[unit]),
    }
}

fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.arch.clone(),
                r.quant.clone(),
                human_size(r.size),
                r.path.clone(),
            ]
        })
        .collect();
    let head = ["ID", "ARCH", "QUANT", "SIZE", "PATH"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&head).chain(&cells) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&cells) {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_size(900), "900 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(283_700_000), "270.6 MiB");
    }
}
