//! Entry points of the cargo-fuzz targets (top-level `fuzz/`) and of the tests that replay their
//! corpora and crash inputs on stable (`tests/fuzz_replay.rs`). Each takes arbitrary bytes and
//! returns `Ok` or a clean `Err`: a panic, a hang or an unbounded allocation is a bug. Not an API.
//!
//! - [`tokenizer_json`]: tokenizer.json → ondo's [`Tokenizer`] → encode and decode [`SAMPLE`].
//! - [`tokenizer_config`]: tokenizer_config.json beside a fixed tokenizer.json ([`BaseTokenizer`])
//!   → the tokenizer, its chat template and a render of a short chat.
//! - [`template`]: template text, a NUL byte, then a JSON object of render inputs (`messages`,
//!   `tools`, `documents`, `add_generation_prompt`, `continue_final_message`, other variables).

use crate::template::{ChatTemplate, DateTime, RenderOptions};
use crate::tokenizer::{parse_tokenizer_json, read_json};
use crate::{Error, IncrementalDetokenizer, Tokenizer};
use serde_json::{json, Map, Value};
use std::path::Path;

/// What each entry returns: a size of what it produced, or the (clean) error it met.
pub type Outcome = Result<usize, Box<dyn std::error::Error>>;

/// The text every fuzzed tokenizer encodes and decodes: ASCII, accents, emoji, whitespace runs,
/// digits and the special-token spellings of common models.
pub const SAMPLE: &str = "Hello, world!  It's 2024-05-01\t12:30.\n\n héllo wörld 日本語 🤖🦀 \
     <s>[INST] hi [/INST]</s><|im_start|>user\nhey<|im_end|><|endoftext|><bos><eos>";

/// tokenizer.json bytes → the tokenizer → [`SAMPLE`] encoded, decoded and streamed back.
pub fn tokenizer_json(data: &[u8]) -> Outcome {
    let path = Path::new("tokenizer.json");
    let tok = parse_tokenizer_json(path, json_of(path, data)?)?;
    round_trip(&Tokenizer::from_hf(tok, None))
}

/// A tokenizer.json parsed once, for fuzzing the tokenizer_config.json beside it.
pub struct BaseTokenizer(tokenizers::Tokenizer);

impl BaseTokenizer {
    pub fn open(tokenizer_json: &Path) -> Result<BaseTokenizer, Error> {
        Ok(BaseTokenizer(parse_tokenizer_json(
            tokenizer_json,
            read_json(tokenizer_json)?,
        )?))
    }
}

/// tokenizer_config.json bytes → the tokenizer with `base` ([`SAMPLE`] round trip) → its chat
/// template, when it has one, rendering a short chat.
pub fn tokenizer_config(data: &[u8], base: &BaseTokenizer) -> Outcome {
    let config = json_of(Path::new("tokenizer_config.json"), data)?;
    let tok = Tokenizer::from_hf(base.0.clone(), Some(config.clone()));
    let mut size = round_trip(&tok)?;
    if let Some(template) = ChatTemplate::from_tokenizer_config(&config, None)? {
        size += render(&template, &RenderInputs::default())?;
    }
    Ok(size)
}

/// Template text, NUL, render inputs (see the module docs) → the rendered chat.
pub fn template(data: &[u8]) -> Outcome {
    let (source, inputs) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], serde_json::from_slice(&data[at + 1..]).ok()),
        None => (data, None),
    };
    let template = ChatTemplate::new(std::str::from_utf8(source)?, Some("<s>"), Some("</s>"))?;
    let inputs = inputs.map(RenderInputs::from_json).unwrap_or_default();
    render(&template, &inputs)
}

/// The messages and options of one fuzzed render.
struct RenderInputs {
    messages: Vec<Value>,
    opts: RenderOptions,
}

impl Default for RenderInputs {
    fn default() -> RenderInputs {
        RenderInputs::from_json(Value::Null)
    }
}

impl RenderInputs {
    /// From `{"messages": [...], "tools": [...], ...}`; a short chat when `messages` is absent.
    fn from_json(v: Value) -> RenderInputs {
        let mut obj = match v {
            Value::Object(obj) => obj,
            _ => Map::new(),
        };
        let list = |v: Option<Value>| match v {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        };
        let flag = |obj: &mut Map<String, Value>, k: &str| obj.remove(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let messages = list(obj.remove("messages")).unwrap_or_else(short_chat);
        let opts = RenderOptions {
            add_generation_prompt: flag(&mut obj, "add_generation_prompt"),
            continue_final_message: flag(&mut obj, "continue_final_message"),
            tools: list(obj.remove("tools")),
            documents: list(obj.remove("documents")),
            now: Some(DateTime::from_unix(1_714_566_600)),
            extra: obj,
        };
        RenderInputs { messages, opts }
    }
}

fn short_chat() -> Vec<Value> {
    vec![
        json!({"role": "system", "content": "Be brief."}),
        json!({"role": "user", "content": "Hi!"}),
        json!({"role": "assistant", "content": "Hello."}),
        json!({"role": "user", "content": [{"type": "text", "text": "Bye?"}]}),
    ]
}

fn json_of(path: &Path, data: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(data).map_err(|source| Error::Json {
        path: path.into(),
        source,
    })
}

fn render(template: &ChatTemplate, inputs: &RenderInputs) -> Outcome {
    Ok(template.render(&inputs.messages, &inputs.opts)?.len())
}

/// Encode [`SAMPLE`] both ways, decode it both ways, stream it back, and decode an id past
/// the vocabulary.
fn round_trip(tok: &Tokenizer) -> Outcome {
    let ids = tok.encode(SAMPLE, true)?;
    tok.encode_with(SAMPLE, false, false)?;
    let text = tok.decode(&ids, false)?;
    tok.decode(&ids, true)?;
    let mut detok = IncrementalDetokenizer::new(tok, &ids[..ids.len() / 2], true);
    for &id in &ids[ids.len() / 2..] {
        detok.push(id)?;
    }
    detok.finish()?;
    let _ = tok.decode(&[u32::MAX], false);
    Ok(text.len())
}
