//! `ondo quantize`'s model side: an HF folder or a GGUF file → a GGUF v3 file in llama.cpp's
//! layout, every matrix in the format a [`QuantPlan`] gives it.
//!
//! Flow: the source is opened and checked first (a truncated or unknown source fails before any
//! output exists) → the list of tensors to write (canonical GGUF names, shapes, formats) →
//! metadata (for an HF folder: `general.*` and the `{arch}.*` keys from its `Hparams`, plus the
//! caller's `tokenizer.*` keys; for a GGUF: its own keys with a new `general.file_type`) →
//! [`GgufOut`] streams the tensors one at a time: read, reorder q/k rows into llama.cpp's rope
//! layout where the GGUF architecture has it, quantize on the pool, append.

use crate::arch;
use crate::config::{Hparams, RopeScaling};
use crate::gguf::{GgufFile, Value};
use crate::gguf_write::{GgufOut, TensorSpec};
use crate::load::{read_hparams, ModelFiles};
use crate::quant_plan::{QuantPlan, Scheme};
use crate::quantize::quantize_rows;
use crate::safetensors::SafetensorsStore;
use crate::store::{TensorData, TensorStore};
use crate::Error;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ondo_kernels::ops::RopeStyle;
use ondo_kernels::{DType, ThreadPool};
use std::borrow::Cow;
use std::path::Path;

/// How to export.
pub struct ExportOptions<'a> {
    pub scheme: Scheme,
    pub pool: &'a ThreadPool,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// (name, format) of every tensor, in file order.
    pub tensors: Vec<(String, DType)>,
    pub bytes: u64,
}

/// Where one output tensor's values come from.
enum Source {
    /// A stored tensor (by the store's name); for q/k, rows reordered per head of this many heads.
    Stored { name: String, permute_heads: Option<usize> },
    /// Values made here (llama3 rope factors).
    Values(Vec<f32>),
}

/// An HF folder as a GGUF file at `out`. `text_meta` are the `tokenizer.*` keys (vocabulary,
/// special ids, chat template), which the caller makes from the folder's tokenizer.
pub fn export_hf(
    files: &ModelFiles,
    out: &Path,
    text_meta: Vec<(String, Value)>,
    opts: &ExportOptions,
) -> Result<ExportReport, Error> {
    let hp = read_hparams(files)?;
    let gguf_arch = export_name(&hp, &files.config)?;
    let store = SafetensorsStore::open_dir(&files.dir)?;
    let interleave = arch::by_gguf_name(gguf_arch).is_some_and(|(_, s)| s == RopeStyle::Interleaved);
    let jobs = hf_tensors(&hp, &store, interleave)?;
    let tied = !jobs.iter().any(|(s, _)| s.name == "output.weight");
    let plan = QuantPlan::new(opts.scheme, &hp, tied);
    let jobs: Vec<(TensorSpec, Source)> = jobs
        .into_iter()
        .map(|(mut spec, src)| {
            spec.dtype = plan.dtype_for(&spec.name, &spec.shape).unwrap_or(DType::F32);
            (spec, src)
        })
        .collect();
    let name = files
        .dir
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let mut meta = general_meta(gguf_arch, &name, opts.scheme);
    meta.extend(arch_meta(&hp, gguf_arch));
    meta.extend(text_meta);
    write(out, &meta, jobs, &store, opts)
}

/// A GGUF file requantized to `opts.scheme` at `out`: same metadata, tensors and names.
pub fn requantize_gguf(g: &GgufFile, out: &Path, opts: &ExportOptions) -> Result<ExportReport, Error> {
    let hp = crate::gguf_model::hparams_from_gguf(g)?;
    let plan = QuantPlan::new(opts.scheme, &hp, g.tensor("output.weight").is_none());
    let mut jobs = vec![];
    for info in g.tensors() {
        let stored = info.dtype.ok_or_else(|| Error::TensorDType {
            path: g.path().to_path_buf(),
            name: info.name.clone(),
            dtype: crate::gguf::ggml_type_name(info.ggml_type).to_string(),
        })?;
        let shape: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
        let dtype = plan.dtype_for(&info.name, &shape).unwrap_or(stored);
        let src = Source::Stored {
            name: info.name.clone(),
            permute_heads: None,
        };
        jobs.push((
            TensorSpec {
                name: info.name.clone(),
                shape,
                dtype,
            },
            src,
        ));
    }
    let replaced = ["general.file_type", "general.quantization_version", "general.alignment"];
    let mut meta: Vec<(String, Value)> = g
        .metadata()
        .iter()
        .filter(|(k, _)| !replaced.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.push(("general.file_type".into(), Value::U32(opts.scheme.file_type())));
    meta.push(("general.quantization_version".into(), Value::U32(2)));
    write(out, &meta, jobs, g, opts)
}

/// The GGUF architecture an HF folder would be written as, or an error naming the exportable ones.
pub fn gguf_arch_of(files: &ModelFiles) -> Result<&'static str, Error> {
    export_name(&read_hparams(files)?, &files.config)
}

