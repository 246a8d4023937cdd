//! The crate's one error type: every failure names what failed (the variable, the endpoint and
//! its status, the parser and the text it was given).

use ondo_engine::{EngineError, ParamError};

/// Everything that can go wrong in a template, a chain, a backend or a parser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template that does not parse, e.g. an unmatched brace.
    #[error("bad template {template:?}: {reason}")]
    Syntax { template: String, reason: String },
    /// A variable the template uses was not given.
    #[error("missing variable {name:?}: the template uses {}", list(.expected))]
    MissingVariable { name: String, expected: Vec<String> },
    /// A variable was given that the template does not use.
    #[error("unexpected variable {name:?}: the template uses {}", list(.expected))]
    ExtraVariable { name: String, expected: Vec<String> },
    /// A chat message role other than system, user or assistant (human and ai are aliases).
    #[error("unknown chat role {0:?}: use system, user (human) or assistant (ai)")]
    Role(String),
    /// Steps that do not fit together (a variable no earlier step or input provides, ...).
    #[error("chain: {0}")]
    Chain(String),
    /// Sampling parameters outside their range (checked by `SamplingParams::validate`).
    #[error("invalid sampling parameter: {0}")]
    Param(#[from] ParamError),
    /// The local model failed (loading, chat template, engine).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An OpenAI-compatible endpoint answered with an error status, timed out, or broke off
    /// its stream. `status` is the HTTP status when one came.
    #[error("{endpoint}: {}{reason}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Remote {
        endpoint: String,
        status: Option<u16>,
        reason: String,
    },
    /// An output parser could not read the model's text; `text` is the text it was given.
    #[error("{parser}: {reason}; the text was: {}", excerpt(.text))]
    Parse {
        parser: &'static str,
        reason: String,
        text: String,
    },
    /// A chain file that cannot be read or does not describe a chain.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "no variables".into();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// The offending text, quoted, cut to a readable length.
fn excerpt(text: &str) -> String {
    const MAX: usize = 400;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}... ({} more bytes)", &text[..cut], text.len() - cut),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let e = Error::MissingVariable {
            name: "country".into(),
            expected: vec!["country".into(), "year".into()],
        };
        assert_eq!(
            e.to_string(),
            r#"missing variable "country": the template uses "country", "year""#
        );
        let e = Error::Remote {
            endpoint: "http://h/v1/completions".into(),
            status: Some(500),
            reason: "boom".into(),
        };
        assert_eq!(e.to_string(), "http://h/v1/completions: HTTP 500: boom");
        let e = Error::Remote {
            endpoint: "http://h".into(),
            status: None,
            reason: "timed out".into(),
        };
        assert_eq!(e.to_string(), "http://h: timed out");
    }

    #[test]
    fn long_offending_text_is_cut() {
        let text = "가".repeat(1000);
        let e = Error::Parse {
            parser: "JsonOutputParser",
            reason: "bad".into(),
            text,
        };
        let shown = e.to_string();
        assert!(
            shown.contains(&"가".repeat(400)) && !shown.contains(&"가".repeat(401)),
            "{shown}"
        );
        assert!(shown.ends_with("(1800 more bytes)"), "{shown}");
    }
}
