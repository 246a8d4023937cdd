//! Sampling flags, each named after its `SamplingParams` field; unset flags keep the model's
//! defaults (generation_config.json, else vLLM's).
//!
//! Every numeric flag takes negative numbers (`allow_hyphen_values`, signed types), so a value
//! such as `--max-tokens -1` reaches validation and is reported with the field's rule, as vLLM
//! words it, rather than as a clap parse error.

use anyhow::{anyhow, bail, Context};
use ondo::SamplingParams;
use ondo_engine::params::{count_param, LogprobsMode};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SamplingArgs {
    /// Sequences to return
    #[arg(long, allow_hyphen_values = true)]
    pub n: Option<i64>,
    /// Sequences to generate; the n with the highest cumulative logprob are returned
    #[arg(long, allow_hyphen_values = true)]
    pub best_of: Option<i64>,
    /// 0 = greedy
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: Option<f32>,
    /// 0 or -1 = off
    #[arg(long, allow_hyphen_values = true)]
    pub top_k: Option<i32>,
    #[arg(long, allow_hyphen_values = true)]
    pub top_p: Option<f32>,
    #[arg(long, allow_hyphen_values = true)]
    pub min_p: Option<f32>,
    #[arg(long, allow_hyphen_values = true)]
    pub presence_penalty: Option<f32>,
    #[arg(long, allow_hyphen_values = true)]
    pub frequency_penalty: Option<f32>,
    #[arg(long, allow_hyphen_values = true)]
    pub repetition_penalty: Option<f32>,
    /// Seed of the random streams (negative seeds are taken modulo 2^64, as Python ints)
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<i128>,
    /// A stop string (repeatable)
    #[arg(long, allow_hyphen_values = true)]
    pub stop: Vec<String>,
    /// Token ids that stop generation, comma-separated
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub stop_token_ids: Vec<i64>,
    #[arg(long)]
    pub include_stop_str_in_output: bool,
    #[arg(long)]
    pub ignore_eos: bool,
    #[arg(long, allow_hyphen_values = true)]
    pub max_tokens: Option<i64>,
    #[arg(long, allow_hyphen_values = true)]
    pub min_tokens: Option<i64>,
    /// Return the top LOGPROBS logprobs of each generated token
    #[arg(long, allow_hyphen_values = true)]
    pub logprobs: Option<i64>,
    /// Return the top PROMPT_LOGPROBS logprobs of each prompt token
    #[arg(long, allow_hyphen_values = true)]
    pub prompt_logprobs: Option<i64>,
    /// Which logprobs are returned: of the raw logits, or of the logits sampled from (after
    /// biases, penalties, temperature, min_p/top_k/top_p)
    #[arg(long, value_parser = ["raw_logprobs", "processed_logprobs"])]
    pub logprobs_mode: Option<String>,
    /// Keep special tokens in the output text
    #[arg(long)]
    pub no_skip_special_tokens: bool,
    /// No spaces between special tokens in the output text
    #[arg(long)]
    pub no_spaces_between_special_tokens: bool,
    /// ID=BIAS added to a token's logit (repeatable)
    #[arg(long, allow_hyphen_values = true)]
    pub logit_bias: Vec<String>,
    /// Only these token ids may be sampled, comma-separated
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub allowed_token_ids: Option<Vec<i64>>,
    #[command(flatten)]
    pub structured: super::structured::StructuredArgs,
}

impl SamplingArgs {
    /// The flags applied over `base`, validated.
    pub fn apply(&self, mut p: SamplingParams) -> anyhow::Result<SamplingParams> {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { p.$field = v; } )* };
        }
        set!(
            temperature,
            top_k,
            top_p,
            min_p,
            presence_penalty,
            frequency_penalty,
            repetition_penalty
        );
        if let Some(v) = self.n {
            p.n = count_param("n", v)?;
        }
        if let Some(v) = self.best_of {
            p.best_of = Some(count_param("best_of", v)?);
        }
        if let Some(v) = self.max_tokens {
            p.max_tokens = Some(count_param("max_tokens", v)?);
        }
        if let Some(v) = self.min_tokens {
            p.min_tokens = count_param("min_tokens", v)?;
        }
        if let Some(v) = self.logprobs {
            p.logprobs = Some(count_param("logprobs", v)?);
        }
        if let Some(v) = self.prompt_logprobs {
            p.prompt_logprobs = Some(count_param("prompt_logprobs", v)?);
        }
        if let Some(seed) = self.seed {
            p.seed = Some(python_seed(seed)?);
        }
        p.stop.extend(self.stop.iter().cloned());
        p.stop_token_ids
            .extend(token_ids("stop_token_ids", &self.stop_token_ids)?);
        if let Some(ids) = &self.allowed_token_ids {
            p.allowed_token_ids = Some(token_ids("allowed_token_ids", ids)?);
        }
        if let Some(mode) = &self.logprobs_mode {
            p.logprobs_mode = match mode.as_str() {
                "processed_logprobs" => LogprobsMode::ProcessedLogprobs,
                _ => LogprobsMode::RawLogprobs,
            };
        }
        p.include_stop_str_in_output |= self.include_stop_str_in_output;
        p.ignore_eos |= self.ignore_eos;
        p.skip_special_tokens &= !self.no_skip_special_tokens;
        p.spaces_between_special_tokens &= !self.no_spaces_between_special_tokens;
        for entry in &self.logit_bias {
            let (id, bias) = parse_bias(entry).with_context(|| format!("--logit-bias {entry}"))?;
            p.logit_bias.insert(id, bias);
        }
        if let Some(so) = self.structured.constraint()? {
            p.structured_outputs = Some(so);
        }
        p.validate()?;
        Ok(p)
    }
}

