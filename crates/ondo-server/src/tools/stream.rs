//! Tool calls streamed as they are generated: OpenAI's `delta.tool_calls` chunks, first
//! `{index, id, type: "function", function: {name, arguments: ""}}` per call, then
//! `{index, function: {arguments}}` fragments.
//!
//! ```text
//! text deltas ─► where do calls start? (per format)
//!   Hermes:  text streams as content until `<tool_call>` (a partial marker is held back)
//!   Llama 3: the answer starts with `<|python_tag|>` or `{`      ─┐
//!   Mistral: the answer starts with `[TOOL_CALLS]`, `[` or `{`   ─┼─► scan.rs: names, then
//!   Generic: the whole (constrained) answer                      ─┘   argument fragments
//!   otherwise content; from a ``` fence on (or a Hermes answer that starts with `{`) the
//!   text is held back and decided at the end by parse.rs, like the non-streamed answer
//! ```

use super::parse::parse_output;
use super::scan::{CallScan, Found};
use super::{new_call_id, tool_call_deltas, Format, ToolSpec};
use serde_json::{json, Value};

const HERMES_OPEN: &str = "<tool_call>";
const PYTHON_TAG: &str = "<|python_tag|>";
const MISTRAL_MARKER: &str = "[TOOL_CALLS]";
const FENCE: &str = "```";

/// What happens to text not yet streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not enough text yet to tell content from calls.
    Undecided,
    /// Content (Hermes: until its marker).
    Content,
    /// Everything from `sent` on is decided at the end.
    HoldAll,
    /// Calls: the text from `scanned` on goes to the scanner.
    Calls,
}

/// One choice's streamed answer when tools are in use.
pub struct ToolStream<'a> {
    spec: &'a ToolSpec,
    text: String,
    mode: Mode,
    /// Bytes of `text` streamed as content.
    sent: usize,
    /// Bytes of `text` given to the scanner.
    scanned: usize,
    scan: CallScan,
}

