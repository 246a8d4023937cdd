//! Chat templates: a model's Jinja chat template rendered exactly as transformers'
//! `apply_chat_template` renders it.
//!
//! Data flow:
//! - [`ChatTemplate::from_tokenizer_config`] / [`ChatTemplate::from_file`] / [`ChatTemplate::new`]:
//!   the template text and the special tokens → compiled once (a syntax error names its line).
//! - [`ChatTemplate::render`]: messages + [`RenderOptions`] → the context transformers builds
//!   (`messages`, `tools`, `documents`, `add_generation_prompt`, the special tokens, extra
//!   variables) → [`ChatTemplate::render_context`] → the prompt text.
//!
//! The engine behaves like transformers' jinja2 sandbox (see `template/env.rs`): trim_blocks,
//! lstrip_blocks, loop controls, Python string/list/dict methods, `raise_exception(msg)` (surfaces
//! as [`TemplateError::Raised`] with the template's own message), `strftime_now(fmt)` (fixed by
//! [`RenderOptions::now`]) and a `tojson` that keeps non-ASCII text and key order.
//!
//! Every render runs sandboxed (`template/limits.rs`): bounded instructions, recursion and
//! output size, and no filesystem; hitting a limit is [`TemplateError::Limit`].

mod clock;
mod env;
mod filters;
mod limits;
mod methods;
mod pyjson;
mod source;

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde_json::{Map, Value};

pub use clock::DateTime;
pub use pyjson::py_float_repr;

/// Why a template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not compile.
    #[error("chat template syntax error at line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// The template called `raise_exception(message)`; the message is the template's own.
    #[error("{0}")]
    Raised(String),
    /// Rendering failed inside the template (unknown filter, bad operation, ...).
    #[error("chat template render error{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Render { line: Option<usize>, message: String },
    /// The messages or options are not what a chat template takes.
    #[error("chat template input: {0}")]
    Input(String),
    /// tokenizer_config.json holds something unexpected.
    #[error("tokenizer_config.json: {0}")]
    Config(String),
    /// A named template (e.g. "tool_use") that the model does not have.
    #[error("no chat template named {name:?}; available: {available:?}")]
    NoSuchTemplate { name: String, available: Vec<String> },
    #[error("reading chat template {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The sandbox stopped the render (`limits.rs`: instructions, recursion, output size).
    #[error("chat template stopped: {0}")]
    Limit(String),
}

/// What a render needs besides the messages (the keyword arguments of `apply_chat_template`).
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Append the header that starts the assistant's turn.
    pub add_generation_prompt: bool,
    /// JSON-schema tool definitions; `None` renders `tools` as none, as transformers does.
    pub tools: Option<Vec<Value>>,
    /// RAG documents (dicts, usually with `title` and `text`).
    pub documents: Option<Vec<Value>>,
    /// Leave the last message open so the model continues it (assistant prefill): the render
    /// stops right after its content. Not compatible with `add_generation_prompt`.
    pub continue_final_message: bool,
    /// The clock `strftime_now` reads; `None` = the current time (UTC).
    pub now: Option<DateTime>,
    /// Further template variables (`enable_thinking`, `reasoning_effort`, ...); they override
    /// special tokens of the same name.
    pub extra: Map<String, Value>,
}

/// A compiled chat template with the special tokens it may refer to.
#[derive(Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// Other special tokens by name (`unk_token`, `pad_token`, named extra special tokens).
    extra: Map<String, Value>,
    env: Environment<'static>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("extra", &self.extra)
            .finish()
    }
}

