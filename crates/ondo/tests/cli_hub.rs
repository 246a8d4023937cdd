//! `ondo run ORG/NAME` through the real binary against a fake Hugging Face hub on 127.0.0.1: the
//! tiny llama-gqa checkpoint is served in the hub's URL layout (revision API, resolve URLs with
//! X-Repo-Commit / ETag / Content-Length, Range requests), lands in `$HF_HOME/hub` in
//! huggingface_hub's layout, and is then found there with the server gone and offline mode on.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

const REPO: &str = "tiny-org/tiny-llama";
const SHA: &str = "5eed0f1c3a2b4d6e8f9a0b1c2d3e4f5a6b7c8d9e";
const FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "model.safetensors",
];

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tiny-models/llama-gqa"
    ))
}

/// FNV-1a over the bytes, spread to `len` hex digits: a stable stand-in for the hub's etags.
fn etag(name: &str, body: &[u8], len: usize) -> String {
    let mut out = String::new();
    let mut round = 0u64;
    while out.len() < len {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ round;
        for b in name.bytes().chain(body.iter().copied()) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

struct HubFile {
    name: String,
    body: Vec<u8>,
    etag: String,
}

/// A hub serving one repo until dropped (or `stop`ped); counts the requests it answered.
struct FakeHub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    fn start() -> FakeHub {
        let files: Vec<HubFile> = FILES
            .iter()
            .map(|name| {
                let body = std::fs::read(fixture().join(name)).unwrap();
                // LFS files carry a sha256-length etag, git files a sha1-length one.
                let etag = etag(name, &body, if name.ends_with(".safetensors") { 64 } else { 40 });
                HubFile {
                    name: name.to_string(),
                    body,
                    etag,
                }
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if serve(stream, &files) {
                    requests2.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        FakeHub {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting and close the port.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answer one request on `stream` (then close it). Returns whether a request was read.
fn serve(stream: TcpStream, files: &[HubFile]) -> bool {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return false;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut range_start = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                let v = value.trim().trim_start_matches("bytes=").trim_end_matches('-');
                range_start = v.parse::<usize>().ok();
            }
        }
    }
    let mut out = stream;
    let head = method == "HEAD";
    let respond = |out: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
        let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| k == "Content-Length") {
            text.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        let _ = out.write_all(text.as_bytes());
        if !head {
            let _ = out.write_all(body);
        }
        let _ = out.flush();
    };
    let not_found = |out: &mut TcpStream, code: &str| {
        respond(
            out,
            "404 Not Found",
            &[("X-Error-Code".into(), code.into())],
            b"{\"error\":\"not found\"}",
        )
    };
    let api = format!("/api/models/{REPO}/revision/");
    let resolve = format!("/{REPO}/resolve/");
    if let Some(rev) = path.strip_prefix(&api) {
        if method != "GET" || !(rev == "main" || rev == SHA) {
            not_found(&mut out, "RevisionNotFound");
            return true;
        }
        let siblings: Vec<_> = FILES.iter().map(|f| serde_json::json!({ "rfilename": f })).collect();
        let body = serde_json::json!({ "id": REPO, "sha": SHA, "siblings": siblings }).to_string();
        respond(
            &mut out,
            "200 OK",
            &[("Content-Type".into(), "application/json".into())],
            body.as_bytes(),
        );
    } else if let Some(rest) = path.strip_prefix(&resolve) {
        let (rev, name) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(file) = files
            .iter()
            .find(|f| f.name == name)
            .filter(|_| rev == "main" || rev == SHA)
        else {
            not_found(&mut out, "EntryNotFound");
            return true;
        };
        let len = file.body.len();
        let mut headers = vec![
            ("X-Repo-Commit".to_string(), SHA.to_string()),
            ("ETag".to_string(), format!("\"{}\"", file.etag)),
            ("Accept-Ranges".to_string(), "bytes".to_string()),
        ];
        match range_start.filter(|_| !head) {
            Some(start) if start < len => {
                headers.push(("Content-Range".into(), format!("bytes {start}-{}/{len}", len - 1)));
                respond(&mut out, "206 Partial Content", &headers, &file.body[start..]);
            }
            Some(_) => respond(&mut out, "416 Range Not Satisfiable", &headers, b""),
            None if head => {
                headers.push(("Content-Length".into(), len.to_string()));
                respond(&mut out, "200 OK", &headers, b"");
            }
            None => respond(&mut out, "200 OK", &headers, &file.body),
        }
    } else {
        not_found(&mut out, "RepoNotFound");
    }
    true
}

/// A fresh, empty HF_HOME for one test.
fn fresh_home(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ondo-cli-hub-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ondo ARGS` with a clean hub environment: HF_HOME as given, extra variables on top.
fn ondo(args: &[&str], hf_home: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ondo"));
    cmd.args(args);
    for v in [
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "TRANSFORMERS_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_ENDPOINT",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("HF_HOME", hf_home).env("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RUN: &[&str] = &["run", REPO, "Hello", "--max-tokens", "5", "--temperature", "0"];

#[test]
fn run_pulls_a_hub_id_into_the_cache_then_runs_offline() {
    let home = fresh_home("pull");
    let mut hub = FakeHub::start();
    let endpoint = hub.endpoint();

    let out = ondo(RUN, &home, &[("HF_ENDPOINT", &endpoint)]);
    let (online, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!online.trim().is_empty(), "no text; stderr: {stderr}");
    assert!(
        hub.requests.load(Ordering::SeqCst) > FILES.len(),
        "the hub was not asked for every file"
    );

    // huggingface_hub's layout: blobs, a snapshot of symlinks named by the commit, refs/main.
    let repo = home.join("hub").join("models--tiny-org--tiny-llama");
    let blobs: Vec<_> = std::fs::read_dir(repo.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(blobs.len(), FILES.len(), "{blobs:?}");
    assert!(
        blobs.iter().all(|b| !b.to_string_lossy().ends_with(".incomplete")),
        "{blobs:?}"
    );
    let snapshot = repo.join("snapshots").join(SHA);
    for f in FILES {
        let cached = std::fs::read(snapshot.join(f)).unwrap_or_else(|e| panic!("{f} not in the snapshot: {e}"));
        assert_eq!(
            cached,
            std::fs::read(fixture().join(f)).unwrap(),
            "{f} differs from what was served"
        );
    }
    assert_eq!(
        std::fs::read_to_string(repo.join("refs").join("main")).unwrap().trim(),
        SHA
    );

    // The same model from its folder gives the same text.
    let local = ondo(
        &[
            "run",
            fixture().to_str().unwrap(),
            "Hello",
            "--max-tokens",
            "5",
            "--temperature",
            "0",
        ],
        &home,
        &[],
    );
    assert_eq!(text(&local).0, online, "hub copy and local folder disagree");

    // Server gone: offline mode finds the cache and gives the same text.
    hub.stop(); // joined: the listener is closed
    let out = ondo(RUN, &home, &[("HF_ENDPOINT", &endpoint), ("HF_HUB_OFFLINE", "1")]);
    let (offline, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(offline, online);
    // Without offline mode a complete snapshot is still served without the network.
    let out = ondo(RUN, &home, &[("HF_ENDPOINT", &endpoint)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(text(&out).0, online);
    // And --offline as a flag.
    let mut args = RUN.to_vec();
    args.push("--offline");
    let out = ondo(&args, &home, &[("HF_ENDPOINT", &endpoint)]);
    assert_eq!((out.status.code(), text(&out).0), (Some(0), online));

    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn offline_run_of_an_uncached_id_names_it() {
    let home = fresh_home("uncached");
    let hub = FakeHub::start();
    let endpoint = hub.endpoint();
    for vars in [
        &[("HF_ENDPOINT", endpoint.as_str())][..],
        &[("HF_ENDPOINT", endpoint.as_str()), ("HF_HUB_OFFLINE", "1")],
    ] {
        let out = ondo(
            &[
                "run",
                "tiny-org/never-cached",
                "Hello",
                "--max-tokens",
                "2",
                "--offline",
            ],
            &home,
            vars,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("tiny-org/never-cached"), "{stderr}");
        assert!(stderr.contains("offline") && !stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(
        hub.requests.load(Ordering::SeqCst),
        0,
        "offline mode touched the network"
    );
    assert!(!home
        .join("hub")
        .join("models--tiny-org--never-cached")
        .join("snapshots")
        .exists());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn online_run_of_an_id_the_hub_lacks_names_it() {
    let home = fresh_home("missing");
    let hub = FakeHub::start();
    let out = ondo(
        &["run", "tiny-org/not-there", "Hello", "--max-tokens", "2"],
        &home,
        &[("HF_ENDPOINT", &hub.endpoint())],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tiny-org/not-there") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