/// The GGUF architecture name of an HF model, or an error naming the exportable ones.
fn export_name(hp: &Hparams, config: &Path) -> Result<&'static str, Error> {
    let found = hp.arch.gguf_export.iter().find(|(hf, _)| *hf == hp.arch_name);
    found.map(|(_, g)| *g).ok_or_else(|| Error::ExportArch {
        path: config.to_path_buf(),
        arch: hp.arch_name.clone(),
        supported: arch::REGISTRY
            .iter()
            .flat_map(|s| s.gguf_export.iter().map(|(hf, _)| *hf))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Every tensor of the folder under its canonical name, in llama.cpp's order (embeddings,
/// layers, final norm, head), with where its values come from. Formats are filled in later.
fn hf_tensors(hp: &Hparams, store: &SafetensorsStore, interleave: bool) -> Result<Vec<(TensorSpec, Source)>, Error> {
    let names = hp.arch.names;
    let mut out = vec![];
    let mut add = |canonical: String, permute_heads: Option<usize>| -> Result<(), Error> {
        let candidates = names.hf_candidates(&canonical);
        let Some(name) = candidates.into_iter().find(|n| store.get(n).is_some()) else {
            return Ok(());
        };
        let t = stored(store, &name)?;
        let spec = TensorSpec {
            name: canonical,
            shape: t.shape,
            dtype: t.dtype,
        };
        out.push((spec, Source::Stored { name, permute_heads }));
        Ok(())
    };
    add("token_embd.weight".into(), None)?;
    for i in 0..hp.num_hidden_layers {
        for (part, _) in names.layer {
            let heads = match *part {
                "attn_q" if interleave => Some(hp.num_attention_heads),
                "attn_k" if interleave => Some(hp.num_key_value_heads),
                _ => None,
            };
            for kind in ["weight", "bias"] {
                add(format!("blk.{i}.{part}.{kind}"), heads)?;
            }
        }
    }
    add("output_norm.weight".into(), None)?;
    if !hp.tie_word_embeddings {
        add("output.weight".into(), None)?;
    }
    if let Some(factors) = llama3_factors(hp) {
        let spec = TensorSpec {
            name: "rope_freqs.weight".into(),
            shape: vec![factors.len()],
            dtype: DType::F32,
        };
        out.push((spec, Source::Values(factors)));
    }
    if !out.iter().any(|(s, _)| s.name == "token_embd.weight") {
        return Err(Error::MissingTensor {
            path: store.path().to_path_buf(),
            name: names.hf_name("token_embd.weight"),
        });
    }
    Ok(out)
}

fn stored(store: &dyn TensorStore, name: &str) -> Result<TensorData, Error> {
    store.get(name).unwrap_or_else(|| {
        Err(Error::MissingTensor {
            path: store.path().to_path_buf(),
            name: name.to_string(),
        })
    })
}

/// llama.cpp's `rope_freqs` for llama3 rope scaling: one divisor per rotary pair.
fn llama3_factors(hp: &Hparams) -> Option<Vec<f32>> {
    let RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings: old,
    } = hp.rope.scaling
    else {
        return None;
    };
    let d = hp.rope.rot_dim;
    let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
    let divisor = |i: usize| {
        let freq = 1.0 / hp.rope.theta.powf((2 * i) as f32 / d as f32);
        let wavelen = 2.0 * std::f32::consts::PI / freq;
        if wavelen < high_wavelen {
            1.0
        } else if wavelen > low_wavelen {
            factor
        } else {
            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            1.0 / ((1.0 - smooth) / factor + smooth)
        }
    };
    Some((0..d / 2).map(divisor).collect())
}

fn general_meta(arch: &str, name: &str, scheme: Scheme) -> Vec<(String, Value)> {
    vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(name.into())),
        ("general.file_type".into(), Value::U32(scheme.file_type())),
        ("general.quantization_version".into(), Value::U32(2)),
    ]
}