/// Special tokens transformers passes to every template besides bos/eos.
const OTHER_SPECIAL_TOKENS: [&str; 5] = ["unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

/// Appended to the final message's content to find where it ends (transformers uses the same).
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

/// Message fields transformers copies into one another (`_alias_reasoning_fields`).
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

impl ChatTemplate {
    /// Compiles `source`. A syntax error reports the template's line.
    pub fn new(source: &str, bos_token: Option<&str>, eos_token: Option<&str>) -> Result<ChatTemplate, TemplateError> {
        let env = env::environment(source::rewrite(source)).map_err(syntax_error)?;
        Ok(ChatTemplate {
            source: source.to_string(),
            bos_token: bos_token.map(str::to_string),
            eos_token: eos_token.map(str::to_string),
            extra: Map::new(),
            env,
        })
    }

    /// Reads a `chat_template.jinja` file (transformers ≥ 4.43 saves templates this way).
    pub fn from_file(
        path: &Path,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<ChatTemplate, TemplateError> {
        let source = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ChatTemplate::new(&source, bos_token, eos_token)
    }

    /// From a parsed tokenizer_config.json: `chat_template` as a string, or as a list of
    /// `{name, template}` picked by `name` (default "default"); special tokens as strings or
    /// AddedToken dicts `{"content": ...}`. `Ok(None)` when the config has no template.
    pub fn from_tokenizer_config(config: &Value, name: Option<&str>) -> Result<Option<ChatTemplate>, TemplateError> {
        let Some(source) = pick_template(config.get("chat_template"), name)? else {
            return Ok(None);
        };
        let bos = token_content(config, "bos_token")?;
        let eos = token_content(config, "eos_token")?;
        let mut template = ChatTemplate::new(&source, bos.as_deref(), eos.as_deref())?;
        template.extra = other_special_tokens(config)?;
        Ok(Some(template))
    }

    /// Adds (or replaces) a named special token the template can read, e.g. `("pad_token", "<pad>")`.
    pub fn with_special_token(mut self, name: &str, content: &str) -> ChatTemplate {
        match name {
            "bos_token" => self.bos_token = Some(content.to_string()),
            "eos_token" => self.eos_token = Some(content.to_string()),
            _ => {
                self.extra.insert(name.to_string(), Value::from(content));
            }
        }
        self
    }

    /// The template text as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// Renders a conversation. Each message is a JSON object (`role`, `content` as a string or a
    /// list of parts, `tool_calls`, ...) passed through as given.
    pub fn render(&self, messages: &[Value], opts: &RenderOptions) -> Result<String, TemplateError> {
        let mut messages = alias_reasoning_fields(messages)?;
        let continued = match opts.continue_final_message {
            true => Some(self.tag_final_message(&mut messages, opts)?),
            false => None,
        };
        let rendered = self.render_context(&self.context(messages, opts), opts.now)?;
        match continued {
            Some(final_text) => cut_at_continue_tag(rendered, &final_text),
            None => Ok(rendered),
        }
    }

    /// Appends [`CONTINUE_TAG`] to the final message's text (its string content or its last
    /// text part) and returns that text as it was.
    fn tag_final_message(&self, messages: &mut [Value], opts: &RenderOptions) -> Result<String, TemplateError> {
        let input = |m: &str| Err(TemplateError::Input(m.to_string()));
        if opts.add_generation_prompt {
            return input("continue_final_message and add_generation_prompt are not compatible");
        }
        if !self.source.contains("content") {
            return input("continue_final_message is set but the template does not read \"content\"");
        }
        let Some(content) = messages.last_mut().and_then(|m| m.get_mut("content")) else {
            return input("continue_final_message is set but the final message has no content");
        };
        let text = match content {
            Value::String(s) => s,
            Value::Array(parts) => match parts.iter_mut().rev().find_map(|p| p.get_mut("text")) {
                Some(Value::String(s)) => s,
                _ => return input("continue_final_message is set but the final message has no text to continue"),
            },
            _ => return input("continue_final_message is set but the final message has no content"),
        };
        let original = text.clone();
        text.push_str(CONTINUE_TAG);
        Ok(original)
    }

    /// The variables transformers hands the template: special tokens, then extra variables,
    /// then the four it always sets.
    fn context(&self, messages: Vec<Value>, opts: &RenderOptions) -> Map<String, Value> {
        let mut ctx = Map::new();
        let tokens = [("bos_token", &self.bos_token), ("eos_token", &self.eos_token)];
        for (name, token) in tokens {
            if let Some(token) = token {
                ctx.insert(name.to_string(), Value::from(token.as_str()));
            }
        }
        ctx.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        ctx.extend(opts.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        ctx.insert("messages".into(), Value::Array(messages));
        ctx.insert("tools".into(), opts.tools.clone().map_or(Value::Null, Value::Array));
        ctx.insert(
            "documents".into(),
            opts.documents.clone().map_or(Value::Null, Value::Array),
        );
        ctx.insert("add_generation_prompt".into(), Value::Bool(opts.add_generation_prompt));
        ctx
    }

    /// Renders with exactly these variables (no special tokens or defaults added);
    /// `now` fixes the clock of `strftime_now`.
    pub fn render_context(&self, ctx: &Map<String, Value>, now: Option<DateTime>) -> Result<String, TemplateError> {
        let template = self.env.get_template(env::TEMPLATE_NAME).map_err(syntax_error)?;
        let mut vars = minijinja::Value::from(minijinja::value::Serde(ctx));
        if let Some(now) = now {
            let clock = minijinja::Value::from_pairs([(env::NOW_VAR, now.to_unix())]);
            vars = minijinja::value::merge_maps([clock, vars]);
        }
        let mut capped = limits::Capped::default();
        match template.render_captured_to(vars, &mut capped) {
            Ok(_) => String::from_utf8(capped.out).map_err(|e| TemplateError::Render {
                line: None,
                message: format!("output is not UTF-8: {e}"),
            }),
            Err(err) => Err(match limits::which(&err, &capped) {
                Some(why) => TemplateError::Limit(why),
                None => render_error(err),
            }),
        }
    }
}

/// Cuts the render where the final message's text ended (transformers' rules: exactly at the
/// tag when the template kept the spacing, else also dropping whitespace before it).
fn cut_at_continue_tag(rendered: String, final_text: &str) -> Result<String, TemplateError> {
    let tag = CONTINUE_TAG.trim();
    let Some(at) = rendered.rfind(tag).filter(|_| rendered.contains(final_text.trim())) else {
        return Err(TemplateError::Input(
            "continue_final_message is set but the final message does not appear in the rendered chat".into(),
        ));
    };
    let kept = if rendered[at..].starts_with(CONTINUE_TAG) {
        &rendered[..at]
    } else {
        rendered[..at].trim_end()
    };
    Ok(kept.to_string())
}

/// Picks the template text out of `chat_template` (a string or a list of `{name, template}`).
fn pick_template(value: Option<&Value>, name: Option<&str>) -> Result<Option<String>, TemplateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match name {
            None | Some("default") => Ok(Some(s.clone())),
            Some(other) => Err(TemplateError::NoSuchTemplate {
                name: other.to_string(),
                available: vec!["default".into()],
            }),
        },
        Some(Value::Array(entries)) => pick_named(entries, name.unwrap_or("default")).map(Some),
        Some(other) => Err(TemplateError::Config(format!(
            "chat_template must be a string or a list, got {other}"
        ))),
    }
}

fn pick_named(entries: &[Value], wanted: &str) -> Result<String, TemplateError> {
    let mut available = Vec::new();
    for entry in entries {
        let (Some(name), Some(template)) = (
            entry.get("name").and_then(Value::as_str),
            entry.get("template").and_then(Value::as_str),
        ) else {
            return Err(TemplateError::Config(format!(
                "chat_template entry without name/template: {entry}"
            )));
        };
        if name == wanted {
            return Ok(template.to_string());
        }
        available.push(name.to_string());
    }
    Err(TemplateError::NoSuchTemplate {
        name: wanted.to_string(),
        available,
    })
}

/// A special token's text: a string, an AddedToken dict `{"content": ...}`, or absent/null.
fn token_content(config: &Value, key: &str) -> Result<Option<String>, TemplateError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(TemplateError::Config(format!("{key} has no string \"content\""))),
        },
        Some(other) => Err(TemplateError::Config(format!(
            "{key} must be a string or an AddedToken, got {other}"
        ))),
    }
}

