//! The minijinja environment that behaves like transformers' jinja2 sandbox:
//! trim_blocks + lstrip_blocks, loop controls, Python methods, and the globals transformers adds
//! (`raise_exception`, `strftime_now`, its own `tojson`).

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::clock::DateTime;
use super::{filters, methods, pyjson, source};

/// The name the chat template is stored under (no extension, so nothing is HTML-escaped).
pub(crate) const TEMPLATE_NAME: &str = "chat_template";

/// Context variable holding the fixed clock for `strftime_now` (unix seconds); absent = real time.
pub(crate) const NOW_VAR: &str = "__ondo_strftime_now_unix__";

/// Marks an error as raised by the template itself through `raise_exception(message)`.
#[derive(Debug)]
pub(crate) struct Raised(pub(crate) String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// An environment holding `source` (already rewritten, see `source.rs`) compiled.
pub(crate) fn environment(source: String) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_unknown_method_callback(methods::call_method);
    env.add_filter("tojson", pyjson::tojson_filter);
    env.add_filter("indent", filters::indent);
    env.add_filter("map", filters::map);
    env.add_filter("select", filters::select);
    env.add_filter("reject", filters::reject);
    env.add_filter("selectattr", filters::selectattr);
    env.add_filter("rejectattr", filters::rejectattr);
    env.add_filter(source::ITER_FILTER, filters::python_iterable);
    env.add_test("iterable", filters::is_iterable);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    super::limits::apply(&mut env);
    env.add_template_owned(TEMPLATE_NAME, source)?;
    Ok(env)
}

/// `raise_exception(message)`: stops rendering with the template's own message.
fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(Raised(message)))
}

/// `strftime_now(format)`: the render's fixed clock if one was given, else the current UTC time.
fn strftime_now(state: &State, format: String) -> String {
    let now = match state.lookup(NOW_VAR).and_then(|v| v.as_i64()) {
        Some(secs) => DateTime::from_unix(secs),
        None => DateTime::now_utc(),
    };
    now.strftime(&format)
}
