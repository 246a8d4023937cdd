//! Checks on a tokenizer.json that the `tokenizers` crate leaves to its builders (all found by
//! fuzzing): deserialized directly, a `TemplateProcessing` post-processor whose pieces name a
//! special token missing from its `special_tokens` map, a `single` template that uses sequence
//! `$B`, or a special token with more ids than tokens panics on the first encode; a `Strip`
//! decoder with `stop > 0` panics on decoding any token shorter than `stop` (real tokenizers use
//! `stop: 0`). Here each is an error naming the file and the field before the crate sees the JSON.

use serde_json::Value;

/// The field, and why it would make the crate panic, if one would.
pub(super) fn problem(json: &Value) -> Option<(&'static str, String)> {
    let post = json.get("post_processor").and_then(processor_problem);
    let decoder = json.get("decoder").and_then(decoder_problem);
    post.map(|p| ("post_processor", p)).or(decoder.map(|d| ("decoder", d)))
}

/// Why a decoder (also inside a `Sequence` decoder) would panic on decode, if it would.
/// (Both checks go by shape, not by `type`: the crate reads processors and decoders untagged,
/// so a garbled `type` still deserializes as the variant whose fields match.)
fn decoder_problem(d: &Value) -> Option<String> {
    if let Some(list) = d.get("decoders").and_then(Value::as_array) {
        return list.iter().find_map(decoder_problem);
    }
    match d.get("stop").and_then(Value::as_u64) {
        Some(stop) if stop > 0 => Some(format!("Strip with stop {stop} is not supported (only stop 0)")),
        _ => None,
    }
}

fn processor_problem(p: &Value) -> Option<String> {
    if let Some(list) = p.get("processors").and_then(Value::as_array) {
        return list.iter().find_map(processor_problem);
    }
    let template = ["single", "pair", "special_tokens"].iter().any(|k| p.get(k).is_some());
    template.then(|| template_problem(p)).flatten()
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
        assert_eq!(problem(&template(single, specials)), None);
        assert_eq!(problem(&json!({"post_processor": null})), None);
    }

    #[test]
    fn templates_that_would_panic_are_named() {
        let single = json!([{"SpecialToken": {"id": "<s>", "type_id": 0}}]);
        let keyed_wrong = json!({"*<s>": {"id": "<s>", "ids": [315], "tokens": ["<s>"]}});
        let (field, msg) = problem(&template(single.clone(), keyed_wrong)).unwrap();
        assert_eq!(field, "post_processor");
        assert!(msg.contains("\"<s>\"") && msg.contains("special_tokens"), "{msg}");
        let uneven = json!({"<s>": {"id": "<s>", "ids": [1, 2], "tokens": ["<s>"]}});
        assert!(problem(&template(single, uneven))
            .unwrap()
            .1
            .contains("2 ids but 1 tokens"));
        let garbled = json!({"post_processor": {"type": "Templat\u{1f}eProcessing", "single":
            [{"SpecialToken": {"id": "4s>", "type_id": 0}}], "special_tokens": {}}});
        assert!(
            problem(&garbled).unwrap().1.contains("\"4s>\""),
            "read by shape, not by type"
        );
        let b = json!([{"Sequence": {"id": "B", "type_id": 0}}]);
        assert!(problem(&template(b, json!({}))).unwrap().1.contains("sequence B"));
    }

    #[test]
    fn a_strip_decoder_that_cuts_the_end_is_refused() {
        let strip = |stop: u64| {
            json!({"decoder": {"type": "Sequence", "decoders": [
                {"type": "ByteFallback"}, {"type": "Strip", "content": " ", "start": 1, "stop": stop},
            ]}})
        };
        assert_eq!(problem(&strip(0)), None);
        let (field, msg) = problem(&strip(1)).unwrap();
        assert!(field == "decoder" && msg.contains("stop 1"), "{field}: {msg}");
    }
}