/// Python's int seed: negative values wrap modulo 2^64; values outside [-2^63, 2^64) are refused.
fn python_seed(seed: i128) -> anyhow::Result<u64> {
    if let Ok(u) = u64::try_from(seed) {
        return Ok(u);
    }
    match i64::try_from(seed) {
        Ok(i) => Ok(i as u64),
        Err(_) => bail!("seed must be in [-2^63, 2^64), got {seed}"),
    }
}

fn token_ids(field: &str, ids: &[i64]) -> anyhow::Result<Vec<u32>> {
    ids.iter()
        .map(|&id| u32::try_from(id).map_err(|_| anyhow!("{field} must contain token ids (0 or more), got {id}")))
        .collect()
}

fn parse_bias(entry: &str) -> anyhow::Result<(u32, f32)> {
    let (id, bias) = entry.split_once('=').ok_or_else(|| anyhow!("expected ID=BIAS"))?;
    Ok((
        id.trim().parse().context("ID must be a token id")?,
        bias.trim().parse().context("BIAS must be a number")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        s: SamplingArgs,
    }

    fn apply(args: &[&str]) -> anyhow::Result<SamplingParams> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?;
        cli.s.apply(SamplingParams::default())
    }

    #[test]
    fn negative_numbers_reach_validation() {
        for (args, want) in [
            (&["--max-tokens", "-1"][..], "max_tokens must be at least 1, got -1"),
            (&["--n", "-2"], "n must be at least 1, got -2"),
            (&["--best-of", "-1"], "best_of must be at least 1, got -1"),
            (
                &["--min-tokens", "-3"],
                "min_tokens must be greater than or equal to 0, got -3",
            ),
            (&["--logprobs", "-1"], "logprobs must be non-negative, got -1"),
            (
                &["--prompt-logprobs", "-1"],
                "prompt_logprobs must be non-negative, got -1",
            ),
            (&["--temperature", "-0.5"], "temperature must be non-negative"),
            (&["--top-p", "-1"], "top_p must be in (0, 1]"),
            (&["--min-p", "-0.1"], "min_p must be in [0, 1]"),
            (&["--top-k", "-7"], "top_k must be -1 or 0"),
            (&["--presence-penalty", "-3"], "presence_penalty must be in [-2, 2]"),
            (&["--frequency-penalty", "-2.5"], "frequency_penalty must be in [-2, 2]"),
            (
                &["--repetition-penalty", "-1"],
                "repetition_penalty must be greater than zero",
            ),
            (&["--stop-token-ids", "-1"], "stop_token_ids must contain token ids"),
            (
                &["--allowed-token-ids", "3,-4"],
                "allowed_token_ids must contain token ids (0 or more), got -4",
            ),
        ] {
            let err = format!("{:#}", apply(args).expect_err(&format!("{args:?} accepted")));
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn in_range_negatives_are_accepted() {
        let p = apply(&[
            "--top-k",
            "-1",
            "--presence-penalty",
            "-1.5",
            "--seed",
            "-1",
            "--logit-bias",
            "5=-100",
        ])
        .unwrap();
        assert_eq!((p.top_k, p.presence_penalty, p.seed), (-1, -1.5, Some(u64::MAX)));
        assert_eq!(p.logit_bias.get(&5), Some(&-100.0));
        assert!(apply(&["--seed", "-99999999999999999999"])
            .unwrap_err()
            .to_string()
            .contains("seed"));
    }

    #[test]
    fn new_flags_set_their_fields() {
        let p = apply(&[
            "--allowed-token-ids",
            "1,2,3",
            "--logprobs-mode",
            "processed_logprobs",
            "--no-spaces-between-special-tokens",
        ])
        .unwrap();
        assert_eq!(p.allowed_token_ids, Some(vec![1, 2, 3]));
        assert_eq!(p.logprobs_mode, LogprobsMode::ProcessedLogprobs);
        assert!(!p.spaces_between_special_tokens);
        let p = apply(&[]).unwrap();
        assert_eq!(
            (p.allowed_token_ids, p.logprobs_mode),
            (None, LogprobsMode::RawLogprobs)
        );
        assert!(p.spaces_between_special_tokens);
        assert!(apply(&["--logprobs-mode", "bogus"]).is_err());
    }
}
