//! Hub downloads against a fake hub on 127.0.0.1: the revision API, resolve URLs with the hub's
//! headers (ETag / X-Linked-Etag / X-Repo-Commit), a 302 to "LFS storage", Range requests, 401
//! for a gated repo and 404 for a missing one. Every test has its own cache folder and server.

use ondo_hub::{cached_models, is_complete_snapshot, pull_model, resolve_model, HubError, HubOptions};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

// ---------------------------------------------------------------- fake repos

#[derive(Clone)]
struct FakeFile {
    name: String,
    body: Vec<u8>,
    lfs: bool,
    etag: String,
}

#[derive(Clone)]
struct FakeRepo {
    id: String,
    commit: String,
    tags: Vec<String>,
    files: Vec<FakeFile>,
    /// Gated: only this bearer token may read it.
    token: Option<String>,
}

fn hex(seed: &str, len: usize) -> String {
    let mut out = String::new();
    let mut i = 0u64;
    while out.len() < len {
        let mut h = DefaultHasher::new();
        (seed, i).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    out.truncate(len);
    out
}

fn file(name: &str, body: &[u8], lfs: bool) -> FakeFile {
    let etag = hex(&format!("{name}{body:?}"), if lfs { 64 } else { 40 });
    FakeFile {
        name: name.to_string(),
        body: body.to_vec(),
        lfs,
        etag,
    }
}

fn weights(seed: &str, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed.len() as u8))
        .collect()
}

