//! `ondo pull`, `ondo models`, `ondo rm` and `org/name:QUANT` through the real binary against the
//! fake hub (tests/common/fake_hub.rs); and what a newcomer sees: `ondo` alone, `ondo run` with
//! no model, and a hub that cannot be reached.

mod common;

use common::fake_hub::{fresh_home, ondo, text, FakeHub, HubFile, Repo};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn tiny(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny-models")
        .join(rel)
}

const LLAMA: &str = "tiny-org/tiny-llama";
const LLAMA_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "model.safetensors",
];
const GGUF: &str = "tiny-org/tiny-GGUF";

fn llama_hub() -> FakeHub {
    FakeHub::serve_repo(Repo {
        id: LLAMA.into(),
        sha: "1111111111111111111111111111111111111111".into(),
        files: LLAMA_FILES
            .iter()
            .map(|f| HubFile::from_path(f, &tiny("llama-gqa").join(f)))
            .collect(),
    })
}

/// A GGUF repo of two "quants": the gpt2 fixture as Q8_0 and the gptneox one as F16, so the
/// architecture tells which file was picked.
fn gguf_hub() -> FakeHub {
    FakeHub::serve_repo(Repo {
        id: GGUF.into(),
        sha: "2222222222222222222222222222222222222222".into(),
        files: vec![
            HubFile::from_path("README.md", &tiny("README.md")),
            HubFile::from_path("tiny-Q8_0.gguf", &tiny("gpt2/model.gguf")),
            HubFile::from_path("tiny-F16.gguf", &tiny("gptneox/model.gguf")),
        ],
    })
}

