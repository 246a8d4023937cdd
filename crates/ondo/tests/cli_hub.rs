//! `ondo run ORG/NAME` through the real binary against a fake Hugging Face hub on 127.0.0.1: the
//! tiny llama-gqa checkpoint is served in the hub's URL layout (revision API, resolve URLs with
//! X-Repo-Commit / ETag / Content-Length, Range requests), lands in `$HF_HOME/hub` in
//! huggingface_hub's layout, and is then found there with the server gone and offline mode on.

mod common;

use common::fake_hub::{fresh_home, ondo, text, FakeHub, HubFile, Repo};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

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

/// The hub serving the tiny llama checkpoint as `tiny-org/tiny-llama`.
fn start_hub() -> FakeHub {
    FakeHub::serve_repo(Repo {
        id: REPO.into(),
        sha: SHA.into(),
        files: FILES
            .iter()
            .map(|f| HubFile::from_path(f, &fixture().join(f)))
            .collect(),
    })
}

const RUN: &[&str] = &["run", REPO, "Hello", "--max-tokens", "5", "--temperature", "0"];

#[test]
fn run_pulls_a_hub_id_into_the_cache_then_runs_offline() {
    let home = fresh_home("pull");
    let mut hub = start_hub();
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
    let hub = start_hub();
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
    let hub = start_hub();
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
