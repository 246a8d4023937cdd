//! The tiny random-weight checkpoints of fixtures/tiny-models (made by tools/make_fixtures.py
//! with transformers) against transformers' golden outputs: tokenization, prompt logprobs within
//! 1e-4, greedy tokens and text equal. Covers llama (GQA, llama3 rope, tied), llama with biases
//! and an explicit head_dim (linear rope), mistral (sliding window), qwen2, bf16 / f16 weights
//! and sharded safetensors, Gemma 3, Gemma 2 (softcaps, alternating window smaller than the
//! prompts), GPT-2 (Conv1D, learned positions, old checkpoint names), GPT-NeoX (rotary_pct
//! 0.25, parallel residual), EXAONE 3.5 (GQA, llama3 rope, its own names; goldens from
//! transformers' Llama on the same weights) and Phi-3 (longrope past its original context, fused q/k/v and
//! gate/up, window); the new five also from their GGUF twins. Their prompts include
//! code and a 200+-token prompt.

use ondo::{Llm, LoadOptions, Prompt, SamplingParams};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-models")).join(name)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn check_model(name: &str) {
    check_files(name, &fixture(name), None);
}

/// Twins llama.cpp (c392e50, tools/make_llamacpp_greedy.py) cannot run, so they have no
/// llamacpp_golden.json.
const LLAMACPP_CANNOT_RUN: &[(&str, &str)] = &[(
    "gemma2",
    "c392e50 picks Gemma 2's query scale by layer count (26, 42 or 46 layers) and aborts on others",
)];

/// The fixture's GGUF twin (same weights, llama.cpp's layout) against the same goldens, with an
/// f32 KV cache as the HF side has; then against llama.cpp's own greedy tokens and prompt
/// tokenization on the same file (llamacpp_golden.json).
fn check_gguf_twin(name: &str) {
    let ran = check_files(name, &fixture(name).join("model.gguf"), Some(ondo::model::KvDtype::F32));
    let path = fixture(name).join("llamacpp_golden.json");
    if let Some((_, why)) = LLAMACPP_CANNOT_RUN.iter().find(|(n, _)| *n == name) {
        assert!(
            !path.exists(),
            "{name}: llama.cpp goldens exist now; drop it from LLAMACPP_CANNOT_RUN"
        );
        eprintln!("{name}: no llama.cpp goldens ({why})");
        return;
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), ran.len(), "{name}: llama.cpp cases");
    for (i, (case, (prompt_ids, greedy))) in cases.iter().zip(&ran).enumerate() {
        if !case["prompt_token_ids"].is_null() {
            assert_eq!(
                prompt_ids,
                &ids(&case["prompt_token_ids"]),
                "{name} case {i}: llama.cpp tokenization"
            );
        }
        assert_eq!(
            greedy,
            &ids(&case["greedy_token_ids"]),
            "{name} case {i}: llama.cpp greedy ids"
        );
    }
}

/// Checks one model against golden.json; returns, per case, the prompt ids and greedy ids ondo used.
fn check_files(
    name: &str,
    path: &std::path::Path,
    kv_dtype: Option<ondo::model::KvDtype>,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    let dir = fixture(name);
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let llm = Llm::load(
        path.to_str().unwrap(),
        &LoadOptions {
            offline: true,
            threads: Some(1),
            kv_dtype,
            ..Default::default()
        },
    )
    .unwrap();
    let mut ran = Vec::new();
    for (i, case) in golden["cases"].as_array().unwrap().iter().enumerate() {
        let want_ids = ids(&case["prompt_token_ids"]);
        let prompt = match case["prompt"].as_str() {
            Some(text) => Prompt::Text(text.into()),
            None => Prompt::Ids(want_ids.clone()),
        };
        let prompt_ids = llm.prompt_ids(&prompt).unwrap();
        assert_eq!(prompt_ids, want_ids, "{name} case {i}: tokenization");
        let greedy = ids(&case["greedy_token_ids"]);
        let params = SamplingParams {
            temperature: 0.0,
            max_tokens: Some(greedy.len()),
            ignore_eos: true,
            prompt_logprobs: Some(5),
            logprobs: Some(1),
            ..Default::default()
        };
        let out = llm.generate(&[prompt], &params).unwrap().remove(0);
        compare_prompt_logprobs(name, i, &out.prompt_logprobs.unwrap(), &case["prompt_logprobs"]);
        let o = &out.outputs[0];
        assert_eq!(o.token_ids, greedy, "{name} case {i}: greedy ids");
        let want_text = case["greedy_text"].as_str().unwrap();
        // A GGUF SentencePiece vocabulary decodes an invalid byte-fallback run keeping its valid
        // bytes, where tokenizers' ByteFallback replaces every byte of the run with U+FFFD: only
        // text without such runs is compared for the GGUF twins.
        let gguf = path.extension().is_some_and(|e| e == "gguf");
        if !(gguf && want_text.contains('\u{FFFD}')) {
            assert_eq!(
                llm.tokenizer().decode(&o.token_ids, true).unwrap(),
                want_text,
                "{name} case {i}: decode"
            );
        }
        // Streamed text is decoded token by token; random weights may emit invalid UTF-8 byte
        // runs, which a whole-sequence decode turns into U+FFFD differently. Elsewhere it must agree.
        if !want_text.contains('\u{FFFD}') {
            assert_eq!(o.text, want_text, "{name} case {i}: greedy text");
        }
        for (step, (map, want)) in o
            .logprobs
            .as_ref()
            .unwrap()
            .iter()
            .zip(case["greedy_logprobs"].as_array().unwrap())
            .enumerate()
        {
            let got = map[&greedy[step]];
            let want = want.as_f64().unwrap() as f32;
            assert!(
                (got - want).abs() < 1e-4,
                "{name} case {i} step {step}: logprob {got} vs {want}"
            );
        }
        ran.push((prompt_ids, o.token_ids.clone()));
    }
    ran
}

