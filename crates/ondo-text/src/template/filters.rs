//! jinja2 filters whose minijinja versions differ from Python's in ways templates show.

use std::borrow::Cow;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{filters, Error, ErrorKind, State};

/// jinja2's `map`/`select`/`reject`/`selectattr`/`rejectattr` return generators, not lists:
/// `tojson` and `length` refuse them in Python. They are one-pass iterables here too.
fn generator(items: Vec<Value>) -> Value {
    Value::make_iterable(move || items.clone().into_iter())
}

pub fn map(state: &mut State, value: Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    filters::map(state, value, args).map(generator)
}

pub fn select(
    state: &mut State,
    value: Value,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    filters::select(state, value, test, args).map(generator)
}

pub fn reject(
    state: &mut State,
    value: Value,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    filters::reject(state, value, test, args).map(generator)
}

pub fn selectattr(
    state: &mut State,
    value: Value,
    attr: Cow<'_, str>,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    filters::selectattr(state, value, attr, test, args).map(generator)
}

pub fn rejectattr(
    state: &mut State,
    value: Value,
    attr: Cow<'_, str>,
    test: Option<Cow<'_, str>>,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    filters::rejectattr(state, value, attr, test, args).map(generator)
}

/// The hidden filter `source.rs` puts on every `{% for %}` iterable: Python cannot iterate
/// `None` (transformers raises "'NoneType' object is not iterable"), minijinja would loop zero times.
pub fn python_iterable(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::None => Err(Error::new(
            ErrorKind::InvalidOperation,
            "'NoneType' object is not iterable",
        )),
        _ => Ok(value),
    }
}

/// jinja2's `is iterable`: strings, lists, dicts, generators and undefined are; none, numbers,
/// booleans and plain objects are not.
pub fn is_iterable(value: &Value) -> bool {
    matches!(
        value.kind(),
        ValueKind::String
            | ValueKind::Bytes
            | ValueKind::Seq
            | ValueKind::Map
            | ValueKind::Iterable
            | ValueKind::Undefined
    )
}

/// jinja2's `indent(width=4, first=False, blank=False)`. Unlike minijinja's, a trailing newline
/// survives (`'{\n'|indent(4, first=True)` is `"    {\n"`), as Command-R's template relies on.
pub fn indent(
    s: String,
    width: Option<Value>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let width = kwargs.get::<Option<Value>>("width")?.or(width);
    let first = kwargs.get::<Option<bool>>("first")?.or(first).unwrap_or(false);
    let blank = kwargs.get::<Option<bool>>("blank")?.or(blank).unwrap_or(false);
    kwargs.assert_all_used()?;
    let unit = indent_unit(width)?;
    let text = format!("{s}\n");
    let lines = python_splitlines(&text);
    let mut out = if blank {
        lines.join(&format!("\n{unit}"))
    } else {
        let mut out = lines.first().copied().unwrap_or_default().to_string();
        for line in lines.iter().skip(1) {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&unit);
            }
            out.push_str(line);
        }
        out
    };
    if first {
        out.insert_str(0, &unit);
    }
    Ok(out)
}

fn indent_unit(width: Option<Value>) -> Result<String, Error> {
    let Some(width) = width else {
        return Ok("    ".into());
    };
    if let Some(s) = width.as_str() {
        return Ok(s.to_string());
    }
    match width.as_i64() {
        Some(n) => Ok(" ".repeat(n.clamp(0, 4096) as usize)),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("indent: bad width {width}"),
        )),
    }
}

/// Python's `str.splitlines()`: every line boundary Python knows, terminators dropped.
fn python_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = matches!(
            c,
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if !boundary {
            continue;
        }
        lines.push(&s[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some((j, '\n')) = chars.peek().copied() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(s: &str, width: i64, first: bool, blank: bool) -> String {
        indent(
            s.into(),
            Some(Value::from(width)),
            Some(first),
            Some(blank),
            Kwargs::from_iter(Vec::<(&str, Value)>::new()),
        )
        .unwrap()
    }

    #[test]
    fn matches_jinja2() {
        assert_eq!(ind("{\n", 4, true, false), "    {\n");
        assert_eq!(ind("a\n\nb", 2, false, false), "a\n\n  b");
        assert_eq!(ind("a\n\nb", 2, false, true), "a\n  \n  b");
        assert_eq!(ind("a\r\nb", 1, true, false), " a\n b");
        assert_eq!(ind("", 4, true, false), "    ");
    }
}
