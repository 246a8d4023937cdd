//! What a request returns: `RequestOutput` with one `CompletionOutput` per returned sequence.
//!
//! The serde form matches vLLM's objects field for field (`ondo generate --json` prints it):
//! `finish_reason` is `"stop"` / `"length"` / `"abort"`, `stop_reason` is the matched stop string,
//! the stop token id, or null for eos, and logprobs are `{token_id: logprob}` maps whose keys JSON
//! writes as strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{token_id: logprob}` for one position: the top tokens plus the chosen (or actual) one.
pub type LogprobMap = BTreeMap<u32, f32>;

/// Why a sequence finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// Eos, a stop token or a stop string.
    Stop,
    /// `max_tokens` or the model's length.
    Length,
    /// Cancelled by the caller.
    Abort,
}

impl FinishReason {
    /// The wire name: "stop", "length" or "abort".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Abort => "abort",
        }
    }
}

/// What stopped a sequence with `FinishReason::Stop`, besides eos (which is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopReason {
    /// A token of `stop_token_ids`.
    Token(u32),
    /// A string of `stop`.
    Str(String),
}

/// One generated sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionOutput {
    /// Position among the request's returned sequences, 0..n.
    pub index: usize,
    /// The generated text (stop strings removed unless `include_stop_str_in_output`).
    pub text: String,
    /// The generated token ids.
    pub token_ids: Vec<u32>,
    /// Sum of the chosen tokens' logprobs (when logprobs were tracked).
    pub cumulative_logprob: Option<f64>,
    /// Per output token, when `logprobs` was asked for.
    pub logprobs: Option<Vec<LogprobMap>>,
    /// `None` while the sequence is still running.
    pub finish_reason: Option<FinishReason>,
    /// The stop string or stop token that ended it; `None` for eos, length or still running.
    pub stop_reason: Option<StopReason>,
}

impl CompletionOutput {
    /// Whether the sequence has finished.
    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }
}

/// The result of one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestOutput {
    pub request_id: String,
    pub prompt: Option<String>,
    pub prompt_token_ids: Vec<u32>,
    /// Per prompt token when `prompt_logprobs` was asked for; the first entry is `None` (nothing
    /// predicts the first token).
    pub prompt_logprobs: Option<Vec<Option<LogprobMap>>>,
    pub outputs: Vec<CompletionOutput>,
    pub finished: bool,
}

/// The `n` outputs with the highest cumulative logprob (vLLM's `best_of`), best first, re-indexed
/// 0..n. Outputs without a cumulative logprob rank last; ties keep their original order.
pub fn best_of_select(mut outputs: Vec<CompletionOutput>, n: usize) -> Vec<CompletionOutput> {
    let key = |o: &CompletionOutput| {
        o.cumulative_logprob
            .filter(|v| !v.is_nan())
            .unwrap_or(f64::NEG_INFINITY)
    };
    outputs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    outputs.truncate(n);
    for (i, o) in outputs.iter_mut().enumerate() {
        o.index = i;
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completion(index: usize, cumulative_logprob: Option<f64>) -> CompletionOutput {
        CompletionOutput {
            index,
            text: format!("seq{index}"),
            token_ids: vec![index as u32],
            cumulative_logprob,
            logprobs: None,
            finish_reason: Some(FinishReason::Length),
            stop_reason: None,
        }
    }

    #[test]
    fn serializes_with_vllm_field_names() {
        let out = RequestOutput {
            request_id: "0".into(),
            prompt: Some("안녕".into()),
            prompt_token_ids: vec![5, 6],
            prompt_logprobs: Some(vec![None, Some([(6, -0.5), (7, -1.25)].into())]),
            outputs: vec![CompletionOutput {
                index: 0,
                text: "hi".into(),
                token_ids: vec![42, 2],
                cumulative_logprob: Some(-1.5),
                logprobs: Some(vec![[(42, -0.5)].into(), [(2, -1.0), (3, -2.0)].into()]),
                finish_reason: Some(FinishReason::Stop),
                stop_reason: Some(StopReason::Token(2)),
            }],
            finished: true,
        };
        let v = serde_json::to_value(&out).expect("serialize");
        assert_eq!(
            v,
            json!({
                "request_id": "0", "prompt": "안녕", "prompt_token_ids": [5, 6],
                "prompt_logprobs": [null, {"6": -0.5, "7": -1.25}],
                "outputs": [{
                    "index": 0, "text": "hi", "token_ids": [42, 2], "cumulative_logprob": -1.5,
                    "logprobs": [{"42": -0.5}, {"2": -1.0, "3": -2.0}],
                    "finish_reason": "stop", "stop_reason": 2
                }],
                "finished": true
            })
        );
        let back: RequestOutput = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, out);
    }

    #[test]
    fn stop_and_finish_reasons_serialize_as_vllm() {
        let s = |v: serde_json::Value| v.to_string();
        assert_eq!(s(json!(FinishReason::Length)), r#""length""#);
        assert_eq!(s(json!(FinishReason::Abort)), r#""abort""#);
        assert_eq!(s(json!(Some(StopReason::Str("\n".into())))), r#""\n""#);
        assert_eq!(s(json!(None::<StopReason>)), "null");
        assert_eq!(FinishReason::Stop.as_str(), "stop");
    }

    #[test]
    fn best_of_13_keeps_the_6_highest_reindexed() {
        // Cumulative logprobs in a scrambled order; one missing value ranks last.
        let lps = [-5.0, -1.0, -9.0, -0.5, -3.0, -7.0, -2.0, -8.0, -4.0, -6.0, -10.0, -1.5];
        let mut outs: Vec<_> = lps.iter().enumerate().map(|(i, &l)| completion(i, Some(l))).collect();
        outs.push(completion(12, None));
        assert_eq!(outs.len(), 13);
        let best = best_of_select(outs, 6);
        let got: Vec<(usize, f64, &str)> = best
            .iter()
            .map(|o| (o.index, o.cumulative_logprob.unwrap_or(f64::NAN), o.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (0, -0.5, "seq3"),
                (1, -1.0, "seq1"),
                (2, -1.5, "seq11"),
                (3, -2.0, "seq6"),
                (4, -3.0, "seq4"),
                (5, -4.0, "seq8")
            ]
        );
    }

    #[test]
    fn best_of_select_with_n_above_len_keeps_all() {
        let best = best_of_select(vec![completion(0, None), completion(1, Some(-1.0))], 5);
        assert_eq!(
            best.iter().map(|o| (o.index, o.text.as_str())).collect::<Vec<_>>(),
            [(0, "seq1"), (1, "seq0")]
        );
    }
}
