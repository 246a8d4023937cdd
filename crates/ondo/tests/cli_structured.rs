//! The structured-output flags through the `ondo` binary on SmolLM2: `--choice` and `--regex`
//! outputs match, `--json-schema` output validates; a missing file, two flags at once and an
//! unsupported keyword are clean errors naming the flag, file or keyword.

use std::process::Command;

const MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

/// `ondo run MODEL PROMPT ARGS...`: (exit code, stdout, stderr).
fn run(args: &[&str]) -> Option<(Option<i32>, String, String)> {
    let model = ondo_testdata::fetched(MODEL)?;
    let out = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args([
            "run",
            model.to_str().expect("utf-8"),
            "--offline",
            "--seed",
            "3",
            "--temperature",
            "0.8",
        ])
        .args(args)
        .output()
        .expect("ondo runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    Some((out.status.code(), text(&out.stdout), text(&out.stderr)))
}

fn scratch(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ondo-cli-structured-{}-{name}", std::process::id()));
    std::fs::write(&path, content).expect("write scratch file");
    path
}

#[test]
fn choice_regex_and_schema_outputs_match() {
    let Some((code, out, err)) = run(&["The sky is", "--choice", "blue,grey,green", "--max-tokens", "8"]) else {
        return;
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(["blue", "grey", "green"].contains(&out.trim_end()), "{out:?}");
    let (code, out, err) = run(&["Call me at", "--regex", "[0-9]{3}-[0-9]{4}", "--max-tokens", "12"]).expect("model");
    assert_eq!(code, Some(0), "{err}");
    let phone = out.trim_end();
    assert!(phone.len() == 8 && phone.as_bytes()[3] == b'-', "{out:?}");
    assert!(phone.chars().filter(|c| c.is_ascii_digit()).count() == 7, "{out:?}");
    let schema = r#"{"type":"object","properties":{"city":{"type":"string","maxLength":12},"rank":{"type":"integer","minimum":1,"maximum":3}},"required":["city","rank"],"additionalProperties":false}"#;
    let file = scratch("schema.json", schema);
    let args = [
        "--chat",
        "Name a big city.",
        "--json-schema",
        file.to_str().expect("utf-8"),
        "--max-tokens",
        "60",
    ];
    let (code, out, err) = run(&args).expect("model");
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    let rank = v["rank"].as_i64().expect("rank");
    assert!(v["city"].is_string() && (1..=3).contains(&rank), "{v}");
    assert_eq!(v.as_object().expect("object").len(), 2, "{v}");
}

#[test]
fn bad_constraint_flags_are_clean_errors() {
    let unsupported = scratch("unique.json", r#"{"type":"array","uniqueItems":true}"#);
    let cases: [(&[&str], &str); 3] = [
        (
            &["x", "--json-schema", "/nonexistent/schema.json"],
            "/nonexistent/schema.json",
        ),
        (&["x", "--regex", "a", "--choice", "b"], "only one of"),
        (
            &["x", "--json-schema", unsupported.to_str().expect("utf-8")],
            "uniqueItems",
        ),
    ];
    for (args, named) in cases {
        let Some((code, _, err)) = run(args) else { return };
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(named) && !err.contains("panicked"), "{args:?}: {err}");
    }
}
