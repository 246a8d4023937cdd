//! The bytes each token stands for, for byte-level constraint engines (llguidance's `toktrie`).
//!
//! A token's vocabulary entry is not its text: byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM2)
//! spells every byte as one printable character (`Ġ` = space, `Ċ` = newline); SentencePiece
//! (Llama 2, Gemma, GGUF "llama" vocabularies) writes a space as `▁` and a raw byte as
//! `<0xNN>`. Added tokens are their literal text. Special tokens (control tokens, EOS...) get
//! toktrie's marker byte 0xFF before their text, so no constraint matches them as text.

use std::collections::HashMap;

use serde_json::Value;

use super::{Backend, Tokenizer};

/// toktrie's prefix for special tokens (`TokTrie::SPECIAL_TOKEN_MARKER`).
pub const SPECIAL_TOKEN_MARKER: u8 = 0xFF;

/// How a vocabulary spells bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// GPT-2's byte-to-character table.
    ByteLevel,
    /// `space` stands for a space, `<0xNN>` for a byte.
    SentencePiece { space: char },
    /// Entries are their text (WordPiece-like vocabularies).
    Plain,
}

impl Tokenizer {
    /// The bytes of every token id below `vocab_size` (the model's logits width, which may
    /// exceed the tokenizer's: ids without an entry get no bytes). Special tokens start with
    /// [`SPECIAL_TOKEN_MARKER`].
    pub fn token_bytes(&self, vocab_size: usize) -> Vec<Vec<u8>> {
        let spelling = self.spelling();
        let added = self.added_texts();
        let byte_of = byte_level_table();
        (0..vocab_size as u32)
            .map(|id| {
                if let Some(text) = added.get(&id) {
                    return self.literal_bytes(id, text);
                }
                match self.id_to_token(id) {
                    Some(entry) if self.is_special(id) => self.literal_bytes(id, &entry),
                    Some(entry) => spelled_bytes(&entry, spelling, &byte_of),
                    None => vec![],
                }
            })
            .collect()
    }

    /// Whether the vocabulary is byte-level BPE (its pieces of text tokenize alone as they do
    /// in context; SentencePiece adds a leading space).
    pub fn is_byte_level(&self) -> bool {
        self.spelling() == Spelling::ByteLevel
    }

    fn literal_bytes(&self, id: u32, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + 1);
        if self.is_special(id) {
            out.push(SPECIAL_TOKEN_MARKER);
        }
        out.extend_from_slice(text.as_bytes());
        out
    }

    fn spelling(&self) -> Spelling {
        match &self.backend {
            Backend::Spm(_) => Spelling::SentencePiece { space: '▁' },
            Backend::Hf(hf) => {
                let decoder = hf.tok.get_decoder().and_then(|d| serde_json::to_value(d).ok());
                decoder.as_ref().map_or(Spelling::Plain, decoder_spelling)
            }
        }
    }

    /// Added tokens of a tokenizer.json, by id: their content is literal text.
    fn added_texts(&self) -> HashMap<u32, String> {
        match &self.backend {
            Backend::Hf(hf) => hf
                .tok
                .get_added_tokens_decoder()
                .into_iter()
                .map(|(id, t)| (id, t.content))
                .collect(),
            Backend::Spm(_) => HashMap::new(),
        }
    }
}

/// The spelling a tokenizer.json decoder implies: `ByteLevel`, or a sequence with
/// `ByteFallback` / `Metaspace` / `Replace(▁ → " ")`.
fn decoder_spelling(decoder: &Value) -> Spelling {
    let kind = decoder.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "ByteLevel" => Spelling::ByteLevel,
        "Metaspace" => Spelling::SentencePiece {
            space: metaspace_char(decoder),
        },
        "Sequence" => {
            let parts = decoder.get("decoders").and_then(Value::as_array);
            let parts = parts.map(Vec::as_slice).unwrap_or_default();
            let spellings: Vec<Spelling> = parts.iter().map(decoder_spelling).collect();
            if spellings.contains(&Spelling::ByteLevel) {
                return Spelling::ByteLevel;
            }
            let space = parts.iter().find_map(replace_space);
            let fallback = parts
                .iter()
                .any(|d| d.get("type").and_then(Value::as_str) == Some("ByteFallback"));
            match (
                space,
                spellings.iter().find(|s| matches!(s, Spelling::SentencePiece { .. })),
            ) {
                (Some(space), _) => Spelling::SentencePiece { space },
                (None, Some(s)) => *s,
                (None, None) if fallback => Spelling::SentencePiece { space: '▁' },
                _ => Spelling::Plain,
            }
        }
        _ => Spelling::Plain,
    }
}

fn metaspace_char(decoder: &Value) -> char {
    let s = decoder.get("replacement").and_then(Value::as_str).unwrap_or("▁");
    s.chars().next().unwrap_or('▁')
}

/// The character a `Replace` decoder turns into a space, if that is what it does.
fn replace_space(decoder: &Value) -> Option<char> {
    if decoder.get("type")?.as_str()? != "Replace" || decoder.get("content")?.as_str()? != " " {
        return None;
    }
    let pattern = decoder.get("pattern")?.get("String")?.as_str()?;
    let mut chars = pattern.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

fn spelled_bytes(entry: &str, spelling: Spelling, byte_of: &HashMap<char, u8>) -> Vec<u8> {
    match spelling {
        Spelling::ByteLevel => {
            // an entry outside the table (none in real vocabularies) keeps its UTF-8
            let mapped: Option<Vec<u8>> = entry.chars().map(|c| byte_of.get(&c).copied()).collect();
            mapped.unwrap_or_else(|| entry.as_bytes().to_vec())
        }
        Spelling::SentencePiece { space } => match hex_byte(entry) {
            Some(b) => vec![b],
            None => entry.replace(space, " ").into_bytes(),
        },
        Spelling::Plain => entry.as_bytes().to_vec(),
    }
}

/// `<0xNN>` → the byte NN.
fn hex_byte(entry: &str) -> Option<u8> {
    let hex = entry.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// GPT-2's table: printable Latin-1 bytes are their own character, the other 68 bytes map in
/// order to U+0100 onwards.
fn byte_level_table() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 0x100u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                (char::from(b), b)
            } else {
                let c = char::from_u32(next).expect("U+0100.. are chars");
                next += 1;
                (c, b)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_gpt2s() {
        let t = byte_level_table();
        assert_eq!(t.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
        let distinct: std::collections::HashSet<u8> = t.values().copied().collect();
        assert_eq!(distinct.len(), 256, "every byte has one character");
    }

    #[test]
    fn sentencepiece_spelling() {
        let sp = Spelling::SentencePiece { space: '▁' };
        let t = byte_level_table();
        assert_eq!(spelled_bytes("▁the", sp, &t), b" the");
        assert_eq!(spelled_bytes("<0x0A>", sp, &t), b"\n");
        assert_eq!(spelled_bytes("<0xZZ>", sp, &t), b"<0xZZ>");
    }

    #[test]
    fn decoder_kinds() {
        let seq = serde_json::json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]});
        assert_eq!(decoder_spelling(&seq), Spelling::SentencePiece { space: '▁' });
        let bl = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false});
        assert_eq!(decoder_spelling(&bl), Spelling::ByteLevel);
        assert_eq!(
            decoder_spelling(&serde_json::json!({"type": "WordPiece"})),
            Spelling::Plain
        );
    }
}
