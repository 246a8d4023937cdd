//! Chain files: the TOML that `ondo chain FILE.toml --var key=value` runs.
//!
//! ```toml
//! [defaults]                 # every step's settings unless the step sets its own
//! local = "model.gguf"       # a model folder, .gguf file or hub id; or:
//! # endpoint = "http://127.0.0.1:8000/v1"
//! # model = "smollm2"        # the name the endpoint serves (required with endpoint)
//! # api_key_env = "OPENAI_API_KEY"   # or api_key = "..."; timeout = 120 (seconds)
//! temperature = 0            # any SamplingParams field: top_p, top_k, max_tokens, stop, seed, ...
//! # structured_outputs = { regex = "[A-Z][a-z]+" }   # or json = {...schema...}, choice = [...], grammar
//!
//! [[step]]
//! output = "president"       # the variable later steps read this step's text from
//! template = "Who is the president of {country}?"   # or messages = [["system", "..."], ["user", "..."]]
//!
//! [[step]]
//! template = "What changes did {president} make?"
//! ```
//!
//! A step's output defaults to `step1`, `step2`, ...; variables no step writes are the chain's
//! inputs. `max_tokens` defaults to 256; other sampling fields to the model's defaults
//! (generation_config.json) for a local model, vLLM's for an endpoint. Relative model paths are
//! read from the file's folder, `~/` from the home folder.

use crate::backend::{Backend, Local, Model};
use crate::chat::{ChatPromptTemplate, Template};
use crate::openai::OpenAiEndpoint;
use crate::sequential::{LlmChain, SequentialChain};
use crate::template::PromptTemplate;
use crate::{Error, Result};
use ondo_engine::{Llm, LoadOptions, SamplingParams};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a step's text comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendSpec {
    /// What `Llm::load` is given: a path (resolved against the file's folder) or a hub id.
    Local(String),
    Endpoint(OpenAiEndpoint),
}

/// One step as the file writes it.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub template: Template,
    pub output_key: String,
    pub backend: BackendSpec,
    /// Sampling fields the file sets, over the backend's defaults.
    pub options: Map<String, Value>,
}

/// A parsed chain file; [`ChainFile::build`] loads its models.
#[derive(Debug, Clone)]
pub struct ChainFile {
    pub path: PathBuf,
    pub steps: Vec<StepSpec>,
}

const STEP_KEYS: [&str; 3] = ["template", "messages", "output"];
const BACKEND_KEYS: [&str; 6] = ["local", "endpoint", "model", "api_key", "api_key_env", "timeout"];

impl ChainFile {
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parse `text` as the file at `path` (errors name it; relative model paths are read
    /// from its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::File {
            path: path.display().to_string(),
            reason,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        if let Some(k) = table.keys().find(|k| !["defaults", "step"].contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown top-level key {k:?} (expected [defaults] and [[step]] tables)"
            )));
        }
        let empty = toml::Table::new();
        let defaults = match table.get("defaults") {
            None => &empty,
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(bad("`defaults` must be a table ([defaults])".into())),
        };
        if let Some(k) = defaults.keys().find(|k| STEP_KEYS.contains(&k.as_str())) {
            return Err(bad(format!("{k:?} belongs in a [[step]], not in [defaults]")));
        }
        let steps = match table.get("step") {
            Some(toml::Value::Array(steps)) if !steps.is_empty() => steps,
            _ => return Err(bad("no steps: add at least one [[step]] with a template".into())),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s
                    .as_table()
                    .ok_or_else(|| bad(format!("step {} must be a table", i + 1)))?;
                let mut merged = defaults.clone();
                // A step naming its own backend does not inherit the default one.
                if s.contains_key("local") || s.contains_key("endpoint") {
                    merged.retain(|k, _| !BACKEND_KEYS.contains(&k));
                }
                merged.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
                let mut step = parse_step(&merged, dir).map_err(|why| bad(format!("step {}: {why}", i + 1)))?;
                if step.output_key.is_empty() {
                    step.output_key = format!("step{}", i + 1);
                }
                Ok(step)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            steps,
        })
    }

    /// The variables no step writes: what `--var` must give.
    pub fn input_variables(&self) -> Vec<String> {
        crate::sequential::inputs_of(
            self.steps
                .iter()
                .map(|s| (s.template.variables(), s.output_key.as_str())),
        )
    }

    /// Load every model the steps name (each one once) and wire the steps into a chain.
    pub fn build(&self, load: &LoadOptions) -> Result<SequentialChain> {
        let mut loaded: HashMap<String, (Arc<dyn Backend>, SamplingParams)> = HashMap::new();
        let mut chain = Vec::with_capacity(self.steps.len());
        for (i, spec) in self.steps.iter().enumerate() {
            let (backend, base) = match &spec.backend {
                BackendSpec::Local(model) => {
                    if !loaded.contains_key(model) {
                        let llm = Llm::load(model, load)?;
                        let defaults = llm.default_params();
                        loaded.insert(model.clone(), (Arc::new(Local(llm)), defaults));
                    }
                    loaded[model].clone()
                }
                BackendSpec::Endpoint(e) => (Arc::new(e.clone()) as Arc<dyn Backend>, SamplingParams::default()),
            };
            let at = |e: Error| Error::File {
                path: self.path.display().to_string(),
                reason: format!("step {}: {e}", i + 1),
            };
            let params = sampling_params(base, &spec.options).map_err(at)?;
            let model = Model::shared(backend, params).map_err(at)?;
            chain.push(LlmChain::new(spec.template.clone(), model).with_output_key(spec.output_key.clone()));
        }
        let path = self.path.display().to_string();
        SequentialChain::from_steps(chain).map_err(|e| Error::File {
            path,
            reason: e.to_string(),
        })
    }
}

