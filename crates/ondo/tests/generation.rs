//! The generation API on a real model (SmolLM2-135M-Instruct Q4_1): best_of, stop strings across
//! token boundaries (streamed and not), Korean streaming, seeds, and bad parameters via the CLI.

use ondo::{FinishReason, Llm, LoadOptions, Prompt, SamplingParams, StopReason};
use ondo_engine::StreamItem;
use std::process::Command;
use std::sync::OnceLock;

const MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

fn llm() -> Option<&'static Llm> {
    static LLM: OnceLock<Option<Llm>> = OnceLock::new();
    LLM.get_or_init(|| {
        let path = ondo_testdata::fetched(MODEL)?;
        Some(
            Llm::load(
                path.to_str().unwrap(),
                &LoadOptions {
                    offline: true,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    })
    .as_ref()
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

/// Run `prompt` streamed; returns (deltas, final output text, finish reason, stop reason).
fn streamed(llm: &Llm, prompt: &str, params: &SamplingParams) -> (Vec<String>, ondo::CompletionOutput) {
    let mut deltas = vec![];
    let mut done = None;
    for item in llm.stream(Prompt::Text(prompt.into()), params.clone()) {
        match item.unwrap() {
            StreamItem::Delta { text, .. } => deltas.push(text),
            StreamItem::Done(out) => done = Some(out),
        }
    }
    (deltas, done.unwrap().outputs.remove(0))
}

#[test]
fn best_of_13_returns_the_6_best_sorted() {
    let Some(llm) = llm() else { return };
    let params = SamplingParams {
        n: 6,
        best_of: Some(13),
        temperature: 0.9,
        seed: Some(7),
        max_tokens: Some(6),
        ..Default::default()
    };
    let out = llm
        .generate(&[Prompt::Text("Once upon a time".into())], &params)
        .unwrap()
        .remove(0);
    assert_eq!(out.outputs.len(), 6);
    let idx: Vec<usize> = out.outputs.iter().map(|o| o.index).collect();
    assert_eq!(idx, vec![0, 1, 2, 3, 4, 5]);
    let cum: Vec<f64> = out.outputs.iter().map(|o| o.cumulative_logprob.unwrap()).collect();
    assert!(cum.windows(2).all(|w| w[0] >= w[1]), "not sorted best first: {cum:?}");
    // The best of 13 beats (or ties) the best of the first 6 drawn alone with the same seed.
    let six = SamplingParams {
        best_of: None,
        logprobs: Some(0),
        ..params.clone()
    };
    let alone = llm
        .generate(&[Prompt::Text("Once upon a time".into())], &six)
        .unwrap()
        .remove(0);
    let best_alone = alone
        .outputs
        .iter()
        .map(|o| o.cumulative_logprob.unwrap())
        .fold(f64::MIN, f64::max);
    assert!(cum[0] >= best_alone - 1e-9, "{} < {best_alone}", cum[0]);
}

#[test]
fn same_seed_same_text_other_seed_other_text() {
    let Some(llm) = llm() else { return };
    let run = |seed| {
        let p = SamplingParams {
            temperature: 1.0,
            seed: Some(seed),
            max_tokens: Some(24),
            ..Default::default()
        };
        llm.generate(&[Prompt::Text("My favourite food is".into())], &p)
            .unwrap()
            .remove(0)
            .outputs
            .remove(0)
            .text
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

/// Stop strings that span 1, 2 and 3 tokens of the greedy text.
#[test]
fn stop_strings_across_token_boundaries() {
    let Some(llm) = llm() else { return };
    let prompt = "The capital of France is";
    let base = llm
        .generate(&[Prompt::Text(prompt.into())], &greedy(20))
        .unwrap()
        .remove(0)
        .outputs
        .remove(0);
    // Text after each token: boundaries[k] = byte length of the text of the first k tokens.
    let tok = llm.tokenizer();
    let bounds: Vec<usize> = (0..=base.token_ids.len())
        .map(|k| tok.decode(&base.token_ids[..k], true).unwrap().len())
        .collect();
    let text = &base.text;
    // A token k whose text is at least 2 bytes and whose neighbours are not empty.
    let k = (2..bounds.len() - 3)
        .find(|&k| bounds[k + 1] - bounds[k] >= 2 && bounds[k] > bounds[k - 1] && bounds[k + 2] > bounds[k + 1])
        .unwrap();
    let spans = [
        ("1 token", bounds[k], bounds[k + 1]),
        ("2 tokens", bounds[k + 1] - 1, bounds[k + 1] + 1),
        (
            "3 tokens",
            bounds[k] - 1,
            bounds[k + 2].min(bounds[k + 1] + 1) + (bounds[k + 2] > bounds[k + 1] + 1) as usize,
        ),
    ];
    for (what, start, end) in spans {
        let stop = text[start..end].to_string();
        let first = text.find(&stop).unwrap();
        for include in [false, true] {
            let params = SamplingParams {
                stop: vec![stop.clone()],
                include_stop_str_in_output: include,
                ..greedy(20)
            };
            let want = if include {
                &text[..first + stop.len()]
            } else {
                &text[..first]
            };
            let full = llm
                .generate(&[Prompt::Text(prompt.into())], &params)
                .unwrap()
                .remove(0)
                .outputs
                .remove(0);
            assert_eq!(full.text, want, "{what} {stop:?} include={include}");
            assert_eq!(full.finish_reason, Some(FinishReason::Stop));
            assert_eq!(full.stop_reason, Some(StopReason::Str(stop.clone())));
            let (deltas, out) = streamed(llm, prompt, &params);
            assert_eq!(
                deltas.concat(),
                want,
                "{what} streamed {stop:?} include={include}: {deltas:?}"
            );
            assert_eq!(out.text, want);
            if !include {
                assert!(
                    !deltas.concat().contains(&stop),
                    "{what}: the stop string leaked: {deltas:?}"
                );
            }
        }
    }
}

#[test]
fn korean_streams_whole_characters() {
    let Some(llm) = llm() else { return };
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(48),
        ..Default::default()
    };
    let prompt = "안녕하세요! 한국어로 자기소개를 해 주세요. 저는";
    let (deltas, out) = streamed(llm, prompt, &params);
    assert_eq!(deltas.concat(), out.text);
    // No delta before the last carries a replacement character: split Hangul waits for its bytes.
    for d in &deltas[..deltas.len().saturating_sub(1)] {
        assert!(!d.contains('\u{FFFD}'), "delta {d:?} of {deltas:?}");
    }
    assert!(
        out.text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
        "no Hangul in {:?}",
        out.text
    );
    // Some Hangul syllable spans more than one token (byte-level pieces), so hold-back happened.
    assert!(out.token_ids.len() > out.text.chars().filter(|c| !c.is_whitespace()).count() / 2);
}

#[test]
fn dropping_a_stream_cancels_it() {
    let Some(llm) = llm() else { return };
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(200),
        ignore_eos: true,
        ..Default::default()
    };
    let mut stream = llm.stream(Prompt::Text("Tell me a long story.".into()), params);
    let first = stream.next().unwrap().unwrap();
    assert!(matches!(first, StreamItem::Delta { .. }));
    drop(stream); // the worker sees the closed channel at its next token and stops
}

fn cli_fails(args: &[&str]) -> String {
    let model = ondo_testdata::models_root().join(MODEL);
    let out = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(["generate", model.to_str().unwrap(), "--prompt", "Hi"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

#[test]
fn bad_parameters_name_the_field_and_rule() {
    if llm().is_none() {
        return;
    }
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--top-p", "2"], "top_p", "(0, 1]"),
        (&["--top-p", "0"], "top_p", "(0, 1]"),
        (&["--temperature", "-1"], "temperature", "non-negative"),
        (&["--n", "0"], "n must", "at least 1"),
        (&["--n", "3", "--temperature", "0"], "n must", "greedy"),
        (
            &["--n", "3", "--best-of", "2", "--temperature", "1"],
            "best_of",
            "greater than or equal to n",
        ),
        (&["--min-p", "1.5"], "min_p", "[0, 1]"),
        (&["--top-k", "-5"], "top_k", "-1 or 0"),
        (&["--presence-penalty", "3"], "presence_penalty", "[-2, 2]"),
        (
            &["--repetition-penalty", "0"],
            "repetition_penalty",
            "greater than zero",
        ),
        (&["--max-tokens", "0"], "max_tokens", "at least 1"),
        (
            &["--min-tokens", "9", "--max-tokens", "4"],
            "min_tokens",
            "max_tokens=4",
        ),
        (&["--logit-bias", "abc=1"], "logit-bias", "token id"),
    ];
    for (args, field, rule) in cases {
        let err = cli_fails(args);
        assert!(err.contains(field) && err.contains(rule), "{args:?}: {err}");
    }
}
