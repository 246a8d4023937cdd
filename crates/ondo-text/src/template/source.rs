//! Source fixes applied before compiling: transformers-only syntax that minijinja lacks.
//!
//! transformers adds a `{% generation %}...{% endgeneration %}` block (it marks assistant tokens
//! for training masks and renders its body unchanged). It becomes `{% if true %}...{% endif %}`,
//! a block tag of the same shape, so trim_blocks / lstrip_blocks / `-` markers act the same.

/// Rewrites every `{% generation %}` / `{% endgeneration %}` tag, keeping its whitespace markers.
pub fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        match generation_tag(tag) {
            Some((len, replacement)) => {
                out.push_str(&replacement);
                rest = &tag[len..];
            }
            None => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `tag` starts with a generation tag, its length and its replacement.
fn generation_tag(tag: &str) -> Option<(usize, String)> {
    let end = tag.find("%}")?;
    let inner = &tag[2..end];
    let (open, inner) = split_marker(inner, true);
    let (close, inner) = split_marker(inner, false);
    let word = match inner.trim() {
        "generation" => "if true",
        "endgeneration" => "endif",
        _ => return None,
    };
    Some((end + 2, format!("{{%{open} {word} {close}%}}")))
}

/// Splits a leading (or trailing) `-` / `+` whitespace marker off a tag's inside.
fn split_marker(inner: &str, leading: bool) -> (&str, &str) {
    let marker = if leading { inner.chars().next() } else { inner.chars().last() };
    match marker {
        Some('-' | '+') if leading => (&inner[..1], &inner[1..]),
        Some('-' | '+') => (&inner[inner.len() - 1..], &inner[..inner.len() - 1]),
        _ => ("", inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_generation_blocks_only() {
        let src = "{%- generation -%}x{% endgeneration %}{% if a %}{%+generation%}";
        assert_eq!(
            rewrite_generation_tags(src),
            "{%- if true -%}x{% endif %}{% if a %}{%+ if true %}"
        );
        assert_eq!(rewrite_generation_tags("{% set generation = 1 %}{%"), "{% set generation = 1 %}{%");
    }
}
