//! `ondo show MODEL [--json]`: what a model is, read from its files without building it:
//! architecture and sizes (`Hparams`) with its variant features (softcaps, window pattern,
//! rotary dims, parallel residual), parameter count, the quant mix (tensors and bytes per
//! dtype), context length, special tokens, and whether it has a chat template.
//!
//! Parts that cannot be read (a vocabulary-only GGUF has no hyperparameters, a tokenizer-only
//! folder no weights) are reported as absent with the reason, not as a failure of the whole.

use super::tokenize::{resolve, TextSide};
use anyhow::Context;
use ondo_model::gguf::{ggml_type_name, GgufFile};
use ondo_model::gguf_model::hparams_from_gguf;
use ondo_model::load::{is_gguf, read_hparams, ModelFiles};
use ondo_model::safetensors::SafetensorsStore;
use ondo_model::{Hparams, TensorStore};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// A model folder, a .gguf file, or a hub id
    model: String,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
    /// Never use the network (also HF_HUB_OFFLINE=1)
    #[arg(long)]
    offline: bool,
}

/// Everything `show` prints.
#[derive(Serialize, Default)]
struct Report {
    path: String,
    format: &'static str,
    architecture: Option<String>,
    parameters: u64,
    context_length: Option<usize>,
    vocab_size: Option<usize>,
    layers: Option<usize>,
    hidden_size: Option<usize>,
    attention_heads: Option<usize>,
    kv_heads: Option<usize>,
    /// The architecture's variant features (norm, MLP, residual, rotary dims, window pattern,
    /// softcaps), as (name, value).
    specials: Vec<(String, String)>,
    /// Per dtype name: tensor count and bytes.
    tensor_types: BTreeMap<String, TypeCount>,
    tensor_bytes: u64,
    bos: Option<Special>,
    eos: Option<Special>,
    chat_template: bool,
    /// Parts that could not be read, with why.
    notes: Vec<String>,
}

#[derive(Serialize, Default)]
struct TypeCount {
    tensors: usize,
    bytes: u64,
}

#[derive(Serialize)]
struct Special {
    id: u32,
    text: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = resolve(&args.model, args.offline)?;
    let report = if is_gguf(&path) {
        gguf_report(&path)?
    } else {
        folder_report(&path)?
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", plain(&report))?;
    }
    Ok(())
}

fn gguf_report(path: &Path) -> anyhow::Result<Report> {
    let g = GgufFile::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut r = Report {
        path: path.display().to_string(),
        format: "gguf",
        ..Default::default()
    };
    r.architecture = g.get_str("general.architecture").ok().flatten().map(str::to_string);
    match hparams_from_gguf(&g) {
        Ok(hp) => set_hparams(&mut r, &hp),
        Err(e) => r.notes.push(format!("no model hyperparameters: {e}")),
    }
    for t in g.tensors() {
        let name = t
            .dtype
            .map_or_else(|| ggml_type_name(t.ggml_type).to_string(), |d| d.name().to_string());
        add_tensor(&mut r, name, t.n_elements(), t.size_bytes.unwrap_or(0));
    }
    if g.tensors().is_empty() {
        r.notes
            .push("no tensors: a vocabulary-only file (hyperparameters from its metadata)".into());
    }
    match ondo_engine::load::text_from_gguf(&g) {
        Ok(side) => set_text_side(&mut r, &side),
        Err(e) => r.notes.push(format!("no tokenizer: {e:#}")),
    }
    Ok(r)
}

