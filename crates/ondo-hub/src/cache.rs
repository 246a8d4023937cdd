//! The on-disk cache of one repo (`models--org--name`): refs, blobs, snapshots, and when a
//! snapshot is complete enough to load.

use super::{is_commit_hash, HubError, HubId, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use std::fs;
use std::path::{Path, PathBuf};

/// Paths inside one repo's cache folder.
pub(crate) struct RepoCache {
    root: PathBuf,
}

impl RepoCache {
    pub(crate) fn new(cache_dir: &Path, id: &HubId) -> RepoCache {
        RepoCache {
            root: cache_dir.join(id.folder_name()),
        }
    }

    /// The commit a ref points to, if recorded.
    pub(crate) fn read_ref(&self, revision: &str) -> Option<String> {
        let text = fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty())
    }

    /// Record `refs/{revision}` = `commit` (no newline, as huggingface_hub writes it).
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        let path = self.root.join("refs").join(revision);
        if self.read_ref(revision).as_deref() == Some(commit) {
            return Ok(());
        }
        create_parent(&path)?;
        fs::write(&path, commit).map_err(HubError::io(&path))
    }

    pub(crate) fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub(crate) fn blob_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    pub(crate) fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// The commit a revision means here: itself when it is a commit hash, else its ref.
    fn commit_for(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_string());
        }
        self.read_ref(revision)
    }

    /// Point `snapshots/{commit}/{file}` at `blobs/{etag}` with a relative symlink.
    pub(crate) fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf, HubError> {
        let dest = self.snapshot_dir(commit).join(file);
        create_parent(&dest)?;
        if fs::symlink_metadata(&dest).is_ok() {
            fs::remove_file(&dest).map_err(HubError::io(&dest))?;
        }
        let depth = file.matches('/').count();
        let target = format!("{}blobs/{etag}", "../".repeat(depth + 2));
        make_link(&target, &self.blob_path(etag), &dest)?;
        Ok(dest)
    }
}

#[cfg(unix)]
fn make_link(target: &str, _blob: &Path, dest: &Path) -> Result<(), HubError> {
    std::os::unix::fs::symlink(target, dest).map_err(HubError::io(dest))
}

/// Without reliable symlinks huggingface_hub keeps a copy in the snapshot; so do we.
#[cfg(not(unix))]
fn make_link(_target: &str, blob: &Path, dest: &Path) -> Result<(), HubError> {
    fs::copy(blob, dest).map(|_| ()).map_err(HubError::io(dest))
}

pub(crate) fn create_parent(path: &Path) -> Result<(), HubError> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).map_err(HubError::io(dir)),
        None => Ok(()),
    }
}

/// The snapshot folder of `id` in `cache_dir` when it is complete ([`is_complete_snapshot`]).
/// Reads only the disk: a branch resolves through `refs/{branch}`, a commit hash directly.
pub fn cached_snapshot(id: &HubId, cache_dir: &Path) -> Option<PathBuf> {
    let cache = RepoCache::new(cache_dir, id);
    let dir = cache.snapshot_dir(&cache.commit_for(id.revision())?);
    is_complete_snapshot(&dir).then_some(dir)
}

/// Why [`cached_snapshot`] found nothing, for error messages.
pub(crate) fn why_not_cached(id: &HubId, cache_dir: &Path) -> String {
    let cache = RepoCache::new(cache_dir, id);
    match cache.commit_for(id.revision()) {
        None => format!("no refs/{} in {}", id.revision(), cache.root.display()),
        Some(commit) if !cache.snapshot_dir(&commit).is_dir() => format!("no snapshot {commit}"),
        Some(commit) => format!("snapshot {commit} lacks config.json or weights"),
    }
}

/// A snapshot can be loaded when it has a `.gguf`, or `config.json` and its safetensors weights
/// (`model.safetensors`, or the index and every shard it names). Broken symlinks count as absent.
pub fn is_complete_snapshot(dir: &Path) -> bool {
    has_gguf(dir) || (dir.join("config.json").is_file() && has_safetensors(dir))
}

fn has_gguf(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        path.extension().is_some_and(|x| x == "gguf") && path.is_file()
    })
}

fn has_safetensors(dir: &Path) -> bool {
    if dir.join(WEIGHTS_FILE).is_file() {
        return true;
    }
    let Ok(text) = fs::read_to_string(dir.join(WEIGHTS_INDEX_FILE)) else {
        return false;
    };
    match shard_files(&text) {
        Some(shards) => !shards.is_empty() && shards.iter().all(|s| dir.join(s).is_file()),
        None => false,
    }
}