fn rows(home: &Path) -> Vec<Value> {
    let out = ondo(&["models", "--json"], home, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    text(&out).0.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn blobs(home: &Path, repo: &str) -> usize {
    let dir = home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("blobs");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn pull_lists_and_removes_an_hf_model() {
    let home = fresh_home("models-hf");
    let hub = llama_hub();
    let env = [("HF_ENDPOINT", hub.endpoint())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = ondo(&["pull", LLAMA], &home, &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let snapshot = PathBuf::from(stdout.trim());
    assert!(snapshot.join("config.json").is_file(), "{stdout}");
    assert_eq!(blobs(&home, LLAMA), LLAMA_FILES.len());

    let listed = rows(&home);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let row = &listed[0];
    let size: u64 = LLAMA_FILES
        .iter()
        .map(|f| std::fs::metadata(tiny("llama-gqa").join(f)).unwrap().len())
        .sum();
    assert_eq!(row["id"], LLAMA);
    assert_eq!(row["arch"], "LlamaForCausalLM");
    assert_eq!(row["size"], size);
    assert_eq!(row["path"], snapshot.display().to_string());
    // `ls` is the same command, as a table.
    let table = text(&ondo(&["ls"], &home, &[])).0;
    assert!(table.starts_with("ID") && table.contains(LLAMA), "{table}");

    // A revision is refused: blobs are shared between revisions.
    let out = ondo(&["rm", &format!("{LLAMA}@main")], &home, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains(&format!("give {LLAMA}")), "{}", text(&out).1);
    assert!(snapshot.exists());
    let out = ondo(&["rm", LLAMA], &home, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(text(&out).0.contains(&format!("removed {LLAMA}")));
    assert!(!snapshot.exists());
    assert!(rows(&home).is_empty());
    let again = ondo(&["rm", LLAMA], &home, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).1.contains("is not in the HF cache"), "{}", text(&again).1);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_quant_picks_one_file_of_a_gguf_repo() {
    let home = fresh_home("models-quant");
    let mut hub = gguf_hub();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];

    // pull :F16 fetches only that file.
    let out = ondo(&["pull", &format!("{GGUF}:F16")], &home, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(text(&out).0.trim().ends_with("tiny-F16.gguf"), "{}", text(&out).0);
    assert_eq!(blobs(&home, GGUF), 1);
    let listed = rows(&home);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["arch"], &listed[0]["quant"]),
        (
            &Value::from(format!("{GGUF}:F16")),
            &Value::from("gptneox"),
            &Value::from("F16")
        )
    );

    // run :Q8_0 fetches the other one and runs it: the same text as the local file.
    let run = |model: &str, extra: &[&str]| {
        let mut args = vec!["run", model, "Hello", "--max-tokens", "4", "--temperature", "0"];
        args.extend(extra);
        ondo(&args, &home, &env)
    };
    let out = run(&format!("{GGUF}:Q8_0"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let local = run(tiny("gpt2/model.gguf").to_str().unwrap(), &[]);
    assert_eq!(text(&out).0, text(&local).0);
    let archs: Vec<Value> = rows(&home).iter().map(|r| r["arch"].clone()).collect();
    assert_eq!(
        archs,
        [Value::from("gptneox"), Value::from("gpt2")],
        "rows sorted by file name"
    );

    // An unknown quant names the ones there; no quant with several files and no Q4_K_M asks for one.
    let out = run(&format!("{GGUF}:Q2_K"), &[]);
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no GGUF file for quant Q2_K") && stderr.contains("Q8_0, F16"),
        "{stderr}"
    );
    let out = run(GGUF, &[]);
    assert!(
        text(&out).1.contains(&format!("pick one with {GGUF}:QUANT")),
        "{}",
        text(&out).1
    );

    // Hub gone: the cached quant runs offline.
    hub.stop();
    let out = run(&format!("{GGUF}:Q8_0"), &["--offline"]);
    assert_eq!((out.status.code(), text(&out).0), (Some(0), text(&local).0));

    // rm :Q8_0 removes that file and its blob only.
    let out = ondo(&["rm", &format!("{GGUF}:q8_0")], &home, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(blobs(&home, GGUF), 1);
    let ids: Vec<Value> = rows(&home).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [Value::from(format!("{GGUF}:F16"))]);
    let out = ondo(&["rm", &format!("{GGUF}:Q8_0")], &home, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("no GGUF file for quant Q8_0 (it has: F16)"),
        "{}",
        text(&out).1
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn pull_resumes_an_interrupted_download() {
    let home = fresh_home("models-resume");
    let hub = llama_hub();
    let weights = std::fs::read(tiny("llama-gqa/model.safetensors")).unwrap();
    let blobs = home.join("hub/models--tiny-org--tiny-llama/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let etag = common::fake_hub::etag("model.safetensors", &weights, 64);
    let half = weights.len() / 2;
    std::fs::write(blobs.join(format!("{etag}.incomplete")), &weights[..half]).unwrap();

    let out = ondo(&["pull", LLAMA], &home, &[("HF_ENDPOINT", &hub.endpoint())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let ranged = hub.ranged.lock().unwrap().clone();
    assert_eq!(
        ranged,
        [("model.safetensors".to_string(), half)],
        "resumed with Range from byte {half}"
    );
    assert_eq!(std::fs::read(blobs.join(&etag)).unwrap(), weights);
    assert!(!blobs.join(format!("{etag}.incomplete")).exists());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn pull_include_takes_only_the_matching_files() {
    let home = fresh_home("models-include");
    let hub = gguf_hub();
    let endpoint = hub.endpoint();
    let out = ondo(
        &["pull", GGUF, "--include", "*.md"],
        &home,
        &[("HF_ENDPOINT", &endpoint)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let dir = PathBuf::from(text(&out).0.trim());
    assert!(dir.join("README.md").is_file());
    assert_eq!(blobs(&home, GGUF), 1);
    let out = ondo(
        &["pull", GGUF, "--include", "*.bin"],
        &home,
        &[("HF_ENDPOINT", &endpoint)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("no file of tiny-org/tiny-GGUF matches *.bin"),
        "{}",
        text(&out).1
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn ondo_alone_and_run_without_a_model_print_the_start_guide() {
    let home = fresh_home("first-run");
    let out = ondo(&[], &home, &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("ondo pull HuggingFaceTB/SmolLM2-135M-Instruct"),
        "{stdout}"
    );
    assert!(stdout.lines().count() < 20, "{stdout}");
    let out = ondo(&["run"], &home, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("ondo run needs a MODEL") && stderr.contains("ondo pull "),
        "{stderr}"
    );
    assert!(!stderr.contains("required arguments were not provided"), "{stderr}");
    // Other usage errors stay clap's.
    let out = ondo(&["run", "m", "--no-such-flag"], &home, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--no-such-flag"));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn an_unreachable_hub_is_one_line_with_what_to_do() {
    let home = fresh_home("unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{closed}");
    let out = ondo(
        &["run", "some-org/some-model", "hi"],
        &home,
        &[("HF_ENDPOINT", &endpoint)],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the hub at {endpoint} (connection refused)")),
        "{stderr}"
    );
    assert!(stderr.contains(".gguf") && stderr.contains("--offline"), "{stderr}");
    let out = ondo(&["pull", "some-org/some-model"], &home, &[("HF_ENDPOINT", &endpoint)]);
    let (_, stderr) = text(&out);
    assert_eq!(
        (out.status.code(), stderr.trim().lines().count()),
        (Some(1), 1),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot reach the hub") && stderr.contains("`ondo pull` needs it"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
