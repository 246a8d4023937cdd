//! Python methods on template values (`message.content.strip()`, `tool.items()`, ...).
//!
//! minijinja-contrib's pycompat covers most of what chat templates call; the few it lacks are
//! added here. Mutating methods (`append`, `update`, `pop`) stay unknown, as in transformers'
//! immutable sandbox, where they raise too.

use minijinja::value::{from_args, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// The unknown-method callback: pycompat first, then ondo's additions.
pub fn call_method(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args) {
        Err(e) if e.kind() == ErrorKind::UnknownMethod => extra_method(value, method, args),
        other => other,
    }
}

fn extra_method(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match (value.kind(), value.as_str()) {
        (ValueKind::String, Some(s)) => string_method(s, method, args),
        (ValueKind::Seq, _) => list_method(value, method, args),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "removeprefix" => {
            let (prefix,): (&str,) = from_args(args)?;
            Ok(Value::from(s.strip_prefix(prefix).unwrap_or(s)))
        }
        "removesuffix" => {
            let (suffix,): (&str,) = from_args(args)?;
            Ok(Value::from(s.strip_suffix(suffix).unwrap_or(s)))
        }
        "rsplit" => {
            let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
            rsplit(s, sep, maxsplit.unwrap_or(-1))
        }
        "partition" | "rpartition" => {
            let (sep,): (&str,) = from_args(args)?;
            partition(s, sep, method == "rpartition")
        }
        "index" | "rindex" => {
            let (sub,): (&str,) = from_args(args)?;
            let found = if method == "index" { s.find(sub) } else { s.rfind(sub) };
            match found {
                Some(byte) => Ok(Value::from(s[..byte].chars().count())),
                None => Err(Error::new(ErrorKind::InvalidOperation, "substring not found")),
            }
        }
        "casefold" => Ok(Value::from(s.to_lowercase())),
        "swapcase" => Ok(Value::from(swapcase(s))),
        "zfill" => {
            let (width,): (usize,) = from_args(args)?;
            Ok(Value::from(zfill(s, width)))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// Python's `str.rsplit`: with no separator, splits on runs of whitespace.
fn rsplit(s: &str, sep: Option<&str>, maxsplit: i64) -> Result<Value, Error> {
    let limit = if maxsplit < 0 {
        usize::MAX
    } else {
        maxsplit as usize + 1
    };
    let mut parts: Vec<String> = match sep {
        Some("") => return Err(Error::new(ErrorKind::InvalidOperation, "empty separator")),
        Some(sep) => s.rsplitn(limit, sep).map(str::to_string).collect(),
        None => {
            let mut parts = Vec::new();
            let mut rest = s.trim_end();
            while !rest.is_empty() {
                if parts.len() + 1 == limit {
                    parts.push(rest.to_string());
                    break;
                }
                let start = rest
                    .rfind(char::is_whitespace)
                    .map_or(0, |i| i + rest[i..].chars().next().map_or(1, char::len_utf8));
                parts.push(rest[start..].to_string());
                rest = rest[..start].trim_end();
            }
            parts
        }
    };
    parts.reverse();
    Ok(Value::from(parts))
}

fn partition(s: &str, sep: &str, from_right: bool) -> Result<Value, Error> {
    if sep.is_empty() {
        return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
    }
    let found = if from_right { s.rfind(sep) } else { s.find(sep) };
    let parts = match found {
        Some(i) => [&s[..i], sep, &s[i + sep.len()..]],
        None if from_right => ["", "", s],
        None => [s, "", ""],
    };
    Ok(Value::from(parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>()))
}

fn swapcase(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let swapped: Vec<char> = if c.is_uppercase() {
                c.to_lowercase().collect()
            } else {
                c.to_uppercase().collect()
            };
            swapped
        })
        .collect()
}

fn zfill(s: &str, width: usize) -> String {
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let (sign, digits) = match s.chars().next() {
        Some(c @ ('+' | '-')) => (c.to_string(), &s[1..]),
        _ => (String::new(), s),
    };
    format!("{sign}{}{digits}", "0".repeat(width - len))
}

fn list_method(list: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "index" => {
            let (needle,): (&Value,) = from_args(args)?;
            match list.try_iter()?.position(|item| item == *needle) {
                Some(i) => Ok(Value::from(i)),
                None => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{needle:?} is not in list"),
                )),
            }
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(value: Value, method: &str, args: &[Value]) -> Value {
        let env = minijinja::Environment::new();
        call_method(&mut env.empty_state(), &value, method, args).unwrap()
    }

    #[test]
    fn string_additions() {
        let s = Value::from("  a b  c ");
        assert_eq!(call(s.clone(), "rsplit", &[]).to_string(), "['a', 'b', 'c']");
        let none = Value::from(());
        assert_eq!(call(s, "rsplit", &[none, Value::from(1)]).to_string(), "['  a b', 'c']");
        assert_eq!(
            call(Value::from("k=v=w"), "rpartition", &[Value::from("=")]).to_string(),
            "['k=v', '=', 'w']"
        );
        assert_eq!(
            call(Value::from("<x>"), "removeprefix", &[Value::from("<")]).to_string(),
            "x>"
        );
        assert_eq!(call(Value::from("-7"), "zfill", &[Value::from(4)]).to_string(), "-007");
        assert_eq!(
            call(Value::from("안녕 a"), "index", &[Value::from("a")]).to_string(),
            "3"
        );
    }

    #[test]
    fn pycompat_still_answers_first() {
        assert_eq!(call(Value::from(" x\n"), "strip", &[]).to_string(), "x");
        let list = Value::from(vec![Value::from("a"), Value::from("b")]);
        assert_eq!(call(list, "index", &[Value::from("b")]).to_string(), "1");
    }
}