/// The distinct shard files of a `model.safetensors.index.json`, in first-seen order; `None` when
/// it is not such an index or names an unsafe path.
pub(crate) fn shard_files(index_json: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(index_json).ok()?;
    let mut shards: Vec<String> = Vec::new();
    for file in value.get("weight_map")?.as_object()?.values() {
        let file = file.as_str()?;
        if !is_safe_relative(file) {
            return None;
        }
        if !shards.iter().any(|s| s == file) {
            shards.push(file.to_string());
        }
    }
    Some(shards)
}

/// A repo-relative file name that stays inside the snapshot folder.
pub(crate) fn is_safe_relative(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('/')
        && !file.contains('\\')
        && file.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// One model repo found in the cache (for `ondo models`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// `org/name`.
    pub id: String,
    /// `(revision, commit)` for each `refs/*` file, sorted.
    pub refs: Vec<(String, String)>,
    /// The snapshot folders that are complete ([`is_complete_snapshot`]), sorted.
    pub snapshots: Vec<PathBuf>,
}

/// Every `models--org--name` folder in `cache_dir`, sorted by id; unreadable entries are skipped.
pub fn cached_models(cache_dir: &Path) -> Vec<CachedModel> {
    let mut models: Vec<CachedModel> = sorted_entries(cache_dir)
        .into_iter()
        .filter_map(|(name, path)| {
            let id = name.strip_prefix("models--")?.replacen("--", "/", 1);
            HubId::parse(&id).ok()?;
            Some(cached_model(id, &path))
        })
        .collect();
    models.sort_by(|a, b| a.id.cmp(&b.id));
    models
}

fn cached_model(id: String, root: &Path) -> CachedModel {
    let refs = sorted_entries(&root.join("refs"))
        .into_iter()
        .filter_map(|(rev, path)| Some((rev, fs::read_to_string(path).ok()?.trim().to_string())))
        .collect();
    let snapshots = sorted_entries(&root.join("snapshots"))
        .into_iter()
        .map(|(_, path)| path)
        .filter(|p| is_complete_snapshot(p))
        .collect();
    CachedModel { id, refs, snapshots }
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect();
    out.sort();
    out
}

/// Delete `id`'s whole folder (`models--org--name`: refs, blobs, snapshots) from `cache_dir`, or
/// for `org/name:QUANT` only that quant's GGUF files (see [`remove_quant`]); returns the bytes of
/// the blobs deleted. A revision is refused: blobs are shared between revisions.
pub fn remove_model(id: &HubId, cache_dir: &Path) -> Result<u64, HubError> {
    if id.to_string().contains('@') {
        return Err(HubError::WholeRepoOnly {
            id: id.to_string(),
            repo: id.repo().to_string(),
        });
    }
    let root = RepoCache::new(cache_dir, id).root;
    if !root.is_dir() {
        return Err(HubError::NotInCache {
            id: id.to_string(),
            cache: cache_dir.to_path_buf(),
        });
    }
    if let Some(quant) = id.quant() {
        return remove_quant(&root, id, quant);
    }
    let freed = sorted_entries(&root.join("blobs"))
        .iter()
        .filter_map(|(_, path)| fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    fs::remove_dir_all(&root).map_err(HubError::io(&root))?;
    Ok(freed)
}

/// The snapshot files of one quant, and each blob they point to that no other snapshot file does.
fn remove_quant(root: &Path, id: &HubId, quant: &str) -> Result<u64, HubError> {
    let mut doomed: Vec<(PathBuf, Option<PathBuf>)> = vec![];
    let mut kept = std::collections::HashSet::new();
    let mut others = vec![];
    for (_, snapshot) in sorted_entries(&root.join("snapshots")) {
        for (name, path) in sorted_entries(&snapshot) {
            let blob = fs::canonicalize(&path).ok();
            match super::quant_of(&name) {
                Some(q) if q.eq_ignore_ascii_case(quant) => doomed.push((path, blob)),
                q => {
                    others.extend(q.map(str::to_string));
                    kept.extend(blob);
                }
            }
        }
    }
    if doomed.is_empty() {
        others.dedup();
        return Err(HubError::NoQuant {
            id: id.without_quant(),
            quant: Some(quant.to_string()),
            available: if others.is_empty() {
                "none".into()
            } else {
                others.join(", ")
            },
        });
    }
    let mut freed = 0;
    for (link, blob) in doomed {
        fs::remove_file(&link).map_err(HubError::io(&link))?;
        let Some(blob) = blob.filter(|b| !kept.contains(b) && b.is_file()) else {
            continue;
        };
        freed += fs::metadata(&blob).map_or(0, |m| m.len());
        fs::remove_file(&blob).map_err(HubError::io(&blob))?;
    }
    Ok(freed)
}
