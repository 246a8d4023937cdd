//! Sampling flags, each named after its `SamplingParams` field; unset flags keep the model's
//! defaults (generation_config.json, else vLLM's).

use anyhow::{anyhow, Context};
use ondo::SamplingParams;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SamplingArgs {
    /// Sequences to return
    #[arg(long)]
    pub n: Option<usize>,
    /// Sequences to generate; the n with the highest cumulative logprob are returned
    #[arg(long)]
    pub best_of: Option<usize>,
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
    #[arg(long)]
    pub seed: Option<u64>,
    /// A stop string (repeatable)
    #[arg(long)]
    pub stop: Vec<String>,
    /// Token ids that stop generation, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub stop_token_ids: Vec<u32>,
    #[arg(long)]
    pub include_stop_str_in_output: bool,
    #[arg(long)]
    pub ignore_eos: bool,
    #[arg(long)]
    pub max_tokens: Option<usize>,
    #[arg(long)]
    pub min_tokens: Option<usize>,
    /// Return the top LOGPROBS logprobs of each generated token
    #[arg(long)]
    pub logprobs: Option<usize>,
    /// Return the top PROMPT_LOGPROBS logprobs of each prompt token
    #[arg(long)]
    pub prompt_logprobs: Option<usize>,
    /// Keep special tokens in the output text
    #[arg(long)]
    pub no_skip_special_tokens: bool,
    /// ID=BIAS added to a token's logit (repeatable)
    #[arg(long, allow_hyphen_values = true)]
    pub logit_bias: Vec<String>,
}

impl SamplingArgs {
    /// The flags applied over `base`, validated.
    pub fn apply(&self, mut p: SamplingParams) -> anyhow::Result<SamplingParams> {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { p.$field = v; } )* };
        }
        set!(n, temperature, top_k, top_p, min_p, presence_penalty, frequency_penalty, repetition_penalty, min_tokens);
        p.best_of = self.best_of.or(p.best_of);
        p.seed = self.seed.or(p.seed);
        p.max_tokens = self.max_tokens.or(p.max_tokens);
        p.logprobs = self.logprobs.or(p.logprobs);
        p.prompt_logprobs = self.prompt_logprobs.or(p.prompt_logprobs);
        p.stop.extend(self.stop.iter().cloned());
        p.stop_token_ids.extend(&self.stop_token_ids);
        p.include_stop_str_in_output |= self.include_stop_str_in_output;
        p.ignore_eos |= self.ignore_eos;
        p.skip_special_tokens &= !self.no_skip_special_tokens;
        for entry in &self.logit_bias {
            let (id, bias) = parse_bias(entry).with_context(|| format!("--logit-bias {entry}"))?;
            p.logit_bias.insert(id, bias);
        }
        p.validate()?;
        Ok(p)
    }
}

fn parse_bias(entry: &str) -> anyhow::Result<(u32, f32)> {
    let (id, bias) = entry.split_once('=').ok_or_else(|| anyhow!("expected ID=BIAS"))?;
    Ok((id.trim().parse().context("ID must be a token id")?, bias.trim().parse().context("BIAS must be a number")?))
}
