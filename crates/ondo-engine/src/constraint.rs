//! Structured outputs: a request's `structured_outputs` (vLLM's names: `json`, `json_object`,
//! `regex`, `choice`, `grammar`) becomes an llguidance `Matcher` per sequence, which masks
//! every token that cannot continue the constraint.
//!
//! ```text
//! StructuredOutputs --Guide::compile (submitting thread)--> Constraint (a compiled matcher)
//!   -> one SeqConstraint per sequence (deep clones)
//!   -> per step, inside the parallel draws (draws.rs): mask the logits row -> sampler chain
//!      -> commit the drawn token -> forced tokens (fast-forward) and whether it is complete
//! ```
//! The `Guide` holds llguidance's `ParserFactory` over ondo's own tokenizer (`tokenv`), built
//! the first time a constrained request arrives (the token trie of a 152k vocabulary takes a
//! moment), then shared by every request of the engine.

mod tokenv;

use std::sync::{Arc, OnceLock};

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use ondo_text::Tokenizer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::params::ParamError;

/// What the output must match: exactly one field set (vLLM's `StructuredOutputsParams`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StructuredOutputs {
    /// A JSON schema (an object, or its text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Any JSON object.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub json_object: bool,
    /// A regular expression (Rust `regex` syntax) the whole output matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The output is one of these strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice: Option<Vec<String>>,
    /// A grammar in llguidance's Lark syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
}

impl StructuredOutputs {
    /// A JSON-schema constraint.
    pub fn json(schema: Value) -> Self {
        Self {
            json: Some(schema),
            ..Self::default()
        }
    }

    /// Checks the shape (one kind of constraint, a usable choice list); the constraint itself
    /// is checked when it is compiled against the model's tokenizer.
    pub fn validate(&self) -> Result<(), ParamError> {
        let set = [
            self.json.is_some(),
            self.json_object,
            self.regex.is_some(),
            self.choice.is_some(),
            self.grammar.is_some(),
        ];
        let invalid = |reason: &str| ParamError::Invalid {
            field: "structured_outputs",
            reason: reason.into(),
        };
        match set.iter().filter(|&&s| s).count() {
            0 => return Err(invalid("must set one of json, json_object, regex, choice, grammar")),
            1 => {}
            _ => {
                return Err(invalid(
                    "must set only one of json, json_object, regex, choice, grammar",
                ))
            }
        }
        if let Some(choice) = &self.choice {
            if choice.is_empty() || choice.iter().any(String::is_empty) {
                return Err(ParamError::Invalid {
                    field: "structured_outputs.choice",
                    reason: "must be a non-empty list of non-empty strings".into(),
                });
            }
        }
        Ok(())
    }

    /// The field that is set, for error messages.
    fn field(&self) -> &'static str {
        match self {
            s if s.json.is_some() => "structured_outputs.json",
            s if s.json_object => "structured_outputs.json_object",
            s if s.regex.is_some() => "structured_outputs.regex",
            s if s.choice.is_some() => "structured_outputs.choice",
            _ => "structured_outputs.grammar",
        }
    }

    /// llguidance's grammar for the constraint.
    fn grammar(&self) -> Result<TopLevelGrammar, ParamError> {
        if let Some(schema) = &self.json {
            return Ok(TopLevelGrammar::from_json_schema(json_schema(schema, self.field())?));
        }
        if self.json_object {
            return Ok(TopLevelGrammar::from_json_schema(with_layout(
                json!({"type": "object"}),
            )));
        }
        if let Some(rx) = &self.regex {
            return Ok(TopLevelGrammar::from_regex(rx));
        }
        if let Some(choice) = &self.choice {
            let alts: Vec<String> = choice.iter().map(|c| regex_syntax::escape(c)).collect();
            return Ok(TopLevelGrammar::from_regex(&alts.join("|")));
        }
        Ok(TopLevelGrammar::from_lark(self.grammar.clone().unwrap_or_default()))
    }
}

/// The schema object (a schema given as JSON text is parsed), laid out as models write JSON.
fn json_schema(schema: &Value, field: &'static str) -> Result<Value, ParamError> {
    let schema = match schema {
        Value::String(text) => serde_json::from_str(text).map_err(|e| ParamError::Invalid {
            field,
            reason: format!("is not valid JSON: {e}"),
        })?,
        other => other.clone(),
    };
    if !schema.is_object() && !schema.is_boolean() {
        return Err(ParamError::Invalid {
            field,
            reason: "must be a JSON schema object".into(),
        });
    }
    Ok(with_layout(schema))
}

/// Fixed separators `", "` and `": "` and no other whitespace, unless the schema chooses its
/// own (`x-guidance`): small models given free whitespace may emit newlines until max_tokens.
fn with_layout(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance")
            .or_insert_with(|| json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}));
    }
    schema
}

/// llguidance over one engine's tokenizer; built on first use.
pub struct Guide {
    tokenizer: Arc<Tokenizer>,
    vocab_size: usize,
    eos_ids: Arc<[u32]>,
    factory: OnceLock<Result<Arc<ParserFactory>, String>>,
}

impl Guide {
    /// A guide for a model with logits of `vocab_size`, ending at any of `eos_ids`.
    pub fn new(tokenizer: Arc<Tokenizer>, vocab_size: usize, eos_ids: Arc<[u32]>) -> Guide {
        Guide {
            tokenizer,
            vocab_size,
            eos_ids,
            factory: OnceLock::new(),
        }
    }

