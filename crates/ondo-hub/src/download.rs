//! Talking to the hub: the revision API for the commit and file list, `HEAD` on resolve URLs for
//! each file's commit/etag/size (stopping at the hub's redirect to its LFS storage, as
//! huggingface_hub does), and resumable `GET`s into `blobs/{etag}.incomplete`.

use super::cache::{create_parent, is_safe_relative, shard_files, RepoCache};
use super::select::{no_weights, select_files};
use super::{is_complete_snapshot, HubError, HubId, HubOptions, WEIGHTS_INDEX_FILE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

type Request = ureq::RequestBuilder<ureq::typestate::WithoutBody>;

const MAX_REDIRECTS: usize = 10;
const MAX_API_BYTES: u64 = 64 << 20;

/// Download what `id` needs (or, with `include` globs, the repo files matching them) into the
/// cache and return its snapshot folder.
pub(crate) fn pull(id: &HubId, cache_dir: &Path, opts: &HubOptions, include: &[String]) -> Result<PathBuf, HubError> {
    let client = Client::new(id, opts);
    let cache = RepoCache::new(cache_dir, id);
    let info = client.repo_info()?;
    let files = select_files(id, &info.siblings, include)?;
    for file in &files {
        client.fetch_file(&cache, &info.sha, file)?;
    }
    if files.iter().any(|f| f == WEIGHTS_INDEX_FILE) {
        for shard in client.shards(&cache, &info)? {
            client.fetch_file(&cache, &info.sha, &shard)?;
        }
    }
    if id.revision() != info.sha {
        cache.write_ref(id.revision(), &info.sha)?;
    }
    let dir = cache.snapshot_dir(&info.sha);
    match include.is_empty() && !is_complete_snapshot(&dir) {
        false => Ok(dir),
        true => Err(no_weights(id, &info.siblings)),
    }
}

#[derive(serde::Deserialize)]
struct RawRepoInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<RawSibling>,
}

#[derive(serde::Deserialize)]
struct RawSibling {
    rfilename: String,
}

/// A revision as the hub reports it: its commit and the repo's files.
struct RepoInfo {
    sha: String,
    siblings: Vec<String>,
}

/// What a `HEAD` on a resolve URL tells about one file.
struct FileMeta {
    etag: String,
    size: Option<u64>,
    /// Where to `GET` the bytes: the resolve URL, or the storage URL it redirects to.
    location: String,
}

struct Client<'a> {
    id: &'a HubId,
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
    quiet: bool,
}

