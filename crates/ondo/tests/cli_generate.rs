//! `ondo generate` through the real binary on the tiny llama-gqa fixture: JSONL prompt files
//! (text, token ids, per-prompt sampling fields) printed as vLLM RequestOutputs, bad lines named
//! by file:line and field, and the sampling flags `--logprobs-mode` and `--allowed-token-ids`.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn model() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-models/llama-gqa").to_string()
}

fn ondo_generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ondo"))
        .arg("generate")
        .arg(model())
        .args(args)
        .output()
        .unwrap()
}

/// The JSON lines of a successful `ondo generate ... --json`.
fn outputs(args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ondo_generate(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// stderr of a clean failure (exit 1, no panic).
fn fails(args: &[&str]) -> String {
    let out = ondo_generate(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail cleanly: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn jsonl(test: &str, lines: &[&str]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ondo-cli-generate-{}-{test}.jsonl", std::process::id()));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn jsonl_prompts_give_one_request_output_per_line() {
    let file = jsonl(
        "ok",
        &[
            r#"{"prompt": "Hello"}"#,
            r#"{"prompt_token_ids": [379, 12, 40, 77]}"#,
            "",
            r#"{"prompt": "Hello", "max_tokens": 3, "temperature": 0}"#,
        ],
    );
    let outs = outputs(&[
        "--prompts",
        file.to_str().unwrap(),
        "--max-tokens",
        "5",
        "--temperature",
        "0",
        "--ignore-eos",
    ]);
    assert_eq!(outs.len(), 3, "{outs:?}");
    for (i, o) in outs.iter().enumerate() {
        for key in ["prompt", "prompt_token_ids", "outputs"] {
            assert!(o.get(key).is_some(), "line {i} lacks {key}: {o}");
        }
        let outputs = o["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1);
        let c = &outputs[0];
        for key in [
            "index",
            "text",
            "token_ids",
            "cumulative_logprob",
            "logprobs",
            "finish_reason",
            "stop_reason",
        ] {
            assert!(c.get(key).is_some(), "line {i} output lacks {key}: {c}");
        }
        assert_eq!(c["index"], 0);
        assert!(c["text"].is_string());
        assert_eq!(c["finish_reason"], "length", "{c}");
        assert!(c["stop_reason"].is_null(), "{c}");
    }
    assert_eq!(outs[0]["prompt"], "Hello");
    assert!(!ids(&outs[0]["prompt_token_ids"]).is_empty());
    assert_eq!(ids(&outs[1]["prompt_token_ids"]), vec![379, 12, 40, 77]);
    assert!(outs[1]["prompt"].is_null(), "{}", outs[1]);
    // The first two take the flags (5 tokens); the third its own max_tokens, and being greedy on the
    // same prompt, it is the first one cut short.
    let first = ids(&outs[0]["outputs"][0]["token_ids"]);
    assert_eq!(first.len(), 5);
    assert_eq!(ids(&outs[1]["outputs"][0]["token_ids"]).len(), 5);
    assert_eq!(ids(&outs[2]["outputs"][0]["token_ids"]), first[..3].to_vec());
    assert_eq!(outs[2]["prompt_token_ids"], outs[0]["prompt_token_ids"]);
    let _ = std::fs::remove_file(file);
}

#[test]
fn bad_jsonl_lines_name_the_file_line_and_field() {
    let cases: &[(&[&str], &str, &[&str])] = &[
        (&[r#"{"prompt": "a"}"#, r#"{"prompt": "b", "#], ":2", &["invalid JSON"]),
        (
            &[
                r#"{"prompt": "a"}"#,
                r#"{"prompt": "b"}"#,
                r#"{"prompt": "c", "top_p": 2}"#,
            ],
            ":3",
            &["top_p", "(0, 1]"],
        ),
        (&[r#"{"prompt": "a", "temperature": "hot"}"#], ":1", &["temperature"]),
        (
            &[r#"{"prompt": "a", "max_tokens": -1}"#],
            ":1",
            &["max_tokens must be at least 1, got -1"],
        ),
        (&[r#"{"prompt_token_ids": [1, -2]}"#], ":1", &["prompt_token_ids"]),
        (&[r#"{"prompt": 7}"#], ":1", &["prompt must be a string"]),
        (&[r#"{"max_tokens": 3}"#], ":1", &["prompt"]),
        (&[r#"[1, 2]"#], ":1", &["JSON object"]),
    ];
    for (i, (lines, at, words)) in cases.iter().enumerate() {
        let file = jsonl(&format!("bad{i}"), lines);
        let err = fails(&["--prompts", file.to_str().unwrap(), "--max-tokens", "2"]);
        let want = format!("{}{at}", file.display());
        assert!(err.contains(&want), "case {i}: no {want} in {err}");
        for w in *words {
            assert!(err.contains(w), "case {i}: no {w:?} in {err}");
        }
        let _ = std::fs::remove_file(file);
    }
}

#[test]
fn negative_flags_are_reported_by_validation_not_clap() {
    for (flag, value, want) in [
        ("--max-tokens", "-1", "max_tokens must be at least 1, got -1"),
        ("--n", "-1", "n must be at least 1, got -1"),
        ("--logprobs", "-2", "logprobs must be non-negative, got -2"),
        ("--min-tokens", "-1", "min_tokens"),
        ("--top-p", "-0.5", "top_p"),
        ("--allowed-token-ids", "-3", "allowed_token_ids"),
    ] {
        let err = fails(&["--prompt", "Hi", flag, value]);
        assert!(err.contains(want), "{flag} {value}: {err}");
    }
}

/// The chosen token's logprob at each step (from the `{id: logprob}` maps).
fn chosen_logprobs(c: &Value) -> Vec<f64> {
    let ids = ids(&c["token_ids"]);
    let maps = c["logprobs"].as_array().unwrap_or_else(|| panic!("no logprobs: {c}"));
    assert_eq!(maps.len(), ids.len());
    ids.iter()
        .zip(maps)
        .map(|(id, m)| m[id.to_string()].as_f64().unwrap())
        .collect()
}

#[test]
fn logprobs_mode_processed_differs_from_raw_by_the_temperature() {
    let run = |mode: &str| {
        let args = [
            "--prompt",
            "Hello",
            "--max-tokens",
            "6",
            "--temperature",
            "0.5",
            "--seed",
            "11",
            "--ignore-eos",
            "--logprobs",
            "2",
            "--logprobs-mode",
            mode,
        ];
        outputs(&args).remove(0)["outputs"][0].clone()
    };
    let (raw, processed) = (run("raw_logprobs"), run("processed_logprobs"));
    // Same seed, same sampling distribution: the same tokens; only what is reported differs.
    assert_eq!(raw["token_ids"], processed["token_ids"]);
    let (r, p) = (chosen_logprobs(&raw), chosen_logprobs(&processed));
    assert!(
        r.iter().zip(&p).any(|(a, b)| (a - b).abs() > 1e-3),
        "raw {r:?} vs processed {p:?}"
    );
    // At temperature 0.5 (nothing else processing), the gap between two tokens doubles.
    let (rm, pm) = (
        raw["logprobs"].as_array().unwrap(),
        processed["logprobs"].as_array().unwrap(),
    );
    let mut compared = 0;
    for (rs, ps) in rm.iter().zip(pm) {
        let (rs, ps) = (rs.as_object().unwrap(), ps.as_object().unwrap());
        let common: Vec<&String> = rs.keys().filter(|k| ps.contains_key(*k)).collect();
        if let [a, b, ..] = common[..] {
            let rd = rs[a].as_f64().unwrap() - rs[b].as_f64().unwrap();
            let pd = ps[a].as_f64().unwrap() - ps[b].as_f64().unwrap();
            assert!(
                (pd - 2.0 * rd).abs() < 1e-3 * (1.0 + rd.abs()),
                "raw gap {rd}, processed gap {pd}"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no position with two common tokens");
    // Raw is the default.
    let default = outputs(&[
        "--prompt",
        "Hello",
        "--max-tokens",
        "6",
        "--temperature",
        "0.5",
        "--seed",
        "11",
        "--ignore-eos",
        "--logprobs",
        "2",
    ])
    .remove(0)["outputs"][0]
        .clone();
    assert_eq!(chosen_logprobs(&default), r);
}

#[test]
fn allowed_token_ids_restrict_the_output() {
    let base = ["--prompt", "Hello", "--max-tokens", "8", "--ignore-eos"];
    let greedy = ids(&outputs(&[&base[..], &["--temperature", "0"]].concat()).remove(0)["outputs"][0]["token_ids"]);
    // Three ids the unrestricted greedy run never picks.
    let allowed: Vec<u64> = (3..384).filter(|id| !greedy.contains(id)).take(3).collect();
    let list = allowed.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    for sampling in [&["--temperature", "0"][..], &["--temperature", "1.0", "--seed", "4"]] {
        let args = [&base[..], sampling, &["--allowed-token-ids", &list]].concat();
        let got = ids(&outputs(&args).remove(0)["outputs"][0]["token_ids"]);
        assert_eq!(got.len(), 8);
        assert!(
            got.iter().all(|id| allowed.contains(id)),
            "{sampling:?}: {got:?} outside {allowed:?}"
        );
    }
    let err = fails(&["--prompt", "Hello", "--allowed-token-ids", "5,99999"]);
    assert!(err.contains("allowed_token_ids") && err.contains("99999"), "{err}");
}