/// The backend's defaults with the file's fields over them, read by `SamplingParams`' own
/// deserializer and checked by its `validate`.
pub fn sampling_params(base: SamplingParams, options: &Map<String, Value>) -> Result<SamplingParams> {
    let mut p = serde_json::to_value(&base).map_err(|e| Error::Chain(e.to_string()))?;
    if !options.contains_key("max_tokens") && base.max_tokens == SamplingParams::default().max_tokens {
        p["max_tokens"] = Value::from(256); // a chain step wants more than vLLM's 16 tokens
    }
    if let Value::Object(fields) = &mut p {
        fields.extend(options.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let params: SamplingParams =
        serde_json::from_value(p).map_err(|e| Error::Chain(format!("sampling options: {e}")))?;
    params.validate()?;
    Ok(params)
}

fn parse_step(t: &toml::Table, dir: &Path) -> std::result::Result<StepSpec, String> {
    let template = match (t.get("template"), t.get("messages")) {
        (Some(_), Some(_)) => return Err("give either template or messages, not both".into()),
        (None, None) => return Err("no prompt: add template = \"...\" or messages = [[role, template], ...]".into()),
        (Some(v), None) => {
            let s = v.as_str().ok_or("template must be a string")?;
            Template::Text(PromptTemplate::from_template(s).map_err(|e| e.to_string())?)
        }
        (None, Some(v)) => Template::Chat(messages(v)?),
    };
    let output_key = match t.get("output") {
        Some(v) => v.as_str().ok_or("output must be a string")?.to_string(),
        None => String::new(), // numbered by the caller
    };
    let backend = backend(t, dir)?;
    // Optional fields are left out of a default's JSON; a probe with them set names them too.
    let probe = SamplingParams {
        structured_outputs: Some(Default::default()),
        ..SamplingParams::default()
    };
    let known: Vec<String> = match serde_json::to_value(probe) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut options = Map::new();
    for (k, v) in t {
        if STEP_KEYS.contains(&k.as_str()) || BACKEND_KEYS.contains(&k.as_str()) {
            continue;
        }
        if !known.contains(k) {
            return Err(format!(
                "unknown key {k:?} (not a step, backend or SamplingParams field)"
            ));
        }
        options.insert(k.clone(), serde_json::to_value(v).map_err(|e| format!("{k}: {e}"))?);
    }
    // Out-of-range values are reported now, before any model loads (and again over the
    // model's own defaults when the chain is built).
    sampling_params(SamplingParams::default(), &options).map_err(|e| match e {
        Error::Chain(why) => why,
        other => other.to_string(),
    })?;
    Ok(StepSpec {
        template,
        output_key,
        backend,
        options,
    })
}

fn messages(v: &toml::Value) -> std::result::Result<ChatPromptTemplate, String> {
    let shape = "messages must be a list of [role, template] pairs";
    let pairs = v.as_array().ok_or(shape)?;
    let pairs = pairs
        .iter()
        .map(|p| match p.as_array().map(Vec::as_slice) {
            Some([role, text]) => Ok((role.as_str().ok_or(shape)?, text.as_str().ok_or(shape)?)),
            _ => Err(shape),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    ChatPromptTemplate::from_messages(pairs).map_err(|e| e.to_string())
}

fn backend(t: &toml::Table, dir: &Path) -> std::result::Result<BackendSpec, String> {
    let text = |k: &str| -> std::result::Result<Option<String>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("{k} must be a string")),
        }
    };
    match (text("local")?, text("endpoint")?) {
        (Some(_), Some(_)) => Err("give either local or endpoint, not both".into()),
        (None, None) => {
            Err("no backend: set local = \"MODEL\" or endpoint = \"http://...\" (here or in [defaults])".into())
        }
        (Some(model), None) => match BACKEND_KEYS[2..].iter().find(|k| t.contains_key(**k)) {
            Some(k) => Err(format!("{k} is for an endpoint, not a local model")),
            None => Ok(BackendSpec::Local(model_path(&model, dir))),
        },
        (None, Some(url)) => {
            let model = text("model")?.ok_or("an endpoint needs model = \"NAME\" (the model it serves)")?;
            let mut e = OpenAiEndpoint::new(url, model);
            e.api_key = text("api_key")?;
            if let Some(var) = text("api_key_env")? {
                e.api_key = Some(std::env::var(&var).map_err(|_| format!("api_key_env: ${var} is not set"))?);
            }
            if let Some(v) = t.get("timeout") {
                let secs = v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .ok_or("timeout must be seconds")?;
                e.timeout = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("timeout must be positive seconds, got {secs}"))?;
            }
            Ok(BackendSpec::Endpoint(e))
        }
    }
}

/// `~/x` from the home folder; a relative path that exists beside the file from there; anything
/// else as given (an absolute path or a hub id).
fn model_path(model: &str, dir: &Path) -> String {
    if let (Some(rest), Some(home)) = (model.strip_prefix("~/"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest).display().to_string();
    }
    let beside = dir.join(model);
    if Path::new(model).is_relative() && beside.exists() {
        return beside.display().to_string();
    }
    model.to_string()
}
