//! Logprobs in OpenAI's two shapes, for a run of tokens (a whole answer, or the tokens a
//! streamed chunk carries): chat's `{"content": [{token, logprob, bytes, top_logprobs}]}` and
//! completions' `{tokens, token_logprobs, top_logprobs, text_offset}`. Completions' entries may
//! have no logprob (the first prompt token under `echo`): null, as OpenAI and vLLM send it.

use ondo_engine::LogprobMap;
use ondo_text::Tokenizer;
use serde_json::{json, Map, Value};

/// The most negative logprob sent (JSON has no -inf).
const FLOOR: f32 = -9999.0;

/// One token: its id, its logprob, and the top `k` `(id, logprob)`, best first.
struct Entry {
    id: u32,
    logprob: f32,
    top: Vec<(u32, f32)>,
}

fn entry(id: u32, map: &LogprobMap, k: usize) -> Entry {
    let mut top: Vec<(u32, f32)> = map.iter().map(|(&t, &l)| (t, l)).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(k);
    let logprob = map.get(&id).copied().unwrap_or(f32::NEG_INFINITY);
    Entry { id, logprob, top }
}

fn piece(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id], false).unwrap_or_default()
}

/// Chat's `{"content": [...]}` for `ids` with their maps, `k` top entries each.
pub fn chat(ids: &[u32], maps: &[LogprobMap], k: usize, tok: &Tokenizer) -> Value {
    let item = |id: u32, lp: f32| {
        let text = piece(tok, id);
        json!({"token": text, "logprob": lp.max(FLOOR), "bytes": text.as_bytes()})
    };
    let content: Vec<Value> = ids
        .iter()
        .zip(maps)
        .map(|(&id, map)| {
            let e = entry(id, map, k);
            let mut v = item(e.id, e.logprob);
            v["top_logprobs"] = e.top.into_iter().map(|(t, l)| item(t, l)).collect();
            v
        })
        .collect();
    json!({"content": content})
}

/// Completions' shape for `tokens` (each with its map, or none); `offset` is where the first
/// token's text starts in the choice's text and is moved past the last.
pub fn completion(tokens: &[(u32, Option<&LogprobMap>)], k: usize, tok: &Tokenizer, offset: &mut usize) -> Value {
    let (mut texts, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
    for &(id, map) in tokens {
        let text = piece(tok, id);
        offsets.push(*offset);
        *offset += text.chars().count();
        texts.push(text);
        let Some(map) = map else {
            lps.push(Value::Null);
            tops.push(Value::Null);
            continue;
        };
        let e = entry(id, map, k.max(1));
        lps.push(json!(e.logprob.max(FLOOR)));
        let top: Map<String, Value> = e
            .top
            .into_iter()
            .map(|(t, l)| (piece(tok, t), json!(l.max(FLOOR))))
            .collect();
        tops.push(Value::Object(top));
    }
    json!({"tokens": texts, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

/// An answer's (or a chunk's) tokens with their maps, for [`completion`].
pub fn with_maps<'a>(ids: &[u32], maps: &'a [LogprobMap]) -> Vec<(u32, Option<&'a LogprobMap>)> {
    ids.iter().zip(maps).map(|(&id, m)| (id, Some(m))).collect()
}

/// A prompt's tokens with their prompt logprobs (the first has none), for `echo`.
pub fn prompt_tokens<'a>(ids: &[u32], maps: &'a [Option<LogprobMap>]) -> Vec<(u32, Option<&'a LogprobMap>)> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| (id, maps.get(i).and_then(Option::as_ref)))
        .collect()
}
