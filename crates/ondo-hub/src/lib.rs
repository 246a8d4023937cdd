//! Hugging Face hub ids: find a model in the local HF cache, or download it there.
//!
//! ondo shares the cache with Python (`huggingface_hub`, transformers, vLLM), so a model pulled by
//! one is found by the other. The layout is huggingface_hub's:
//!
//! ```text
//! {cache}/models--{org}--{name}/
//!     refs/{revision}                 the commit hash a branch or tag pointed to (no newline)
//!     blobs/{etag}                    file contents; etag = sha256 (LFS) or git blob sha1
//!     blobs/{etag}.incomplete         a download in progress, resumed with `Range`
//!     snapshots/{commit}/{filename}   relative symlink to ../../blobs/{etag}
//! ```
//!
//! [`resolve_model`] returns the snapshot folder of an id:
//! - it is served from the cache, without any network access, when that snapshot is complete
//!   (`config.json` plus its safetensors weights, or a `.gguf`);
//! - otherwise, unless [`HubOptions::offline`], it asks `{endpoint}/api/models/{id}/revision/{rev}`
//!   for the commit and file list, and downloads only the files a model needs (see
//!   [`MODEL_FILES`], plus the shards named by `model.safetensors.index.json`).
//!
//! Cache folder, in order: `HF_HUB_CACHE`, the legacy `HUGGINGFACE_HUB_CACHE`, the legacy
//! `TRANSFORMERS_CACHE` (transformers 4.x used it as a hub-layout cache ahead of the others, and
//! tutorials still set it), `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
//! `~/.cache/huggingface/hub`.

mod cache;
mod download;
mod select;

use std::path::{Path, PathBuf};

pub use cache::{cached_models, cached_snapshot, is_complete_snapshot, remove_model, CachedModel};
pub use select::{glob_match, quant_of, DEFAULT_QUANT};

/// The hub used when neither [`HubOptions::endpoint`] nor `HF_ENDPOINT` names another.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Files downloaded for a model when the repo has them, besides the weights.
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
];

/// Single-file safetensors weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of sharded safetensors weights (`weight_map`: tensor → shard file).
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

/// Everything that can go wrong finding or fetching a hub model. Messages name the id, file or URL.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("not a hub id: {0:?} (expected org/name, org/name@revision or org/name:QUANT)")]
    BadId(String),
    #[error("{id} is not in the HF cache at {} ({detail}) and offline mode is on (--offline or HF_HUB_OFFLINE); pull it while online", cache.display())]
    NotCached { id: String, cache: PathBuf, detail: String },
    #[error("model not found on the hub: {id} (a private repo needs HF_TOKEN)")]
    NotFound { id: String },
    #[error("revision {revision:?} not found for {id} on the hub")]
    RevisionNotFound { id: String, revision: String },
    #[error("{file} not found in {id} at {revision}")]
    FileNotFound { id: String, file: String, revision: String },
    #[error("access to {id} refused (HTTP {status}): the repo may be gated or private; request access on its hub page and set HF_TOKEN to a token that has it")]
    Unauthorized { id: String, status: u16 },
    #[error("HTTP {status} from {url}")]
    Http { url: String, status: u16 },
    #[error("network error for {url}: {source}")]
    Network {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unexpected response from {url}: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("{id} has no weights ondo can load (config.json with model.safetensors or {WEIGHTS_INDEX_FILE}); repo files: {files}")]
    NoWeights { id: String, files: String },
    #[error("{}", no_quant_message(id, quant.as_deref(), available))]
    NoQuant {
        id: String,
        quant: Option<String>,
        available: String,
    },
    #[error("no file of {id} matches {patterns}")]
    NoMatch { id: String, patterns: String },
    #[error("cannot reach the hub at {endpoint} ({reason}); give a local model folder or .gguf path instead, or add --offline to use a model already in the cache")]
    Unreachable {
        endpoint: String,
        url: String,
        reason: String,
    },
    #[error("{id}: a repo is removed whole or by quant (its blobs are shared by its revisions); give {repo} or {repo}:QUANT")]
    WholeRepoOnly { id: String, repo: String },
    #[error("{id} is not in the HF cache at {}", cache.display())]
    NotInCache { id: String, cache: PathBuf },
    #[error("download of {url} stopped at {got} of {want} bytes; run again to resume")]
    Truncated { url: String, got: u64, want: u64 },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn no_quant_message(id: &str, quant: Option<&str>, available: &str) -> String {
    match quant {
        Some(q) => format!("{id} has no GGUF file for quant {q} (it has: {available})"),
        None => format!("{id} has several GGUF files; pick one with {id}:QUANT (it has: {available})"),
    }
}

