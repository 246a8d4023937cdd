//! Chat prompts: (role, template) pairs, and what a template gives a model ([`PromptValue`]).
//!
//! A chat prompt stays a list of messages until it reaches a backend: the local backend renders
//! it through the model's own chat template, an endpoint sends it as `messages`.

use crate::runnable::Runnable;
use crate::template::{check_vars, PromptTemplate};
use crate::{Error, Result, Vars};
use serde::Serialize;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// `system`, `user` or `assistant`; LangChain's `human` and `ai` are accepted too.
    pub fn parse(role: &str) -> Result<Role> {
        match role {
            "system" => Ok(Role::System),
            "user" | "human" => Ok(Role::User),
            "assistant" | "ai" => Ok(Role::Assistant),
            other => Err(Error::Role(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One rendered chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    /// `{"role": ..., "content": ...}`, what chat templates and the OpenAI API read.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"role": self.role.as_str(), "content": self.content})
    }
}

/// A filled prompt: plain text (a completion) or chat messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PromptValue {
    Text(String),
    Chat(Vec<Message>),
}

impl PromptValue {
    /// The prompt as one string: the text itself, or one `role: content` line per message.
    pub fn to_text(&self) -> String {
        match self {
            PromptValue::Text(t) => t.clone(),
            PromptValue::Chat(messages) => {
                let lines: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{}: {}", m.role.as_str(), m.content))
                    .collect();
                lines.join("\n")
            }
        }
    }
}

impl From<String> for PromptValue {
    fn from(text: String) -> Self {
        PromptValue::Text(text)
    }
}

impl From<&str> for PromptValue {
    fn from(text: &str) -> Self {
        PromptValue::Text(text.to_string())
    }
}

/// A chat prompt from (role, template) pairs, e.g.
/// `ChatPromptTemplate::from_messages([("system", "Answer in {language}."), ("user", "{question}")])`.
/// Its variables are every message's, in order of first appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPromptTemplate {
    messages: Vec<(Role, PromptTemplate)>,
    variables: Vec<String>,
}

impl ChatPromptTemplate {
    /// Parse every message's template; a bad role or template is an error naming it.
    pub fn from_messages<R: AsRef<str>, T: AsRef<str>>(pairs: impl IntoIterator<Item = (R, T)>) -> Result<Self> {
        let messages = pairs
            .into_iter()
            .map(|(role, t)| Ok((Role::parse(role.as_ref())?, PromptTemplate::from_template(t.as_ref())?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_parts(messages))
    }

    fn from_parts(messages: Vec<(Role, PromptTemplate)>) -> Self {
        let mut variables: Vec<String> = Vec::new();
        for name in messages.iter().flat_map(|(_, t)| t.variables()) {
            if !variables.contains(name) {
                variables.push(name.clone());
            }
        }
        Self { messages, variables }
    }

    /// The variables `format_messages` needs.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// A copy with some variables bound now (in every message that uses them).
    pub fn partial<K: Into<String>, V: Into<String>>(&self, values: impl IntoIterator<Item = (K, V)>) -> Result<Self> {
        let values: Vars = values.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        if let Some(extra) = values.keys().find(|k| !self.variables.contains(*k)) {
            return Err(Error::ExtraVariable {
                name: extra.clone(),
                expected: self.variables.clone(),
            });
        }
        let messages = self
            .messages
            .iter()
            .map(|(role, t)| {
                let mine = values.iter().filter(|(k, _)| t.variables().contains(*k));
                Ok((*role, t.partial(mine.map(|(k, v)| (k.clone(), v.clone())))?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_parts(messages))
    }

    /// The messages with every variable filled. `vars` must hold exactly the variables.
    pub fn format_messages(&self, vars: &Vars) -> Result<Vec<Message>> {
        check_vars(vars, &self.variables)?;
        Ok(self
            .messages
            .iter()
            .map(|(role, t)| Message {
                role: *role,
                content: t.render(vars),
            })
            .collect())
    }
}

impl Runnable for ChatPromptTemplate {
    type Input = Vars;
    type Output = PromptValue;
    fn invoke(&self, vars: Vars) -> Result<PromptValue> {
        self.format_messages(&vars).map(PromptValue::Chat)
    }
}

/// Either kind of template, for steps that take one or the other (chains, chain files).
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Text(PromptTemplate),
    Chat(ChatPromptTemplate),
}

impl Template {
    pub fn variables(&self) -> &[String] {
        match self {
            Template::Text(t) => t.variables(),
            Template::Chat(t) => t.variables(),
        }
    }

    pub fn format(&self, vars: &Vars) -> Result<PromptValue> {
        match self {
            Template::Text(t) => t.format(vars).map(PromptValue::Text),
            Template::Chat(t) => t.format_messages(vars).map(PromptValue::Chat),
        }
    }
}

impl From<PromptTemplate> for Template {
    fn from(t: PromptTemplate) -> Self {
        Template::Text(t)
    }
}

impl From<ChatPromptTemplate> for Template {
    fn from(t: ChatPromptTemplate) -> Self {
        Template::Chat(t)
    }
}

impl Runnable for Template {
    type Input = Vars;
    type Output = PromptValue;
    fn invoke(&self, vars: Vars) -> Result<PromptValue> {
        self.format(&vars)
    }
}