impl<'a> Client<'a> {
    fn new(id: &'a HubId, opts: &HubOptions) -> Client<'a> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .user_agent(concat!("ondo/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let token = opts.token.clone().filter(|t| !t.is_empty());
        Client {
            id,
            agent,
            endpoint: opts.endpoint().to_string(),
            token,
            quiet: opts.quiet,
        }
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{revision}`.
    fn repo_info(&self) -> Result<RepoInfo, HubError> {
        let (repo, rev) = (self.id.repo(), quote(self.id.revision(), false));
        let url = format!("{}/api/models/{repo}/revision/{rev}", self.endpoint);
        let mut resp = self.call(self.agent.get(&url), &url, &[])?;
        if !resp.status().is_success() {
            return Err(self.status_error(&resp, &url, None));
        }
        let text = resp.body_mut().with_config().limit(MAX_API_BYTES).read_to_string();
        let text = text.map_err(|e| network(&url, e))?;
        let raw: RawRepoInfo = serde_json::from_str(&text).map_err(|e| bad(&url, &e.to_string()))?;
        let sha = raw
            .sha
            .filter(|s| is_safe_name(s))
            .ok_or_else(|| bad(&url, "no valid \"sha\""))?;
        let siblings = raw.siblings.into_iter().map(|s| s.rfilename).collect();
        Ok(RepoInfo { sha, siblings })
    }

    /// The shards named by the (already downloaded) index; each must be a file of the repo.
    fn shards(&self, cache: &RepoCache, info: &RepoInfo) -> Result<Vec<String>, HubError> {
        let path = cache.snapshot_dir(&info.sha).join(WEIGHTS_INDEX_FILE);
        let text = fs::read_to_string(&path).map_err(HubError::io(&path))?;
        let why = format!("{WEIGHTS_INDEX_FILE} of {} has no usable weight_map", self.id);
        let shards = shard_files(&text)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(&path.display().to_string(), &why))?;
        match shards.iter().find(|s| !info.siblings.contains(s)) {
            Some(missing) => Err(HubError::FileNotFound {
                id: self.id.repo().to_string(),
                file: missing.clone(),
                revision: info.sha.clone(),
            }),
            None => Ok(shards),
        }
    }

    /// Make `snapshots/{commit}/{file}` exist: reuse the blob when present, else download it.
    fn fetch_file(&self, cache: &RepoCache, commit: &str, file: &str) -> Result<(), HubError> {
        if !is_safe_relative(file) {
            return Err(bad(&self.endpoint, &format!("unsafe file name {file:?}")));
        }
        if cache.snapshot_dir(commit).join(file).is_file() {
            return Ok(());
        }
        let meta = self.file_metadata(commit, file)?;
        if !cache.blob_path(&meta.etag).is_file() {
            self.download_blob(cache, &meta, file)?;
        }
        cache.link(commit, file, &meta.etag)?;
        Ok(())
    }

    /// `HEAD` the resolve URL, following only relative (same-hub) redirects.
    fn file_metadata(&self, commit: &str, file: &str) -> Result<FileMeta, HubError> {
        let mut url = format!(
            "{}/{}/resolve/{commit}/{}",
            self.endpoint,
            self.id.repo(),
            quote(file, true)
        );
        for _ in 0..MAX_REDIRECTS {
            let req = self.agent.head(&url).config().max_redirects(0).build();
            let resp = self.call(req, &url, &[("Accept-Encoding", "identity")])?;
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return self.meta_from(&resp, &url, commit, url.clone());
            }
            if !(300..400).contains(&status) {
                return Err(self.status_error(&resp, &url, Some(file)));
            }
            let location = header(&resp, "location").ok_or_else(|| bad(&url, "redirect without Location"))?;
            if location.contains("://") {
                return self.meta_from(&resp, &url, commit, location.to_string());
            }
            url = join_url(&url, location);
        }
        Err(bad(&url, "too many redirects"))
    }

    fn meta_from(
        &self,
        resp: &Response<Body>,
        url: &str,
        commit: &str,
        location: String,
    ) -> Result<FileMeta, HubError> {
        let repo_commit = header(resp, "x-repo-commit")
            .ok_or_else(|| bad(url, "no X-Repo-Commit header (is the endpoint a Hugging Face hub?)"))?;
        if repo_commit != commit {
            return Err(bad(url, &format!("X-Repo-Commit {repo_commit} differs from {commit}")));
        }
        let etag = header(resp, "x-linked-etag")
            .or_else(|| header(resp, "etag"))
            .map(normalize_etag);
        let etag = etag
            .filter(|e| is_safe_name(e))
            .ok_or_else(|| bad(url, "no usable ETag header"))?;
        let size = header(resp, "x-linked-size").or_else(|| header(resp, "content-length"));
        let size = size.and_then(|s| s.trim().parse().ok());
        Ok(FileMeta { etag, size, location })
    }

    /// Download into `blobs/{etag}.incomplete` (resuming what is there) and rename it into place.
    fn download_blob(&self, cache: &RepoCache, meta: &FileMeta, file: &str) -> Result<(), HubError> {
        let part = cache.incomplete_path(&meta.etag);
        create_parent(&part)?;
        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let have = if meta.size.is_some_and(|size| have > size) {
            0
        } else {
            have
        };
        if meta.size != Some(have) {
            self.fetch_into(&meta.location, &part, have, meta.size, file)?;
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&part)
                .map_err(HubError::io(&part))?;
        }
        let blob = cache.blob_path(&meta.etag);
        fs::rename(&part, &blob).map_err(HubError::io(&blob))
    }

    /// `GET url` into `part` from byte `have` on (with `Range` when `have > 0`).
    fn fetch_into(&self, url: &str, part: &Path, have: u64, size: Option<u64>, file: &str) -> Result<(), HubError> {
        let range = format!("bytes={have}-");
        let mut headers = vec![("Accept-Encoding", "identity")];
        if have > 0 {
            headers.push(("Range", range.as_str()));
        }
        let resp = self.call(self.agent.get(url), url, &headers)?;
        let start = match resp.status().as_u16() {
            206 if have > 0 => check_content_range(&resp, url, have)?,
            200 => 0,
            416 if have > 0 => return self.fetch_into(url, part, 0, size, file),
            _ => return Err(self.status_error(&resp, url, Some(file))),
        };
        let sent = header(&resp, "content-length").and_then(|s| s.trim().parse::<u64>().ok());
        let want = size.or(sent.map(|n| n + start));
        let mut out = open_at(part, start)?;
        let bar = progress_bar(self.quiet, file, want, start);
        let got = start + copy_body(resp.into_body().into_reader(), &mut out, part, url, &bar)?;
        bar.finish();
        match want {
            Some(want) if want != got => Err(HubError::Truncated {
                url: url.to_string(),
                got,
                want,
            }),
            _ => Ok(()),
        }
    }

    /// Send a request with optional extra headers, adding the token for the endpoint only.
    fn call(&self, mut req: Request, url: &str, extra: &[(&str, &str)]) -> Result<Response<Body>, HubError> {
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        if let Some(token) = self
            .token
            .as_deref()
            .filter(|_| url.starts_with(&format!("{}/", self.endpoint)))
        {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        req.call().map_err(|e| self.unreachable(url, e))
    }

    /// A request that got no response: the hub cannot be reached (one line, no resolver jargon).
    fn unreachable(&self, url: &str, e: ureq::Error) -> HubError {
        let reason = match &e {
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            ureq::Error::Timeout(_) => "timed out".to_string(),
            ureq::Error::Io(io) => io_reason(io).to_string(),
            _ => return network(url, e),
        };
        HubError::Unreachable {
            endpoint: self.endpoint.clone(),
            url: url.to_string(),
            reason,
        }
    }

    /// Map an error status (and the hub's `X-Error-Code`) to a [`HubError`].
    fn status_error(&self, resp: &Response<Body>, url: &str, file: Option<&str>) -> HubError {
        let status = resp.status().as_u16();
        let id = self.id.repo().to_string();
        let file_missing = |file: &str| HubError::FileNotFound {
            id: id.clone(),
            file: file.to_string(),
            revision: self.id.revision().to_string(),
        };
        match (header(resp, "x-error-code"), status, file) {
            (Some("RepoNotFound"), ..) => HubError::NotFound { id },
            (Some("RevisionNotFound"), ..) => HubError::RevisionNotFound {
                id,
                revision: self.id.revision().to_string(),
            },
            (Some("EntryNotFound"), _, Some(file)) | (None, 404, Some(file)) => file_missing(file),
            (Some("GatedRepo"), ..) | (_, 401 | 403, _) => HubError::Unauthorized { id, status },
            (_, 404, _) => HubError::NotFound { id },
            _ => HubError::Http {
                url: url.to_string(),
                status,
            },
        }
    }
}

/// A short reason for a failed connection; the resolver's own wording ("failed to lookup
/// address information: ...") differs by platform, so a lookup failure is named by its kind.
fn io_reason(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::*;
    let text = e.to_string().to_ascii_lowercase();
    match e.kind() {
        ConnectionRefused => "connection refused",
        TimedOut => "timed out",
        ConnectionReset | ConnectionAborted => "connection dropped",
        _ if ["lookup", "resolve", "not known", "no such host"]
            .iter()
            .any(|w| text.contains(w)) =>
        {
            "host not found"
        }
        _ => "no connection",
    }
}

fn check_content_range(resp: &Response<Body>, url: &str, have: u64) -> Result<u64, HubError> {
    let range = header(resp, "content-range").unwrap_or("");
    match range.starts_with(&format!("bytes {have}-")) {
        true => Ok(have),
        false => Err(bad(
            url,
            &format!("asked for bytes {have}- but got Content-Range {range:?}"),
        )),
    }
}

/// Open `part` for writing at `start`, dropping anything after it.
fn open_at(part: &Path, start: u64) -> Result<File, HubError> {
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)
        .map_err(HubError::io(part))?;
    out.set_len(start).map_err(HubError::io(part))?;
    out.seek(SeekFrom::Start(start)).map_err(HubError::io(part))?;
    Ok(out)
}

fn copy_body(mut body: impl Read, out: &mut File, part: &Path, url: &str, bar: &ProgressBar) -> Result<u64, HubError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(network(url, e)),
        };
        out.write_all(&buf[..n]).map_err(HubError::io(part))?;
        total += n as u64;
        bar.inc(n as u64);
    }
    out.flush().map_err(HubError::io(part))?;
    Ok(total)
}

/// A per-file byte progress bar on stderr; hidden when quiet or stderr is not a terminal.
fn progress_bar(quiet: bool, file: &str, total: Option<u64>, start: u64) -> ProgressBar {
    let target = match quiet || !std::io::stderr().is_terminal() {
        true => ProgressDrawTarget::hidden(),
        false => ProgressDrawTarget::stderr(),
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = "{msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(file.to_string());
    bar.set_position(start);
    bar
}

fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name)?.to_str().ok()
}

/// huggingface_hub's etag normalisation: drop a weak `W/` prefix and the quotes.
fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// Safe as one path component: letters, digits, `-`, `_`, `.`, not starting with `.`.
fn is_safe_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Percent-encode all but unreserved characters (and `/` when `keep_slash`).
fn quote(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Resolve a redirect's `Location` that has no scheme against the URL it came from.
fn join_url(base: &str, location: &str) -> String {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..origin_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|&i| i >= origin_end)
        .map_or(base.len(), |i| i + 1);
    let sep = if dir_end == base.len() && !base.ends_with('/') {
        "/"
    } else {
        ""
    };
    format!("{}{sep}{location}", &base[..dir_end])
}

fn network(url: &str, e: impl std::error::Error + Send + Sync + 'static) -> HubError {
    HubError::Network {
        url: url.to_string(),
        source: Box::new(e),
    }
}

fn bad(url: &str, reason: &str) -> HubError {
    HubError::BadResponse {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_quote_and_join() {
        assert_eq!(quote("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(quote("sub dir/ä.json", true), "sub%20dir/%C3%A4.json");
        assert_eq!(
            join_url("http://h:1/a/resolve/x/f", "/b/resolve/x/f"),
            "http://h:1/b/resolve/x/f"
        );
        assert_eq!(join_url("http://h:1/a/b", "c"), "http://h:1/a/c");
    }

    #[test]
    fn hub_etag_rules() {
        assert_eq!(normalize_etag("W/\"abc123\""), "abc123");
        assert_eq!(normalize_etag("\"e3b0c442\""), "e3b0c442");
        assert!(is_safe_name("e3b0c442"));
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}