    /// Compile a request's constraint; errors name the field and llguidance's reason (for a
    /// schema, the unsupported keyword).
    pub fn compile(&self, so: &StructuredOutputs) -> Result<Constraint, ParamError> {
        so.validate()?;
        let field = so.field();
        let factory = self.factory().map_err(|reason| ParamError::Invalid { field, reason })?;
        let parser = factory.create_parser(so.grammar()?).map_err(|e| ParamError::Invalid {
            field,
            reason: format!("is not supported: {e}"),
        })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ParamError::Invalid {
                field,
                reason: format!("is not supported: {e}"),
            });
        }
        Ok(Constraint { matcher })
    }

    fn factory(&self) -> Result<Arc<ParserFactory>, String> {
        let built = self.factory.get_or_init(|| {
            let env = tokenv::OndoTokEnv::new(self.tokenizer.clone(), self.vocab_size, &self.eos_ids);
            let mut factory = ParserFactory::new_simple(&env.into_tok_env())
                .map_err(|e| format!("cannot build the constraint engine for this tokenizer: {e}"))?;
            factory.quiet();
            Ok(Arc::new(factory))
        });
        built.clone()
    }
}

/// A compiled constraint, before any token.
pub struct Constraint {
    matcher: Matcher,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Constraint")
    }
}

impl Constraint {
    /// One sequence's own matcher.
    pub fn for_sequence(&self) -> SeqConstraint {
        SeqConstraint {
            matcher: self.matcher.deep_clone(),
            error: None,
            forced: Vec::new(),
            fast_forward: true,
        }
    }
}

/// One sequence's matcher, advanced token by token.
pub struct SeqConstraint {
    matcher: Matcher,
    error: Option<String>,
    /// Tokens the constraint forces after the last drawn one (fast-forwarded, not sampled).
    forced: Vec<u32>,
    fast_forward: bool,
}

impl SeqConstraint {
    /// Whether `commit` takes forced tokens (else each is drawn, the mask allowing it alone).
    pub fn with_fast_forward(mut self, on: bool) -> Self {
        self.fast_forward = on;
        self
    }

    /// Set every token the constraint forbids to -inf in `logits`.
    pub fn mask(&mut self, logits: &mut [f32]) {
        match self.matcher.compute_mask() {
            Ok(mask) => {
                let n = mask.len().min(logits.len());
                mask.iter_unset_entries(|i| {
                    if i < n {
                        logits[i] = f32::NEG_INFINITY;
                    }
                });
                logits[n..].fill(f32::NEG_INFINITY);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Advance past the drawn `token`, then take the tokens the constraint forces next.
    pub fn commit(&mut self, token: u32) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.matcher.consume_token(token) {
            self.error = Some(e.to_string());
            return;
        }
        if self.fast_forward && !self.matcher.is_stopped() {
            self.forced = self.matcher.consume_ff_tokens();
        }
    }

    /// The forced tokens found by the last `commit` (taken once).
    pub fn take_forced(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.forced)
    }

    /// The constraint is complete: nothing may follow.
    pub fn is_done(&self) -> bool {
        self.error.is_none() && self.matcher.is_stopped()
    }

    /// A matcher failure (an internal llguidance error, or a token it rejected).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplingParams;

    #[test]
    fn exactly_one_kind_and_a_usable_choice() {
        let field = |so: StructuredOutputs| so.validate().expect_err("invalid").field();
        assert_eq!(field(StructuredOutputs::default()), "structured_outputs");
        let two = StructuredOutputs {
            regex: Some("a".into()),
            json_object: true,
            ..Default::default()
        };
        assert_eq!(field(two), "structured_outputs");
        for choice in [vec![], vec![String::new()]] {
            let so = StructuredOutputs {
                choice: Some(choice),
                ..Default::default()
            };
            assert_eq!(field(so), "structured_outputs.choice");
        }
        assert!(StructuredOutputs::json(json!({"type": "object"})).validate().is_ok());
    }

    #[test]
    fn a_vllm_jsonl_line_parses_and_validates() {
        let line = r#"{"prompt": "x", "structured_outputs": {"choice": ["a", "b"]}, "temperature": 0}"#;
        let p: SamplingParams = serde_json::from_str(line).expect("parses");
        assert_eq!(
            p.structured_outputs.as_ref().and_then(|s| s.choice.clone()),
            Some(vec!["a".into(), "b".into()])
        );
        let bad: SamplingParams = serde_json::from_str(r#"{"structured_outputs": {}}"#).expect("parses");
        assert_eq!(bad.validate().expect_err("empty").field(), "structured_outputs");
    }

    #[test]
    fn schemas_get_the_compact_layout_unless_they_choose() {
        let s = json_schema(&json!({"type": "object"}), "f").expect("object");
        assert_eq!(s["x-guidance"]["whitespace_flexible"], json!(false));
        let own = json!({"type": "object", "x-guidance": {"whitespace_flexible": true}});
        assert_eq!(json_schema(&own, "f").expect("object")["x-guidance"], own["x-guidance"]);
        let text = json_schema(&json!("{\"type\": \"integer\"}"), "f").expect("text schema");
        assert_eq!(text["type"], "integer");
        assert!(json_schema(&json!(3), "f").is_err());
        assert!(json_schema(&json!("{not json"), "f").is_err());
    }
}
