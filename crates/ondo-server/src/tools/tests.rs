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

// ---- streaming ----

const LLAMA3: &str = "<|python_tag|>{{ x }}";
const MISTRAL: &str = "{{ '[TOOL_CALLS]' }}";

/// Streams `text` in pieces of `size` characters; returns the content, each call's (name,
/// joined arguments, number of argument fragments) and whether the answer called tools.
fn stream_in_pieces(spec: &ToolSpec, text: &str, size: usize) -> (String, Vec<(String, String, usize)>, bool) {
    let mut s = ToolStream::new(spec);
    let chars: Vec<char> = text.chars().collect();
    let mut deltas = vec![];
    for piece in chars.chunks(size) {
        deltas.extend(s.push(&piece.iter().collect::<String>()));
    }
    let (last, called) = s.finish(text);
    deltas.extend(last);
    let (mut content, mut calls) = (String::new(), Vec::<(String, String, usize)>::new());
    for d in deltas {
        if let Some(c) = d.get("content").and_then(Value::as_str) {
            assert!(calls.is_empty(), "content {c:?} after a call in {text:?}");
            content.push_str(c);
        }
        for tc in d.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let i = tc["index"].as_u64().expect("index") as usize;
            if let Some(name) = tc.get("id").and(tc["function"]["name"].as_str()) {
                assert_eq!(i, calls.len(), "calls are numbered in order");
                assert_eq!(tc["function"]["arguments"], "", "the head has empty arguments");
                assert_eq!(tc["type"], "function");
                calls.push((name.to_string(), String::new(), 0));
            } else {
                let call = calls.get_mut(i).expect("arguments after the call's head");
                call.1
                    .push_str(tc["function"]["arguments"].as_str().expect("arguments text"));
                call.2 += 1;
            }
        }
    }
    (content, calls, called)
}

#[test]
fn streamed_calls_send_the_name_first_then_argument_fragments_for_every_format() {
    // (template, answer, calls, whether the arguments stream before the call ends: not when
    // they come before the name, or as a JSON string)
    let cases = [
        (HERMES, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"서울\", \"q\": \"a \\\"}\\\" b\"}}\n</tool_call>", 2, true),
        (HERMES, "<tool_call>\n{\"arguments\": {\"name\": \"x\", \"city\": \"Oslo\"}, \"name\": \"get_weather\"}\n</tool_call>", 1, false),
        (HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}\n</tool_call>", 1, false),
        (LLAMA3, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": [1, 2]}}", 1, true),
        (LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}", 1, true),
        (MISTRAL, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}]", 2, true),
        (MISTRAL, "[TOOL_CALLS]{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", 1, true),
        (PLAIN, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"nested\": {\"a\": [{}]}}}]}", 1, true),
    ];
    for (template, text, n, streams) in cases {
        let spec = spec(json!("auto"), template);
        let whole = parse_output(&spec, text, ids());
        assert_eq!(whole.calls.len(), n, "{text}");
        for size in [1, 3, 1000] {
            let (content, calls, called) = stream_in_pieces(&spec, text, size);
            assert!(called, "{text}");
            assert_eq!(
                content,
                whole.content.clone().unwrap_or_default(),
                "{text} in pieces of {size}"
            );
            assert_eq!(calls.len(), n, "{text} in pieces of {size}");
            for ((name, args, fragments), call) in calls.iter().zip(&whole.calls) {
                assert_eq!(name, &call.name);
                let streamed: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
                let parsed: Value = serde_json::from_str(&call.arguments).expect("parsed arguments");
                assert_eq!(streamed, parsed, "{text} in pieces of {size}");
                if size == 1 {
                    assert_eq!(*fragments > 3, streams, "{fragments} fragments for {args}");
                }
            }
        }
    }
}

#[test]
fn streamed_text_holds_back_only_what_may_start_a_call() {
    let hermes = spec(json!("auto"), HERMES);
    let mut s = ToolStream::new(&hermes);
    assert_eq!(s.push("Use x <tool_c"), vec![json!({"content": "Use x"})]);
    assert_eq!(s.push("hair> here"), vec![json!({"content": " <tool_chair> here"})]);
    assert_eq!(s.finish("Use x <tool_chair> here"), (vec![], false));
    // White space before a call is not content.
    let (content, calls, _) = stream_in_pieces(&hermes, "\n <tool_call>\n{\"name\": \"f\", \"arguments\": {}}", 1);
    assert_eq!((content.as_str(), calls.len()), ("", 1));
    // A fenced call (or a Hermes answer that starts with `{`) is decided at the end.
    let fenced = "Sure.\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```";
    for text in [
        fenced,
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}",
    ] {
        let (content, calls, called) = stream_in_pieces(&hermes, text, 1);
        assert!(called && calls.len() == 1, "{text}");
        assert_eq!(content, if text == fenced { "Sure." } else { "" });
        assert_eq!(calls[0].2, 1, "the fallback's arguments come in one piece");
    }
    // Not a call after all: all of it comes out as content.
    let plain = "Here:\n```python\nprint(1)\n```";
    assert_eq!(stream_in_pieces(&hermes, plain, 2), (plain.to_string(), vec![], false));
    let llama = spec(json!("auto"), LLAMA3);
    assert_eq!(
        stream_in_pieces(&llama, "  Hello <|there", 1),
        ("  Hello <|there".to_string(), vec![], false)
    );
    // The generic form's text answer arrives as content once complete.
    let generic = spec(json!("auto"), PLAIN);
    let (content, calls, called) = stream_in_pieces(&generic, "{\"response\": \"Hi \\\"you\\\"\"}", 1);
    assert_eq!((content.as_str(), calls.len(), called), ("Hi \"you\"", 0, false));
}
