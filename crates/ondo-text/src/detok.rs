//! Incremental detokenization for streaming, as vLLM does it.
//!
//! Decoding one token at a time is wrong for two reasons: a character can span several tokens
//! (byte-level BPE, SentencePiece byte fallback), and SentencePiece decoders drop the space in
//! front of the first token of a decode call. So each step decodes a short window of tokens twice,
//! once without and once with the new token(s), and emits the difference; while the new text ends
//! in an unfinished character ("\u{FFFD}"), nothing is emitted and the window grows.

use crate::error::Result;
use crate::tokenizer::Tokenizer;
use std::ops::Deref;

/// How many prompt tokens the first window reaches back (vLLM uses 5 too).
const PROMPT_CONTEXT: usize = 5;

/// Turns generated token ids into text deltas; their concatenation is the text the generated
/// tokens add to the prompt (with no prompt: `decode(all_output_ids)`).
/// `T` is how it holds the tokenizer: `&Tokenizer`, or an `Arc<Tokenizer>` to own a share.
#[derive(Debug)]
pub struct IncrementalDetokenizer<T: Deref<Target = Tokenizer>> {
    tokenizer: T,
    skip_special_tokens: bool,
    ids: Vec<u32>,
    /// Start of the window decoded as context.
    prefix_offset: usize,
    /// End of the text already emitted.
    read_offset: usize,
}

impl<T: Deref<Target = Tokenizer>> IncrementalDetokenizer<T> {
    /// Starts after `prompt_ids` (they give the first token its context; their text is not emitted).
    pub fn new(tokenizer: T, prompt_ids: &[u32], skip_special_tokens: bool) -> Self {
        let start = prompt_ids.len().saturating_sub(PROMPT_CONTEXT);
        IncrementalDetokenizer {
            tokenizer,
            skip_special_tokens,
            ids: prompt_ids[start..].to_vec(),
            prefix_offset: 0,
            read_offset: prompt_ids.len() - start,
        }
    }

    /// Adds one generated token; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.ids.push(id);
        let prefix = self.decode(self.prefix_offset, self.read_offset)?;
        let full = self.decode(self.prefix_offset, self.ids.len())?;
        if full.len() <= prefix.len() || full.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(delta(&prefix, &full))
    }

    /// The text still held back at the end of generation (an unfinished character shows as
    /// "\u{FFFD}", as in a full decode).
    pub fn finish(&mut self) -> Result<String> {
        if self.read_offset == self.ids.len() {
            return Ok(String::new());
        }
        let prefix = self.decode(self.prefix_offset, self.read_offset)?;
        let full = self.decode(self.prefix_offset, self.ids.len())?;
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(delta(&prefix, &full))
    }

    fn decode(&self, from: usize, to: usize) -> Result<String> {
        self.tokenizer.decode(&self.ids[from..to], self.skip_special_tokens)
    }
}

/// `full` minus its first `prefix.len()` bytes, or minus the common prefix when the prefix text
/// changed (a decoder that rewrites earlier text); never splits a character.
fn delta(prefix: &str, full: &str) -> String {
    if let Some(rest) = full.strip_prefix(prefix) {
        return rest.to_string();
    }
    let common = prefix
        .char_indices()
        .zip(full.chars())
        .take_while(|((_, a), b)| a == b)
        .count();
    full.chars().skip(common).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf_vocab::GgufVocab;

    /// A SentencePiece vocabulary: "▁Hello", "▁world" (with the prefixes merging needs), "!", bytes.
    fn spm() -> Tokenizer {
        let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "!"].map(String::from).to_vec();
        let mut scores = vec![0.0; 4];
        for word in ["▁Hello", "▁world"] {
            for (n, (end, c)) in word.char_indices().enumerate() {
                tokens.push(word[..end + c.len_utf8()].to_string());
                scores.push(n as f32);
            }
        }
        let mut types = vec![2, 3, 3];
        types.resize(tokens.len(), 1);
        for b in 0..=255u32 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
            scores.push(0.0);
        }
        let v = GgufVocab {
            model: "llama".into(),
            tokens,
            scores,
            token_types: types,
            bos_id: Some(1),
            eos_id: Some(2),
            unk_id: Some(0),
            ..Default::default()
        };
        Tokenizer::from_gguf_vocab(&v).expect("toy vocabulary")
    }

    fn stream(tok: &Tokenizer, prompt: &[u32], ids: &[u32], skip: bool) -> Vec<String> {
        let mut d = IncrementalDetokenizer::new(tok, prompt, skip);
        let mut out: Vec<String> = ids.iter().map(|&id| d.push(id).expect("push")).collect();
        out.push(d.finish().expect("finish"));
        out
    }

    #[test]
    fn hangul_waits_for_its_last_byte() {
        let tok = spm();
        let ids = tok.encode("Hello 한!", false).expect("encode");
        let deltas = stream(&tok, &[], &ids, true);
        assert!(deltas.iter().all(|d| !d.contains('\u{FFFD}')), "{deltas:?}");
        assert!(deltas.contains(&"한".to_string()), "{deltas:?}");
        assert_eq!(deltas.concat(), tok.decode(&ids, true).expect("decode"));
    }

    #[test]
    fn leading_space_kept_after_a_prompt() {
        let tok = spm();
        let prompt = tok.encode("Hello", true).expect("encode");
        let out = tok.encode("world world", false).expect("encode");
        assert_eq!(stream(&tok, &prompt, &out, true).concat(), " world world");
        assert_eq!(stream(&tok, &[], &out, true).concat(), "world world");
    }

    #[test]
    fn special_tokens_follow_skip_flag() {
        let tok = spm();
        let ids = tok.encode("Hello world</s>", false).expect("encode");
        assert_eq!(ids.last(), Some(&2));
        // Skipped BOS: the first word starts the text (no space), as in a full decode.
        assert_eq!(stream(&tok, &[1], &ids, true).concat(), "Hello world");
        assert_eq!(stream(&tok, &[1], &ids, false).concat(), " Hello world</s>");
    }

    #[test]
    fn unfinished_character_is_flushed_by_finish() {
        let tok = spm();
        let ids = tok.encode("한", false).expect("encode");
        let deltas = stream(&tok, &[], &ids[..ids.len() - 1], true);
        assert_eq!(deltas.last().map(String::as_str), Some("\u{FFFD}"), "{deltas:?}");
    }
}
