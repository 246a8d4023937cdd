//! `SamplingParams`: what a request asks of the sampler and of stop handling.
//!
//! The fields, their defaults and their validation follow vLLM's `SamplingParams` (design.md), so
//! a JSONL line such as `{"prompt": "...", "temperature": 0.7, "stop": "\n"}` parses into it:
//! missing fields take the defaults, unknown fields (like `prompt`) are ignored, `stop` is a
//! string or a list of strings, `logit_bias` keys are token ids written as strings. Counts that
//! JSON gives as negative numbers are rejected while parsing with the same message `validate`
//! would give.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::constraint::StructuredOutputs;

/// Below this temperature sampling is greedy (vLLM's `_SAMPLING_EPS`).
pub const GREEDY_EPS: f32 = 1e-5;

/// Which logprobs are returned to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogprobsMode {
    /// Log-softmax of the model's raw logits (vLLM V1's default).
    #[default]
    #[serde(alias = "raw")]
    RawLogprobs,
    /// Log-softmax of the logits that were sampled from: after biases, penalties, temperature and
    /// min_p/top_k/top_p (transformers' `output_scores`, vLLM's `processed_logprobs`).
    #[serde(alias = "processed")]
    ProcessedLogprobs,
}

/// Sampling and stopping parameters of one request (vLLM's fields and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Sequences returned.
    #[serde(deserialize_with = "de_n")]
    pub n: usize,
    /// Sequences generated, of which the `n` with the highest cumulative logprob are returned
    /// (`None` = `n`).
    #[serde(deserialize_with = "de_best_of")]
    pub best_of: Option<usize>,
    /// Subtracted once from the logit of every token already in the output, in [-2, 2].
    pub presence_penalty: f32,
    /// Subtracted per occurrence from the logit of every output token, in [-2, 2].
    pub frequency_penalty: f32,
    /// Above 1 discourages tokens of the prompt and output (divides positive logits, multiplies
    /// negative ones); 1 = off.
    pub repetition_penalty: f32,
    /// Logits are divided by it; below 1e-5 sampling is greedy.
    pub temperature: f32,
    /// Nucleus sampling: keep the most probable tokens whose mass reaches top_p; in (0, 1].
    pub top_p: f32,
    /// Keep the k most probable tokens; 0 or -1 = off.
    pub top_k: i32,
    /// Drop tokens less probable than min_p times the most probable one; in [0, 1].
    pub min_p: f32,
    /// Seed of this request's random streams (`None` = from entropy).
    #[serde(deserialize_with = "de_seed")]
    pub seed: Option<u64>,
    /// Strings that end generation (not included in the text unless asked).
    #[serde(deserialize_with = "de_stop")]
    pub stop: Vec<String>,
    /// Tokens that end generation besides eos (included in the token ids, not in the text).
    pub stop_token_ids: Vec<u32>,
    /// Keep the matched stop string at the end of the text.
    pub include_stop_str_in_output: bool,
    /// Do not stop at eos.
    pub ignore_eos: bool,
    /// At most this many tokens per sequence (`None` = up to the model's length).
    #[serde(deserialize_with = "de_max_tokens")]
    pub max_tokens: Option<usize>,
    /// Eos and stop tokens are masked until the output has this many tokens.
    #[serde(deserialize_with = "de_min_tokens")]
    pub min_tokens: usize,
    /// Return this many top logprobs per output token (plus the chosen one).
    #[serde(deserialize_with = "de_logprobs")]
    pub logprobs: Option<usize>,
    /// Return this many top logprobs per prompt token (plus the actual one).
    #[serde(deserialize_with = "de_prompt_logprobs")]
    pub prompt_logprobs: Option<usize>,
    /// Leave special tokens out of the text.
    pub skip_special_tokens: bool,
    /// Put spaces between special tokens in the text.
    pub spaces_between_special_tokens: bool,
    /// Added to the logits of these token ids, clamped to [-100, 100] (as OpenAI).
    pub logit_bias: BTreeMap<u32, f32>,
    /// Only these tokens may be sampled.
    pub allowed_token_ids: Option<Vec<u32>>,
    /// Raw or processed logprobs in the output.
    pub logprobs_mode: LogprobsMode,
    /// The output must match this constraint (JSON schema, regex, choice, grammar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_outputs: Option<StructuredOutputs>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            best_of: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: 1.0,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: None,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            include_stop_str_in_output: false,
            ignore_eos: false,
            max_tokens: Some(16),
            min_tokens: 0,
            logprobs: None,
            prompt_logprobs: None,
            skip_special_tokens: true,
            spaces_between_special_tokens: true,
            logit_bias: BTreeMap::new(),
            allowed_token_ids: None,
            logprobs_mode: LogprobsMode::RawLogprobs,
            structured_outputs: None,
        }
    }
}

