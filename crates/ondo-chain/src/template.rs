//! Prompt templates in Python's f-string syntax: `{name}` is a variable, `{{` and `}}` are
//! literal braces. Variables are found when the template is parsed, so a missing or extra
//! variable is caught before any model runs, and the error names it.

use crate::chat::PromptValue;
use crate::runnable::Runnable;
use crate::{Error, Result, Vars};

/// One parsed run of a template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A text prompt with `{variables}`, e.g. `PromptTemplate::from_template("Who is the
/// president of {country}?")`. As a [`Runnable`] it takes [`Vars`] and gives a
/// [`PromptValue::Text`].
#[derive(Debug, Clone, PartialEq)]
pub struct PromptTemplate {
    source: String,
    pieces: Vec<Piece>,
    /// Variables still to be given, in order of first appearance.
    variables: Vec<String>,
    /// Values bound by [`PromptTemplate::partial`].
    partials: Vars,
}

impl PromptTemplate {
    /// Parse `template`; its variables are known from here on ([`PromptTemplate::variables`]).
    pub fn from_template(template: &str) -> Result<Self> {
        let pieces = parse(template)?;
        let mut variables: Vec<String> = Vec::new();
        for p in &pieces {
            if let Piece::Var(name) = p {
                if !variables.contains(name) {
                    variables.push(name.clone());
                }
            }
        }
        Ok(Self {
            source: template.to_string(),
            pieces,
            variables,
            partials: Vars::new(),
        })
    }

    /// The variables [`PromptTemplate::format`] needs, in order of first appearance (those
    /// bound by [`PromptTemplate::partial`] are no longer listed).
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// The template as written.
    pub fn template(&self) -> &str {
        &self.source
    }

    /// A copy with some variables bound now; the rest are given to `format` later. Binding a
    /// variable the template does not have (or has already bound) is an error naming it.
    pub fn partial<K: Into<String>, V: Into<String>>(&self, values: impl IntoIterator<Item = (K, V)>) -> Result<Self> {
        let mut out = self.clone();
        for (k, v) in values {
            let name = k.into();
            let Some(at) = out.variables.iter().position(|n| *n == name) else {
                return Err(Error::ExtraVariable {
                    name,
                    expected: self.variables.clone(),
                });
            };
            out.variables.remove(at);
            out.partials.insert(name, v.into());
        }
        Ok(out)
    }

    /// The text with every variable filled. `vars` must hold exactly the template's variables.
    pub fn format(&self, vars: &Vars) -> Result<String> {
        check_vars(vars, &self.variables)?;
        Ok(self.render(vars))
    }

    /// Fill from `vars` (already checked) and the partials.
    pub(crate) fn render(&self, vars: &Vars) -> String {
        let mut out = String::with_capacity(self.source.len());
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => {
                    let value = vars.get(name).or_else(|| self.partials.get(name));
                    out.push_str(value.map_or("", String::as_str));
                }
            }
        }
        out
    }
}

/// `vars` must name exactly `expected`: the first extra one, then the first missing one, is
/// the error.
pub(crate) fn check_vars(vars: &Vars, expected: &[String]) -> Result<()> {
    if let Some(extra) = vars.keys().find(|k| !expected.contains(*k)) {
        return Err(Error::ExtraVariable {
            name: extra.clone(),
            expected: expected.to_vec(),
        });
    }
    if let Some(missing) = expected.iter().find(|n| !vars.contains_key(*n)) {
        return Err(Error::MissingVariable {
            name: missing.clone(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
}

impl Runnable for PromptTemplate {
    type Input = Vars;
    type Output = PromptValue;
    fn invoke(&self, vars: Vars) -> Result<PromptValue> {
        self.format(&vars).map(PromptValue::Text)
    }
}

/// Split a template into text and variables.
fn parse(template: &str) -> Result<Vec<Piece>> {
    let bad = |reason: String| Error::Syntax {
        template: template.to_string(),
        reason,
    };
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().enumerate().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                chars.next();
                text.push('}');
            }
            '}' => {
                return Err(bad(format!(
                    "single '}}' at character {at} (write '}}}}' for a literal brace)"
                )))
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, '{')) | None => {
                            return Err(bad(format!(
                                "'{{' at character {at} is not closed (write '{{{{' for a literal brace)"
                            )))
                        }
                        Some((_, ch)) => name.push(ch),
                    }
                }
                check_name(&name).map_err(|why| bad(format!("{{{name}}} at character {at}: {why}")))?;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(name));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// A variable name is an identifier (letters of any script, digits, `_`; not starting with a
/// digit), as in Python.
fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("empty braces need a variable name (write '{{}}' for literal braces)");
    };
    if name.contains([':', '!']) {
        return Err("format specs and conversions are not supported, only {name}");
    }
    if name.contains(['.', '[']) {
        return Err("attribute and index access are not supported, only {name}");
    }
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    if !(first.is_alphabetic() || first == '_') || !chars.all(ident) {
        return Err("a variable name is letters, digits and '_', not starting with a digit");
    }
    Ok(())
}