impl<'a> ToolStream<'a> {
    pub fn new(spec: &'a ToolSpec) -> ToolStream<'a> {
        let depth = match spec.format {
            Format::Hermes => Some(1),
            Format::Generic => Some(3),
            Format::Llama3Json | Format::Mistral => None,
        };
        ToolStream {
            spec,
            text: String::new(),
            mode: Mode::Undecided,
            sent: 0,
            scanned: 0,
            scan: CallScan::new(depth, spec.format.arguments_key()),
        }
    }

    /// The deltas `text` (the next piece of the answer) lets out now.
    pub fn push(&mut self, text: &str) -> Vec<Value> {
        self.text.push_str(text);
        let mut out = vec![];
        if self.mode == Mode::Undecided {
            self.decide();
        }
        if self.mode == Mode::Content {
            self.content(&mut out);
        }
        if self.mode == Mode::Calls {
            let found = self.scan.push(&self.text[self.scanned..]);
            self.scanned = self.text.len();
            out.extend(found.into_iter().map(Self::call_delta));
        }
        out
    }

    /// The last deltas once the answer is complete (`text` is all of it), and whether it
    /// called tools (finish_reason "tool_calls").
    pub fn finish(&mut self, text: &str) -> (Vec<Value>, bool) {
        let mut out = match text.strip_prefix(self.text.as_str()) {
            Some(rest) if !rest.is_empty() => self.push(rest),
            _ => vec![],
        };
        if self.scan.calls() > 0 {
            return (out, true);
        }
        let parsed = parse_output(self.spec, &self.text, new_call_id);
        if !parsed.calls.is_empty() {
            out.extend(tool_call_deltas(&parsed.calls));
            return (out, true);
        }
        let rest = match self.sent {
            0 => parsed.content.unwrap_or_default(),
            n => self.text[n..].to_string(),
        };
        if !rest.is_empty() {
            out.push(json!({"content": rest}));
        }
        (out, false)
    }

    /// Where the answer's calls would start, from its first characters.
    fn decide(&mut self) {
        let lead = self.text.len() - self.text.trim_start().len();
        let start = &self.text[lead..];
        if start.is_empty() {
            return;
        }
        let (mode, skip) = match self.spec.format {
            Format::Generic => (Mode::Calls, 0),
            Format::Hermes if start.starts_with('{') => (Mode::HoldAll, 0),
            Format::Hermes => (Mode::Content, 0),
            Format::Llama3Json => match leads_with(start, &[PYTHON_TAG, "{", "["]) {
                Lead::Partial => return,
                Lead::Marker(m) if m == PYTHON_TAG => (Mode::Calls, m.len()),
                Lead::Marker(_) => (Mode::Calls, 0),
                Lead::No => (Mode::Content, 0),
            },
            Format::Mistral => match leads_with(start, &[MISTRAL_MARKER, "[", "{"]) {
                Lead::Partial => return,
                Lead::Marker(m) if m == MISTRAL_MARKER => (Mode::Calls, m.len()),
                Lead::Marker(_) => (Mode::Calls, 0),
                Lead::No => (Mode::Content, 0),
            },
        };
        self.mode = mode;
        self.scanned = lead + skip;
    }

    /// Stream content up to a Hermes marker (then calls) or a fence (then hold), holding back
    /// a partial marker or fence at the end, and white space until something follows it.
    fn content(&mut self, out: &mut Vec<Value>) {
        let rest = &self.text[self.sent..];
        let marker = (self.spec.format == Format::Hermes).then_some(HERMES_OPEN);
        let at_marker = marker.and_then(|m| rest.find(m));
        let at_fence = rest.find(FENCE);
        let (len, next) = match (at_marker, at_fence) {
            (Some(m), f) if f.is_none_or(|f| m < f) => (m, Mode::Calls),
            (_, Some(f)) => (f, Mode::HoldAll),
            _ => {
                let hold = [marker.unwrap_or(FENCE), FENCE]
                    .iter()
                    .map(|m| partial_suffix(rest, m))
                    .max()
                    .unwrap_or(0);
                (rest.len() - hold, Mode::Content)
            }
        };
        // Trailing white space waits for what follows it: before a call it is not content (as
        // in the non-streamed answer), before a fence it is held back with the fence.
        let start = self.sent;
        let piece = rest[..len].trim_end();
        if !piece.trim().is_empty() {
            out.push(json!({"content": piece}));
            self.sent += piece.len();
        }
        if next == Mode::Calls {
            self.sent = start + len;
        }
        self.mode = next;
        if next == Mode::Calls {
            self.scanned = self.sent + HERMES_OPEN.len();
        }
    }

    fn call_delta(found: Found) -> Value {
        match found {
            Found::Head { index, name } => {
                let head = json!({"index": index, "id": new_call_id(), "type": "function",
                    "function": {"name": name, "arguments": ""}});
                json!({"tool_calls": [head]})
            }
            Found::Arguments { index, text } => {
                json!({"tool_calls": [{"index": index, "function": {"arguments": text}}]})
            }
        }
    }
}

enum Lead {
    /// The text so far could still become one of the markers.
    Partial,
    Marker(&'static str),
    No,
}

/// Whether `start` begins with one of `markers` (a longer one it may still become wins).
fn leads_with(start: &str, markers: &[&'static str]) -> Lead {
    if markers.iter().any(|m| m.len() > start.len() && m.starts_with(start)) {
        return Lead::Partial;
    }
    match markers.iter().find(|m| start.starts_with(**m)) {
        Some(m) => Lead::Marker(m),
        None => Lead::No,
    }
}

/// The length of the longest end of `text` that is a proper start of `marker`.
fn partial_suffix(text: &str, marker: &str) -> usize {
    (1..marker.len())
        .rev()
        .find(|&n| {
            text.len() >= n && text.is_char_boundary(text.len() - n) && marker.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}