/// A parameter outside its allowed range; Display names the field, the rule and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// "{field} must be {rule}, got {got}", e.g. "top_p must be in (0, 1], got 2.0".
    #[error("{field} must be {rule}, got {got}")]
    OutOfRange {
        field: &'static str,
        rule: String,
        got: String,
    },
    /// "{field} {reason}", e.g. "stop cannot contain an empty string".
    #[error("{field} {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl ParamError {
    /// The offending field's name.
    pub fn field(&self) -> &'static str {
        match self {
            Self::OutOfRange { field, .. } | Self::Invalid { field, .. } => field,
        }
    }

    pub(crate) fn range(field: &'static str, rule: impl Into<String>, got: impl Into<String>) -> Self {
        Self::OutOfRange {
            field,
            rule: rule.into(),
            got: got.into(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether sampling is greedy (temperature below 1e-5).
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_EPS
    }

    /// Sequences to generate: `best_of`, or `n` when unset.
    pub fn best_of(&self) -> usize {
        self.best_of.unwrap_or(self.n)
    }

    /// Whether top_k restricts anything (0 and -1 mean off).
    pub fn top_k_enabled(&self) -> bool {
        self.top_k > 0
    }

    /// Checks every field against vLLM's rules; the first violation is returned.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.validate_counts()?;
        self.validate_penalties()?;
        self.validate_sampling()?;
        self.validate_lengths()?;
        self.validate_lists()?;
        self.validate_greedy()?;
        self.structured_outputs
            .as_ref()
            .map_or(Ok(()), StructuredOutputs::validate)
    }

    /// Checks that every token id named by the parameters is below `vocab_size`.
    pub fn validate_vocab(&self, vocab_size: usize) -> Result<(), ParamError> {
        in_vocab("logit_bias", self.logit_bias.keys().copied(), vocab_size)?;
        in_vocab("stop_token_ids", self.stop_token_ids.iter().copied(), vocab_size)?;
        in_vocab(
            "allowed_token_ids",
            self.allowed_token_ids.iter().flatten().copied(),
            vocab_size,
        )
    }

    fn validate_counts(&self) -> Result<(), ParamError> {
        if self.n < 1 {
            return Err(ParamError::range("n", "at least 1", self.n.to_string()));
        }
        if self.best_of() < self.n {
            let got = format!("n={} and best_of={}", self.n, self.best_of());
            return Err(ParamError::range("best_of", "greater than or equal to n", got));
        }
        Ok(())
    }

    fn validate_penalties(&self) -> Result<(), ParamError> {
        for (field, v) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return Err(ParamError::range(field, "in [-2, 2]", py_float(v)));
            }
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(ParamError::range(
                "repetition_penalty",
                "greater than zero",
                py_float(self.repetition_penalty),
            ));
        }
        Ok(())
    }

    fn validate_sampling(&self) -> Result<(), ParamError> {
        if self.temperature.is_nan() || self.temperature < 0.0 {
            return Err(ParamError::range(
                "temperature",
                "non-negative",
                py_float(self.temperature),
            ));
        }
        if self.temperature.is_infinite() {
            return Err(ParamError::range("temperature", "finite", "inf"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ParamError::range("top_p", "in (0, 1]", py_float(self.top_p)));
        }
        if self.top_k < -1 {
            return Err(ParamError::range(
                "top_k",
                "-1 or 0 (disable), or at least 1",
                self.top_k.to_string(),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(ParamError::range("min_p", "in [0, 1]", py_float(self.min_p)));
        }
        Ok(())
    }

    fn validate_lengths(&self) -> Result<(), ParamError> {
        let Some(max) = self.max_tokens else {
            return Ok(());
        };
        if max < 1 {
            return Err(ParamError::range("max_tokens", "at least 1", max.to_string()));
        }
        if self.min_tokens > max {
            let rule = format!("less than or equal to max_tokens={max}");
            return Err(ParamError::range("min_tokens", rule, self.min_tokens.to_string()));
        }
        Ok(())
    }

    fn validate_lists(&self) -> Result<(), ParamError> {
        if self.stop.iter().any(String::is_empty) {
            return Err(ParamError::Invalid {
                field: "stop",
                reason: "cannot contain an empty string".into(),
            });
        }
        if self.allowed_token_ids.as_ref().is_some_and(Vec::is_empty) {
            return Err(ParamError::Invalid {
                field: "allowed_token_ids",
                reason: "must not be empty".into(),
            });
        }
        if let Some((id, b)) = self.logit_bias.iter().find(|(_, b)| !b.is_finite()) {
            return Err(ParamError::Invalid {
                field: "logit_bias",
                reason: format!("must be finite, got {} for token {id}", py_float(*b)),
            });
        }
        Ok(())
    }

    fn validate_greedy(&self) -> Result<(), ParamError> {
        if !self.is_greedy() {
            return Ok(());
        }
        if self.n > 1 {
            return Err(ParamError::range(
                "n",
                "1 when using greedy sampling",
                self.n.to_string(),
            ));
        }
        if self.best_of() > 1 {
            return Err(ParamError::range(
                "best_of",
                "1 when using greedy sampling",
                self.best_of().to_string(),
            ));
        }
        Ok(())
    }
}

/// The first id of `ids` at or beyond `vocab_size`, as an error naming `field`.
fn in_vocab(field: &'static str, mut ids: impl Iterator<Item = u32>, vocab_size: usize) -> Result<(), ParamError> {
    match ids.find(|&id| id as usize >= vocab_size) {
        Some(id) => Err(ParamError::Invalid {
            field,
            reason: format!("contains out-of-vocab token id {id} (vocab size {vocab_size})"),
        }),
        None => Ok(()),
    }
}

/// A float as Python prints it: "2.0", "0.7", "-inf", "nan".
fn py_float(v: f32) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

// ---- counts given as signed integers (JSON, CLI flags, HTTP fields): the one place their
// minimums are checked and worded ----

/// A count field (`n`, `best_of`, `max_tokens`, `min_tokens`, `logprobs`, `prompt_logprobs`,
/// or any other non-negative count) given as a signed integer, checked against its minimum.
pub fn count_param(field: &'static str, v: i64) -> Result<usize, ParamError> {
    let (min, rule) = match field {
        "n" | "best_of" | "max_tokens" => (1, "at least 1"),
        "min_tokens" => (0, "greater than or equal to 0"),
        _ => (0, "non-negative"),
    };
    if v < min {
        return Err(ParamError::range(field, rule, v.to_string()));
    }
    usize::try_from(v).map_err(|_| ParamError::range(field, format!("at most {}", usize::MAX), v.to_string()))
}

// ---- serde helpers: counts that JSON may give as negative numbers, `stop` as string or list ----

fn non_negative<'de, D: Deserializer<'de>>(d: D, field: &'static str) -> Result<Option<usize>, D::Error> {
    match Option::<i64>::deserialize(d)? {
        Some(v) => count_param(field, v).map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

fn required<'de, D: Deserializer<'de>>(v: Option<usize>, field: &str) -> Result<usize, D::Error> {
    v.ok_or_else(|| serde::de::Error::custom(format!("{field} must be an integer, got null")))
}

fn de_n<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    required::<D>(non_negative(d, "n")?, "n")
}

fn de_best_of<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    non_negative(d, "best_of")
}

fn de_max_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    non_negative(d, "max_tokens")
}

fn de_min_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(non_negative(d, "min_tokens")?.unwrap_or(0))
}

