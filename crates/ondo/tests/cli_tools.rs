//! The `ondo` binary's tool subcommands: tokenize (llama.cpp's gpt-2 vectors on a vocabulary-only
//! GGUF, an HF tokenizer folder without weights), show (GGUF, vocab-only GGUF, HF folder), bench
//! (JSON shape on stories260K), template (a model's template, a template file with tools, a fixed
//! clock, bos_token, raise_exception).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ondo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run ondo")
}

/// stdout of a successful run.
fn ok(args: &[&str]) -> String {
    let out = ondo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ondo {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn ok_json(args: &[&str]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ondo {args:?}: not JSON ({e}): {text}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch folder for this test's files, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_tools").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// ---- tokenize ----

/// Strings and expected ids of a llama.cpp vector pair (see tokenizer-tests/README.md).
fn vectors(dir: &Path, vocab: &str) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(dir.join(format!("{vocab}.inp"))).unwrap();
    let out = std::fs::read_to_string(dir.join(format!("{vocab}.out"))).unwrap();
    let mut strings: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    assert_eq!(strings.pop(), Some(""), "the .inp file ends with a separator");
    let ids = out
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect());
    let cases: Vec<_> = strings.into_iter().map(str::to_string).zip(ids).collect();
    assert_eq!(cases.len(), 46);
    cases
}

#[test]
fn tokenize_gpt2_vectors_on_a_vocab_only_gguf() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let gguf = dir.join("ggml-vocab-gpt-2.gguf");
    let cases = vectors(&dir, "ggml-vocab-gpt-2.gguf");
    for i in [0, 1, 2, 3, 7, 11, 18, 20, 28, 32, 43, 45] {
        let (text, want) = &cases[i];
        let args = [
            "tokenize",
            s(&gguf),
            "--no-add-special",
            "--no-parse-special",
            "--json",
            "--",
            text,
        ];
        let got = ok_json(&args);
        let ids: Vec<u32> = serde_json::from_value(got["ids"].clone()).unwrap();
        assert_eq!(&ids, want, "case {i} {text:?}");
        let tokens = got["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), ids.len(), "case {i}: one token per id");
    }
}

#[test]
fn tokenize_plain_output_and_parse_special() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let gguf = dir.join("ggml-vocab-gpt-2.gguf");
    // " Hello world" = 18435 995 ("ĠHello", "Ġworld").
    let plain = ok(&["tokenize", s(&gguf), "--no-add-special", " Hello world"]);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "{plain}");
    assert!(
        lines[0].contains("18435") && lines[0].contains("ĠHello") && lines[0].contains("\" Hello\""),
        "{plain}"
    );
    assert!(lines[1].contains("995") && lines[1].contains("Ġworld"), "{plain}");
    // <|endoftext|> (50256) is one token when special text is parsed, plain text otherwise.
    let parsed = ok_json(&["tokenize", s(&gguf), "--no-add-special", "--json", "<|endoftext|>"]);
    assert_eq!(parsed["ids"], json!([50256]));
    let literal = ok_json(&[
        "tokenize",
        s(&gguf),
        "--no-add-special",
        "--no-parse-special",
        "--json",
        "<|endoftext|>",
    ]);
    assert!(literal["ids"].as_array().unwrap().len() > 1, "{literal}");
}

#[test]
fn tokenize_adds_bos_where_the_vocab_says_so() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let spm = dir.join("ggml-vocab-llama-spm.gguf");
    let with = ok_json(&["tokenize", s(&spm), "--json", "Hello world"]);
    let without = ok_json(&["tokenize", s(&spm), "--no-add-special", "--json", "Hello world"]);
    assert_eq!(with["ids"][0], json!(1), "BOS first: {with}");
    assert_eq!(
        with["ids"].as_array().unwrap()[1..],
        without["ids"].as_array().unwrap()[..]
    );
}

