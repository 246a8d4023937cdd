//! What a JSON-schema constraint costs in decode speed: the same chat prompt generated with and
//! without the constraint, alternating A/B in one run, same number of output tokens (the
//! unconstrained run gets `ignore_eos` and the constrained output's length), then the mask
//! time per token, measured by replaying the constrained output through a fresh matcher.
//!
//! `cargo run --release -p ondo --example structured_cost -- MODEL.gguf [ROUNDS]`

use ondo::{Llm, LoadOptions, Prompt, SamplingParams, StructuredOutputs};
use serde_json::json;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: structured_cost MODEL [ROUNDS]"))?;
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let llm = Llm::load(&model, &LoadOptions::default())?;
    let schema = json!({"type": "object", "properties": {"people": {"type": "array", "minItems": 6, "maxItems": 6,
        "items": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
            "age": {"type": "integer", "minimum": 0, "maximum": 99},
            "city": {"type": "string", "maxLength": 16}}, "required": ["name", "age", "city"],
            "additionalProperties": false}}}, "required": ["people"], "additionalProperties": false});
    let ask = format!("List six people with name, age and city as JSON matching {schema}");
    let text = llm.render_chat(
        &[json!({"role": "user", "content": ask})],
        &ondo_text::RenderOptions {
            add_generation_prompt: true,
            ..Default::default()
        },
    )?;
    let prompt = Prompt::Ids(llm.tokenizer().encode(&text, false)?);
    let constrained = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(400),
        structured_outputs: Some(StructuredOutputs::json(schema.clone())),
        ..Default::default()
    };
    let warm = llm.generate(std::slice::from_ref(&prompt), &constrained)?;
    let n_tokens = warm[0].outputs[0].token_ids.len();
    let free = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(n_tokens),
        ignore_eos: true,
        ..Default::default()
    };
    // with logprobs tracked, forced tokens are drawn one per step like any other (no
    // fast-forward): the pure cost of masking; both sides then compute the logprobs
    let with_lp = |p: &SamplingParams| SamplingParams {
        logprobs: Some(0),
        ..p.clone()
    };
    let variants = [free.clone(), constrained.clone(), with_lp(&free), with_lp(&constrained)];
    let mut secs = [0.0f64; 4];
    for _ in 0..rounds {
        for (v, t) in variants.iter().zip(secs.iter_mut()) {
            *t += timed(&llm, &prompt, v)?;
        }
    }
    let tps: Vec<f64> = secs.iter().map(|t| (n_tokens * rounds) as f64 / t).collect();
    let pct = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    println!("{model}: {n_tokens} output tokens, {rounds} rounds alternating (tok/s, prompt included)");
    println!("  without constraint: {:.1}", tps[0]);
    println!(
        "  with JSON schema:   {:.1} ({:+.1}%, forced tokens fast-forwarded)",
        tps[1],
        pct(tps[0], tps[1])
    );
    println!(
        "  no fast-forward, both with logprobs: {:.1} vs {:.1} ({:+.1}%)",
        tps[2],
        tps[3],
        pct(tps[2], tps[3])
    );
    let mask = mask_time(&llm, &constrained, &warm[0].outputs[0].token_ids)?;
    println!("  mask + commit per token: {:.1} µs", mask * 1e6);
    Ok(())
}

/// Seconds to generate `prompt` with `params`.
fn timed(llm: &Llm, prompt: &Prompt, params: &SamplingParams) -> anyhow::Result<f64> {
    let t = Instant::now();
    llm.generate(std::slice::from_ref(prompt), params)?;
    Ok(t.elapsed().as_secs_f64())
}

/// Mean seconds of one mask + commit, replaying `tokens` through a fresh matcher.
fn mask_time(llm: &Llm, params: &SamplingParams, tokens: &[u32]) -> anyhow::Result<f64> {
    let so = params.structured_outputs.as_ref().expect("constrained");
    let guide = ondo_engine::Guide::new(
        llm.parts().tokenizer.clone(),
        llm.model().hparams().vocab_size,
        llm.parts().eos_ids.clone(),
    );
    let mut seq = guide.compile(so)?.for_sequence().with_fast_forward(false);
    let mut logits = vec![0.0f32; llm.model().hparams().vocab_size];
    let t = Instant::now();
    for &tok in tokens {
        seq.mask(&mut logits);
        seq.commit(tok);
    }
    Ok(t.elapsed().as_secs_f64() / tokens.len().max(1) as f64)
}