/// A small model repo: configs, tokenizer, single-file weights, and files ondo must not fetch.
fn tiny_repo(id: &str) -> FakeRepo {
    FakeRepo {
        id: id.to_string(),
        commit: hex(id, 40),
        tags: vec!["v1".to_string()],
        files: vec![
            file(".gitattributes", b"*.safetensors filter=lfs", false),
            file("README.md", b"# tiny", false),
            file("config.json", br#"{"model_type":"llama"}"#, false),
            file("generation_config.json", br#"{"eos_token_id":2}"#, false),
            file("tokenizer.json", br#"{"version":"1.0"}"#, false),
            file("tokenizer_config.json", br#"{"bos_token":"<s>"}"#, false),
            file("model.safetensors", &weights("w", 300_000), true),
            file("pytorch_model.bin", &weights("pt", 1000), true),
        ],
        token: None,
    }
}

fn sharded_repo(id: &str) -> FakeRepo {
    let index = br#"{"metadata":{"total_size":4},"weight_map":{
        "a.weight":"model-00001-of-00002.safetensors",
        "b.weight":"model-00002-of-00002.safetensors",
        "c.weight":"model-00001-of-00002.safetensors"}}"#;
    FakeRepo {
        id: id.to_string(),
        commit: hex(id, 40),
        tags: vec![],
        files: vec![
            file("config.json", br#"{"model_type":"qwen2"}"#, false),
            file("tokenizer.json", br#"{}"#, false),
            file("model.safetensors.index.json", index, false),
            file("model-00001-of-00002.safetensors", &weights("s1", 70_000), true),
            file("model-00002-of-00002.safetensors", &weights("s22", 50_000), true),
            file("consolidated.safetensors", &weights("c", 500), true),
        ],
        token: None,
    }
}

impl FakeRepo {
    fn file(&self, name: &str) -> &FakeFile {
        self.files.iter().find(|f| f.name == name).expect("fake file")
    }
}

// ---------------------------------------------------------------- fake hub server

#[derive(Debug, Clone)]
struct Logged {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Logged {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

struct Hub {
    repos: Vec<FakeRepo>,
    base: String,
    log: Mutex<Vec<Logged>>,
    /// Serve only this many bytes of the next `/cdn/` GET, then drop the connection.
    cut_next_cdn: Mutex<Option<usize>>,
}

struct Server {
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(repos: Vec<FakeRepo>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hub = Arc::new(Hub {
            repos,
            base,
            log: Mutex::new(vec![]),
            cut_next_cdn: Mutex::new(None),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (hub2, stop2) = (hub.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    hub2.serve(stream);
                }
            }
        });
        Server {
            hub,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> &str {
        &self.hub.base
    }

    fn requests(&self) -> Vec<Logged> {
        self.hub.log.lock().unwrap().clone()
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.hub.base.trim_start_matches("http://"));
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Reply { status, headers, body }
}

fn error_reply(status: u16, code: Option<&str>) -> Reply {
    let headers: Vec<(&str, String)> = code.map(|c| vec![("X-Error-Code", c.to_string())]).unwrap_or_default();
    reply(status, &headers, b"{\"error\":\"nope\"}".to_vec())
}

impl Hub {
    fn serve(&self, mut stream: TcpStream) {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let Some(req) = read_request(&stream) else {
            return;
        };
        self.log.lock().unwrap().push(req.clone());
        let mut reply = self.route(&req);
        let limit = self.cut_for(&req, &reply);
        let full_len = reply.body.len();
        reply.headers.push(("Content-Length".into(), full_len.to_string()));
        reply.headers.push(("Connection".into(), "close".into()));
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        if req.method != "HEAD" {
            let _ = stream.write_all(&reply.body[..limit.unwrap_or(full_len).min(full_len)]);
        }
        let _ = stream.flush();
    }

    fn cut_for(&self, req: &Logged, reply: &Reply) -> Option<usize> {
        if req.path.starts_with("/cdn/") && req.method == "GET" && reply.status < 300 {
            return self.cut_next_cdn.lock().unwrap().take();
        }
        None
    }

    fn route(&self, req: &Logged) -> Reply {
        let path = req.path.split('?').next().unwrap_or("");
        if let Some(etag) = path.strip_prefix("/cdn/") {
            return self.cdn(req, etag);
        }
        if let Some(rest) = path.strip_prefix("/api/models/") {
            return self.api(req, rest);
        }
        let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
        match parts.as_slice() {
            [org, name, "resolve", rev, file] => self.resolve(req, &format!("{org}/{name}"), rev, file),
            _ => error_reply(404, None),
        }
    }

    fn repo(&self, id: &str, req: &Logged) -> Result<&FakeRepo, Reply> {
        let repo = self
            .repos
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| error_reply(404, None))?;
        match &repo.token {
            Some(t) if req.header("authorization") != Some(format!("Bearer {t}").as_str()) => {
                Err(error_reply(401, None))
            }
            _ => Ok(repo),
        }
    }

    fn api(&self, req: &Logged, rest: &str) -> Reply {
        let Some((id, rev)) = rest.split_once("/revision/") else {
            return error_reply(404, None);
        };
        let repo = match self.repo(id, req) {
            Ok(repo) => repo,
            Err(reply) => return reply,
        };
        if rev != "main" && rev != repo.commit && !repo.tags.iter().any(|t| t == rev) {
            return error_reply(404, Some("RevisionNotFound"));
        }
        let siblings: Vec<String> = repo
            .files
            .iter()
            .map(|f| format!("{{\"rfilename\":\"{}\"}}", f.name))
            .collect();
        let json = format!(
            "{{\"id\":\"{}\",\"sha\":\"{}\",\"siblings\":[{}]}}",
            repo.id,
            repo.commit,
            siblings.join(",")
        );
        reply(200, &[("Content-Type", "application/json".into())], json.into_bytes())
    }

    fn resolve(&self, req: &Logged, id: &str, rev: &str, name: &str) -> Reply {
        let repo = match self.repo(id, req) {
            Ok(repo) => repo,
            Err(reply) => return reply,
        };
        if rev != repo.commit && rev != "main" {
            return error_reply(404, Some("RevisionNotFound"));
        }
        let Some(f) = repo.files.iter().find(|f| f.name == name) else {
            return error_reply(404, Some("EntryNotFound"));
        };
        let commit = ("X-Repo-Commit", repo.commit.clone());
        if f.lfs {
            let headers = [
                commit,
                ("Location", format!("{}/cdn/{}", self.base, f.etag)),
                ("X-Linked-Etag", format!("\"{}\"", f.etag)),
                ("X-Linked-Size", f.body.len().to_string()),
                ("ETag", "\"redirect-etag-not-the-blob\"".to_string()),
            ];
            return reply(302, &headers, vec![]);
        }
        ranged(req, &f.body, &[commit, ("ETag", format!("\"{}\"", f.etag))])
    }

    fn cdn(&self, req: &Logged, etag: &str) -> Reply {
        let found = self.repos.iter().flat_map(|r| &r.files).find(|f| f.etag == etag);
        match found {
            Some(f) => ranged(req, &f.body, &[("ETag", "\"cdn-etag\"".to_string())]),
            None => error_reply(404, None),
        }
    }
}

/// 200 with the body, or 206 / 416 for a `Range: bytes=N-` request.
fn ranged(req: &Logged, body: &[u8], headers: &[(&str, String)]) -> Reply {
    let start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
    let Some(start) = start else {
        return reply(200, headers, body.to_vec());
    };
    if start >= body.len() {
        return error_reply(416, None);
    }
    let mut headers = headers.to_vec();
    headers.push((
        "Content-Range",
        format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
    ));
    reply(206, &headers, body[start..].to_vec())
}

fn read_request(stream: &TcpStream) -> Option<Logged> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(Logged { method, path, headers })
}

// ---------------------------------------------------------------- helpers

/// A fresh cache folder, removed when dropped.
struct TempCache(PathBuf);

impl std::ops::Deref for TempCache {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_cache(name: &str) -> TempCache {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ondo-hub-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempCache(dir)
}

fn opts(server_url: &str, cache: &Path) -> HubOptions {
    HubOptions {
        offline: false,
        endpoint: Some(server_url.to_string()),
        token: None,
        cache_dir: Some(cache.to_path_buf()),
        quiet: true,
    }
}

fn offline(cache: &Path) -> HubOptions {
    HubOptions {
        offline: true,
        endpoint: Some("http://127.0.0.1:9".into()),
        ..opts("", cache)
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- tests

const NEEDED: [&str; 5] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "model.safetensors",
];

#[test]
fn hub_download_creates_huggingface_hub_layout() {
    let repo = tiny_repo("org/tiny");
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("layout");
    let snap = resolve_model("org/tiny", &opts(server.url(), &cache)).unwrap();

    let root = cache.join("models--org--tiny");
    assert_eq!(snap, root.join("snapshots").join(&repo.commit));
    assert_eq!(std::fs::read(root.join("refs/main")).unwrap(), repo.commit.as_bytes());
    assert_eq!(files_in(&root), ["blobs", "refs", "snapshots"]);
    assert_eq!(files_in(&root.join("snapshots")), std::slice::from_ref(&repo.commit));
    assert_eq!(files_in(&snap), sorted(&NEEDED));
    let etags: Vec<&str> = NEEDED.iter().map(|n| repo.file(n).etag.as_str()).collect();
    assert_eq!(
        files_in(&root.join("blobs")),
        sorted(&etags),
        "exactly the needed blobs, no .incomplete"
    );
    for name in NEEDED {
        let f = repo.file(name);
        let link = std::fs::read_link(snap.join(name)).unwrap();
        assert_eq!(link, PathBuf::from(format!("../../blobs/{}", f.etag)), "{name}");
        assert_eq!(std::fs::read(snap.join(name)).unwrap(), f.body, "{name}");
    }
    assert!(is_complete_snapshot(&snap));

    let reqs = server.requests();
    let lfs = repo.file("model.safetensors");
    let fetched = |method: &str, path: &str| reqs.iter().any(|r| r.method == method && r.path == path);
    assert!(fetched("GET", "/api/models/org/tiny/revision/main"));
    assert!(fetched(
        "HEAD",
        &format!("/org/tiny/resolve/{}/model.safetensors", repo.commit)
    ));
    assert!(
        fetched("GET", &format!("/cdn/{}", lfs.etag)),
        "followed the LFS redirect: {reqs:#?}"
    );
    assert!(
        !reqs
            .iter()
            .any(|r| r.path.contains("README") || r.path.contains("pytorch_model")),
        "{reqs:#?}"
    );
    assert!(reqs.iter().all(|r| r.header("authorization").is_none()));
}

#[test]
fn hub_cached_model_resolves_with_server_gone() {
    let repo = tiny_repo("org/tiny");
    let mut server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("offline-after");
    let online = opts(server.url(), &cache);
    let snap = resolve_model("org/tiny", &online).unwrap();
    server.shutdown();

    assert_eq!(
        resolve_model("org/tiny", &online).unwrap(),
        snap,
        "complete cache needs no network"
    );
    assert_eq!(resolve_model("org/tiny", &offline(&cache)).unwrap(), snap);
    let by_commit = format!("org/tiny@{}", repo.commit);
    assert_eq!(resolve_model(&by_commit, &offline(&cache)).unwrap(), snap);

    let err = resolve_model("org/tiny@v1", &offline(&cache)).unwrap_err();
    assert!(matches!(err, HubError::NotCached { .. }), "no refs/v1 yet: {err}");
    let other = format!("org/tiny@{}", "f".repeat(40));
    assert!(resolve_model(&other, &offline(&cache)).is_err());
}

#[test]
fn hub_offline_with_empty_cache_is_a_clear_error() {
    let server = Server::start(vec![tiny_repo("org/tiny")]);
    let cache = temp_cache("offline-empty");
    let o = HubOptions {
        offline: true,
        ..opts(server.url(), &cache)
    };
    let err = resolve_model("org/tiny", &o).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("org/tiny") && msg.contains("offline") && msg.contains(&cache.display().to_string()),
        "{msg}"
    );
    assert!(server.requests().is_empty(), "offline must not touch the network");
}

#[test]
fn hub_incomplete_blob_is_resumed_with_range() {
    let repo = tiny_repo("org/tiny");
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("resume");
    let lfs = repo.file("model.safetensors");
    let half = lfs.body.len() / 2;
    let blobs = cache.join("models--org--tiny/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{}.incomplete", lfs.etag)), &lfs.body[..half]).unwrap();

    let snap = resolve_model("org/tiny", &opts(server.url(), &cache)).unwrap();

    assert_eq!(std::fs::read(snap.join("model.safetensors")).unwrap(), lfs.body);
    let gets: Vec<Logged> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/cdn/{}", lfs.etag))
        .collect();
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert_eq!(gets[0].header("range"), Some(format!("bytes={half}-").as_str()));
    assert!(!blobs.join(format!("{}.incomplete", lfs.etag)).exists());
}

#[test]
fn hub_interrupted_download_resumes_on_next_run() {
    let repo = tiny_repo("org/tiny");
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("interrupted");
    let lfs = repo.file("model.safetensors");
    *server.hub.cut_next_cdn.lock().unwrap() = Some(100_000);

    let err = resolve_model("org/tiny", &opts(server.url(), &cache)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("/cdn/{}", lfs.etag)),
        "error names the URL: {msg}"
    );
    let part = cache.join(format!("models--org--tiny/blobs/{}.incomplete", lfs.etag));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    assert!(
        resolve_model("org/tiny", &offline(&cache)).is_err(),
        "half a model is not cached"
    );

    let snap = resolve_model("org/tiny", &opts(server.url(), &cache)).unwrap();
    assert_eq!(std::fs::read(snap.join("model.safetensors")).unwrap(), lfs.body);
    let last = server
        .requests()
        .into_iter()
        .rfind(|r| r.path.starts_with("/cdn/"))
        .unwrap();
    assert_eq!(last.header("range"), Some("bytes=100000-"));
}

#[test]
fn hub_gated_repo_needs_a_token() {
    let mut repo = tiny_repo("org/gated");
    repo.token = Some("hf_secret".into());
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("gated");
    let err = resolve_model("org/gated", &opts(server.url(), &cache)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HubError::Unauthorized { status: 401, .. }), "{msg}");
    assert!(
        msg.contains("org/gated") && msg.contains("gated") && msg.contains("HF_TOKEN"),
        "{msg}"
    );

    let with_token = HubOptions {
        token: Some("hf_secret".into()),
        ..opts(server.url(), &cache)
    };
    let snap = resolve_model("org/gated", &with_token).unwrap();
    assert!(is_complete_snapshot(&snap));
    let hub_reqs: Vec<Logged> = server
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/cdn/"))
        .skip(1)
        .collect();
    assert!(
        hub_reqs
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer hf_secret")),
        "{hub_reqs:#?}"
    );
}

#[test]
fn hub_missing_repo_revision_and_network_errors() {
    let server = Server::start(vec![tiny_repo("org/tiny")]);
    let cache = temp_cache("missing");
    let o = opts(server.url(), &cache);
    let msg = resolve_model("org/missing", &o).unwrap_err().to_string();
    assert!(msg.contains("model not found on the hub: org/missing"), "{msg}");
    let err = resolve_model("org/tiny@nope", &o).unwrap_err();
    assert!(
        matches!(err, HubError::RevisionNotFound { .. }) && err.to_string().contains("nope"),
        "{err}"
    );
    assert!(matches!(resolve_model("tiny", &o), Err(HubError::BadId(_))));

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = format!("http://{closed}");
    let err = resolve_model("org/tiny", &opts(&dead, &cache)).unwrap_err();
    // One line that names the endpoint and says what to do instead; no resolver jargon.
    assert!(matches!(err, HubError::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("cannot reach the hub at {dead}")), "{msg}");
    assert!(
        msg.contains("--offline") && msg.contains(".gguf") && !msg.contains('\n'),
        "{msg}"
    );
}

#[test]
fn hub_tag_revision_writes_its_ref() {
    let repo = tiny_repo("org/tiny");
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("tag");
    let snap = resolve_model("org/tiny@v1", &opts(server.url(), &cache)).unwrap();
    let root = cache.join("models--org--tiny");
    assert_eq!(std::fs::read_to_string(root.join("refs/v1")).unwrap(), repo.commit);
    assert!(!root.join("refs/main").exists());
    assert_eq!(resolve_model("org/tiny@v1", &offline(&cache)).unwrap(), snap);

    let by_commit = format!("org/tiny@{}", repo.commit);
    let cache2 = temp_cache("commit");
    let snap2 = resolve_model(&by_commit, &opts(server.url(), &cache2)).unwrap();
    assert!(snap2.ends_with(&repo.commit));
    assert!(
        !cache2.join("models--org--tiny/refs").exists(),
        "a commit id writes no ref"
    );
}

#[test]
fn hub_sharded_weights_download_every_shard() {
    let repo = sharded_repo("org/sharded");
    let server = Server::start(vec![repo.clone()]);
    let cache = temp_cache("sharded");
    let snap = resolve_model("org/sharded", &opts(server.url(), &cache)).unwrap();
    let want = [
        "config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    assert_eq!(files_in(&snap), sorted(&want));
    for name in want {
        assert_eq!(std::fs::read(snap.join(name)).unwrap(), repo.file(name).body, "{name}");
    }
    assert!(is_complete_snapshot(&snap));
    std::fs::remove_file(snap.join("model-00002-of-00002.safetensors")).unwrap();
    assert!(
        !is_complete_snapshot(&snap),
        "a missing shard makes the snapshot incomplete"
    );
    assert!(resolve_model("org/sharded", &offline(&cache)).is_err());
    assert_eq!(
        resolve_model("org/sharded", &opts(server.url(), &cache)).unwrap(),
        snap,
        "re-links the blob"
    );
}

#[test]
fn hub_cached_models_lists_complete_snapshots() {
    let (tiny, sharded) = (tiny_repo("org/tiny"), sharded_repo("org/sharded"));
    let server = Server::start(vec![tiny.clone(), sharded.clone()]);
    let cache = temp_cache("list");
    assert!(cached_models(&cache).is_empty());
    let o = opts(server.url(), &cache);
    let tiny_snap = resolve_model("org/tiny", &o).unwrap();
    let sharded_snap = pull_model("org/sharded", &o, &[]).unwrap();
    std::fs::create_dir_all(cache.join("datasets--org--data/refs")).unwrap();
    std::fs::create_dir_all(cache.join("models--noorg")).unwrap();
    std::fs::create_dir_all(cache.join(format!("models--org--tiny/snapshots/{}", "0".repeat(40)))).unwrap();

    let models = cached_models(&cache);
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["org/sharded", "org/tiny"]);
    assert_eq!(models[0].refs, [("main".to_string(), sharded.commit.clone())]);
    assert_eq!(models[0].snapshots, [sharded_snap]);
    assert_eq!(models[1].snapshots, [tiny_snap], "the empty snapshot is not listed");
    assert!(matches!(
        pull_model("org/tiny", &offline(&cache), &[]),
        Err(HubError::NotCached { .. })
    ));
}