#[test]
fn tokenize_reads_an_hf_folder_without_weights() {
    // The shared SmolLM2 folder has tokenizer files and config.json, no safetensors.
    let Some(hf) = ondo_testdata::shared("models/smollm2-135m-instruct-hf") else {
        return;
    };
    assert!(!hf.join("model.safetensors").exists());
    let got = ok_json(&["tokenize", s(&hf), "--json", "<|im_start|>user\nHello"]);
    let ids: Vec<u32> = serde_json::from_value(got["ids"].clone()).unwrap();
    assert_eq!(ids[0], 1, "<|im_start|> is id 1 in SmolLM2: {got}");
    assert_eq!(got["tokens"][0], json!("<|im_start|>"));
    // The same text through the model's GGUF vocabulary gives the same ids.
    if let Some(gguf) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") {
        let from_gguf = ok_json(&["tokenize", s(&gguf), "--json", "<|im_start|>user\nHello"]);
        assert_eq!(from_gguf["ids"], got["ids"]);
    }
}

#[test]
fn tokenize_errors_name_the_model() {
    let out = ondo(&["tokenize", "/nonexistent/model.gguf", "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.gguf"));
}

// ---- show ----

#[test]
fn show_gguf_model() {
    let Some(gguf) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let r = ok_json(&["show", s(&gguf), "--json"]);
    assert_eq!(r["format"], "gguf");
    assert_eq!(r["architecture"], "llama");
    let params = r["parameters"].as_u64().unwrap();
    assert!(
        (130_000_000..140_000_000).contains(&params),
        "SmolLM2-135M has ~134.5M parameters: {params}"
    );
    assert_eq!(r["context_length"], 8192);
    assert_eq!(r["layers"], 30);
    let types = r["tensor_types"].as_object().unwrap();
    assert!(types.contains_key("Q4_1") && types.contains_key("F32"), "{types:?}");
    let tensors: u64 = types.values().map(|t| t["tensors"].as_u64().unwrap()).sum();
    assert_eq!(tensors, 272, "30 layers × 9 + token_embd + output_norm");
    let bytes: u64 = types.values().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(bytes, r["tensor_bytes"].as_u64().unwrap());
    assert!(bytes < std::fs::metadata(&gguf).unwrap().len());
    assert_eq!(r["eos"]["text"], "<|im_end|>");
    assert_eq!(r["chat_template"], true);
    let plain = ok(&["show", s(&gguf)]);
    assert!(
        plain.contains("llama") && plain.contains("Q4_1") && plain.contains("8192"),
        "{plain}"
    );
}

#[test]
fn show_vocab_only_gguf_and_weightless_folder() {
    let Some(dir) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let r = ok_json(&["show", s(&dir.join("ggml-vocab-gpt-2.gguf")), "--json"]);
    assert_eq!(r["parameters"], 0);
    assert_eq!(r["vocab_size"], 50257);
    assert_eq!(r["eos"]["id"], 50256);
    assert!(
        !r["notes"].as_array().unwrap().is_empty(),
        "says why there are no weights: {r}"
    );
    let Some(hf) = ondo_testdata::shared("models/smollm2-135m-instruct-hf") else {
        return;
    };
    let r = ok_json(&["show", s(&hf), "--json"]);
    assert_eq!(r["format"], "safetensors");
    assert_eq!(r["architecture"], "LlamaForCausalLM");
    assert_eq!(r["context_length"], 8192);
    assert_eq!(r["chat_template"], true);
    assert_eq!(r["bos"]["text"], "<|im_start|>");
}

#[test]
fn show_hf_folder_with_weights() {
    let Some(hf) = ondo_testdata::fetched("smollm2-135m-instruct-hf") else {
        return;
    };
    let r = ok_json(&["show", s(&hf), "--json"]);
    let params = r["parameters"].as_u64().unwrap();
    assert!((130_000_000..140_000_000).contains(&params), "{params}");
    let types = r["tensor_types"].as_object().unwrap();
    assert_eq!(types.len(), 1, "one dtype in SmolLM2's safetensors: {types:?}");
    let bytes = r["tensor_bytes"].as_u64().unwrap();
    assert_eq!(bytes, 2 * params, "16-bit weights");
}

