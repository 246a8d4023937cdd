//! Checks on a tokenizer.json's `post_processor` that the `tokenizers` crate leaves to its
//! builder: deserialized directly, a `TemplateProcessing` whose pieces name a special token
//! missing from its `special_tokens` map, a `single` template that uses sequence `$B`, or a
//! special token with more ids than tokens panics on the first encode (found by fuzzing). Here
//! each is an error naming the file and the field before the crate sees the JSON.

use serde_json::Value;

/// Why `post_processor` (also inside a `Sequence` processor) would panic on encode, if it would.
pub(super) fn post_processor_problem(json: &Value) -> Option<String> {
    match json.get("post_processor") {
        None | Some(Value::Null) => None,
        Some(p) => processor_problem(p),
    }
}

fn processor_problem(p: &Value) -> Option<String> {
    match p.get("type").and_then(Value::as_str) {
        Some("Sequence") => {
            let list = p.get("processors").and_then(Value::as_array)?;
            list.iter().find_map(processor_problem)
        }
        Some("TemplateProcessing") => template_problem(p),
        _ => None,
    }
}

fn template_problem(p: &Value) -> Option<String> {
    let specials = p.get("special_tokens").and_then(Value::as_object);
    for (key, tok) in specials.into_iter().flatten() {
        let ids = tok.get("ids").and_then(Value::as_array).map_or(0, Vec::len);
        let tokens = tok.get("tokens").and_then(Value::as_array).map_or(0, Vec::len);
        if ids != tokens {
            return Some(format!("special token {key:?} has {ids} ids but {tokens} tokens"));
        }
    }
    for which in ["single", "pair"] {
        for piece in p.get(which).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = piece.pointer("/SpecialToken/id").and_then(Value::as_str) {
                if !specials.is_some_and(|m| m.contains_key(id)) {
                    return Some(format!(
                        "template {which:?} uses special token {id:?}, not in special_tokens"
                    ));
                }
            }
            let seq = piece.pointer("/Sequence/id").and_then(Value::as_str);
            if which == "single" && seq == Some("B") {
                return Some("template \"single\" uses sequence B".into());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(single: Value, specials: Value) -> Value {
        json!({"post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel"},
            {"type": "TemplateProcessing", "single": single, "pair": [], "special_tokens": specials},
        ]}})
    }

    #[test]
    fn a_well_formed_template_passes() {
        let single = json!([{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]);
        let specials = json!({"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}});
        assert_eq!(post_processor_problem(&template(single, specials)), None);
        assert_eq!(post_processor_problem(&json!({"post_processor": null})), None);
    }

    #[test]
    fn templates_that_would_panic_are_named() {
        let single = json!([{"SpecialToken": {"id": "<s>", "type_id": 0}}]);
        let keyed_wrong = json!({"*<s>": {"id": "<s>", "ids": [315], "tokens": ["<s>"]}});
        let msg = post_processor_problem(&template(single.clone(), keyed_wrong)).unwrap();
        assert!(msg.contains("\"<s>\"") && msg.contains("special_tokens"), "{msg}");
        let uneven = json!({"<s>": {"id": "<s>", "ids": [1, 2], "tokens": ["<s>"]}});
        assert!(post_processor_problem(&template(single, uneven))
            .unwrap()
            .contains("2 ids but 1 tokens"));
        let b = json!([{"Sequence": {"id": "B", "type_id": 0}}]);
        assert!(post_processor_problem(&template(b, json!({})))
            .unwrap()
            .contains("sequence B"));
    }
}