impl HubError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
        move |source| HubError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to reach the hub and where the cache is. `None` fields mean: [`DEFAULT_ENDPOINT`], no
/// token, and [`default_cache_dir`]. [`HubOptions::from_env`] fills them the way huggingface_hub does.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Never touch the network (`--offline`, `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// The hub's base URL (`HF_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Sent as `Authorization: Bearer` to the endpoint (`HF_TOKEN`, else the token file).
    pub token: Option<String>,
    /// The hub cache folder holding `models--org--name` (see the module docs).
    pub cache_dir: Option<PathBuf>,
    /// No progress bars (they are also hidden when stderr is not a terminal).
    pub quiet: bool,
}

impl HubOptions {
    /// Options from the process environment: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`),
    /// `HF_ENDPOINT`, `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH` or
    /// `$HF_HOME/token`), the cache variables, and `HF_HUB_DISABLE_PROGRESS_BARS`.
    pub fn from_env() -> HubOptions {
        HubOptions::from_vars(|name| std::env::var(name).ok())
    }

    /// [`HubOptions::from_env`] over any variable lookup (for tests and embedders).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubOptions {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let truthy = |name: &str| var(name).is_some_and(|v| is_true(&v));
        HubOptions {
            offline: truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE"),
            endpoint: var("HF_ENDPOINT").map(|e| e.trim().trim_end_matches('/').to_string()),
            token: env_token(&var),
            cache_dir: Some(cache_dir_from(&var)),
            quiet: truthy("HF_HUB_DISABLE_PROGRESS_BARS"),
        }
    }

    /// The endpoint in use, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
    }

    /// The cache folder in use.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }
}

/// huggingface_hub's notion of a true environment value.
fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