fn folder_report(dir: &Path) -> anyhow::Result<Report> {
    let files = ModelFiles::locate(dir)?;
    let mut r = Report {
        path: dir.display().to_string(),
        format: "safetensors",
        ..Default::default()
    };
    let hp = read_hparams(&files)?;
    set_hparams(&mut r, &hp);
    let has_weights = dir.join("model.safetensors").exists() || dir.join("model.safetensors.index.json").exists();
    if has_weights {
        let store = SafetensorsStore::open_dir(dir)?;
        for name in store.names() {
            let t = store.get(&name).with_context(|| format!("tensor {name}"))??;
            add_tensor(
                &mut r,
                t.dtype.name().to_string(),
                t.shape.iter().product::<usize>() as u64,
                t.bytes.len() as u64,
            );
        }
    } else {
        r.notes
            .push("no weights (neither model.safetensors nor model.safetensors.index.json)".into());
    }
    match ondo_engine::load::load_text(dir) {
        Ok(side) => set_text_side(&mut r, &side),
        Err(e) => r.notes.push(format!("no tokenizer: {e:#}")),
    }
    Ok(r)
}

fn set_hparams(r: &mut Report, hp: &Hparams) {
    r.architecture = Some(hp.arch_name.clone());
    r.context_length = Some(hp.max_position_embeddings);
    r.vocab_size = Some(hp.vocab_size);
    r.layers = Some(hp.num_hidden_layers);
    r.hidden_size = Some(hp.hidden_size);
    r.attention_heads = Some(hp.num_attention_heads);
    r.kv_heads = Some(hp.num_key_value_heads);
    r.specials = hp.specials().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
}

fn add_tensor(r: &mut Report, dtype: String, elements: u64, bytes: u64) {
    let entry = r.tensor_types.entry(dtype).or_default();
    entry.tensors += 1;
    entry.bytes += bytes;
    r.parameters += elements;
    r.tensor_bytes += bytes;
}

fn set_text_side(r: &mut Report, side: &TextSide) {
    let tok = &side.tokenizer;
    let special = |id: Option<u32>| {
        id.map(|id| Special {
            id,
            text: tok.id_to_token(id).unwrap_or_default(),
        })
    };
    r.bos = special(tok.bos_token_id());
    r.eos = special(tok.eos_token_id());
    r.chat_template = side.chat_template.is_some();
    if r.vocab_size.is_none() {
        r.vocab_size = Some(tok.vocab_size());
    }
}

fn plain(r: &Report) -> String {
    let opt = |v: Option<usize>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let special = |s: &Option<Special>| {
        s.as_ref()
            .map_or_else(|| "-".to_string(), |s| format!("{} {:?}", s.id, s.text))
    };
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<16}{v}\n"));
    line("path", r.path.clone());
    line("format", r.format.to_string());
    line("architecture", r.architecture.clone().unwrap_or_else(|| "-".into()));
    line(
        "parameters",
        format!("{} ({})", r.parameters, human(r.parameters as f64, "")),
    );
    line("size", human(r.tensor_bytes as f64, "B"));
    line("context length", opt(r.context_length));
    line("vocab size", opt(r.vocab_size));
    line("layers", opt(r.layers));
    line("hidden size", opt(r.hidden_size));
    line(
        "heads (kv)",
        format!("{} ({})", opt(r.attention_heads), opt(r.kv_heads)),
    );
    for (k, v) in &r.specials {
        line(&k.replace('_', " "), v.clone());
    }
    for (dtype, c) in &r.tensor_types {
        line(
            &format!("  {dtype}"),
            format!("{} tensors, {}", c.tensors, human(c.bytes as f64, "B")),
        );
    }
    line("bos", special(&r.bos));
    line("eos", special(&r.eos));
    line(
        "chat template",
        if r.chat_template { "yes".into() } else { "no".into() },
    );
    for note in &r.notes {
        line("note", note.clone());
    }
    s
}

/// 135.0M, 1.54G, 98.4 MB style.
fn human(v: f64, unit: &str) -> String {
    let (scale, prefix) = match v {
        v if v >= 1e9 => (1e9, "G"),
        v if v >= 1e6 => (1e6, "M"),
        v if v >= 1e3 => (1e3, "K"),
        _ => return format!("{v} {unit}").trim_end().to_string(),
    };
    let sep = if unit.is_empty() { "" } else { " " };
    format!("{:.2}{sep}{prefix}{unit}", v / scale)
}
