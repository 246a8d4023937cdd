//! An incremental scanner over the JSON of tool calls as it is generated: it finds the call
//! objects at their nesting depth (1 for a Hermes block or a Llama 3 object, 2 inside
//! Mistral's list, 3 in the generic `{"tool_calls": [...]}`), reports a call's name once its
//! string is complete and then its arguments' raw text as it grows. Text between calls at
//! depth 0 (`</tool_call>\n<tool_call>`, `;`) is skipped.

/// What the scanner found in the text fed to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// Call number `index` is named `name` (its arguments follow).
    Head { index: usize, name: String },
    /// More of call `index`'s arguments text.
    Arguments { index: usize, text: String },
}

/// One call object being read.
#[derive(Debug, Default)]
struct Call {
    name: Option<String>,
    /// The arguments' raw JSON text so far.
    args: String,
    /// Bytes of `args` already reported.
    args_sent: usize,
    head_sent: bool,
    /// Stack depth of the arguments' container while it is open.
    args_open: Option<usize>,
}

/// A string literal being captured (raw, with its quotes) and what it is.
#[derive(Debug)]
enum Capture {
    Key(String),
    Name(String),
    /// Arguments given as JSON text in a string.
    ArgsString(String),
}

#[derive(Debug)]
pub struct CallScan {
    /// Depth of the call objects; `None` until the first bracket decides it (`[` 2, `{` 1).
    call_depth: Option<usize>,
    args_key: &'static str,
    stack: Vec<char>,
    in_string: bool,
    escape: bool,
    capture: Option<Capture>,
    /// The key whose value comes next in the current call object.
    key: Option<String>,
    expect_key: bool,
    call: Option<Call>,
    calls: usize,
}

impl CallScan {
    /// Calls at a fixed `depth`, or (`None`) at the depth the first bracket implies.
    pub fn new(depth: Option<usize>, args_key: &'static str) -> CallScan {
        CallScan {
            call_depth: depth,
            args_key,
            stack: vec![],
            in_string: false,
            escape: false,
            capture: None,
            key: None,
            expect_key: false,
            call: None,
            calls: 0,
        }
    }

    /// Calls whose name has been reported.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Read `text`; returns what it completed or added.
    pub fn push(&mut self, text: &str) -> Vec<Found> {
        let mut found = vec![];
        for c in text.chars() {
            self.char(c, &mut found);
        }
        self.flush(&mut found);
        found
    }

    fn char(&mut self, c: char, found: &mut Vec<Found>) {
        if let Some(call) = self.call.as_mut().filter(|c| c.args_open.is_some()) {
            call.args.push(c);
        }
        if self.in_string {
            return self.string_char(c);
        }
        let depth = self.stack.len();
        let at_call = Some(depth) == self.call_depth && self.call.is_some();
        match c {
            '"' if depth > 0 => self.open_string(at_call),
            '{' | '[' => self.open(c, depth, at_call),
            '}' | ']' if depth > 0 => self.close(depth, found),
            ':' if at_call => self.expect_key = false,
            ',' if at_call => {
                self.expect_key = true;
                self.key = None;
            }
            _ => {}
        }
    }

    fn string_char(&mut self, c: char) {
        if let Some(Capture::Key(s) | Capture::Name(s) | Capture::ArgsString(s)) = self.capture.as_mut() {
            s.push(c);
        }
        if self.escape {
            self.escape = false;
        } else if c == '\\' {
            self.escape = true;
        } else if c == '"' {
            self.in_string = false;
            self.end_capture();
        }
    }

    fn open_string(&mut self, at_call: bool) {
        self.in_string = true;
        if !at_call || self.call.as_ref().is_some_and(|c| c.args_open.is_some()) {
            return;
        }
        let quote = "\"".to_string();
        self.capture = match self.key.as_deref() {
            _ if self.expect_key => Some(Capture::Key(quote)),
            Some("name") => Some(Capture::Name(quote)),
            Some(k) if k == self.args_key || k == "arguments" || k == "parameters" => Some(Capture::ArgsString(quote)),
            _ => None,
        };
    }

    fn end_capture(&mut self) {
        let decode = |raw: &str| serde_json::from_str::<String>(raw).ok();
        match self.capture.take() {
            Some(Capture::Key(raw)) => self.key = decode(&raw),
            Some(Capture::Name(raw)) => {
                if let Some(call) = self.call.as_mut() {
                    call.name = decode(&raw);
                }
            }
            Some(Capture::ArgsString(raw)) => {
                if let (Some(call), Some(text)) = (self.call.as_mut(), decode(&raw)) {
                    call.args = text;
                }
            }
            None => {}
        }
    }

    fn open(&mut self, c: char, depth: usize, at_call: bool) {
        if depth == 0 && self.call_depth.is_none() {
            self.call_depth = Some(if c == '[' { 2 } else { 1 });
        }
        self.stack.push(c);
        let is_args = |k: &str| k == self.args_key || k == "arguments" || k == "parameters";
        if at_call && !self.expect_key && self.key.as_deref().is_some_and(is_args) {
            if let Some(call) = self.call.as_mut().filter(|c| c.args_open.is_none()) {
                call.args = c.to_string();
                call.args_open = Some(depth + 1);
            }
        } else if Some(depth + 1) == self.call_depth && c == '{' && self.call.is_none() {
            self.call = Some(Call::default());
            self.expect_key = true;
            self.key = None;
        }
    }

    fn close(&mut self, depth: usize, found: &mut Vec<Found>) {
        self.stack.pop();
        if let Some(call) = self.call.as_mut() {
            if call.args_open == Some(depth) {
                call.args_open = None;
            }
        }
        if Some(depth) == self.call_depth && self.call.is_some() {
            self.flush(found);
            self.call = None;
            self.key = None;
        }
    }

    /// Report a call's name once known, then whatever arguments text is new.
    fn flush(&mut self, found: &mut Vec<Found>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(name) = call.name.clone() else {
            return;
        };
        if !call.head_sent {
            call.head_sent = true;
            self.calls += 1;
            found.push(Found::Head {
                index: self.calls - 1,
                name,
            });
        }
        // a string's arguments are reported once decoded, not as raw text
        let quoted = matches!(self.capture, Some(Capture::ArgsString(_)));
        if call.args.len() > call.args_sent && !quoted {
            found.push(Found::Arguments {
                index: self.calls - 1,
                text: call.args[call.args_sent..].to_string(),
            });
            call.args_sent = call.args.len();
        }
    }
}
