//! The sandbox a chat template runs in. A template is code from a model's files, and the
//! server renders it for every request, so a render is bounded three ways:
//! - fuel: every VM instruction costs one unit (`FUEL` in all: real templates use a few
//!   thousand per message, so a render of a thousand messages stays far below it, and an
//!   endless loop stops within a fraction of a second);
//! - recursion: macros calling themselves stop at `RECURSION` levels (minijinja's counter);
//! - output: the render is written through `Capped`, which fails past `MAX_OUTPUT` bytes.
//!
//! There is no loader, so `include`/`import`/`extends` of any other name (a file path too)
//! fails as a missing template: a template never reads the filesystem.

use minijinja::Environment;

/// Instructions one render may run.
pub const FUEL: u64 = 20_000_000;
/// Recursion levels (minijinja counts a macro call as several).
pub const RECURSION: usize = 200;
/// Bytes one render may produce (a prompt is at most a few MB of text).
pub const MAX_OUTPUT: usize = 32 << 20;

/// Applies the limits to `env`.
pub(crate) fn apply(env: &mut Environment<'_>) {
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION);
}

/// What stopped a render, when a limit did (`None`: the error is the template's own).
pub(crate) fn which(err: &minijinja::Error, capped: &Capped) -> Option<String> {
    if capped.over {
        return Some(format!("its output passed {} MiB", MAX_OUTPUT >> 20));
    }
    match err.kind() {
        minijinja::ErrorKind::OutOfFuel => Some(format!("it ran past {FUEL} instructions (an endless loop?)")),
        _ if err.to_string().contains("recursion limit exceeded") => {
            Some(format!("it recursed deeper than {RECURSION} levels"))
        }
        _ => None,
    }
}

/// A byte buffer that refuses to grow past `MAX_OUTPUT`.
#[derive(Default)]
pub(crate) struct Capped {
    pub out: Vec<u8>,
    pub over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT {
            self.over = true;
            return Err(std::io::Error::other("chat template output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ChatTemplate, RenderOptions, TemplateError};
    use serde_json::json;
    use std::time::{Duration, Instant};

    /// Renders `src` with one user message; returns the result and how long it took.
    fn render(src: &str) -> (Result<String, TemplateError>, Duration) {
        let t = ChatTemplate::new(src, None, None).expect("compiles");
        let msgs = [json!({"role": "user", "content": "hi"})];
        let start = Instant::now();
        let out = t.render(&msgs, &RenderOptions::default());
        (out, start.elapsed())
    }

    fn limited(src: &str, what: &str) {
        let (out, took) = render(src);
        match out {
            Err(TemplateError::Limit(m)) => assert!(m.contains(what), "{src}: {m}"),
            other => panic!("{src}: expected a limit error naming {what:?}, got {other:?}"),
        }
        // generous: a loaded CI machine; a hang would never get here
        assert!(took < Duration::from_secs(5), "{src}: took {took:?}");
    }

    #[test]
    fn an_endless_loop_runs_out_of_fuel() {
        limited(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "instructions",
        );
    }

    #[test]
    fn deep_recursion_stops() {
        limited("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed");
    }

    #[test]
    fn a_huge_output_stops_at_the_cap() {
        // 10 MB per line, a thousand lines: 10 GB if nothing stopped it
        limited("{% for i in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}", "output");
    }

    #[test]
    fn a_template_cannot_read_files() {
        for src in [
            "{% include '/etc/passwd' %}",
            "{% import '/etc/hostname' as h %}",
            "{% extends 'x' %}",
        ] {
            let (out, _) = render(src);
            let err = out.expect_err(src).to_string();
            assert!(err.contains("not found") || err.contains("template"), "{src}: {err}");
            assert!(!err.contains("root:"), "{src}: {err}");
        }
    }

    #[test]
    fn a_long_real_conversation_fits_the_limits() {
        // a Qwen2.5-style template with tools over 2000 messages
        let src = "{%- if tools %}{%- for tool in tools %}{{ tool | tojson }}\n{%- endfor %}{%- endif %}\
            {%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endfor %}\
            {%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}";
        let t = ChatTemplate::new(src, None, None).unwrap();
        let msgs: Vec<_> = (0..2000)
            .map(
                |i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "안녕하세요 ".repeat(20)}),
            )
            .collect();
        let opts = RenderOptions {
            add_generation_prompt: true,
            tools: Some(vec![
                json!({"type": "function", "function": {"name": "f", "parameters": {}}}),
            ]),
            ..Default::default()
        };
        let out = t.render(&msgs, &opts).expect("renders within the limits");
        assert!(out.ends_with("<|im_start|>assistant"), "{}", &out[out.len() - 40..]);
    }
}
