//! Source fixes applied before compiling, for jinja2 behaviour minijinja lacks.
//!
//! - transformers' `{% generation %}...{% endgeneration %}` block (it marks assistant tokens for
//!   training masks and renders its body unchanged) becomes `{% if true %}...{% endif %}`, a block
//!   tag of the same shape, so trim_blocks / lstrip_blocks / `-` markers act the same.
//! - `{% for x in EXPR %}` becomes `{% for x in (EXPR)|ITER_FILTER %}`: Python raises on iterating
//!   `None` where minijinja loops zero times (see `filters::python_iterable`).
//!
//! Only block tags change; text, `{{ }}` expressions, comments and raw blocks are copied as is.

/// The hidden filter wrapped around every for-loop iterable.
pub const ITER_FILTER: &str = "__ondo_python_iterable";

/// Applies both rewrites to a template's source.
pub fn rewrite(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let here = &rest[start..];
        let (len, replacement) = match &here.as_bytes()[..here.len().min(2)] {
            b"{%" => block_tag(here),
            b"{{" => (delimited_len(here, "}}"), None),
            b"{#" => (here.find("#}").map_or(here.len(), |i| i + 2), None),
            _ => (1, None),
        };
        match replacement {
            Some(r) => out.push_str(&r),
            None => out.push_str(&here[..len]),
        }
        rest = &here[len..];
    }
    out.push_str(rest);
    out
}

/// Length of a `{% ... %}` tag (through a whole raw block) and its replacement, if it changes.
fn block_tag(here: &str) -> (usize, Option<String>) {
    let len = delimited_len(here, "%}");
    let (open, body, close) = split_tag(&here[..len]);
    if body == "raw" {
        let end = here[len..]
            .find("endraw")
            .and_then(|i| here[len + i..].find("%}").map(|j| len + i + j + 2));
        return (end.unwrap_or(here.len()), None);
    }
    let body = match body {
        "generation" => "if true".to_string(),
        "endgeneration" => "endif".to_string(),
        b if b.starts_with("for") && b[3..].starts_with(char::is_whitespace) => match rewrite_for(b) {
            Some(new) => new,
            None => return (len, None),
        },
        _ => return (len, None),
    };
    (len, Some(format!("{{%{open} {body} {close}%}}")))
}

/// Length up to and including `close`, skipping string literals; the rest when unterminated.
fn delimited_len(here: &str, close: &str) -> usize {
    let bytes = here.as_bytes();
    let mut quote = None;
    let mut i = 2;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'\'' | b'"')) => quote = Some(c),
            (None, _) if bytes[i..].starts_with(close.as_bytes()) => return i + close.len(),
            _ => {}
        }
        i += 1;
    }
    here.len()
}

/// `{%- body +%}` → ("-", "body", "+").
fn split_tag(tag: &str) -> (&str, &str, &str) {
    let inner = tag.strip_prefix("{%").unwrap_or(tag);
    let inner = inner.strip_suffix("%}").unwrap_or(inner);
    let (open, inner) = match inner.as_bytes().first() {
        Some(b'-' | b'+') => inner.split_at(1),
        _ => ("", inner),
    };
    let (inner, close) = match inner.as_bytes().last() {
        Some(b'-' | b'+') => inner.split_at(inner.len() - 1),
        _ => (inner, ""),
    };
    (open, inner.trim(), close)
}

/// `for TARGET in ITER [if COND] [recursive]` → `for TARGET in (ITER)|ITER_FILTER ...`.
fn rewrite_for(body: &str) -> Option<String> {
    let in_at = find_word(body, "in", 3)?;
    let iter_start = in_at + 2;
    let iter_end = [
        find_word(body, "if", iter_start),
        find_word(body, "recursive", iter_start),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(body.len());
    let iter = body[iter_start..iter_end].trim();
    if iter.is_empty() {
        return None;
    }
    let new = format!("{} ({iter})|{ITER_FILTER} {}", &body[..iter_start], &body[iter_end..]);
    Some(new.trim_end().to_string())
}

/// Byte offset of `word` as a whole word outside strings and brackets, at or after `from`.
fn find_word(body: &str, word: &str, from: usize) -> Option<usize> {
    let bytes = body.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let (mut depth, mut quote, mut i) = (0usize, None, from);
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                _ if depth == 0
                    && bytes[i..].starts_with(word.as_bytes())
                    && (i == 0 || !is_ident(bytes[i - 1]))
                    && bytes.get(i + word.len()).is_none_or(|b| !is_ident(*b)) =>
                {
                    return Some(i)
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_generation_blocks_only() {
        let src = "{%- generation -%}x{% endgeneration %}{% if a %}{%+generation%}";
        assert_eq!(rewrite(src), "{%- if true -%}x{% endif %}{% if a %}{%+ if true %}");
        assert_eq!(rewrite("{% set generation = 1 %}{%"), "{% set generation = 1 %}{%");
    }

    #[test]
    fn wraps_for_iterables() {
        let f = ITER_FILTER;
        assert_eq!(
            rewrite("{%- for m in messages[1:] -%}"),
            format!("{{%- for m in (messages[1:])|{f} -%}}")
        );
        assert_eq!(
            rewrite("{% for k, v in d.items() if k != 'in' recursive %}"),
            format!("{{% for k, v in (d.items())|{f} if k != 'in' recursive %}}")
        );
        assert_eq!(
            rewrite("{% for index in info %}"),
            format!("{{% for index in (info)|{f} %}}")
        );
        assert_eq!(
            rewrite("{% for x in [a if b else c] %}"),
            format!("{{% for x in ([a if b else c])|{f} %}}")
        );
        assert_eq!(rewrite("{% for 값 in 목록 %}"), format!("{{% for 값 in (목록)|{f} %}}"));
    }

    #[test]
    fn leaves_text_expressions_comments_and_raw_alone() {
        for src in [
            "{{ '{% for x in y %}' }}",
            "{# {% for x in y %} #}",
            "{% raw %}{% for x in y %}{% endraw %}",
            "for x in y",
            "{% if '%}' %}",
            "{% set 이름 = '안녕' %}{{ 이름 }}",
        ] {
            assert_eq!(rewrite(src), src);
        }
    }
}