/// unk/sep/pad/cls/mask tokens plus named `extra_special_tokens` (transformers 5 passes both).
fn other_special_tokens(config: &Value) -> Result<Map<String, Value>, TemplateError> {
    let mut out = Map::new();
    for key in OTHER_SPECIAL_TOKENS {
        if let Some(token) = token_content(config, key)? {
            out.insert(key.to_string(), Value::from(token));
        }
    }
    if let Some(Value::Object(named)) = config.get("extra_special_tokens") {
        for key in named.keys() {
            if let Some(token) = token_content(&Value::Object(named.clone()), key)? {
                out.insert(key.clone(), Value::from(token));
            }
        }
    }
    Ok(out)
}

/// transformers' `_alias_reasoning_fields`: a message with reasoning under any of its names
/// gets it as `thinking` (first) and `reasoning_content` (last) too.
fn alias_reasoning_fields(messages: &[Value]) -> Result<Vec<Value>, TemplateError> {
    messages
        .iter()
        .map(|message| {
            let Value::Object(fields) = message else {
                return Err(TemplateError::Input(format!(
                    "chat messages must be objects, got {message}"
                )));
            };
            let reasoning = REASONING_FIELDS
                .iter()
                .find_map(|k| fields.get(*k).filter(|v| !v.is_null()));
            let Some(reasoning) = reasoning else {
                return Ok(message.clone());
            };
            let mut aliased = Map::new();
            aliased.insert("thinking".into(), reasoning.clone());
            aliased.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            aliased.insert("reasoning_content".into(), reasoning.clone());
            Ok(Value::Object(aliased))
        })
        .collect()
}

