//! `ondo chain` through the binary on the README's example chain file (president of a country,
//! then the changes that president made): `--json` shows every step, the plain run streams the
//! last step's text, `--var` mistakes are named before any model loads, and the same file
//! pointed at a real `ondo serve` (started here on 127.0.0.1) gives the same steps.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

const MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

/// The README's example file: the ```toml block that starts with `# president.toml`.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("```toml\n# president.toml")
        .expect("README has the president.toml example");
    let body = &readme[start + "```toml\n".len()..];
    body[..body.find("```").expect("the block ends")].to_string()
}

/// The example with its `local = ...` line replaced by `backend` (the fetched model's path here).
fn with_backend(example: &str, backend: &str) -> String {
    let lines: Vec<String> = example
        .lines()
        .map(|l| {
            if l.starts_with("local = ") {
                backend.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(
        lines.iter().any(|l| l == backend),
        "the example has no `local = ` line:\n{example}"
    );
    lines.join("\n") + "\n"
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ondo-cli-chain-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn ondo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ondo")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = ondo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = ondo(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail cleanly: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn local_line() -> Option<String> {
    let path = ondo_testdata::fetched(MODEL)?;
    Some(format!("local = {:?}", path.to_str().unwrap()))
}

/// Checks the `--json` report of the example and returns its steps.
fn steps_of(json: &str) -> Vec<Value> {
    let report: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    assert_eq!(report["inputs"], serde_json::json!({"country": "France"}));
    let steps = report["steps"].as_array().expect("steps").clone();
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(
        (steps[0]["output_key"].as_str(), steps[1]["output_key"].as_str()),
        (Some("president"), Some("changes"))
    );
    let president = steps[0]["text"].as_str().unwrap();
    assert!(!president.trim().is_empty(), "step 1 said nothing: {report}");
    assert_eq!(report["outputs"]["president"].as_str(), Some(president));
    // Step 2's rendered prompt (chat messages) carries step 1's text and the input.
    let messages = steps[1]["prompt"].as_array().expect("step 2 is a chat prompt");
    let prompt: Vec<&str> = messages.iter().map(|m| m["content"].as_str().unwrap()).collect();
    let prompt = prompt.join("\n");
    assert!(prompt.contains(president), "{prompt:?} lacks step 1's {president:?}");
    assert!(prompt.contains("France"), "{prompt}");
    assert!(!steps[1]["text"].as_str().unwrap().is_empty());
    steps
}

#[test]
fn the_readme_example_runs_through_the_binary() {
    let Some(local) = local_line() else { return };
    let file = write("local", &with_backend(&readme_example(), &local));
    let file = file.to_str().unwrap();
    let steps = steps_of(&ok(&["chain", file, "--var", "country=France", "--json"]));
    // Without --json the last step's text streams to stdout: the same greedy text.
    let streamed = ok(&["chain", file, "--var", "country=France"]);
    assert_eq!(streamed.strip_suffix('\n').unwrap(), steps[1]["text"].as_str().unwrap());
}

#[test]
fn var_mistakes_are_named_before_any_model_loads() {
    // The backend does not exist: these fail on the variables, not on loading.
    let file = write(
        "vars",
        &with_backend(&readme_example(), "local = \"/nonexistent/model.gguf\""),
    );
    let file = file.to_str().unwrap();
    let e = fails(&["chain", file]);
    assert!(e.contains("needs --var country=VALUE"), "{e}");
    let e = fails(&["chain", file, "--var", "country=France", "--var", "contry=Peru"]);
    assert!(
        e.contains("no input \"contry\"") && e.contains("its inputs: country"),
        "{e}"
    );
    let e = fails(&["chain", file, "--var", "country"]);
    assert!(e.contains("expected KEY=VALUE"), "{e}");
    let e = fails(&["chain", file, "--var", "country=France"]);
    assert!(e.contains("/nonexistent/model.gguf"), "{e}");
}

#[test]
fn bad_chain_files_are_named_with_their_step() {
    for (text, says) in [
        (
            "[[step]]\ntemplate = \"{x}\"\nlocal = \"m\"\ntemprature = 0\n",
            "step 1: unknown key \"temprature\"",
        ),
        ("[[step]]\nlocal = \"m\"\n", "step 1: no prompt"),
        (
            "[[step]]\ntemplate = \"hi {x\"\nlocal = \"m\"\n",
            "step 1: bad template",
        ),
        (
            "[defaults]\nlocal = \"m\"\n[[step]]\ntemplate = \"{x}\"\n[[step]]\ntemplate = \"b\"\ntop_p = 2.0\n",
            "step 2: invalid sampling parameter: top_p must be in (0, 1], got 2.0",
        ),
        ("[[step]]\ntemplate = \"a\"\n", "step 1: no backend"),
        (
            "[[step]]\ntemplate = \"a\"\nendpoint = \"http://127.0.0.1:9/v1\"\n",
            "an endpoint needs model",
        ),
        ("step = 3\n", "no steps"),
        ("[[step]\n", "TOML"),
    ] {
        let file = write("bad", text);
        let e = fails(&["chain", file.to_str().unwrap(), "--var", "x=1"]);
        assert!(e.contains(file.to_str().unwrap()) || says == "TOML", "{e}");
        if says != "TOML" {
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}

/// `ondo serve MODEL --port 0`, once it has loaded the model; returns the child and its URL.
fn serve(model: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(["serve", model, "--port", "0", "--served-model-name", "smollm2"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            url = Some(u.trim().to_string());
        }
        if line.starts_with("model loaded") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop)); // keep its stderr drained
    (child, url.expect("ondo serve printed its address"))
}

#[test]
fn the_example_against_ondo_serve_gives_the_local_steps() {
    let Some(local) = local_line() else { return };
    let model = ondo_testdata::fetched(MODEL).unwrap();
    let (mut server, url) = serve(model.to_str().unwrap());
    let endpoint = format!("endpoint = \"{url}/v1\"\nmodel = \"smollm2\"\ntimeout = 60");
    let remote = write("remote", &with_backend(&readme_example(), &endpoint));
    let here = write("here", &with_backend(&readme_example(), &local));
    let got = steps_of(&ok(&[
        "chain",
        remote.to_str().unwrap(),
        "--var",
        "country=France",
        "--json",
    ]));
    let want = steps_of(&ok(&[
        "chain",
        here.to_str().unwrap(),
        "--var",
        "country=France",
        "--json",
    ]));
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(got, want);
}
