//! Bad model files and prompts through the `ondo` binary: each gives a clear error naming the
//! file, tensor or field, a non-zero exit, and no panic.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch copy of the llama-gqa fixture that a test may damage.
fn scratch_model(test: &str) -> PathBuf {
    let src = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tiny-models/llama-gqa"
    ));
    let dir = std::env::temp_dir().join(format!("ondo-bad-input-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Run `ondo generate MODEL --prompt-ids 1,2,3`; return stderr after checking the exit was a
/// clean failure (code 1, not a panic's 101).
fn fails(model: &Path, extra: &[&str]) -> String {
    let prompt: &[&str] = if extra.contains(&"--prompt-ids") {
        &[]
    } else {
        &["--prompt-ids", "1,2,3"]
    };
    let out = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(["generate", model.to_str().unwrap(), "--max-tokens", "2"])
        .args(prompt)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean failure, got {:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Rewrite model.safetensors with `f` applied to its header (a JSON object of tensor infos).
fn edit_safetensors(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    f(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    while !(8 + text.len()).is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn missing_model_path() {
    let err = fails(Path::new("/nonexistent/model-dir"), &[]);
    assert!(err.contains("/nonexistent/model-dir"), "{err}");
}

#[test]
fn missing_config_json() {
    let dir = scratch_model("no-config");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let err = fails(&dir, &[]);
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn invalid_json_in_config() {
    let dir = scratch_model("bad-json");
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 32,").unwrap();
    let err = fails(&dir, &[]);
    assert!(err.contains("config.json") && err.contains("invalid JSON"), "{err}");
}

#[test]
fn unknown_architecture() {
    let dir = scratch_model("unknown-arch");
    edit_config(&dir, |c| c["architectures"] = serde_json::json!(["FooForCausalLM"]));
    let err = fails(&dir, &[]);
    assert!(err.contains("FooForCausalLM") && err.contains("config.json"), "{err}");
}

#[test]
fn unknown_model_type_without_architectures() {
    let dir = scratch_model("unknown-type");
    edit_config(&dir, |c| {
        c.as_object_mut().unwrap().remove("architectures");
        c["model_type"] = serde_json::json!("bert");
    });
    let err = fails(&dir, &[]);
    assert!(err.contains("bert"), "{err}");
}

#[test]
fn config_field_of_wrong_type() {
    let dir = scratch_model("field-type");
    edit_config(&dir, |c| c["num_attention_heads"] = serde_json::json!("four"));
    let err = fails(&dir, &[]);
    assert!(err.contains("num_attention_heads"), "{err}");
}

#[test]
fn missing_tensor() {
    let dir = scratch_model("missing-tensor");
    edit_safetensors(&dir, |h| {
        // Renamed, so the data stays where the file's offsets expect it.
        let t = h.remove("model.layers.1.mlp.up_proj.weight").unwrap();
        h.insert("model.layers.1.mlp.up_proj.renamed".into(), t);
    });
    let err = fails(&dir, &[]);
    assert!(
        err.contains("model.layers.1.mlp.up_proj.weight") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn tensor_with_wrong_shape() {
    let dir = scratch_model("wrong-shape");
    edit_safetensors(&dir, |h| {
        let t = h.get_mut("model.layers.0.self_attn.o_proj.weight").unwrap();
        let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
        t["shape"] = serde_json::json!([shape[1], shape[0]]);
        if shape[0] == shape[1] {
            t["shape"] = serde_json::json!([shape[0] / 2, shape[1] * 2]);
        }
    });
    let err = fails(&dir, &[]);
    assert!(
        err.contains("model.layers.0.self_attn.o_proj.weight") && err.contains("shape"),
        "{err}"
    );
}

#[test]
fn tensor_with_unsupported_dtype() {
    let dir = scratch_model("wrong-dtype");
    edit_safetensors(&dir, |h| {
        let t = h.get_mut("model.norm.weight").unwrap();
        t["dtype"] = serde_json::json!("I32");
    });
    let err = fails(&dir, &[]);
    assert!(err.contains("model.norm.weight") && err.contains("I32"), "{err}");
}

#[test]
fn truncated_safetensors() {
    let dir = scratch_model("truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&dir, &[]);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn corrupted_safetensors_header() {
    let dir = scratch_model("corrupt");
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..24].copy_from_slice(b"this is garbage!");
    std::fs::write(&path, &bytes).unwrap();
    let err = fails(&dir, &[]);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn prompt_longer_than_the_context() {
    let dir = scratch_model("long-prompt");
    edit_config(&dir, |c| c["max_position_embeddings"] = serde_json::json!(8));
    let ids: Vec<String> = (0..20).map(|i| (i % 100 + 5).to_string()).collect();
    let err = fails(&dir, &["--prompt-ids", &ids.join(",")]);
    assert!(
        err.contains("20 tokens") && err.contains("max_position_embeddings"),
        "{err}"
    );
}