fn syntax_error(err: minijinja::Error) -> TemplateError {
    TemplateError::Syntax {
        line: err.line().unwrap_or(0),
        message: describe(&err),
    }
}

fn render_error(err: minijinja::Error) -> TemplateError {
    match raised_message(&err) {
        Some(message) => TemplateError::Raised(message),
        None => TemplateError::Render {
            line: err.line(),
            message: describe(&err),
        },
    }
}

/// The message of a `raise_exception` call anywhere in the error's chain.
fn raised_message(err: &minijinja::Error) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(raised) = e.downcast_ref::<env::Raised>() {
            return Some(raised.0.clone());
        }
        current = e.source();
    }
    None
}

/// minijinja's kind and detail, without its "(in template:line)" suffix (the line is kept apart).
fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, messages: Value) -> Result<String, TemplateError> {
        let t = ChatTemplate::new(src, Some("<s>"), Some("</s>"))?;
        let messages = messages.as_array().cloned().unwrap_or_default();
        t.render(&messages, &RenderOptions::default())
    }

    #[test]
    fn trim_and_lstrip_blocks() {
        let src = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}\nend\n";
        let out = render(
            src,
            json!([{"role": "user", "content": "안녕"}, {"role": "bot", "content": "x"}]),
        )
        .unwrap();
        // Block lines vanish entirely; the single trailing newline is dropped (jinja2 default).
        assert_eq!(out, "U:안녕\nend");
    }

    #[test]
    fn loop_controls_and_loop_vars() {
        let src = "{% for i in [1,2,3,4,5] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}";
        assert_eq!(render(src, json!([])).unwrap(), "1,3,4,");
    }

    #[test]
    fn tojson_keeps_korean_order_and_indents() {
        let t = ChatTemplate::new(
            "{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=2) }}",
            None,
            None,
        )
        .unwrap();
        let msg = json!({"role": "user", "content": "안녕 <b>&", "a": 1.5});
        let out = t.render(&[msg], &RenderOptions::default()).unwrap();
        assert_eq!(
            out,
            "{\"role\": \"user\", \"content\": \"안녕 <b>&\", \"a\": 1.5}|{\n  \"role\": \"user\",\n  \"content\": \"안녕 <b>&\",\n  \"a\": 1.5\n}"
        );
        let sorted = ChatTemplate::new(
            "{{ {'b': 1, 'a': [1]} | tojson(sort_keys=true, separators=(',', ':')) }}",
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            sorted.render(&[], &RenderOptions::default()).unwrap(),
            "{\"a\":[1],\"b\":1}"
        );
    }

    #[test]
    fn raise_exception_gives_the_templates_message() {
        let src = "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}";
        let err = render(src, json!([{"role": "assistant", "content": "hi"}])).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Raised(m) if m == "Conversation roles must alternate user/assistant/user/assistant/..."),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "Conversation roles must alternate user/assistant/user/assistant/..."
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = ChatTemplate::new("line one\n{% if x %}\n{{ y }\n", None, None).unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn python_values_print_like_python() {
        let out = render(
            "{{ true }} {{ none }} {{ [1, 'a'] }} {{ {'k': false} }} {{ x }}|",
            json!([]),
        )
        .unwrap();
        assert_eq!(out, "True None [1, 'a'] {'k': False} |");
    }

    #[test]
    fn strftime_now_reads_the_fixed_clock() {
        let t = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", None, None).unwrap();
        let opts = RenderOptions {
            now: DateTime::parse("2024-07-26"),
            ..RenderOptions::default()
        };
        assert_eq!(t.render(&[], &opts).unwrap(), "26 Jul 2024");
    }

    #[test]
    fn context_has_transformers_variables() {
        let t = ChatTemplate::new(
            "{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ add_generation_prompt }}|{{ flag }}",
            Some("<s>"),
            Some("</s>"),
        )
        .unwrap();
        let mut opts = RenderOptions {
            add_generation_prompt: true,
            ..RenderOptions::default()
        };
        opts.extra.insert("flag".into(), json!("on"));
        assert_eq!(t.render(&[], &opts).unwrap(), "<s>|</s>|True|True|on");
    }

    #[test]
    fn reasoning_fields_are_aliased() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{{ m.thinking }}/{{ m.reasoning_content }}/{{ m | tojson }}{% endfor %}",
            None,
            None,
        )
        .unwrap();
        let out = t
            .render(
                &[json!({"role": "assistant", "reasoning": "r", "content": "c"})],
                &RenderOptions::default(),
            )
            .unwrap();
        assert_eq!(out, "r/r/{\"thinking\": \"r\", \"role\": \"assistant\", \"reasoning\": \"r\", \"content\": \"c\", \"reasoning_content\": \"r\"}");
    }

    #[test]
    fn from_tokenizer_config_reads_named_templates_and_added_tokens() {
        let config = json!({
            "bos_token": {"__type": "AddedToken", "content": "<|begin|>"},
            "eos_token": "<|end|>",
            "pad_token": null,
            "unk_token": "<unk>",
            "chat_template": [
                {"name": "default", "template": "D{{ bos_token }}{{ unk_token }}"},
                {"name": "tool_use", "template": "T{{ eos_token }}"}
            ]
        });
        let d = ChatTemplate::from_tokenizer_config(&config, None).unwrap().unwrap();
        assert_eq!(d.render(&[], &RenderOptions::default()).unwrap(), "D<|begin|><unk>");
        let t = ChatTemplate::from_tokenizer_config(&config, Some("tool_use"))
            .unwrap()
            .unwrap();
        assert_eq!(t.render(&[], &RenderOptions::default()).unwrap(), "T<|end|>");
        let missing = ChatTemplate::from_tokenizer_config(&config, Some("rag")).unwrap_err();
        assert!(matches!(missing, TemplateError::NoSuchTemplate { .. }));
        assert!(ChatTemplate::from_tokenizer_config(&json!({"eos_token": "x"}), None)
            .unwrap()
            .is_none());
        assert!(ChatTemplate::from_tokenizer_config(&json!({"chat_template": 3}), None).is_err());
    }

    #[test]
    fn generation_tag_renders_its_body() {
        let src = "{% for m in messages %}\n{% generation %}\n{{ m.content }}\n{% endgeneration %}\n{% endfor %}";
        assert_eq!(
            render(src, json!([{"role": "assistant", "content": "a"}])).unwrap(),
            "a\n"
        );
    }

    #[test]
    fn continue_final_message_stops_inside_the_last_turn() {
        let src = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>\n{% endfor %}";
        let t = ChatTemplate::new(src, None, None).unwrap();
        let msgs = [
            json!({"role": "user", "content": "시"}),
            json!({"role": "assistant", "content": "봄바람이 "}),
        ];
        let mut opts = RenderOptions {
            continue_final_message: true,
            ..RenderOptions::default()
        };
        assert_eq!(t.render(&msgs, &opts).unwrap(), "<user>시</user>\n<assistant>봄바람이 ");
        opts.add_generation_prompt = true;
        assert!(matches!(t.render(&msgs, &opts), Err(TemplateError::Input(_))));
    }

    #[test]
    fn non_object_message_is_an_input_error() {
        assert!(matches!(render("x", json!(["hi"])), Err(TemplateError::Input(_))));
    }
}