fn env_token(var: &impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(t) = var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")) {
        return Some(t.trim().to_string());
    }
    let path = var("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| hf_home_from(var).join("token"));
    let token = std::fs::read_to_string(path).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

fn hf_home_from(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(home) = var("HF_HOME") {
        return expand_tilde(&home, var);
    }
    let xdg = var("XDG_CACHE_HOME").map(|x| expand_tilde(&x, var));
    xdg.unwrap_or_else(|| home_dir(var).join(".cache")).join("huggingface")
}

fn cache_dir_from(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    let named = ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"];
    match named.iter().find_map(|&n| var(n)) {
        Some(dir) => expand_tilde(&dir, var),
        None => hf_home_from(var).join("hub"),
    }
}

fn home_dir(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn expand_tilde(path: &str, var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    match path.strip_prefix("~/").or_else(|| (path == "~").then_some("")) {
        Some(rest) => home_dir(var).join(rest),
        None => PathBuf::from(path),
    }
}

/// The cache folder the environment names (see the module docs for the order).
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(&|name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// A parsed hub id: `org/name` with an optional `@revision` (branch, tag or 40-hex commit) and
/// an optional `:QUANT` that picks one file of a GGUF repo (`org/name:Q4_K_M`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    repo: String,
    revision: Option<String>,
    quant: Option<String>,
}

impl HubId {
    /// Parse `org/name[@revision][:QUANT]`; any other shape is [`HubError::BadId`].
    pub fn parse(s: &str) -> Result<HubId, HubError> {
        let bad = || HubError::BadId(s.to_string());
        let (rest, quant) = match s.rsplit_once(':') {
            Some((rest, quant)) => (rest, Some(quant)),
            None => (s, None),
        };
        let (repo, revision) = match rest.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (rest, None),
        };
        if !valid_repo(repo) || !revision.is_none_or(valid_revision) || !quant.is_none_or(valid_quant) {
            return Err(bad());
        }
        Ok(HubId {
            repo: repo.to_string(),
            revision: revision.map(str::to_string),
            quant: quant.map(str::to_string),
        })
    }

    /// The quant asked for with `:QUANT`, if any.
    pub fn quant(&self) -> Option<&str> {
        self.quant.as_deref()
    }

    /// `org/name[@revision]`, without the quant.
    pub fn without_quant(&self) -> String {
        HubId {
            quant: None,
            ..self.clone()
        }
        .to_string()
    }

    /// `org/name`.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The revision asked for, `main` when none was.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }

    /// The repo's folder in the cache: `models--org--name`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repo)?;
        if let Some(rev) = &self.revision {
            write!(f, "@{rev}")?;
        }
        match &self.quant {
            Some(quant) => write!(f, ":{quant}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for HubId {
    type Err = HubError;
    fn from_str(s: &str) -> Result<HubId, HubError> {
        HubId::parse(s)
    }
}

/// huggingface_hub's repo id rule, restricted to `org/name`: word characters, `-` and `.`, each
/// part starting and ending with a letter, digit or `_`, no `--` or `..`, at most 96 characters.
fn valid_repo(repo: &str) -> bool {
    let Some((org, name)) = repo.split_once('/') else {
        return false;
    };
    repo.len() <= 96 && !repo.contains("--") && !repo.contains("..") && valid_part(org) && valid_part(name)
}

fn valid_part(part: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let (Some(first), Some(last)) = (part.chars().next(), part.chars().last()) else {
        return false;
    };
    word(first) && word(last) && part.chars().all(|c| word(c) || c == '-' || c == '.')
}

/// A branch, tag or commit: git-ref-like characters, no `..`, no empty path segment.
fn valid_revision(rev: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
    !rev.contains("..") && rev.split('/').all(|seg| !seg.is_empty()) && rev.chars().all(ok_char)
}

/// A quant name: letters, digits and `_` (`Q4_K_M`, `IQ2_XS`, `F16`).
fn valid_quant(quant: &str) -> bool {
    !quant.is_empty() && quant.len() <= 32 && quant.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` has the shape of a hub id (`org/name[@revision]`). The caller checks first whether
/// it names an existing path.
pub fn is_hub_id(s: &str) -> bool {
    HubId::parse(s).is_ok()
}

/// Whether `rev` is a full commit hash (40 lowercase hex digits), as huggingface_hub decides.
pub fn is_commit_hash(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The snapshot folder of a hub id (or, for a GGUF repo, the picked `.gguf` in it): from the
/// cache when complete there, else downloaded (unless offline).
pub fn resolve_model(id: &str, opts: &HubOptions) -> Result<PathBuf, HubError> {
    let hub_id = HubId::parse(id)?;
    let cache_dir = opts.cache_dir();
    let cached = cached_snapshot(&hub_id, &cache_dir).and_then(|dir| select::model_path(&dir, &hub_id).ok());
    if let Some(path) = cached {
        return Ok(path);
    }
    if opts.offline {
        let detail = cache::why_not_cached(&hub_id, &cache_dir);
        return Err(HubError::NotCached {
            id: hub_id.to_string(),
            cache: cache_dir,
            detail,
        });
    }
    let dir = download::pull(&hub_id, &cache_dir, opts, &[])?;
    select::model_path(&dir, &hub_id)
}

/// Ask the hub for the revision's current commit and download what is missing (`ondo pull`):
/// unlike [`resolve_model`], a cached branch is refreshed. With `include` globs, the repo files
/// matching them instead of the model's files. Returns the snapshot folder. Fails when offline.
pub fn pull_model(id: &str, opts: &HubOptions, include: &[String]) -> Result<PathBuf, HubError> {
    let hub_id = HubId::parse(id)?;
    let cache_dir = opts.cache_dir();
    if opts.offline {
        let detail = "pull needs the network".to_string();
        return Err(HubError::NotCached {
            id: hub_id.to_string(),
            cache: cache_dir,
            detail,
        });
    }
    download::pull(&hub_id, &cache_dir, opts, include)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn hub_id_shapes() {
        assert!(is_hub_id("Qwen/Qwen2.5-0.5B-Instruct"));
        assert!(is_hub_id("meta-llama/Llama-3.2-1B-Instruct@main"));
        assert!(is_hub_id("EleutherAI/polyglot-ko-1.3b@refs/pr/3"));
        assert!(is_hub_id("bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"));
        assert!(is_hub_id("org/name@main:q8_0"));
        for bad in [
            "gpt2",
            "a/b/c",
            "/abs/path",
            "./dir/x",
            "org/",
            "/name",
            "org/-x",
            "o--rg/x",
            "org/na..me",
            "org/name@",
            "org/name@a..b",
            "org/name@x//y",
            "org/name:",
            "org/name:Q4 K",
            "org/name:Q4:K",
            "org/name@v 1",
            "a/b@c@d",
            "dir\\x/y",
            "",
            "org/name ",
            "~/models/x",
        ] {
            assert!(!is_hub_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn hub_id_parts() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let id = HubId::parse(&format!("org/name@{commit}")).unwrap();
        assert_eq!((id.repo(), id.revision()), ("org/name", commit));
        assert!(is_commit_hash(id.revision()));
        assert_eq!(id.folder_name(), "models--org--name");
        assert_eq!(id.to_string(), format!("org/name@{commit}"));
        let q = HubId::parse("org/name@v1:Q4_K_M").unwrap();
        assert_eq!((q.repo(), q.revision(), q.quant()), ("org/name", "v1", Some("Q4_K_M")));
        assert_eq!(
            (q.to_string(), q.without_quant()),
            ("org/name@v1:Q4_K_M".into(), "org/name@v1".into())
        );
        let plain: HubId = "org/name".parse().unwrap();
        assert_eq!(plain.revision(), "main");
        assert!(!is_commit_hash("main"));
        let err = HubId::parse("nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\"") && err.contains("org/name"), "{err}");
    }

    fn opts_from(vars: &[(&str, &str)]) -> HubOptions {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubOptions::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn hub_env_cache_dir_order() {
        let home = [("HOME", "/home/u")];
        assert_eq!(
            opts_from(&home).cache_dir(),
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        let xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")];
        assert_eq!(opts_from(&xdg).cache_dir(), PathBuf::from("/x/huggingface/hub"));
        let hf_home = [("HOME", "/home/u"), ("HF_HOME", "~/hf"), ("XDG_CACHE_HOME", "/x")];
        assert_eq!(opts_from(&hf_home).cache_dir(), PathBuf::from("/home/u/hf/hub"));
        let tc = [("HF_HOME", "/hf"), ("TRANSFORMERS_CACHE", "/tc")];
        assert_eq!(opts_from(&tc).cache_dir(), PathBuf::from("/tc"));
        let all = [
            ("HF_HOME", "/hf"),
            ("TRANSFORMERS_CACHE", "/tc"),
            ("HF_HUB_CACHE", "/hc"),
        ];
        assert_eq!(opts_from(&all).cache_dir(), PathBuf::from("/hc"));
    }

    #[test]
    fn hub_env_flags_endpoint_token() {
        let o = opts_from(&[
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", "http://mirror/"),
            ("HF_TOKEN", " hf_abc\n"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "true"),
        ]);
        assert!(o.offline && o.quiet);
        assert_eq!(o.endpoint(), "http://mirror");
        assert_eq!(o.token.as_deref(), Some("hf_abc"));
        let o = opts_from(&[("HF_HUB_OFFLINE", "0"), ("HF_HOME", "/nonexistent-ondo-hf-home")]);
        assert!(!o.offline && !o.quiet && o.token.is_none());
        assert_eq!(o.endpoint(), DEFAULT_ENDPOINT);
        assert!(opts_from(&[("TRANSFORMERS_OFFLINE", "yes")]).offline);
    }

    #[test]
    fn hub_token_file() {
        let dir = std::env::temp_dir().join(format!("ondo-hub-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "hf_from_file\n").unwrap();
        let o = opts_from(&[("HF_HOME", dir.to_str().unwrap())]);
        assert_eq!(o.token.as_deref(), Some("hf_from_file"));
        let o = opts_from(&[("HF_HOME", dir.to_str().unwrap()), ("HF_TOKEN", "hf_env")]);
        assert_eq!(o.token.as_deref(), Some("hf_env"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
