//! The `tojson` filter as transformers defines it: Python's
//! `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
//!
//! Unlike jinja2's (and minijinja's) own `tojson`, nothing is HTML-escaped and non-ASCII text
//! (Korean) stays as written. Separators, indentation and float spelling follow CPython.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind};

/// How to lay out the JSON text (the keyword arguments of `json.dumps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStyle {
    pub ensure_ascii: bool,
    /// `None`: one line. `Some(unit)`: one item per line, nested levels indented by `unit`.
    pub indent: Option<String>,
    pub item_sep: String,
    pub key_sep: String,
    pub sort_keys: bool,
}

impl Default for JsonStyle {
    fn default() -> JsonStyle {
        JsonStyle {
            ensure_ascii: false,
            indent: None,
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            sort_keys: false,
        }
    }
}

/// The filter: `x | tojson`, `x | tojson(indent=2)`, `tojson(x, ensure_ascii, indent, separators, sort_keys)`.
pub fn tojson_filter(value: &Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let style = style_from_args(&args.into_values())?;
    dumps(value, &style)
}

/// Reads the positional and keyword arguments in the order of transformers' signature.
fn style_from_args(args: &[Value]) -> Result<JsonStyle, Error> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Some(Kwargs::try_from(last.clone())?)),
        _ => (args, None),
    };
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if positional.len() > NAMES.len() {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let mut slots: [Value; 4] = Default::default();
    for (slot, value) in slots.iter_mut().zip(positional) {
        *slot = value.clone();
    }
    if let Some(kwargs) = &kwargs {
        for (slot, name) in slots.iter_mut().zip(NAMES) {
            if let Some(v) = kwargs.get::<Option<Value>>(name)? {
                *slot = v;
            }
        }
        kwargs.assert_all_used()?;
    }
    let [ensure_ascii, indent, separators, sort_keys] = slots;
    let indent = indent_unit(&indent)?;
    let (item_sep, key_sep) = separators_of(&separators, indent.is_some())?;
    Ok(JsonStyle {
        ensure_ascii: ensure_ascii.is_true(),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.is_true(),
    })
}

/// `indent`: None → one line; an int n → n spaces (negative → none); a string → itself.
fn indent_unit(indent: &Value) -> Result<Option<String>, Error> {
    if indent.is_none() || indent.is_undefined() {
        return Ok(None);
    }
    if let Some(s) = indent.as_str() {
        return Ok(Some(s.to_string()));
    }
    match indent.as_i64() {
        Some(n) => Ok(Some(" ".repeat(n.clamp(0, 4096) as usize))),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: bad indent {indent}"),
        )),
    }
}

/// `separators=(item, key)`; Python's defaults depend on whether there is an indent.
fn separators_of(separators: &Value, indented: bool) -> Result<(String, String), Error> {
    if separators.is_none() || separators.is_undefined() {
        let item = if indented { "," } else { ", " };
        return Ok((item.into(), ": ".into()));
    }
    let parts: Vec<Value> = separators.try_iter()?.collect();
    match parts.as_slice() {
        [item, key] => match (item.as_str(), key.as_str()) {
            (Some(i), Some(k)) => Ok((i.into(), k.into())),
            _ => Err(Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be strings",
            )),
        },
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: separators must be a pair",
        )),
    }
}

/// Serializes `value` exactly as CPython's `json.dumps` would with `style`.
pub fn dumps(value: &Value, style: &JsonStyle) -> Result<String, Error> {
    let mut out = String::new();
    Encoder { style, out: &mut out }.value(value, 0)?;
    Ok(out)
}

struct Encoder<'a> {
    style: &'a JsonStyle,
    out: &'a mut String,
}

