//! Real GGUF models against llama.cpp's greedy references in ../shared/models.
//!
//! stories260K (all F32) must match token for token. Quantized models are compared the vLLM
//! way: identical until the first step where the two sides differ, where each side's token must
//! be in the other's top-5; comparing stops there.

use ondo_model::{load_model, KvDtype, LogitsFor, Model, SeqCache, Workspace};
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// The reference's top-5 of one step as (id, prob), from either JSON shape.
fn ref_top5(step: &Value) -> Vec<(u32, f32)> {
    step["top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e {
            Value::Array(p) => (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32),
            _ => (e["id"].as_u64().unwrap() as u32, e["prob"].as_f64().unwrap() as f32),
        })
        .collect()
}

fn top5(probs: &[f32]) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..probs.len() as u32).collect();
    idx.sort_by(|a, b| probs[*b as usize].total_cmp(&probs[*a as usize]));
    idx.truncate(5);
    idx
}

/// Greedy-decode `case` and compare with the reference. Returns the steps that matched exactly.
fn compare(model: &dyn Model, case: &Value, prob_tol: f32, exact: bool) -> usize {
    let prompt = ids(&case["prompt_token_ids"]);
    let expected = ids(&case["generated_token_ids"]);
    let hp = model.hparams();
    // f16 keys and values, as llama.cpp caches them.
    let mut kv = SeqCache::new(hp, prompt.len() + expected.len() + 1, KvDtype::F16);
    let mut ws = Workspace::new(hp, 16);
    let mut probs = kv.forward(model, &prompt, &mut ws, LogitsFor::Last).unwrap().to_vec();
    for (step, &want) in expected.iter().enumerate() {
        ondo_kernels::ops::softmax(&mut probs);
        let ours = top5(&probs);
        let theirs = ref_top5(&case["steps"][step]);
        if ours[0] != want {
            assert!(!exact, "step {step}: got {} expected {want}", ours[0]);
            assert!(
                theirs.iter().any(|(id, _)| *id == ours[0]),
                "step {step}: our {} not in reference top-5 {theirs:?}",
                ours[0]
            );
            assert!(
                ours.contains(&want),
                "step {step}: reference {want} not in our top-5 {ours:?}"
            );
            return step;
        }
        for (id, p) in theirs {
            let got = probs[id as usize];
            assert!(
                (got - p).abs() < prob_tol,
                "step {step}: p({id}) = {got}, reference {p}"
            );
        }
        probs = kv.forward(model, &[want], &mut ws, LogitsFor::Last).unwrap().to_vec();
    }
    expected.len()
}

fn load_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn stories260k_matches_llama_cpp_exactly() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let model = load_model(&dir.join("stories260K.gguf")).unwrap();
    let expected = load_json(&dir.join("expected.json"));
    for case in expected["cases"].as_array().unwrap() {
        // llama.cpp also rounds q and the attention weights to f16 in its f16-KV matmuls: probabilities
        // drift by up to ~1e-3 over 64 steps while every token stays identical.
        assert_eq!(compare(&*model, case, 2e-3, true), 64);
    }
}

/// `require_all`: the reference has no near-ties, so every step must match.
fn check_reference(model_file: &str, reference: &str, require_all: bool) {
    let Some(path) = ondo_testdata::fetched(model_file) else {
        return;
    };
    let Some(refs) = ondo_testdata::shared(reference) else {
        return;
    };
    let model = load_model(&path).unwrap();
    for case in load_json(&refs)["llama_cpp"]["cases"].as_array().unwrap() {
        let matched = compare(&*model, case, 0.1, false);
        eprintln!("{model_file} {:?}: {matched} steps identical", case["kind"]);
        let total = case["generated_token_ids"].as_array().unwrap().len();
        assert!(matched >= 1, "the first token already differs");
        assert!(
            !require_all || matched == total,
            "only {matched} of {total} steps matched"
        );
    }
}

#[test]
fn smollm2_q4_1_agrees_with_llama_cpp() {
    check_reference(
        "smollm2-135m-instruct-q4_1.gguf",
        "models/references/smollm2-135m-instruct.json",
        false,
    );
}

#[test]
fn gemma3_q4_k_m_agrees_with_llama_cpp() {
    check_reference("gemma-3-270m-q4_k_m.gguf", "models/references/gemma-3-270m.json", false);
}

#[test]
fn qwen2_5_q4_k_m_agrees_with_llama_cpp() {
    check_reference(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "models/references/qwen2.5-coder-1.5b-instruct.json",
        true,
    );
}
