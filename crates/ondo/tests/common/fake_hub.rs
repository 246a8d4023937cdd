//! A fake Hugging Face hub on 127.0.0.1 for the CLI tests: one repo in the hub's URL layout
//! (revision API, resolve URLs with X-Repo-Commit / ETag / Content-Length, Range requests), and
//! `ondo` run with a clean hub environment.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// FNV-1a over the bytes, spread to `len` hex digits: a stable stand-in for the hub's etags.
pub fn etag(name: &str, body: &[u8], len: usize) -> String {
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

pub struct HubFile {
    name: String,
    body: Vec<u8>,
    etag: String,
}

impl HubFile {
    /// `name` in the repo with the contents of `source`.
    pub fn from_path(name: &str, source: &Path) -> HubFile {
        let body = std::fs::read(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        // LFS files carry a sha256-length etag, git files a sha1-length one.
        let lfs = name.ends_with(".safetensors") || name.ends_with(".gguf");
        let etag = etag(name, &body, if lfs { 64 } else { 40 });
        HubFile {
            name: name.to_string(),
            body,
            etag,
        }
    }
}

/// One repo: its id, commit and files.
pub struct Repo {
    pub id: String,
    pub sha: String,
    pub files: Vec<HubFile>,
}

/// A hub serving one repo until dropped (or `stop`ped); counts the requests it answered.
pub struct FakeHub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicUsize>,
    /// `(file, first byte)` of each ranged GET answered (a resumed download).
    pub ranged: Arc<Mutex<Vec<(String, usize)>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    pub fn serve_repo(repo: Repo) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let ranged = Arc::new(Mutex::new(Vec::new()));
        let (stop2, requests2, ranged2) = (stop.clone(), requests.clone(), ranged.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if serve(stream, &repo, &ranged2) {
                    requests2.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        FakeHub {
            addr,
            stop,
            requests,
            ranged,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting and close the port.
    pub fn stop(&mut self) {
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
fn serve(stream: TcpStream, repo: &Repo, ranged: &Mutex<Vec<(String, usize)>>) -> bool {
    let (files, sha, id) = (&repo.files, repo.sha.as_str(), repo.id.as_str());
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
    let api = format!("/api/models/{id}/revision/");
    let resolve = format!("/{id}/resolve/");
    if let Some(rev) = path.strip_prefix(&api) {
        if method != "GET" || !(rev == "main" || rev == sha) {
            not_found(&mut out, "RevisionNotFound");
            return true;
        }
        let siblings: Vec<_> = files
            .iter()
            .map(|f| serde_json::json!({ "rfilename": f.name }))
            .collect();
        let body = serde_json::json!({ "id": id, "sha": sha, "siblings": siblings }).to_string();
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
            .filter(|_| rev == "main" || rev == sha)
        else {
            not_found(&mut out, "EntryNotFound");
            return true;
        };
        let len = file.body.len();
        let mut headers = vec![
            ("X-Repo-Commit".to_string(), sha.to_string()),
            ("ETag".to_string(), format!("\"{}\"", file.etag)),
            ("Accept-Ranges".to_string(), "bytes".to_string()),
        ];
        match range_start.filter(|_| !head) {
            Some(start) if start < len => {
                ranged.lock().unwrap().push((file.name.clone(), start));
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
pub fn fresh_home(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ondo-cli-hub-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ondo ARGS` with a clean hub environment: HF_HOME as given, extra variables on top.
pub fn ondo(args: &[&str], hf_home: &Path, vars: &[(&str, &str)]) -> Output {
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

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
