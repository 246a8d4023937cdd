//! SmolLM2-135M-Instruct from its HF folder (bf16 safetensors): greedy decoding equals
//! transformers' reference token for token, and the top-5 probabilities agree.

use ondo_model::{load_model, KvDtype, LogitsFor, SeqCache, Workspace};
use serde_json::Value;

use ondo_testdata::argmax;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn greedy_matches_transformers() {
    let Some(dir) = ondo_testdata::fetched("smollm2-135m-instruct-hf/model.safetensors") else {
        return;
    };
    let Some(refs) = ondo_testdata::shared("models/references/smollm2-135m-instruct.json") else {
        return;
    };
    let refs: Value = serde_json::from_str(&std::fs::read_to_string(refs).unwrap()).unwrap();
    let model = load_model(dir.parent().unwrap()).unwrap();
    let hp = model.hparams();
    for case in refs["transformers"]["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_token_ids"]);
        let expected = ids(&case["generated_token_ids"]);
        let mut kv = SeqCache::new(hp, 256, KvDtype::F32);
        let mut ws = Workspace::new(hp, 32);
        let mut logits = kv.forward(&*model, &prompt, &mut ws, LogitsFor::Last).unwrap().to_vec();
        let mut got = vec![];
        for (step, want) in expected.iter().enumerate() {
            let mut probs = logits.clone();
            ondo_kernels::ops::softmax(&mut probs);
            for pair in case["steps"][step]["top5"].as_array().unwrap() {
                let (id, p) = (pair[0].as_u64().unwrap() as usize, pair[1].as_f64().unwrap() as f32);
                assert!(
                    (probs[id] - p).abs() < 2e-3,
                    "step {step}: p({id}) = {} vs transformers {p}",
                    probs[id]
                );
            }
            let next = argmax(&logits);
            got.push(next);
            assert_eq!(next, *want, "step {step}: ids so far {got:?}");
            logits = kv.forward(&*model, &[next], &mut ws, LogitsFor::Last).unwrap().to_vec();
        }
    }
}