/// Every logprob transformers reported must match ours within 1e-4 (top-5 sets may differ at
/// near-ties in 5th place, so compare by id).
fn compare_prompt_logprobs(
    name: &str,
    case: usize,
    ours: &[Option<std::collections::BTreeMap<u32, f32>>],
    golden: &Value,
) {
    let golden = golden.as_array().unwrap();
    assert_eq!(ours.len(), golden.len(), "{name} case {case}: prompt_logprobs length");
    assert!(ours[0].is_none() && golden[0].is_null());
    for (pos, (o, g)) in ours.iter().zip(golden).enumerate().skip(1) {
        let o = o.as_ref().unwrap();
        for (id, lp) in g.as_object().unwrap() {
            let id: u32 = id.parse().unwrap();
            let want = lp.as_f64().unwrap() as f32;
            let got = o.get(&id).copied();
            match got {
                Some(got) => assert!(
                    (got - want).abs() < 1e-4,
                    "{name} case {case} pos {pos} id {id}: {got} vs {want}"
                ),
                None => panic!("{name} case {case} pos {pos}: id {id} (logprob {want}) missing from ours {o:?}"),
            }
        }
    }
}

#[test]
fn llama_gqa_llama3_rope_tied() {
    check_model("llama-gqa");
}

#[test]
fn llama_bias_explicit_head_dim_linear_rope() {
    check_model("llama-bias-headdim");
}

#[test]
fn mistral_sliding_window() {
    check_model("mistral");
}

#[test]
fn qwen2_qkv_bias() {
    check_model("qwen2");
}

#[test]
fn llama_bf16_weights() {
    check_model("llama-bf16");
}

#[test]
fn llama_f16_weights() {
    check_model("llama-f16");
}

#[test]
fn llama_sharded_safetensors() {
    check_model("llama-sharded");
}

#[test]
fn gemma3_hf() {
    check_model("gemma3");
}

#[test]
fn gemma2_softcaps_alternating_window() {
    check_model("gemma2");
}

#[test]
fn gemma2_gguf() {
    check_gguf_twin("gemma2");
}

#[test]
fn gpt2_conv1d_learned_positions_old_names() {
    check_model("gpt2");
}

#[test]
fn gpt2_gguf() {
    check_gguf_twin("gpt2");
}

#[test]
fn gptneox_partial_rotary_parallel_residual() {
    check_model("gptneox");
}

#[test]
fn gptneox_gguf() {
    check_gguf_twin("gptneox");
}

#[test]
fn phi3_longrope_past_original_context_fused_qkv() {
    check_model("phi3");
}

#[test]
fn phi3_gguf() {
    check_gguf_twin("phi3");
}

fn load(path: &std::path::Path) -> Llm {
    Llm::load(
        path.to_str().unwrap(),
        &LoadOptions {
            offline: true,
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Gemma 2's template renders the golden conversation as transformers did (from the folder and
/// from the GGUF's `tokenizer.chat_template`), and its `raise_exception` for a system turn
/// surfaces as an error carrying the template's message.
#[test]
fn gemma2_chat_template_and_system_role_error() {
    let dir = fixture("gemma2");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let chat = &golden["chat"];
    let messages = chat["messages"].as_array().unwrap().clone();
    let opts = ondo::text::RenderOptions {
        add_generation_prompt: true,
        ..Default::default()
    };
    for path in [dir.clone(), dir.join("model.gguf")] {
        let llm = load(&path);
        let rendered = llm.render_chat(&messages, &opts).unwrap();
        assert_eq!(rendered, chat["rendered"].as_str().unwrap(), "{path:?}");
        let mut with_system = vec![serde_json::json!({"role": "system", "content": "Be brief."})];
        with_system.extend(messages.iter().cloned());
        let e = llm.render_chat(&with_system, &opts).unwrap_err().to_string();
        assert!(e.contains("System role not supported"), "{path:?}: {e}");
    }
}

/// GPT-2 and GPT-NeoX ship no chat template: plain completion works (the goldens above), chat
/// is a clear error naming the missing template.
#[test]
fn no_template_models_give_a_clear_chat_error() {
    for name in ["gpt2", "gptneox"] {
        let llm = load(&fixture(name));
        let msgs = [serde_json::json!({"role": "user", "content": "hi"})];
        let params = SamplingParams {
            max_tokens: Some(2),
            ..Default::default()
        };
        let e = llm.chat(&msgs, &params, &mut |_, _| true).unwrap_err();
        assert!(e.to_string().contains("chat template"), "{name}: {e}");
    }
}

#[test]
fn exaone_gqa_llama3_rope_own_names() {
    check_model("exaone");
}

#[test]
fn exaone_gguf() {
    check_gguf_twin("exaone");
}
