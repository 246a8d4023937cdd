//! `ondo quantize` on bad input: a truncated source, an unknown `--type`, an architecture that
//! cannot be exported, an output that cannot be written. Each is a clean failure naming what is
//! wrong, and no output (not even a partial one) is left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny-models")
        .join(name)
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ondo-cli-quantize-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `ondo quantize SRC OUT --type T`; return (exit code, stderr).
fn quantize(src: &Path, out: &Path, scheme: &str) -> (Option<i32>, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args([
            "quantize",
            src.to_str().unwrap(),
            out.to_str().unwrap(),
            "--type",
            scheme,
            "-q",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (run.status.code(), stderr)
}

fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} was left behind", out.display());
    let partial = ondo::model::gguf_write::partial_path(out);
    assert!(!partial.exists(), "{} was left behind", partial.display());
}

#[test]
fn a_good_source_is_written_and_reads_back() {
    let dir = scratch("good");
    let out = dir.join("m.gguf");
    let (code, stderr) = quantize(&fixture("llama-gqa"), &out, "q8_0");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Q8_0"), "{stderr}");
    ondo::model::gguf::GgufFile::open(&out).unwrap();
}

#[test]
fn a_truncated_safetensors_file_is_refused_before_anything_is_written() {
    let dir = scratch("truncated");
    let src = dir.join("model");
    std::fs::create_dir_all(&src).unwrap();
    for entry in std::fs::read_dir(fixture("llama-gqa")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, src.join(path.file_name().unwrap())).unwrap();
    }
    let weights = src.join("model.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = dir.join("m.gguf");
    let (code, stderr) = quantize(&src, &out, "q4_k_m");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("model.safetensors") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert_nothing_written(&out);
}

#[test]
fn a_truncated_gguf_is_refused() {
    let dir = scratch("truncated-gguf");
    let src = dir.join("src.gguf");
    let bytes = std::fs::read(fixture("gptneox").join("model.gguf")).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = dir.join("m.gguf");
    let (code, stderr) = quantize(&src, &out, "q8_0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("src.gguf"), "{stderr}");
    assert_nothing_written(&out);
}

#[test]
fn an_unknown_type_is_refused_with_the_supported_list() {
    let dir = scratch("type");
    let out = dir.join("m.gguf");
    let (code, stderr) = quantize(&fixture("llama-gqa"), &out, "q7_k");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("q7_k") && stderr.contains("q4_k_m") && stderr.contains("--type"),
        "{stderr}"
    );
    assert_nothing_written(&out);
}

#[test]
fn an_architecture_without_a_gguf_export_is_refused() {
    let dir = scratch("arch");
    let out = dir.join("m.gguf");
    let (code, stderr) = quantize(&fixture("gpt2"), &out, "q8_0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("GPT2LMHeadModel") && stderr.contains("LlamaForCausalLM"),
        "{stderr}"
    );
    assert_nothing_written(&out);
}

#[test]
fn an_output_that_cannot_be_written_is_an_error_naming_it() {
    let dir = scratch("unwritable");
    let out = dir.join("no-such-folder").join("m.gguf");
    let (code, stderr) = quantize(&fixture("llama-gqa"), &out, "q8_0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-folder/m.gguf"), "{stderr}");
    assert_nothing_written(&out);
}

#[test]
fn quantize_at_load_runs_and_prints_the_load_time() {
    let run = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args([
            "generate",
            fixture("llama-gqa").to_str().unwrap(),
            "--prompt-ids",
            "1,2,3",
        ])
        .args(["--max-tokens", "4", "--temperature", "0", "--quantize", "q8_0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("quantized to q8_0 in"), "{stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(["run", fixture("llama-gqa").to_str().unwrap(), "hi", "--quantize", "q9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("q9") && stderr.contains("q4_k_m"), "{stderr}");
}
