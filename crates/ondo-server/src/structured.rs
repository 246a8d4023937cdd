//! Structured-output fields of a request → `ondo_engine::StructuredOutputs`: OpenAI's
//! `response_format` (`text`, `json_object`, `json_schema`) and vLLM's `structured_outputs`
//! (`json`, `json_object`, `regex`, `choice`, `grammar`). The engine compiles the constraint
//! when the request is submitted; a schema it cannot compile is a 400 naming the keyword.

use crate::error::ApiError;
use ondo_engine::StructuredOutputs;
use serde::Deserialize;
use serde_json::Value;

/// The request fields read here (unknown fields are ignored, as everywhere).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StructuredFields {
    pub response_format: Option<Value>,
    pub structured_outputs: Option<Value>,
}

impl StructuredFields {
    /// The constraint asked for, if any; both fields at once is a 400.
    pub fn constraint(&self) -> Result<Option<StructuredOutputs>, ApiError> {
        let from_format = self
            .response_format
            .as_ref()
            .map(response_format)
            .transpose()?
            .flatten();
        let from_vllm = self.structured_outputs.as_ref().map(structured_outputs).transpose()?;
        match (from_format, from_vllm) {
            (Some(_), Some(_)) => Err(ApiError::bad_param(
                "structured_outputs",
                "give either response_format or structured_outputs, not both",
            )),
            (a, b) => Ok(a.or(b)),
        }
    }
}

/// OpenAI's `response_format`: `{"type": "text"}` (no constraint), `{"type": "json_object"}`,
/// `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`.
fn response_format(v: &Value) -> Result<Option<StructuredOutputs>, ApiError> {
    let bad = |param: &str, msg: &str| ApiError::bad_param(param, msg.to_string());
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("response_format.type", "response_format.type must be a string"))?;
    match kind {
        "text" => Ok(None),
        "json_object" => Ok(Some(StructuredOutputs {
            json_object: true,
            ..StructuredOutputs::default()
        })),
        "json_schema" => {
            let spec = v.get("json_schema").filter(|s| s.is_object()).ok_or_else(|| {
                bad(
                    "response_format.json_schema",
                    "response_format.json_schema must be an object with name and schema",
                )
            })?;
            if !spec.get("name").is_some_and(Value::is_string) {
                return Err(bad(
                    "response_format.json_schema.name",
                    "response_format.json_schema.name must be a string",
                ));
            }
            // OpenAI: an absent schema allows any JSON object
            let schema = spec
                .get("schema")
                .cloned()
                .unwrap_or(serde_json::json!({"type": "object"}));
            Ok(Some(StructuredOutputs::json(schema)))
        }
        other => Err(ApiError::bad_param(
            "response_format.type",
            format!("response_format.type must be one of text, json_object, json_schema, got {other:?}"),
        )),
    }
}

/// vLLM's `structured_outputs` object.
fn structured_outputs(v: &Value) -> Result<StructuredOutputs, ApiError> {
    let so: StructuredOutputs = serde_json::from_value(v.clone())
        .map_err(|e| ApiError::bad_param("structured_outputs", format!("structured_outputs: {e}")))?;
    so.validate()
        .map_err(|e| ApiError::bad_param(e.field(), e.to_string()))?;
    Ok(so)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> StructuredFields {
        serde_json::from_value(v).expect("fields")
    }

    #[test]
    fn response_format_kinds() {
        assert_eq!(
            fields(json!({"response_format": {"type": "text"}})).constraint(),
            Ok(None)
        );
        let so = fields(json!({"response_format": {"type": "json_object"}})).constraint();
        assert!(so.expect("valid").expect("some").json_object);
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let so = fields(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": true}}}))
        .constraint();
        assert_eq!(so.expect("valid").expect("some").json, Some(schema));
    }

    #[test]
    fn bad_shapes_name_their_field() {
        for (v, param) in [
            (json!({"response_format": {"type": "yaml"}}), "response_format.type"),
            (json!({"response_format": {}}), "response_format.type"),
            (
                json!({"response_format": {"type": "json_schema"}}),
                "response_format.json_schema",
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
                "response_format.json_schema.name",
            ),
            (json!({"structured_outputs": {}}), "structured_outputs"),
            (
                json!({"structured_outputs": {"regex": "a", "choice": ["b"]}}),
                "structured_outputs",
            ),
            (
                json!({"structured_outputs": {"choice": []}}),
                "structured_outputs.choice",
            ),
            (json!({"structured_outputs": {"regex": 5}}), "structured_outputs"),
            (
                json!({"structured_outputs": {"regex": "a"}, "response_format": {"type": "json_object"}}),
                "structured_outputs",
            ),
        ] {
            let e = fields(v.clone()).constraint().expect_err(&v.to_string());
            assert_eq!(e.param.as_deref(), Some(param), "{v}: {}", e.message);
        }
    }
}