fn de_logprobs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    non_negative(d, "logprobs")
}

fn de_prompt_logprobs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    non_negative(d, "prompt_logprobs")
}

/// Seeds are Python ints: negative ones are taken modulo 2^64.
fn de_seed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seed {
        U(u64),
        I(i64),
    }
    Ok(Option::<Seed>::deserialize(d)?.map(|s| match s {
        Seed::U(u) => u,
        Seed::I(i) => i as u64,
    }))
}

fn de_stop<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stop {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Stop>::deserialize(d)? {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: SamplingParams) -> ParamError {
        p.validate().expect_err("params should be invalid")
    }

    fn parse(json: &str) -> Result<SamplingParams, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_are_vllms() {
        let p = SamplingParams::default();
        assert_eq!((p.n, p.best_of, p.best_of()), (1, None, 1));
        assert_eq!((p.temperature, p.top_p, p.top_k, p.min_p), (1.0, 1.0, 0, 0.0));
        assert_eq!(
            (p.presence_penalty, p.frequency_penalty, p.repetition_penalty),
            (0.0, 0.0, 1.0)
        );
        assert_eq!(
            (p.max_tokens, p.min_tokens, p.logprobs, p.prompt_logprobs),
            (Some(16), 0, None, None)
        );
        assert!(p.skip_special_tokens && p.spaces_between_special_tokens);
        assert!(!p.ignore_eos && !p.include_stop_str_in_output);
        assert_eq!(p.logprobs_mode, LogprobsMode::RawLogprobs);
        assert!(p.validate().is_ok());
        assert!(!p.is_greedy() && SamplingParams::greedy().is_greedy());
    }

    #[test]
    fn parses_a_jsonl_line_with_missing_and_unknown_fields() {
        let p =
            parse(r#"{"prompt": "안녕", "temperature": 0.7, "stop": "\n", "logit_bias": {"50256": -100}, "seed": -1}"#)
                .expect("parse");
        assert_eq!(p.temperature, 0.7);
        assert_eq!(p.stop, vec!["\n".to_string()]);
        assert_eq!(p.logit_bias.get(&50256), Some(&-100.0));
        assert_eq!(p.seed, Some(u64::MAX));
        assert_eq!(p.max_tokens, Some(16));
        let p =
            parse(r#"{"stop": ["a", "b"], "max_tokens": null, "logprobs_mode": "processed_logprobs", "top_k": -1}"#)
                .expect("parse");
        assert_eq!(p.stop, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            (p.max_tokens, p.logprobs_mode, p.top_k),
            (None, LogprobsMode::ProcessedLogprobs, -1)
        );
    }

    #[test]
    fn serialization_round_trips() {
        let p = SamplingParams {
            n: 2,
            best_of: Some(3),
            stop: vec!["x".into()],
            seed: Some(5),
            ..Default::default()
        };
        let json = serde_json::to_string(&p).expect("serialize");
        assert!(json.contains(r#""best_of":3"#) && json.contains(r#""top_k":0"#));
        assert_eq!(parse(&json).expect("parse"), p);
    }

    #[test]
    fn negative_counts_are_rejected_while_parsing_with_the_field_named() {
        for (json, msg) in [
            (r#"{"n": 0}"#, "n must be at least 1, got 0"),
            (r#"{"max_tokens": -1}"#, "max_tokens must be at least 1, got -1"),
            (
                r#"{"min_tokens": -2}"#,
                "min_tokens must be greater than or equal to 0, got -2",
            ),
            (r#"{"logprobs": -1}"#, "logprobs must be non-negative, got -1"),
            (
                r#"{"prompt_logprobs": -3}"#,
                "prompt_logprobs must be non-negative, got -3",
            ),
            (r#"{"best_of": 0}"#, "best_of must be at least 1, got 0"),
        ] {
            let e = parse(json).expect_err(json).to_string();
            assert!(e.starts_with(msg), "{json}: {e}");
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let d = SamplingParams::default;
        let cases: Vec<(SamplingParams, &str, &str)> = vec![
            (SamplingParams { n: 0, ..d() }, "n", "n must be at least 1, got 0"),
            (
                SamplingParams {
                    n: 3,
                    best_of: Some(2),
                    ..d()
                },
                "best_of",
                "best_of must be greater than or equal to n, got n=3 and best_of=2",
            ),
            (
                SamplingParams {
                    presence_penalty: 2.5,
                    ..d()
                },
                "presence_penalty",
                "presence_penalty must be in [-2, 2], got 2.5",
            ),
            (
                SamplingParams {
                    frequency_penalty: -3.0,
                    ..d()
                },
                "frequency_penalty",
                "frequency_penalty must be in [-2, 2], got -3.0",
            ),
            (
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..d()
                },
                "repetition_penalty",
                "repetition_penalty must be greater than zero, got 0.0",
            ),
            (
                SamplingParams {
                    temperature: -0.5,
                    ..d()
                },
                "temperature",
                "temperature must be non-negative, got -0.5",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..d()
                },
                "temperature",
                "temperature must be non-negative, got nan",
            ),
            (
                SamplingParams {
                    temperature: f32::INFINITY,
                    ..d()
                },
                "temperature",
                "temperature must be finite, got inf",
            ),
            (
                SamplingParams { top_p: 2.0, ..d() },
                "top_p",
                "top_p must be in (0, 1], got 2.0",
            ),
            (
                SamplingParams { top_p: 0.0, ..d() },
                "top_p",
                "top_p must be in (0, 1], got 0.0",
            ),
            (
                SamplingParams { top_k: -2, ..d() },
                "top_k",
                "top_k must be -1 or 0 (disable), or at least 1, got -2",
            ),
            (
                SamplingParams { min_p: 1.5, ..d() },
                "min_p",
                "min_p must be in [0, 1], got 1.5",
            ),
            (
                SamplingParams {
                    max_tokens: Some(0),
                    ..d()
                },
                "max_tokens",
                "max_tokens must be at least 1, got 0",
            ),
            (
                SamplingParams {
                    max_tokens: Some(4),
                    min_tokens: 5,
                    ..d()
                },
                "min_tokens",
                "min_tokens must be less than or equal to max_tokens=4, got 5",
            ),
            (
                SamplingParams {
                    stop: vec!["".into()],
                    ..d()
                },
                "stop",
                "stop cannot contain an empty string",
            ),
            (
                SamplingParams {
                    allowed_token_ids: Some(vec![]),
                    ..d()
                },
                "allowed_token_ids",
                "allowed_token_ids must not be empty",
            ),
            (
                SamplingParams {
                    logit_bias: [(3, f32::INFINITY)].into(),
                    ..d()
                },
                "logit_bias",
                "logit_bias must be finite, got inf for token 3",
            ),
            (
                SamplingParams {
                    temperature: 0.0,
                    n: 2,
                    best_of: Some(2),
                    ..d()
                },
                "n",
                "n must be 1 when using greedy sampling, got 2",
            ),
            (
                SamplingParams {
                    temperature: 0.0,
                    best_of: Some(3),
                    ..d()
                },
                "best_of",
                "best_of must be 1 when using greedy sampling, got 3",
            ),
        ];
        for (p, field, msg) in cases {
            let e = err(p);
            assert_eq!((e.field(), e.to_string().as_str()), (field, msg));
        }
    }

    #[test]
    fn boundary_values_are_valid() {
        let d = SamplingParams::default;
        for p in [
            SamplingParams {
                top_p: 1.0,
                top_k: -1,
                min_p: 1.0,
                ..d()
            },
            SamplingParams {
                top_k: 1,
                min_p: 0.0,
                presence_penalty: -2.0,
                frequency_penalty: 2.0,
                ..d()
            },
            SamplingParams {
                temperature: 0.0,
                max_tokens: None,
                min_tokens: 1000,
                ..d()
            },
            SamplingParams {
                n: 2,
                best_of: Some(5),
                repetition_penalty: 0.01,
                ..d()
            },
            SamplingParams {
                max_tokens: Some(3),
                min_tokens: 3,
                ..d()
            },
        ] {
            assert_eq!(p.validate(), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn validate_vocab_names_out_of_vocab_ids() {
        let p = SamplingParams {
            stop_token_ids: vec![1, 10],
            ..Default::default()
        };
        let e = p.validate_vocab(10).expect_err("id 10 is out of vocab");
        assert_eq!(e.field(), "stop_token_ids");
        assert_eq!(
            e.to_string(),
            "stop_token_ids contains out-of-vocab token id 10 (vocab size 10)"
        );
        assert!(p.validate_vocab(11).is_ok());
        let p = SamplingParams {
            logit_bias: [(99, 1.0)].into(),
            ..Default::default()
        };
        assert_eq!(p.validate_vocab(50).map_err(|e| e.field()), Err("logit_bias"));
        let p = SamplingParams {
            allowed_token_ids: Some(vec![0, 50]),
            ..Default::default()
        };
        assert_eq!(p.validate_vocab(50).map_err(|e| e.field()), Err("allowed_token_ids"));
    }

    #[test]
    fn py_float_prints_like_python() {
        assert_eq!(py_float(2.0), "2.0");
        assert_eq!(py_float(0.7), "0.7");
        assert_eq!(py_float(-3.0), "-3.0");
        assert_eq!(py_float(f32::NEG_INFINITY), "-inf");
    }
}