// ---- bench ----

#[test]
fn bench_json_shape_on_stories260k() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let model = dir.join("stories260K.gguf");
    let r = ok_json(&["bench", s(&model), "-p", "8", "-n", "4", "-r", "2", "-t", "1", "--json"]);
    let list = r.as_array().unwrap();
    assert_eq!(list.len(), 2, "{r}");
    for (entry, test) in list.iter().zip(["pp8", "tg4"]) {
        assert_eq!(entry["test"], test);
        assert_eq!(entry["threads"], 1);
        assert!(entry["tokens_per_second"].as_f64().unwrap() > 0.0, "{entry}");
        assert!(entry["stddev"].as_f64().unwrap() >= 0.0, "{entry}");
    }
    let only_tg = ok_json(&["bench", s(&model), "-p", "0", "-n", "2", "-r", "1", "--json"]);
    assert_eq!(only_tg.as_array().unwrap().len(), 1);
    assert_eq!(only_tg[0]["stddev"], 0.0, "one repetition has no spread");
    let table = ok(&["bench", s(&model), "-p", "4", "-n", "2", "-r", "1", "-t", "1"]);
    assert!(
        table.contains("| pp4 |") && table.contains("| tg2 |") && table.contains("±"),
        "{table}"
    );
}

#[test]
fn bench_concurrent_runs_every_level_on_the_engine() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let model = dir.join("stories260K.gguf");
    let r = ok_json(&[
        "bench",
        s(&model),
        "-p",
        "6",
        "-n",
        "5",
        "-r",
        "2",
        "--concurrent",
        "1,3",
        "--json",
    ]);
    let list = r.as_array().unwrap();
    assert_eq!(list.len(), 2, "one entry per level, no pp/tg: {r}");
    for (entry, b) in list.iter().zip([1, 3]) {
        let c = &entry["concurrent"];
        assert_eq!(c["b"], b, "{entry}");
        assert_eq!((c["pp"].as_u64(), c["tg"].as_u64()), (Some(6), Some(5)), "{entry}");
        let (t_pp, t) = (c["t_pp"].as_f64().unwrap(), c["t"].as_f64().unwrap());
        assert!(t_pp > 0.0 && t_pp <= t, "{entry}");
        assert!(entry["tokens_per_second"].as_f64().unwrap() > 0.0, "{entry}");
    }
    let table = ok(&["bench", s(&model), "-p", "4", "-n", "3", "-r", "1", "--concurrent", "2"]);
    assert!(
        table.contains("S_TG t/s") && table.contains("|     4 |      3 |    2 |     14 |"),
        "{table}"
    );
}