/// The `{arch}.*` keys llama.cpp reads for a llama-family model.
fn arch_meta(hp: &Hparams, arch: &str) -> Vec<(String, Value)> {
    let key = |k: &str| format!("{arch}.{k}");
    let u = |k: &str, v: usize| (key(k), Value::U32(v as u32));
    let mut m = vec![
        u("context_length", hp.max_position_embeddings),
        u("embedding_length", hp.hidden_size),
        u("block_count", hp.num_hidden_layers),
        u("feed_forward_length", hp.intermediate_size),
        u("attention.head_count", hp.num_attention_heads),
        u("attention.head_count_kv", hp.num_key_value_heads),
        (key("rope.freq_base"), Value::F32(hp.rope.theta)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(hp.norm_eps)),
        u("rope.dimension_count", hp.rope.rot_dim),
        u("vocab_size", hp.vocab_size),
    ];
    if hp.head_dim * hp.num_attention_heads != hp.hidden_size {
        m.push(u("attention.key_length", hp.head_dim));
        m.push(u("attention.value_length", hp.head_dim));
    }
    if let RopeScaling::Linear { factor } = hp.rope.scaling {
        m.push((key("rope.scaling.type"), Value::String("linear".into())));
        m.push((key("rope.scaling.factor"), Value::F32(factor)));
    }
    if let Some(w) = hp.sliding_window {
        m.push(u("attention.sliding_window", w));
    }
    m
}

/// Stream every tensor into `out` (a temp file renamed at the end).
fn write(
    out: &Path,
    meta: &[(String, Value)],
    jobs: Vec<(TensorSpec, Source)>,
    store: &dyn TensorStore,
    opts: &ExportOptions,
) -> Result<ExportReport, Error> {
    let (specs, sources): (Vec<TensorSpec>, Vec<Source>) = jobs.into_iter().unzip();
    let bar = progress_bar(opts.progress, specs.len() as u64);
    let mut file = GgufOut::create(out, meta, specs.clone())?;
    let mut bytes = 0u64;
    for (spec, src) in specs.iter().zip(&sources) {
        bar.set_message(spec.name.clone());
        let data = tensor_bytes(spec, src, store, opts.pool)?;
        bytes += data.len() as u64;
        file.write_tensor(&data)?;
        if let Source::Stored { name, .. } = src {
            store.release(name);
        }
        bar.inc(1);
    }
    file.finish()?;
    bar.finish_and_clear();
    let tensors = specs.into_iter().map(|s| (s.name, s.dtype)).collect();
    Ok(ExportReport { tensors, bytes })
}

/// A tensor-count bar on stderr; hidden when not asked for or stderr is not a terminal.
fn progress_bar(show: bool, total: u64) -> ProgressBar {
    use std::io::IsTerminal;
    let target = match show && std::io::stderr().is_terminal() {
        true => ProgressDrawTarget::stderr(),
        false => ProgressDrawTarget::hidden(),
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos:>4}/{len:<4} {elapsed_precise} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// One tensor's bytes in its output format.
fn tensor_bytes(spec: &TensorSpec, src: &Source, store: &dyn TensorStore, pool: &ThreadPool) -> Result<Vec<u8>, Error> {
    let cols = *spec.shape.last().unwrap_or(&1);
    let rows: usize = spec.shape.iter().rev().skip(1).product();
    let t;
    let (dtype, raw): (DType, Cow<[u8]>) = match src {
        Source::Values(v) => (DType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Source::Stored { name, permute_heads } => {
            t = stored(store, name)?;
            let raw = match permute_heads {
                Some(heads) => Cow::Owned(rope_rows(t.bytes.as_slice(), spec.shape[0], *heads)),
                None => Cow::Borrowed(t.bytes.as_slice()),
            };
            (t.dtype, raw)
        }
    };
    if dtype == spec.dtype {
        return Ok(raw.into_owned());
    }
    quantize_rows(pool, dtype, &raw, rows, cols, spec.dtype).map_err(|e| Error::Format {
        path: store.path().to_path_buf(),
        msg: format!("tensor `{}`: {e}", spec.name),
    })
}

/// llama.cpp's q/k permutation: within each head of `rows / heads` rows, the row of pair `j`
/// of half `i` moves from `i·half + j` to `2j + i`, so rope pairs become adjacent rows
/// (interleaved rope). A bias (one value per row) moves the same way.
fn rope_rows(bytes: &[u8], rows: usize, heads: usize) -> Vec<u8> {
    let row_bytes = bytes.len() / rows;
    let head_dim = rows / heads.max(1);
    let half = head_dim / 2;
    let mut out = Vec::with_capacity(bytes.len());
    for h in 0..heads {
        for j in 0..half {
            for i in 0..2 {
                let r = h * head_dim + i * half + j;
                out.extend_from_slice(&bytes[r * row_bytes..(r + 1) * row_bytes]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rope_rows;

    #[test]
    fn q_rows_are_permuted_into_adjacent_rope_pairs_per_head() {
        // 2 heads of 4 rows, one byte per row: head 0 rows 0,1 | 2,3 -> 0,2,1,3
        let rows: Vec<u8> = (0..8).collect();
        assert_eq!(rope_rows(&rows, 8, 2), vec![0, 2, 1, 3, 4, 6, 5, 7]);
    }
}
