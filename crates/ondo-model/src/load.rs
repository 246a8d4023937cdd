//! Finding a model's files and loading it: a folder in HF layout or (later) a `.gguf` file.

use crate::config::{hparams_from_hf, Hparams};
use crate::gguf::GgufFile;
use crate::gguf_model::hparams_from_gguf;
use crate::quant_plan::{QuantPlan, Scheme};
use crate::safetensors::SafetensorsStore;
use crate::store::TensorStore;
use crate::store::{Format, LoadQuant, Tensors};
use crate::{arch, Error, Model};
use ondo_kernels::ThreadPool;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The files of a model folder that ondo reads.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub generation_config: Option<PathBuf>,
    pub tokenizer_json: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    pub chat_template: Option<PathBuf>,
}

impl ModelFiles {
    /// Locate the files of an HF model folder. config.json must exist; the others are optional.
    pub fn locate(dir: &Path) -> Result<ModelFiles, Error> {
        if !dir.exists() {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        }
        if !dir.is_dir() {
            return Err(Error::NotAModel {
                path: dir.into(),
                msg: "expected a model folder or a .gguf file".into(),
            });
        }
        let config = dir.join("config.json");
        if !config.exists() {
            return Err(Error::NotAModel {
                path: dir.into(),
                msg: "config.json is missing".into(),
            });
        }
        let opt = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Ok(ModelFiles {
            dir: dir.to_path_buf(),
            config,
            generation_config: opt("generation_config.json"),
            tokenizer_json: opt("tokenizer.json"),
            tokenizer_config: opt("tokenizer_config.json"),
            chat_template: opt("chat_template.jinja"),
        })
    }
}

/// Read and parse a JSON file, naming it in errors.
pub fn read_json(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// `Hparams` of an HF model folder.
pub fn read_hparams(files: &ModelFiles) -> Result<Hparams, Error> {
    hparams_from_hf(&files.config, &read_json(&files.config)?)
}

/// Whether `path` names a GGUF file (by extension or by its magic bytes).
pub fn is_gguf(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
        && &magic == b"GGUF"
}

/// Load the model at `path`: an HF folder or a `.gguf` file.
pub fn load_model(path: &Path) -> Result<Box<dyn Model>, Error> {
    if is_gguf(path) {
        return load_gguf(&GgufFile::open(path)?);
    }
    let files = ModelFiles::locate(path)?;
    load_hf(&files)
}

/// Quantize a model's matrices while it loads (`--quantize`): the scheme, and the pool whose
/// threads quantize each matrix's rows.
#[derive(Clone, Copy)]
pub struct QuantizeAtLoad<'a> {
    pub scheme: Scheme,
    pub pool: &'a ThreadPool,
}

impl QuantizeAtLoad<'_> {
    fn for_model<'p>(q: Option<&QuantizeAtLoad<'p>>, hp: &Hparams, has_output: bool) -> Option<LoadQuant<'p>> {
        q.map(|q| LoadQuant {
            plan: QuantPlan::new(q.scheme, hp, !has_output && hp.tie_word_embeddings),
            pool: q.pool,
        })
    }
}

/// Load the model in an open GGUF file (its tensors stay memory-mapped).
pub fn load_gguf(g: &GgufFile) -> Result<Box<dyn Model>, Error> {
    load_gguf_with(g, None)
}

/// `load_gguf`, requantizing its matrices when `quant` is given.
pub fn load_gguf_with(g: &GgufFile, quant: Option<&QuantizeAtLoad>) -> Result<Box<dyn Model>, Error> {
    let hp = hparams_from_gguf(g)?;
    let name_of = |canonical: &str| canonical.to_string();
    let quant = QuantizeAtLoad::for_model(quant, &hp, g.tensor("output.weight").is_some());
    let tensors = Tensors {
        store: g,
        format: Format::Gguf,
        name_of: &name_of,
        quant: quant.as_ref(),
    };
    let model = arch::build(hp, &tensors)?;
    g.release_pages();
    Ok(model)
}

/// Load an HF folder: config.json + safetensors.
pub fn load_hf(files: &ModelFiles) -> Result<Box<dyn Model>, Error> {
    load_hf_with(files, None)
}

/// `load_hf`, quantizing its matrices as they load when `quant` is given.
pub fn load_hf_with(files: &ModelFiles, quant: Option<&QuantizeAtLoad>) -> Result<Box<dyn Model>, Error> {
    let hp = read_hparams(files)?;
    let store = SafetensorsStore::open_dir(&files.dir)?;
    build_hf(hp, &store, quant)
}

/// The model `hp` describes, from a store of tensors with HF names.
pub(crate) fn build_hf(
    hp: Hparams,
    store: &dyn TensorStore,
    quant: Option<&QuantizeAtLoad>,
) -> Result<Box<dyn Model>, Error> {
    let names = hp.arch.names;
    // the first spelling the files have; the full HF name when none (errors name that one)
    let name_of = move |canonical: &str| {
        let mut candidates = names.hf_candidates(canonical);
        let found = candidates.iter().position(|n| store.get(n).is_some()).unwrap_or(0);
        candidates.swap_remove(found)
    };
    let has_output = store.get(&name_of("output.weight")).is_some();
    let quant = QuantizeAtLoad::for_model(quant, &hp, has_output);
    let tensors = Tensors {
        store,
        format: Format::Hf,
        name_of: &name_of,
        quant: quant.as_ref(),
    };
    arch::build(hp, &tensors)
}
