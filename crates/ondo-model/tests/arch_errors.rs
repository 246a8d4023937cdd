//! Bad architecture inputs are clear errors, never panics: an unknown `model_type` or GGUF
//! architecture lists the supported ones, a checkpoint missing an architecture's own tensor names
//! it, a config field of the wrong type names the file and the field (also under the
//! architecture's own key spelling), and a rotary dimension past head_dim is refused at load.
//! Uses the committed tiny fixtures (no ../shared).

use ondo_model::config::hparams_from_hf;
use ondo_model::gguf::GgufFile;
use ondo_model::gguf_model::hparams_from_gguf;
use ondo_model::load_model;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny-models")
        .join(name)
}

fn config(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("config.json")).unwrap()).unwrap()
}

fn hf_err(json: &Value) -> String {
    hparams_from_hf(Path::new("/m/config.json"), json)
        .unwrap_err()
        .to_string()
}

/// A scratch folder with the fixture's files, removed on drop.
struct Scratch(PathBuf);
impl Scratch {
    fn copy_of(name: &str, tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ondo-arch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(fixture(name)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        Scratch(dir)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unknown_model_type_lists_supported_ones() {
    let e = hf_err(&json!({"model_type": "mamba", "hidden_size": 8}));
    for want in ["mamba", "gpt2", "gpt_neox", "gemma2", "llama"] {
        assert!(e.contains(want), "{want} missing from: {e}");
    }
    let e = hf_err(&json!({"architectures": ["MambaForCausalLM"]}));
    for want in [
        "MambaForCausalLM",
        "GPT2LMHeadModel",
        "GPTNeoXForCausalLM",
        "Gemma2ForCausalLM",
    ] {
        assert!(e.contains(want), "{want} missing from: {e}");
    }
}

#[test]
fn unknown_gguf_arch_lists_supported_ones() {
    let mut bytes = std::fs::read(fixture("gpt2").join("model.gguf")).unwrap();
    // "gpt2" as the value of general.architecture -> "xyz9" (same length)
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // type u32, length u64, then the string
    let value = at + 4 + 8;
    assert_eq!(&bytes[value..value + 4], b"gpt2");
    bytes[value..value + 4].copy_from_slice(b"xyz9");
    let g = GgufFile::from_vec("bad.gguf", bytes).unwrap();
    let e = hparams_from_gguf(&g).unwrap_err().to_string();
    for want in ["xyz9", "gpt2", "gptneox", "gemma2", "llama"] {
        assert!(e.contains(want), "{want} missing from: {e}");
    }
}

#[test]
fn wrong_typed_field_names_file_and_field() {
    let mut c = config("gpt2");
    c["n_embd"] = json!("32");
    let e = hf_err(&c);
    assert!(e.contains("/m/config.json") && e.contains("`n_embd`"), "{e}");
    let mut c = config("gptneox");
    c["use_parallel_residual"] = json!("yes");
    let e = hf_err(&c);
    assert!(
        e.contains("`use_parallel_residual`") && e.contains("true or false"),
        "{e}"
    );
    let mut c = config("gemma2");
    c["layer_types"] = json!("sliding");
    assert!(hf_err(&c).contains("`layer_types`"));
    // a bad value is named as the file spells it
    let mut c = config("gpt2");
    c["n_embd"] = json!(0);
    let e = hf_err(&c);
    assert!(e.contains("`n_embd`") && e.contains("0"), "{e}");
}

#[test]
fn rotary_dim_past_head_dim_is_an_error() {
    let mut c = config("llama-gqa");
    c["partial_rotary_factor"] = json!(2.0);
    let e = hf_err(&c);
    assert!(e.contains("rotary") && e.contains("head_dim"), "{e}");
}

#[test]
fn refused_gpt2_option_is_named() {
    let mut c = config("gpt2");
    c["scale_attn_by_inverse_layer_idx"] = json!(true);
    assert!(hf_err(&c).contains("`scale_attn_by_inverse_layer_idx`"));
}

#[test]
fn missing_arch_specific_tensor_is_named() {
    let scratch = Scratch::copy_of("gpt2", "missing");
    let path = scratch.0.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| n != "wpe.weight").collect();
    assert_eq!(kept.len() + 1, st.len(), "the fixture has wpe.weight");
    let out = safetensors::serialize(kept, None).unwrap();
    std::fs::write(&path, out).unwrap();
    let e = match load_model(&scratch.0) {
        Ok(_) => panic!("loaded without its position embeddings"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("wpe.weight") && e.contains("missing"), "{e}");
}