impl Encoder<'_> {
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), Error> {
        match value.kind() {
            ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self.out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => self.out.push_str(&number(value)),
            ValueKind::String => self.string(value.as_str().unwrap_or_default()),
            ValueKind::Iterable => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "Object of type generator is not JSON serializable",
                ))
            }
            ValueKind::Seq => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.list(&items, depth)?
            }
            ValueKind::Map => self.map(value, depth)?,
            kind => return Err(not_serializable(kind)),
        }
        Ok(())
    }

    fn list(&mut self, items: &[Value], depth: usize) -> Result<(), Error> {
        if items.is_empty() {
            self.out.push_str("[]");
            return Ok(());
        }
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            self.separator(i, depth + 1);
            self.value(item, depth + 1)?;
        }
        self.newline(depth);
        self.out.push(']');
        Ok(())
    }

    fn map(&mut self, map: &Value, depth: usize) -> Result<(), Error> {
        let mut pairs = Vec::new();
        for key in map.try_iter()? {
            let item = map.get_item(&key)?;
            pairs.push((key_string(&key)?, item));
        }
        if self.style.sort_keys {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if pairs.is_empty() {
            self.out.push_str("{}");
            return Ok(());
        }
        self.out.push('{');
        for (i, (key, item)) in pairs.iter().enumerate() {
            self.separator(i, depth + 1);
            self.string(key);
            self.out.push_str(&self.style.key_sep);
            self.value(item, depth + 1)?;
        }
        self.newline(depth);
        self.out.push('}');
        Ok(())
    }

    /// Before item `i` of a container whose items sit at `depth`.
    fn separator(&mut self, i: usize, depth: usize) {
        if i > 0 {
            self.out.push_str(&self.style.item_sep);
        }
        self.newline(depth);
    }

    fn newline(&mut self, depth: usize) {
        if let Some(unit) = &self.style.indent {
            self.out.push('\n');
            for _ in 0..depth {
                self.out.push_str(unit);
            }
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 => push_u16(self.out, c as u32),
                c if self.style.ensure_ascii && !(' '..='~').contains(&c) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        push_u16(self.out, u32::from(*unit));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

fn push_u16(out: &mut String, unit: u32) {
    let _ = write!(out, "\\u{unit:04x}");
}

fn not_serializable(kind: ValueKind) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("Object of type {kind} is not JSON serializable"),
    )
}

/// JSON object keys: Python turns int/float/bool/None keys into strings and rejects the rest.
fn key_string(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => Ok(number(key)),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.into()),
        ValueKind::None => Ok("null".into()),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

/// A number as Python's `json.dumps` spells it (ints as digits, floats as `repr(float)`).
fn number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) => py_float_repr(f),
        Err(_) => value.to_string(),
    }
}

/// CPython's `repr(float)`: the shortest round-tripping digits, fixed notation for
/// decimal exponents -4 < e <= 16, otherwise `d.ddde±XX`.
pub fn py_float_repr(f: f64) -> String {
    let sci = format!("{f:e}"); // e.g. "-1.2345e-5", shortest round-trip digits
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let n = digits.len() as i32;
    let body = if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt >= n {
            format!("{}{}.0", digits, "0".repeat((decpt - n) as usize))
        } else {
            format!("{}.{}", &digits[..decpt as usize], &digits[decpt as usize..])
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: serde_json::Value, style: &JsonStyle) -> String {
        dumps(&Value::from(minijinja::value::Serde(&v)), style).unwrap()
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (1.5e300, "1.5e+300"),
            (2.5e-7, "2.5e-07"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn python_default_layout_keeps_korean_and_key_order() {
        let v = serde_json::json!({"z": "안녕 \"hi\"\n", "a": [1, 2.5, true, null], "m": {}});
        assert_eq!(
            json(v, &JsonStyle::default()),
            r#"{"z": "안녕 \"hi\"\n", "a": [1, 2.5, true, null], "m": {}}"#
        );
    }

    #[test]
    fn indent_and_ensure_ascii() {
        let style = JsonStyle {
            ensure_ascii: true,
            indent: Some("  ".into()),
            item_sep: ",".into(),
            ..JsonStyle::default()
        };
        let v = serde_json::json!({"k": ["한", "😀", "\u{1}<>&"], "e": []});
        assert_eq!(
            json(v, &style),
            "{\n  \"k\": [\n    \"\\ud55c\",\n    \"\\ud83d\\ude00\",\n    \"\\u0001<>&\"\n  ],\n  \"e\": []\n}"
        );
    }
}
