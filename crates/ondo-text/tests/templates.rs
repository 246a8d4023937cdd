//! Chat templates against outside references:
//! - huggingface.js' jinja end-to-end cases (53 real and legacy templates with expected renders);
//! - goldens made by transformers itself (`tools/make_template_goldens.py` → fixtures/templates/)
//!   for the llama.cpp template collections, with Korean, multi-turn and system prompts.

use std::path::Path;

use ondo_text::template::{ChatTemplate, DateTime, RenderOptions, TemplateError};
use serde_json::{Map, Value};

/// hfjs cases we cannot match, with the reason. The test fails if one of these starts passing.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "MadeAgents/Hammer2.1",
    "`tools | string`: the target is JavaScript's JSON-like text; Python's jinja2 (and so \
     transformers, and ondo) prints the list as Python repr `[{'type': 'function', ...`",
)];

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Drops the values that stand for JavaScript `undefined` (`{"__undefined__": true}`).
fn without_undefined(data: &Map<String, Value>) -> Map<String, Value> {
    data.iter()
        .filter(|(_, v)| v.get("__undefined__") != Some(&Value::Bool(true)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A readable account of where two renders part.
fn diff(want: &str, got: &str) -> String {
    let at = want.chars().zip(got.chars()).take_while(|(a, b)| a == b).count();
    let byte_w = want.char_indices().nth(at).map_or(want.len(), |(i, _)| i);
    let byte_g = got.char_indices().nth(at).map_or(got.len(), |(i, _)| i);
    let from = want[..byte_w].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    format!(
        "first difference at char {at}\n  common: {:?}\n  want:   {:?}\n  got:    {:?}",
        &want[from..byte_w],
        want[byte_w..].chars().take(80).collect::<String>(),
        got[byte_g..].chars().take(80).collect::<String>(),
    )
}

fn render_case(case: &Value, now: DateTime) -> Result<String, TemplateError> {
    let source = case["chat_template"].as_str().unwrap_or_default();
    let template = ChatTemplate::new(source, None, None)?;
    let data = case["data"].as_object().cloned().unwrap_or_default();
    template.render_context(&without_undefined(&data), Some(now))
}

#[test]
fn hfjs_e2e_cases_render_exactly() {
    let Some(path) = ondo_testdata::shared("models/chat-templates/hfjs_jinja_e2e_cases.json") else {
        return;
    };
    let doc = load_json(&path);
    let now = doc["mock_date"].as_str().and_then(DateTime::parse).expect("mock_date");
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 53);
    let mut failures = Vec::new();
    let mut surprises = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let want = case["target"].as_str().unwrap_or_default();
        let known = KNOWN_DIFFERENCES.iter().any(|(n, _)| *n == name);
        match (render_case(case, now), known) {
            (Ok(got), false) if got == want => {}
            (Ok(got), true) if got == want => surprises.push(name.to_string()),
            (_, true) => {}
            (Ok(got), false) => failures.push(format!("{name}: {}", diff(want, &got))),
            (Err(e), false) => failures.push(format!("{name}: error {e}")),
        }
    }
    assert!(
        failures.is_empty() && surprises.is_empty(),
        "{} of {} cases differ:\n{}\nnow passing, remove from KNOWN_DIFFERENCES: {surprises:?}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Goldens made by `tools/make_template_goldens.py` (transformers' own renders).
fn fixture(name: &str) -> Value {
    load_json(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/templates")
            .join(name),
    )
}

/// Does ondo's result agree with a transformers golden record ({expected} or {error, raised_by_template})?
fn check_golden(record: &Value, got: Result<String, TemplateError>) -> Result<(), String> {
    match (record.get("expected").and_then(Value::as_str), got) {
        (Some(want), Ok(got)) if want == got => Ok(()),
        (Some(want), Ok(got)) => Err(diff(want, &got)),
        (Some(_), Err(e)) => Err(format!("error {e}")),
        (None, got) => {
            let want = record["error"].as_str().unwrap_or_default();
            match (record["raised_by_template"].as_bool() == Some(true), got) {
                (true, Err(TemplateError::Raised(m))) if m == want => Ok(()),
                (false, Err(_)) => Ok(()),
                (_, Err(e)) => Err(format!("transformers raised {want:?}, ondo raised {e:?}")),
                (_, Ok(got)) => Err(format!("transformers raised {want:?}, ondo rendered {got:?}")),
            }
        }
    }
}

/// The same 53 templates rendered by transformers' jinja2 environment: here every case must match,
/// including the ones where huggingface.js' targets and Python disagree.
#[test]
fn hfjs_cases_render_as_transformers_does() {
    let Some(path) = ondo_testdata::shared("models/chat-templates/hfjs_jinja_e2e_cases.json") else {
        return;
    };
    let doc = load_json(&path);
    let goldens = fixture("hfjs_transformers.json");
    let now = goldens["now"].as_str().and_then(DateTime::parse).expect("now");
    let cases = doc["cases"].as_array().expect("cases");
    let records = goldens["cases"].as_array().expect("golden cases");
    assert_eq!(cases.len(), records.len());
    let failures: Vec<String> = cases
        .iter()
        .zip(records)
        .filter_map(|(case, record)| {
            assert_eq!(case["name"], record["name"]);
            let name = record["name"].as_str().unwrap_or("?");
            check_golden(record, render_case(case, now))
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} differ from transformers:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// (template file, conversation, reason) pairs that ondo cannot render as transformers does.
const GOLDEN_KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "llamacpp-templates-2026/meetkai-functionary-medium-v3.1.jinja",
    "tools",
    "`\"...\"|safe + t[\"function\"] | tojson`: in jinja2 a Markup string plus a plain one \
     HTML-escapes the plain one (`\"` becomes `&#34;` in transformers' prompt); minijinja's `+` \
     does not escape, and has no hook to make it",
)];

/// Every llama.cpp template × every conversation in the goldens, compared with transformers.
#[test]
fn llamacpp_templates_render_as_transformers_does() {
    let goldens = fixture("transformers_goldens.json");
    let now = goldens["now"].as_str().and_then(DateTime::parse).expect("now");
    let bos = goldens["bos_token"].as_str();
    let eos = goldens["eos_token"].as_str();
    let conversations = goldens["conversations"].as_object().expect("conversations");
    let cases = goldens["cases"].as_array().expect("cases");
    assert!(cases.len() > 600, "goldens cover all templates");
    let mut failures = Vec::new();
    let mut surprises = Vec::new();
    for case in cases {
        let file = case["template"].as_str().unwrap_or_default();
        let conv_name = case["conversation"].as_str().unwrap_or_default();
        let Some(path) = ondo_testdata::shared(file) else {
            return;
        };
        let conv = &conversations[conv_name];
        let got = ChatTemplate::from_file(&path, bos, eos).and_then(|t| {
            t.render(
                conv["messages"].as_array().map_or(&[][..], Vec::as_slice),
                &options(&conv["options"], now),
            )
        });
        let known = GOLDEN_KNOWN_DIFFERENCES
            .iter()
            .any(|(t, c, _)| file.ends_with(t) && *c == conv_name);
        match (check_golden(case, got), known) {
            (Ok(()), true) => surprises.push(format!("{file} × {conv_name}")),
            (Ok(()), false) | (Err(_), true) => {}
            (Err(e), false) => failures.push(format!("{file} × {conv_name}: {e}")),
        }
    }
    assert!(
        failures.is_empty() && surprises.is_empty(),
        "{} of {} renders differ from transformers:\n{}\nnow passing, remove from GOLDEN_KNOWN_DIFFERENCES: {surprises:?}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn options(opts: &Value, now: DateTime) -> RenderOptions {
    let list = |key: &str| opts.get(key).and_then(Value::as_array).cloned();
    RenderOptions {
        add_generation_prompt: opts["add_generation_prompt"].as_bool().unwrap_or(false),
        continue_final_message: opts["continue_final_message"].as_bool().unwrap_or(false),
        tools: list("tools"),
        documents: list("documents"),
        now: Some(now),
        extra: opts
            .get("extra")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

/// Real model folders: `from_tokenizer_config` + `render` equal transformers'
/// `AutoTokenizer.apply_chat_template(..., tokenize=False)`.
#[test]
fn tokenizer_config_templates_render_as_apply_chat_template_does() {
    let goldens = fixture("tokenizer_goldens.json");
    let now = goldens["now"].as_str().and_then(DateTime::parse).expect("now");
    let conversations = goldens["conversations"].as_object().expect("conversations");
    let cases = goldens["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let model = case["model"].as_str().unwrap_or_default();
        let conv_name = case["conversation"].as_str().unwrap_or_default();
        let Some(dir) = ondo_testdata::shared(model) else {
            return;
        };
        let config = load_json(&dir.join("tokenizer_config.json"));
        let template = ChatTemplate::from_tokenizer_config(&config, None)
            .expect("template loads")
            .expect("model has a template");
        let conv = &conversations[conv_name];
        let messages = conv["messages"].as_array().map_or(&[][..], Vec::as_slice);
        if let Err(e) = check_golden(case, template.render(messages, &options(&conv["options"], now))) {
            failures.push(format!("{model} × {conv_name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
