use super::*;
use serde_json::json;

const HERMES: &str = "{% for tool in tools %}{{ tool | tojson }}{% endfor %}<tool_call>";
const PLAIN: &str = "{% for m in messages %}{{ m.content }}{% endfor %}";

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn spec(choice: Value, template: &str) -> ToolSpec {
    let f = ToolFields {
        tools: Some(weather()),
        tool_choice: Some(choice),
        parallel_tool_calls: None,
    };
    f.spec(template).expect("valid").expect("tools in use")
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("call_{n}")
    }
}

#[test]
fn formats_follow_the_template() {
    assert_eq!(Format::of_template(HERMES), Format::Hermes);
    assert_eq!(Format::of_template("{{ '[TOOL_CALLS]' }}"), Format::Mistral);
    assert_eq!(Format::of_template("<|python_tag|>{{ x }}"), Format::Llama3Json);
    assert_eq!(Format::of_template(PLAIN), Format::Generic);
}

#[test]
fn bad_tools_and_choices_name_the_field() {
    let cases = [
        (json!({"tools": "x"}), "tools"),
        (json!({"tools": [{"type": "function"}]}), "tools.[0].function"),
        (
            json!({"tools": [{"type": "code", "function": {"name": "a"}}]}),
            "tools.[0].type",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a b"}}]}),
            "tools.[0].function.name",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "a", "parameters": 3}}]}),
            "tools.[0].function.parameters",
        ),
        (json!({"tools": weather(), "tool_choice": "always"}), "tool_choice"),
        (
            json!({"tools": weather(), "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
    ];
    for (body, param) in cases {
        let f: ToolFields = serde_json::from_value(body.clone()).expect("fields");
        let e = f.spec(HERMES).expect_err(&body.to_string());
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
    }
    let none: ToolFields = serde_json::from_value(json!({"tools": weather(), "tool_choice": "none"})).expect("f");
    assert!(none.spec(HERMES).expect("valid").is_none());
}

#[test]
fn hermes_calls_and_content() {
    let s = spec(json!("auto"), HERMES);
    let text =
        "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Seoul\"}}\n</tool_call>";
    let p = parse_output(&s, text, ids());
    assert_eq!(p.content.as_deref(), Some("Let me check."));
    assert_eq!(p.calls.len(), 1);
    assert_eq!(p.calls[0].name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&p.calls[0].arguments).expect("json"),
        json!({"city": "Seoul"})
    );
    let plain = parse_output(&s, "It is sunny.", ids());
    assert_eq!((plain.content.as_deref(), plain.calls.len()), (Some("It is sunny."), 0));
}

#[test]
fn fenced_json_counts_only_for_known_tools_with_valid_arguments() {
    let s = spec(json!("auto"), HERMES);
    let good = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```";
    assert_eq!(parse_output(&s, good, ids()).calls.len(), 1);
    let unknown = "```json\n{\"name\": \"launch\", \"arguments\": {\"city\": \"Paris\"}}\n```";
    assert!(parse_output(&s, unknown, ids()).calls.is_empty());
    let invalid = "```json\n{\"name\": \"get_weather\", \"arguments\": {\"town\": 1}}\n```";
    let p = parse_output(&s, invalid, ids());
    assert!(p.calls.is_empty());
    assert_eq!(p.content.as_deref(), Some(invalid));
}

#[test]
fn llama_mistral_and_generic_forms() {
    let mut s = spec(json!("auto"), HERMES);
    s.format = Format::Llama3Json;
    let p = parse_output(
        &s,
        "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}",
        ids(),
    );
    assert_eq!(p.calls[0].arguments, "{\"city\":\"Rome\"}");
    s.format = Format::Mistral;
    let p = parse_output(
        &s,
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}]",
        ids(),
    );
    assert_eq!(p.calls[0].name, "get_weather");
    s.format = Format::Generic;
    let p = parse_output(&s, "{\"response\": \"Hello\"}", ids());
    assert_eq!((p.content.as_deref(), p.calls.len()), (Some("Hello"), 0));
    let p = parse_output(
        &s,
        "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lima\"}}]}",
        ids(),
    );
    assert_eq!((p.content, p.calls[0].id.as_str()), (None, "call_1"));
}

#[test]
fn constraints_only_where_a_call_is_forced_or_generic() {
    assert!(spec(json!("auto"), HERMES).constraint(None).is_none());
    let g = spec(json!("required"), HERMES)
        .constraint(None)
        .expect("forced")
        .grammar
        .expect("lark");
    assert!(g.starts_with("start: tc (\"\\n\" tc)*"), "{g}");
    assert!(g.contains("\"const\":\"get_weather\""), "{g}");
    let generic = spec(json!("auto"), PLAIN);
    assert!(generic.template_tools().is_none());
    let schema = generic.constraint(None).expect("generic").json.expect("schema");
    assert!(schema["anyOf"].is_array(), "{schema}");
    let msgs = generic.messages(vec![json!({"role": "user", "content": "hi"})]);
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs[0]["content"].as_str().expect("text").contains("get_weather"));
}

#[test]
fn assistant_arguments_become_objects_for_the_template() {
    let s = spec(json!("auto"), HERMES);
    let m = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Seoul\"}"}}]});
    let out = s.messages(vec![m]);
    assert_eq!(
        out[0]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Seoul"})
    );
}

#[test]
fn streamed_calls_send_the_name_first() {
    let calls = vec![ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: "{\"city\":\"Seoul\"}".into(),
    }];
    let d = tool_call_deltas(&calls);
    assert_eq!(d[0]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(d[0]["tool_calls"][0]["id"], "call_1");
    assert_eq!(d[1]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Seoul\"}");
    assert!(d[1]["tool_calls"][0].get("id").is_none());
}
