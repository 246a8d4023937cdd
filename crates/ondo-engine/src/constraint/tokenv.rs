//! llguidance's view of ondo's tokenizer: a `toktrie::TokTrie` of every token's bytes
//! (`Tokenizer::token_bytes`: byte-level BPE, SentencePiece, special tokens behind 0xFF) and
//! tokenization of byte strings, which llguidance uses to find tokens a constraint forces.

use std::sync::Arc;

use ondo_text::Tokenizer;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

pub(super) struct OndoTokEnv {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
    /// Whether `encode` of a piece of text gives the tokens the model would see for it in
    /// context: true for byte-level BPE; SentencePiece adds a leading space, so there
    /// llguidance falls back to its own greedy tokenization and forces no tokens.
    canonical: bool,
}

impl OndoTokEnv {
    pub fn new(tokenizer: Arc<Tokenizer>, vocab_size: usize, eos_ids: &[u32]) -> OndoTokEnv {
        let words = tokenizer.token_bytes(vocab_size);
        let eos = tokenizer.eos_token_id().or(eos_ids.first().copied()).unwrap_or(0);
        let info = TokRxInfo {
            vocab_size: vocab_size as u32,
            tok_eos: eos,
            tok_bos: tokenizer.bos_token_id(),
            tok_pad: tokenizer.pad_token_id(),
            tok_unk: tokenizer.unk_token_id(),
            tok_end_of_turn: None,
        };
        let mut all_eos = vec![eos];
        all_eos.extend(
            eos_ids
                .iter()
                .copied()
                .filter(|&e| e != eos && (e as usize) < vocab_size),
        );
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&all_eos);
        let canonical = tokenizer.is_byte_level();
        OndoTokEnv {
            trie,
            tokenizer,
            canonical,
        }
    }

    pub fn into_tok_env(self) -> TokEnv {
        Arc::new(self)
    }
}

impl TokenizerEnv for OndoTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        if !self.canonical {
            return self.trie.greedy_tokenize(s);
        }
        match std::str::from_utf8(s) {
            Ok(text) => self
                .tokenizer
                .encode_with(text, false, false)
                .unwrap_or_else(|_| self.trie.greedy_tokenize(s)),
            Err(_) => self.trie.greedy_tokenize(s),
        }
    }

    fn tokenize_is_canonical(&self) -> bool {
        self.canonical
    }
}
