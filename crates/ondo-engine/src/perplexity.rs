//! Quality of a (quantized) model over a text, as llama-perplexity measures it: the text's
//! tokens are cut into chunks of `ctx` tokens, each chunk runs from an empty cache with logits
//! for every position, and the second half of each chunk is scored (so every scored token has
//! at least `ctx / 2` tokens of context). Perplexity is `exp(mean -log p(next token))`. With a
//! base model (the unquantized one), each scored position also gets the KL divergence of the
//! model's next-token distribution from the base's, `sum p_base · (log p_base − log p_model)`,
//! and whether both rank the same token first (`--kl-divergence`'s "same top p").

use crate::core::ModelParts;
use crate::EngineError;
use ondo_model::{LogitsFor, SeqCache, Workspace};

/// Tokens per forward call while scoring (logits of every row are kept).
const STEP: usize = 64;

/// What to score.
#[derive(Debug, Clone, Copy)]
pub struct ScoreOptions {
    /// Tokens per chunk (llama-perplexity's `-c`).
    pub ctx: usize,
    /// Score at most this many chunks.
    pub max_chunks: Option<usize>,
}

/// Perplexity and, against a base model, KL divergence.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub chunks: usize,
    /// Scored tokens.
    pub tokens: usize,
    /// Sum of -log p(next token).
    pub nll: f64,
    /// Per scored token: KL(base ‖ model), when a base model was given.
    pub kl: Vec<f64>,
    /// Scored tokens where model and base have the same most likely token.
    pub same_top: usize,
}

impl Score {
    pub fn perplexity(&self) -> f64 {
        (self.nll / self.tokens.max(1) as f64).exp()
    }
    pub fn mean_kl(&self) -> f64 {
        self.kl.iter().sum::<f64>() / self.kl.len().max(1) as f64
    }
    /// The `q` quantile (0..=1) of the per-token KL values.
    pub fn kl_quantile(&self, q: f64) -> f64 {
        let mut v = self.kl.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// Score `ids` with `model`, and against `base` when given (same vocabulary).
pub fn score(
    model: &ModelParts,
    base: Option<&ModelParts>,
    ids: &[u32],
    opts: ScoreOptions,
) -> Result<Score, EngineError> {
    let ctx = opts.ctx.min(model.model.hparams().max_position_embeddings);
    if ctx < 8 {
        return Err(EngineError::Load(format!(
            "--ctx {ctx}: a chunk needs at least 8 tokens"
        )));
    }
    if ids.len() < ctx {
        return Err(EngineError::Load(format!(
            "the text has {} tokens, fewer than one chunk of --ctx {ctx}",
            ids.len()
        )));
    }
    if let Some(b) = base {
        let (v, bv) = (model.model.hparams().vocab_size, b.model.hparams().vocab_size);
        if v != bv {
            return Err(EngineError::Load(format!(
                "vocabularies differ: {v} tokens vs the base's {bv}"
            )));
        }
    }
    let bos = model.tokenizer.bos_token_id().filter(|_| adds_bos(model));
    let mut out = Score::default();
    let chunks = (ids.len() / ctx).min(opts.max_chunks.unwrap_or(usize::MAX));
    for c in 0..chunks {
        let mut chunk = ids[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let logits = all_logits(model, &chunk)?;
        let base_logits = base.map(|b| all_logits(b, &chunk)).transpose()?;
        score_chunk(
            &chunk,
            &logits,
            base_logits.as_deref(),
            model.model.hparams().vocab_size,
            &mut out,
        );
        out.chunks += 1;
    }
    Ok(out)
}

/// Whether the tokenizer puts BOS first (as llama-perplexity, each chunk then starts with it).
fn adds_bos(p: &ModelParts) -> bool {
    let (with, without) = (p.tokenizer.encode("a", true), p.tokenizer.encode("a", false));
    matches!((with, without), (Ok(w), Ok(o)) if w.len() > o.len() && Some(w[0]) == p.tokenizer.bos_token_id())
}

/// `[tokens, vocab]` logits of a chunk run from an empty cache.
fn all_logits(p: &ModelParts, chunk: &[u32]) -> Result<Vec<f32>, EngineError> {
    let hp = p.model.hparams();
    let mut kv = SeqCache::new(hp, chunk.len(), p.kv_dtype);
    let mut ws = Workspace::with_pool(hp, STEP, p.pool.clone());
    let mut out = Vec::with_capacity(chunk.len() * hp.vocab_size);
    for piece in chunk.chunks(STEP) {
        out.extend_from_slice(kv.forward(&*p.model, piece, &mut ws, LogitsFor::All)?);
    }
    Ok(out)
}

/// Add the second half of a chunk to `out`.
fn score_chunk(chunk: &[u32], logits: &[f32], base: Option<&[f32]>, vocab: usize, out: &mut Score) {
    let mut lp = vec![0f64; vocab];
    let mut lb = vec![0f64; vocab];
    for pos in chunk.len() / 2..chunk.len() - 1 {
        let row = &logits[pos * vocab..(pos + 1) * vocab];
        log_softmax(row, &mut lp);
        out.nll -= lp[chunk[pos + 1] as usize];
        out.tokens += 1;
        if let Some(base) = base {
            log_softmax(&base[pos * vocab..(pos + 1) * vocab], &mut lb);
            let kl: f64 = lb.iter().zip(&lp).map(|(b, m)| b.exp() * (b - m)).sum();
            out.kl.push(kl.max(0.0));
            out.same_top += (argmax(&lp) == argmax(&lb)) as usize;
        }
    }
}

fn log_softmax(x: &[f32], out: &mut [f64]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
    let log_z = max + sum.ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v as f64 - log_z;
    }
}

fn argmax(x: &[f64]) -> usize {
    x.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_kl_and_a_shifted_one_more() {
        let vocab = 4;
        let chunk = [0u32, 1, 2, 3, 0, 1, 2, 3];
        let logits: Vec<f32> = (0..chunk.len() * vocab).map(|i| (i % 5) as f32 * 0.3).collect();
        let mut same = Score::default();
        score_chunk(&chunk, &logits, Some(&logits), vocab, &mut same);
        assert_eq!(same.tokens, 3);
        assert!(same.mean_kl().abs() < 1e-12 && same.same_top == 3);
        let other: Vec<f32> = logits.iter().rev().copied().collect();
        let mut diff = Score::default();
        score_chunk(&chunk, &logits, Some(&other), vocab, &mut diff);
        assert!(diff.mean_kl() > 0.01, "{}", diff.mean_kl());
        // uniform logits: perplexity is the vocabulary size
        let mut uniform = Score::default();
        score_chunk(&chunk, &vec![0.0; chunk.len() * vocab], None, vocab, &mut uniform);
        assert!((uniform.perplexity() - 4.0).abs() < 1e-9);
    }
}
