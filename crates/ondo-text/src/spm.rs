//! SentencePiece BPE over a GGUF "llama" vocabulary, as llama.cpp runs it.
//!
//! Encoding: split the text into UTF-8 characters, then repeatedly merge the adjacent pair whose
//! concatenation is a vocabulary token with the highest score (ties: the leftmost pair). A final
//! piece that is not a token is split back along its merges, and characters that are no token
//! become `<0xNN>` byte tokens (byte fallback), or the unknown token when the vocabulary has none.
//! Spaces are written as "▁", and one is put before the text when `add_space_prefix` is set.
//!
//! Decoding reverses that: "▁" becomes a space, byte tokens become bytes, control tokens are
//! kept or skipped, and the space prefix is dropped again.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::gguf_vocab::{GgufVocab, TokenType};

const SPACE: &str = "\u{2581}";

/// One piece of text being merged; `len == 0` marks a piece merged into its left neighbour.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of `left` with the symbol after it.
#[derive(Debug)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// The SentencePiece tokenizer of a GGUF "llama" vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Spm {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    index: HashMap<String, u32>,
    byte_ids: Vec<Option<u32>>,
    unk: Option<u32>,
    add_space_prefix: bool,
    /// Control, unknown and user-defined tokens, longest text first: matched before merging.
    specials: Vec<u32>,
}

impl Spm {
    pub(crate) fn new(v: &GgufVocab) -> Spm {
        let n = v.tokens.len() as u32;
        let types: Vec<TokenType> = (0..n).map(|id| v.token_type(id)).collect();
        let mut index = HashMap::with_capacity(v.tokens.len());
        for (id, piece) in v.tokens.iter().enumerate() {
            index.entry(piece.clone()).or_insert(id as u32);
        }
        let byte_ids = (0..=255u8).map(|b| byte_token(&index, b)).collect();
        let mut specials: Vec<u32> = (0..n).filter(|&id| is_partition_type(types[id as usize])).collect();
        specials.retain(|&id| !v.tokens[id as usize].is_empty());
        specials.sort_by_key(|&id| std::cmp::Reverse(v.tokens[id as usize].len()));
        Spm {
            pieces: v.tokens.clone(),
            scores: (0..n).map(|id| v.score(id)).collect(),
            types,
            index,
            byte_ids,
            unk: v.checked_id(v.unk_id),
            add_space_prefix: v.resolved_add_space_prefix(),
            specials,
        }
    }

    pub(crate) fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub(crate) fn id_to_token(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    pub(crate) fn token_to_id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    pub(crate) fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Token ids for `text`, without BOS/EOS. With `parse_special`, the text of control tokens
    /// (e.g. "<s>") becomes those tokens; user-defined tokens are always matched.
    pub(crate) fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        let mut prev_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    let prefix = if self.add_space_prefix && prev_special {
                        SPACE
                    } else {
                        ""
                    };
                    let escaped = format!("{prefix}{}", t.replace(' ', SPACE));
                    self.encode_piece(&escaped, &mut out);
                    prev_special = false;
                }
            }
        }
        out
    }

    /// Splits `text` at every occurrence of a special token, longest tokens first.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = Vec::new();
        if !text.is_empty() {
            fragments.push(Fragment::Text(text));
        }
        for &id in &self.specials {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let needle = self.pieces[id as usize].as_str();
            fragments = fragments
                .into_iter()
                .flat_map(|f| split_fragment(f, needle, id))
                .collect();
        }
        fragments
    }

    /// Merges one escaped text fragment and appends its tokens.
    fn encode_piece(&self, text: &str, out: &mut Vec<u32>) {
        let mut symbols = initial_symbols(text);
        let mut queue = BinaryHeap::new();
        let mut splits: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
        for i in 1..symbols.len() {
            self.try_bigram(text, &symbols, i - 1, i, &mut queue);
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
                continue;
            }
            splits.insert((l.start, l.len + r.len), (l.len, r.len));
            symbols[b.left].len += r.len;
            symbols[b.right].len = 0;
            symbols[b.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(b.left);
            }
            if let Some(p) = l.prev {
                self.try_bigram(text, &symbols, p, b.left, &mut queue);
            }
            if let Some(n) = r.next {
                self.try_bigram(text, &symbols, b.left, n, &mut queue);
            }
        }
        let mut at = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = at {
            self.resegment(text, symbols[i].start, symbols[i].len, &splits, out);
            at = symbols[i].next;
        }
    }

    fn try_bigram(&self, text: &str, symbols: &[Symbol], left: usize, right: usize, queue: &mut BinaryHeap<Bigram>) {
        let (l, r) = (symbols[left], symbols[right]);
        let joined = &text[l.start..r.start + r.len];
        if let Some(&id) = self.index.get(joined) {
            queue.push(Bigram {
                score: self.scores[id as usize],
                left,
                right,
                len: joined.len(),
            });
        }
    }

    /// Emits a merged piece: its token, or its two halves, or (for a lone character) its bytes.
    fn resegment(
        &self,
        text: &str,
        start: usize,
        len: usize,
        splits: &HashMap<(usize, usize), (usize, usize)>,
        out: &mut Vec<u32>,
    ) {
        let piece = &text[start..start + len];
        if let Some(&id) = self.index.get(piece) {
            out.push(id);
        } else if let Some(&(l, r)) = splits.get(&(start, len)) {
            self.resegment(text, start, l, splits, out);
            self.resegment(text, start + l, r, splits, out);
        } else {
            for b in piece.bytes() {
                out.extend(self.byte_ids[b as usize].or(self.unk));
            }
        }
    }

    /// Text of `ids`; control and unknown tokens are dropped when `skip_special`.
    pub(crate) fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let (Some(piece), Some(ty)) = (self.id_to_token(id), self.token_type(id)) else {
                continue;
            };
            match ty {
                TokenType::Control | TokenType::Unknown if skip_special => {}
                TokenType::Control | TokenType::Unknown => bytes.extend_from_slice(piece.as_bytes()),
                TokenType::Byte => bytes.extend(parse_byte_token(piece)),
                _ => bytes.extend_from_slice(piece.replace(SPACE, " ").as_bytes()),
            }
        }
        if self.add_space_prefix && bytes.first() == Some(&b' ') {
            bytes.remove(0);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A run of plain text, or a special token found in the text.
#[derive(Debug, Clone, Copy)]
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

fn split_fragment<'t>(fragment: Fragment<'t>, needle: &str, id: u32) -> Vec<Fragment<'t>> {
    let Fragment::Text(text) = fragment else {
        return vec![fragment];
    };
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        if at > 0 {
            parts.push(Fragment::Text(&rest[..at]));
        }
        parts.push(Fragment::Token(id));
        rest = &rest[at + needle.len()..];
    }
    if !rest.is_empty() {
        parts.push(Fragment::Text(rest));
    }
    parts
}

