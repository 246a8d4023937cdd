//! `ondo show` prints each architecture's specials (softcaps, window pattern, rotary dims,
//! parallel residual, norm and MLP kinds), from the HF folder and from its GGUF twin alike, on
//! the committed tiny fixtures.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tiny-models")).join(name)
}

fn show(path: &std::path::Path, json: bool) -> String {
    let mut args = vec!["show".to_string(), path.display().to_string()];
    if json {
        args.push("--json".into());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(&args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ondo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The specials as a map, from `--json`.
fn specials(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let v: Value = serde_json::from_str(&show(path, true)).unwrap();
    v["specials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn show_prints_each_architectures_specials() {
    let want: &[(&str, &[(&str, &str)])] = &[
        (
            "gemma2",
            &[
                ("attn_softcap", "4"),
                ("final_softcap", "8"),
                ("sliding_window", "8, layers SFS"),
                ("rotary_dims", "16 of 16"),
            ],
        ),
        (
            "gptneox",
            &[
                ("rotary_dims", "4 of 16"),
                ("residual", "Parallel"),
                ("norm", "Layer"),
                ("mlp", "Plain (Gelu)"),
            ],
        ),
        ("gpt2", &[("positions", "learned"), ("mlp", "Plain (GeluTanh)")]),
        ("phi3", &[("sliding_window", "64, layers SS")]),
    ];
    for (name, fields) in want {
        for path in [fixture(name), fixture(name).join("model.gguf")] {
            let got = specials(&path);
            for (k, v) in *fields {
                assert_eq!(got.get(*k).map(String::as_str), Some(*v), "{path:?} {k}: {got:?}");
            }
        }
    }
    let plain = show(&fixture("gemma2"), false);
    assert!(plain.contains("final softcap   8"), "{plain}");
}
