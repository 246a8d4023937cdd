//! Structured outputs on real models: 34 JSON schemas (nested objects, arrays with bounds,
//! enums, required fields, string patterns, bounded numbers, anyOf, $ref, Korean values) on
//! SmolLM2-135M and Qwen2.5-Coder-1.5B at temperature 0 and 0.7, every output validated with
//! the `jsonschema` crate; the same prompts without the constraint fail validation at least
//! sometimes (so the constraint is what makes them pass). Regex and choice outputs match; an
//! unsupported schema keyword is an error naming it. The token-bytes bridge is checked on a
//! byte-level BPE and a SentencePiece vocabulary. Each run is one engine batch.

use ondo::{Llm, LoadOptions, SamplingParams};
use ondo_engine::{Event, FinishReason, NewRequest, RequestOutput, StructuredOutputs};
use serde_json::{json, Value};
use std::sync::OnceLock;

const SMOLLM2: &str = "smollm2-135m-instruct-q4_1.gguf";
const QWEN: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

fn load(name: &str) -> Option<Llm> {
    let path = ondo_testdata::fetched(name)?;
    let opts = LoadOptions {
        offline: true,
        ..Default::default()
    };
    Some(Llm::load(path.to_str().expect("utf-8 path"), &opts).expect("model loads"))
}

fn smollm2() -> Option<&'static Llm> {
    static LLM: OnceLock<Option<Llm>> = OnceLock::new();
    LLM.get_or_init(|| load(SMOLLM2)).as_ref()
}

fn qwen() -> Option<&'static Llm> {
    static LLM: OnceLock<Option<Llm>> = OnceLock::new();
    LLM.get_or_init(|| load(QWEN)).as_ref()
}

struct Case {
    prompt: String,
    schema: Value,
}

fn cases() -> Vec<Case> {
    let text = include_str!("structured/schemas.json");
    let list: Vec<Value> = serde_json::from_str(text).expect("schemas.json parses");
    list.into_iter()
        .map(|c| Case {
            prompt: c["prompt"].as_str().expect("prompt").to_string(),
            schema: c["schema"].clone(),
        })
        .collect()
}

/// The chat prompt of a case: the task and the schema, as a user would ask.
fn chat_ids(llm: &Llm, case: &Case) -> Vec<u32> {
    let ask = format!(
        "{} Answer only with JSON matching this schema: {}",
        case.prompt, case.schema
    );
    let text = llm
        .render_chat(
            &[json!({"role": "user", "content": ask})],
            &ondo_text::RenderOptions {
                add_generation_prompt: true,
                ..Default::default()
            },
        )
        .expect("template renders");
    llm.tokenizer().encode(&text, false).expect("tokenizes")
}

/// Submit every (prompt, params) at once (one engine batch) and wait for all outputs.
fn run_batch(llm: &Llm, jobs: Vec<(Vec<u32>, SamplingParams)>) -> Vec<RequestOutput> {
    let engine = llm.engine().expect("engine starts");
    let receivers: Vec<_> = jobs
        .into_iter()
        .map(|(prompt_ids, params)| {
            let req = NewRequest {
                id: String::new(),
                prompt: None,
                prompt_ids,
                params,
                stream: false,
                cancel: None,
            };
            engine.submit(req).expect("request accepted")
        })
        .collect();
    receivers
        .into_iter()
        .map(|mut rx| loop {
            match rx.blocking_recv().expect("engine answers") {
                Event::Done(out) => break *out,
                Event::Failed(e) => panic!("request failed: {e}"),
                Event::Delta { .. } => {}
            }
        })
        .collect()
}

fn params(temperature: f32, so: Option<StructuredOutputs>) -> SamplingParams {
    SamplingParams {
        temperature,
        seed: Some(11),
        max_tokens: Some(120),
        structured_outputs: so,
        ..Default::default()
    }
}

/// Whether `text` is JSON that validates against `schema`.
fn validates(schema: &Value, text: &str) -> bool {
    let validator = jsonschema::validator_for(schema).expect("test schemas are valid");
    serde_json::from_str::<Value>(text).is_ok_and(|v| validator.is_valid(&v))
}

/// Every constrained output validates (both temperatures); returns how many of the same
/// prompts fail validation without the constraint.
fn check_schemas(llm: &Llm, model: &str) -> usize {
    let cases = cases();
    assert!(cases.len() >= 30);
    let ids: Vec<Vec<u32>> = cases.iter().map(|c| chat_ids(llm, c)).collect();
    for temperature in [0.0, 0.7] {
        let jobs = cases
            .iter()
            .zip(&ids)
            .map(|(c, ids)| {
                (
                    ids.clone(),
                    params(temperature, Some(StructuredOutputs::json(c.schema.clone()))),
                )
            })
            .collect();
        for (case, out) in cases.iter().zip(run_batch(llm, jobs)) {
            let o = &out.outputs[0];
            assert!(
                validates(&case.schema, &o.text),
                "{model} t={temperature}: {:?} does not validate against {}",
                o.text,
                case.schema
            );
            assert_eq!(o.finish_reason, Some(FinishReason::Stop), "{model}: {:?}", o.text);
        }
    }
    let jobs = ids.iter().map(|ids| (ids.clone(), params(0.0, None))).collect();
    let free = run_batch(llm, jobs);
    let failures = cases
        .iter()
        .zip(&free)
        .filter(|(c, o)| !validates(&c.schema, &o.outputs[0].text))
        .count();
    println!(
        "{model}: {failures} of {} unconstrained outputs fail validation",
        cases.len()
    );
    failures
}

