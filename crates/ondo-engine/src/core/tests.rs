//! `Limits::check`: the request checks the engine does in one place.

use super::Limits;
use crate::params::SamplingParams;

fn limits() -> Limits {
    Limits {
        vocab_size: 100,
        context: 50,
        kv_tokens: 40,
        max_seqs: 4,
    }
}

fn check(params: SamplingParams, prompt: &[u32]) -> Result<(), String> {
    limits().check(prompt, &params).map_err(|e| e.to_string())
}

#[test]
fn best_of_and_n_are_capped_by_max_num_seqs() {
    let best_of = |b| SamplingParams {
        best_of: Some(b),
        ..Default::default()
    };
    assert_eq!(check(best_of(4), &[1, 2]), Ok(()));
    let err = check(best_of(5), &[1, 2]).unwrap_err();
    assert!(
        err.contains("best_of must be at most 4") && err.contains("--max-num-seqs") && err.contains("got 5"),
        "{err}"
    );
    let n = SamplingParams {
        n: 1_000_000,
        ..Default::default()
    };
    let err = check(n, &[1, 2]).unwrap_err();
    assert!(err.contains("n must be at most 4"), "{err}");
}

#[test]
fn prompts_past_the_context_the_pool_or_the_vocabulary_are_refused() {
    let ok = SamplingParams::default;
    assert_eq!(check(ok(), &[1; 39]), Ok(()));
    assert!(check(ok(), &[]).unwrap_err().contains("empty"));
    assert!(check(ok(), &[1; 40]).unwrap_err().contains("KV cache holds 40"));
    assert!(check(ok(), &[1, 100]).unwrap_err().contains("token id 100"));
    let long = Limits {
        context: 10,
        ..limits()
    };
    let err = long.check(&[1; 10], &ok()).unwrap_err().to_string();
    assert!(err.contains("context is 10"), "{err}");
}