fn is_partition_type(ty: TokenType) -> bool {
    matches!(ty, TokenType::Control | TokenType::Unknown | TokenType::UserDefined)
}

fn initial_symbols(text: &str) -> Vec<Symbol> {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let n = starts.len();
    (0..n)
        .map(|i| Symbol {
            start: starts[i],
            len: starts.get(i + 1).copied().unwrap_or(text.len()) - starts[i],
            prev: i.checked_sub(1),
            next: (i + 1 < n).then_some(i + 1),
        })
        .collect()
}

/// The `<0xNN>` token of a byte, else the one-character token of an ASCII byte.
fn byte_token(index: &HashMap<String, u32>, b: u8) -> Option<u32> {
    let hex = index.get(&format!("<0x{b:02X}>")).copied();
    hex.or_else(|| {
        if b.is_ascii() {
            index.get(&(b as char).to_string()).copied()
        } else {
            None
        }
    })
}

/// The byte of a `<0xNN>` token; other text is kept as it is.
fn parse_byte_token(piece: &str) -> Vec<u8> {
    let hex = piece.strip_prefix("<0x").and_then(|s| s.strip_suffix('>'));
    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
        Some(b) => vec![b],
        None => piece.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: characters, a few merges with scores, byte tokens for 0xEA..0xEC.
    fn toy() -> Spm {
        let mut tokens: Vec<String> = [
            "<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "bc", "▁a", "▁ab", "abc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut types = vec![2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        let mut scores = vec![0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -2.0, -5.0, -3.0, -4.0, -6.0, -7.0];
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
            unk_id: Some(0),
            bos_id: Some(1),
            eos_id: Some(2),
            ..Default::default()
        };
        Spm::new(&v)
    }

    fn pieces(spm: &Spm, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| spm.id_to_token(i).unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn merges_highest_score_first() {
        let spm = toy();
        // "▁abc": "bc" (-3) beats "▁a" (-4) and "ab" (-5); then "▁a"+"bc" is no token.
        assert_eq!(pieces(&spm, &spm.encode("abc", false)), ["▁a", "bc"]);
        assert_eq!(pieces(&spm, &spm.encode("ab", false)), ["▁ab"]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes() {
        let spm = toy();
        let ids = spm.encode("a가", false);
        assert_eq!(pieces(&spm, &ids), ["▁a", "<0xEA>", "<0xB0>", "<0x80>"]);
        assert_eq!(spm.decode(&ids, false), "a가");
    }

    #[test]
    fn control_text_is_plain_unless_parsed() {
        let spm = toy();
        assert_eq!(pieces(&spm, &spm.encode("a<s>", true)), ["▁a", "<s>"]);
        let plain = spm.encode("a<s>", false);
        assert!(!plain.contains(&1), "{:?}", pieces(&spm, &plain));
    }

    #[test]
    fn decode_drops_space_prefix_and_skips_control() {
        let spm = toy();
        assert_eq!(spm.decode(&[1, 9, 3, 5], true), "a b");
        assert_eq!(spm.decode(&[1, 9, 3, 5], false), "<s> a b");
        assert_eq!(spm.decode(&[9, 99_999], false), "a");
    }

    #[test]
    fn empty_text_gives_no_tokens() {
        assert!(toy().encode("", false).is_empty());
    }
}