#[test]
fn json_schemas_always_validate_and_unconstrained_outputs_do_not() {
    let (Some(small), Some(qwen)) = (smollm2(), qwen()) else {
        return;
    };
    let failures = check_schemas(small, "SmolLM2") + check_schemas(qwen, "Qwen2.5-Coder-1.5B");
    assert!(
        failures > 0,
        "without the constraint every output validated: the test proves nothing"
    );
}

#[test]
fn regex_and_choice_outputs_match() {
    let Some(llm) = smollm2() else { return };
    let regexes = [
        r"[0-9]{3}-[0-9]{4}",
        r"(yes|no), because [a-z ]{5,20}\.",
        r"[A-Z][a-z]{2,8} [0-9]{1,2}",
        r"[가-힣]{2,5}",
        r"0x[0-9a-f]{4}",
    ];
    let choices = [
        vec!["positive", "negative", "neutral"],
        vec!["서울", "부산"],
        vec!["A", "B", "C", "D"],
    ];
    let prompt = |t: &str| llm.tokenizer().encode(t, true).expect("tokenizes");
    let mut jobs = vec![];
    for (i, rx) in regexes.iter().enumerate() {
        let so = StructuredOutputs {
            regex: Some(rx.to_string()),
            ..Default::default()
        };
        jobs.push((prompt(&format!("Example {i}:")), params(0.7, Some(so))));
    }
    for c in &choices {
        let so = StructuredOutputs {
            choice: Some(c.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        jobs.push((prompt("The review was great. Sentiment:"), params(0.7, Some(so))));
    }
    let outs = run_batch(llm, jobs);
    for (rx, out) in regexes.iter().zip(&outs) {
        let whole = regex::Regex::new(&format!("^(?:{rx})$")).expect("regex");
        assert!(
            whole.is_match(&out.outputs[0].text),
            "{:?} does not match {rx}",
            out.outputs[0].text
        );
    }
    for (c, out) in choices.iter().zip(&outs[regexes.len()..]) {
        assert!(
            c.contains(&out.outputs[0].text.as_str()),
            "{:?} is not one of {c:?}",
            out.outputs[0].text
        );
    }
}

#[test]
fn unsupported_schema_keywords_are_named() {
    let Some(llm) = smollm2() else { return };
    let engine = llm.engine().expect("engine");
    for (schema, keyword) in [
        (json!({"type": "array", "uniqueItems": true}), "uniqueItems"),
        (json!({"type": "object", "not": {"required": ["a"]}}), "not"),
    ] {
        let req = NewRequest {
            id: String::new(),
            prompt: None,
            prompt_ids: vec![1, 2, 3],
            params: params(0.0, Some(StructuredOutputs::json(schema))),
            stream: false,
            cancel: None,
        };
        let err = engine.submit(req).expect_err("unsupported keyword").to_string();
        assert!(
            err.contains(keyword) && err.contains("structured_outputs.json"),
            "{err}"
        );
    }
    let bad_regex = StructuredOutputs {
        regex: Some("(unclosed".into()),
        ..Default::default()
    };
    let req = NewRequest {
        id: String::new(),
        prompt: None,
        prompt_ids: vec![1, 2, 3],
        params: params(0.0, Some(bad_regex)),
        stream: false,
        cancel: None,
    };
    let err = engine.submit(req).expect_err("bad regex").to_string();
    assert!(err.contains("structured_outputs.regex"), "{err}");
}

/// The bytes llguidance sees for a text's tokens are the text's bytes, on a byte-level BPE
/// (SmolLM2, Qwen) and a SentencePiece (Gemma 3) vocabulary; special tokens are marked.
#[test]
fn token_bytes_spell_the_text() {
    let text = "Hello, world!\n  {\"이름\": \"서울\"} tabs\tand ünïcödé 123";
    let mut checked = 0;
    for name in [SMOLLM2, QWEN, GEMMA] {
        let Some(path) = ondo_testdata::fetched(name) else {
            continue;
        };
        let side = ondo_engine::load::load_text(&path).expect("text side loads");
        let tok = &side.tokenizer;
        let bytes = tok.token_bytes(tok.vocab_size());
        let ids = tok.encode(text, false).expect("encodes");
        let mut spelled: Vec<u8> = ids.iter().flat_map(|&id| bytes[id as usize].clone()).collect();
        if !tok.is_byte_level() && spelled.first() == Some(&b' ') {
            spelled.remove(0); // SentencePiece's added prefix space
        }
        assert_eq!(String::from_utf8_lossy(&spelled), text, "{name}");
        let eos = tok.eos_token_id().expect("eos");
        assert_eq!(bytes[eos as usize][0], ondo_text::SPECIAL_TOKEN_MARKER, "{name}");
        checked += 1;
    }
    if checked == 0 {
        println!("skipped: no test models fetched");
    }
}
