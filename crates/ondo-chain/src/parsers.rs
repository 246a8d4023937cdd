//! Output parsers: the last step of `prompt | llm | parser`, from a model's text to a value.

use crate::runnable::{impl_bitor, Chunks, Runnable};
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// The text as it is. In `prompt | llm | StrOutputParser`, `stream` passes the model's deltas
/// straight through.
#[derive(Debug, Clone, Copy, Default)]
pub struct StrOutputParser;

impl Runnable for StrOutputParser {
    type Input = String;
    type Output = String;
    fn invoke(&self, text: String) -> Result<String> {
        Ok(text)
    }
    fn stream_after<'a, U>(&'a self, upstream: &'a U, input: U::Input) -> Chunks<'a, String>
    where
        U: Runnable<Output = String>,
    {
        upstream.stream(input)
    }
}

/// JSON in the text, as `T` (default: any JSON value). A fenced code block (```` ```json ````
/// ... ```` ``` ````) is read from inside its fence, with any text around it ignored; an
/// error shows the text that did not parse.
pub struct JsonOutputParser<T = serde_json::Value> {
    into: PhantomData<fn() -> T>,
}

impl<T> JsonOutputParser<T> {
    pub fn new() -> Self {
        Self { into: PhantomData }
    }
}

impl<T> Default for JsonOutputParser<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonOutputParser<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for JsonOutputParser<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonOutputParser<{}>", std::any::type_name::<T>())
    }
}

impl<T: DeserializeOwned> JsonOutputParser<T> {
    pub fn parse(&self, text: &str) -> Result<T> {
        let body = fenced(text).unwrap_or(text).trim();
        serde_json::from_str(body).map_err(|e| Error::Parse {
            parser: "JsonOutputParser",
            reason: format!("invalid JSON ({e})"),
            text: text.to_string(),
        })
    }
}

/// The inside of the first ``` fence in `text` (its language tag dropped), if there is one.
fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    // The opening line may name a language (```json); the body starts on the next line.
    let body = match after.find('\n') {
        Some(nl) if after[..nl].trim().chars().all(|c| c.is_ascii_alphanumeric()) => &after[nl + 1..],
        _ => after,
    };
    Some(body.find("```").map_or(body, |end| &body[..end]))
}

impl<T: DeserializeOwned> Runnable for JsonOutputParser<T> {
    type Input = String;
    type Output = T;
    fn invoke(&self, text: String) -> Result<T> {
        self.parse(&text)
    }
}

impl<T: DeserializeOwned, R: Runnable<Input = T>> std::ops::BitOr<R> for JsonOutputParser<T> {
    type Output = crate::Pipe<Self, R>;
    fn bitor(self, next: R) -> Self::Output {
        crate::Pipe {
            first: self,
            second: next,
        }
    }
}

/// `a, b, c` as `["a", "b", "c"]`: split on commas, each item trimmed, empty items dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommaSeparatedListOutputParser;

impl CommaSeparatedListOutputParser {
    pub fn parse(&self, text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl Runnable for CommaSeparatedListOutputParser {
    type Input = String;
    type Output = Vec<String>;
    fn invoke(&self, text: String) -> Result<Vec<String>> {
        Ok(self.parse(&text))
    }
}

impl_bitor!(StrOutputParser, CommaSeparatedListOutputParser);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn json(text: &str) -> Result<Value> {
        JsonOutputParser::<Value>::new().parse(text)
    }

    #[test]
    fn json_without_a_fence() {
        assert_eq!(
            json(" {\"name\": \"윤석열\", \"n\": [1, 2]}\n").unwrap(),
            json!({"name": "윤석열", "n": [1, 2]})
        );
        assert_eq!(json("[true, null]").unwrap(), json!([true, null]));
    }

    #[test]
    fn json_inside_a_fence_with_text_around_it() {
        let text = "Here you go:\n```json\n{\"a\": 1}\n```\nAnything else?";
        assert_eq!(json(text).unwrap(), json!({"a": 1}));
        assert_eq!(json("```\n[1, 2]\n```").unwrap(), json!([1, 2]));
        assert_eq!(json("```{\"b\": \"x\"}```").unwrap(), json!({"b": "x"}));
        // A fence the model never closed.
        assert_eq!(json("```json\n{\"c\": 3}\n").unwrap(), json!({"c": 3}));
    }

    #[test]
    fn json_into_a_type() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Answer {
            president: String,
            year: u32,
        }
        let text = "```json\n{\"president\": \"Macron\", \"year\": 2017}\n```".to_string();
        let got = JsonOutputParser::<Answer>::new().invoke(text).unwrap();
        assert_eq!(
            got,
            Answer {
                president: "Macron".into(),
                year: 2017
            }
        );
        let e = JsonOutputParser::<Answer>::new()
            .invoke("{\"president\": 3}".into())
            .unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
    }

    #[test]
    fn malformed_json_shows_the_offending_text() {
        let text = "```json\n{\"name\": \"Macron\",, }\n```";
        let e = json(text).unwrap_err();
        let Error::Parse {
            parser, text: shown, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*parser, shown.as_str()), ("JsonOutputParser", text));
        let msg = e.to_string();
        assert!(msg.starts_with("JsonOutputParser: invalid JSON ("), "{msg}");
        assert!(msg.contains(r#"{\"name\": \"Macron\",, }"#), "{msg}");
        assert!(msg.contains("line 1 column"), "{msg}");
        assert!(json("The president is Macron.")
            .unwrap_err()
            .to_string()
            .contains("The president is Macron."));
    }

    #[test]
    fn comma_separated_lists() {
        let p = CommaSeparatedListOutputParser;
        assert_eq!(p.parse("red, green ,blue"), vec!["red", "green", "blue"]);
        assert_eq!(p.parse(" 서울,  부산 , ,대구,\n"), vec!["서울", "부산", "대구"]);
        assert!(p.parse("  ").is_empty());
        assert_eq!(p.invoke("one".into()).unwrap(), vec!["one"]);
    }

    #[test]
    fn str_parser_passes_a_stream_through() {
        let words = crate::RunnableLambda::new(|s: String| Ok(s));
        struct Deltas;
        impl Runnable for Deltas {
            type Input = String;
            type Output = String;
            fn invoke(&self, s: String) -> Result<String> {
                Ok(s)
            }
            fn stream<'a>(&'a self, s: String) -> Chunks<'a, String> {
                Box::new(s.split(' ').map(|w| Ok(w.to_string())).collect::<Vec<_>>().into_iter())
            }
        }
        let chain = words | Deltas | StrOutputParser;
        let chunks: Vec<String> = chain.stream("a b c".into()).map(|c| c.unwrap()).collect();
        assert_eq!(chunks, vec!["a", "b", "c"]);
        assert_eq!(chain.invoke("a b c".into()).unwrap(), "a b c");
    }
}