#[test]
fn bench_refuses_more_tokens_than_the_context() {
    let Some(dir) = ondo_testdata::shared("models/stories260K") else {
        return;
    };
    let out = ondo(&[
        "bench",
        s(&dir.join("stories260K.gguf")),
        "-p",
        "512",
        "-n",
        "1",
        "-r",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("context length 128"));
}

// ---- template ----

const TEMPLATE: &str = "{{ bos_token }}{% if tools %}Tools: {{ tools | map(attribute='name') | join(', ') }}\n{% endif %}\
Today is {{ strftime_now('%d %B %Y %H:%M:%S') }}.\n\
{% for m in messages %}{% if m.role == 'bad' %}{{ raise_exception('Roles must be user or assistant, got ' + m.role) }}{% endif %}\
[{{ m.role }}] {{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";

#[test]
fn template_file_with_tools_clock_and_special_tokens() {
    let dir = scratch("template_file");
    let template = write(&dir, "t.jinja", TEMPLATE);
    let messages = write(&dir, "m.json", r#"[{"role": "user", "content": "안녕 \"hi\""}]"#);
    let tools = write(&dir, "tools.json", r#"[{"name": "get_weather"}, {"name": "search"}]"#);
    let base = [
        "template",
        "--template",
        s(&template),
        "--messages",
        s(&messages),
        "--now",
        "2026-02-03T09:05:07",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--bos-token",
        "<s>",
        "--eos-token",
        "</s>",
        "--tools",
        s(&tools),
        "--add-generation-prompt",
    ]);
    assert_eq!(
        ok(&args),
        "<s>Tools: get_weather, search\nToday is 03 February 2026 09:05:07.\n[user] 안녕 \"hi\"</s>\n[assistant] "
    );
    assert_eq!(ok(&base), "Today is 03 February 2026 09:05:07.\n[user] 안녕 \"hi\"\n");
    // {"messages": [...]} works too.
    let wrapped = write(
        &dir,
        "w.json",
        r#"{"messages": [{"role": "assistant", "content": "x"}]}"#,
    );
    let mut args = base.to_vec();
    args[4] = s(&wrapped);
    assert_eq!(ok(&args), "Today is 03 February 2026 09:05:07.\n[assistant] x\n");
}

#[test]
fn template_raise_exception_is_the_error() {
    let dir = scratch("template_raise");
    let template = write(&dir, "t.jinja", TEMPLATE);
    let messages = write(&dir, "m.json", r#"[{"role": "bad", "content": "x"}]"#);
    let out = ondo(&["template", "--template", s(&template), "--messages", s(&messages)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: Roles must be user or assistant, got bad");
    assert!(out.stdout.is_empty());
}

/// The template sandbox through the CLI: an endless loop and a deep recursion each end with one
/// error line naming the limit, exit status 1, nothing on stdout.
#[test]
fn template_sandbox_stops_hostile_templates() {
    let dir = scratch("template_sandbox");
    let messages = write(&dir, "m.json", r#"[{"role": "user", "content": "x"}]"#);
    for (k, (src, limit)) in [
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "instructions",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
    ]
    .into_iter()
    .enumerate()
    {
        let template = write(&dir, &format!("t{k}.jinja"), src);
        let out = ondo(&["template", "--template", s(&template), "--messages", s(&messages)]);
        assert_eq!(out.status.code(), Some(1), "{src}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: chat template stopped") && stderr.contains(limit),
            "{src}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn template_bad_inputs_name_the_file() {
    let dir = scratch("template_bad");
    let template = write(&dir, "t.jinja", TEMPLATE);
    let messages = write(&dir, "m.json", r#"{"role": "user"}"#);
    let out = ondo(&["template", "--template", s(&template), "--messages", s(&messages)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("m.json"));
    let good = write(&dir, "g.json", "[]");
    let out = ondo(&[
        "template",
        "--template",
        s(&template),
        "--messages",
        s(&good),
        "--now",
        "yesterday",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--now"));
}

#[test]
fn template_of_a_model() {
    let Some(hf) = ondo_testdata::shared("models/smollm2-135m-instruct-hf") else {
        return;
    };
    let dir = scratch("template_model");
    let messages = write(
        &dir,
        "m.json",
        r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]"#,
    );
    let out = ok(&[
        "template",
        s(&hf),
        "--messages",
        s(&messages),
        "--add-generation-prompt",
    ]);
    assert_eq!(
        out,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    if let Some(gguf) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") {
        assert_eq!(
            ok(&[
                "template",
                s(&gguf),
                "--messages",
                s(&messages),
                "--add-generation-prompt"
            ]),
            out
        );
    }
    let Some(tok) = ondo_testdata::shared("models/tokenizer-tests") else {
        return;
    };
    let out = ondo(&[
        "template",
        s(&tok.join("ggml-vocab-gpt-2.gguf")),
        "--messages",
        s(&messages),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no chat template"));
}
