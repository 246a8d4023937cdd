//! Prompt templates: variables found at parse time, `{{`/`}}` escapes, errors that name the
//! missing, extra or malformed variable, partials, chat templates, and Korean text.

use ondo_chain::{vars, ChatPromptTemplate, Error, Message, PromptTemplate, PromptValue, Role, Runnable};

fn t(s: &str) -> PromptTemplate {
    PromptTemplate::from_template(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn variables_are_found_at_parse_time_in_order_of_first_use() {
    let p = t("Who is the {office} of {country}? Name the {office}, then {country}'s capital.");
    assert_eq!(p.variables(), ["office", "country"]);
    assert!(t("no variables here").variables().is_empty());
    assert_eq!(t("{a}{b}{_c1}").variables(), ["a", "b", "_c1"]);
    assert_eq!(
        p.template(),
        "Who is the {office} of {country}? Name the {office}, then {country}'s capital."
    );
}

#[test]
fn format_fills_every_use_of_a_variable() {
    let p = t("{x} and {y}, {x} again");
    assert_eq!(
        p.format(&vars([("x", "1"), ("y", "two")])).unwrap(),
        "1 and two, 1 again"
    );
    // A value that looks like a template is inserted as is, never parsed.
    assert_eq!(
        p.format(&vars([("x", "{y}"), ("y", "}}")])).unwrap(),
        "{y} and }}, {y} again"
    );
}

#[test]
fn doubled_braces_are_literal_braces_not_variables() {
    let p = t("JSON: {{\"name\": \"{name}\"}} and {{not_a_var}} {{{inner}}}");
    assert_eq!(p.variables(), ["name", "inner"]);
    assert_eq!(
        p.format(&vars([("name", "Ada"), ("inner", "v")])).unwrap(),
        "JSON: {\"name\": \"Ada\"} and {not_a_var} {v}"
    );
    assert_eq!(t("}}{{").format(&vars::<&str, &str>([])).unwrap(), "}{");
}

#[test]
fn malformed_templates_are_errors_that_say_where() {
    for (template, says) in [
        ("Hello {name", "'{' at character 6 is not closed"),
        ("Hello name}", "single '}' at character 10"),
        ("a {} b", "empty braces need a variable name"),
        ("{x:>10}", "format specs and conversions are not supported"),
        ("{x!r}", "format specs and conversions are not supported"),
        ("{user.name}", "attribute and index access are not supported"),
        ("{items[0]}", "attribute and index access are not supported"),
        ("{1st}", "not starting with a digit"),
        ("{two words}", "letters, digits and '_'"),
        ("{a{b}}", "'{' at character 0 is not closed"),
    ] {
        let e = PromptTemplate::from_template(template).expect_err(template);
        assert!(matches!(e, Error::Syntax { .. }), "{template}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(says), "{template}: {msg}");
        assert!(
            msg.contains(&format!("{template:?}")),
            "the error shows the template: {msg}"
        );
    }
}

#[test]
fn missing_and_extra_variables_are_named() {
    let p = t("Who is the president of {country} in {year}?");
    let e = p.format(&vars([("country", "France")])).unwrap_err();
    let Error::MissingVariable { name, expected } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (name.as_str(), expected.as_slice()),
        ("year", &["country".to_string(), "year".to_string()][..])
    );
    assert_eq!(
        e.to_string(),
        r#"missing variable "year": the template uses "country", "year""#
    );

    let e = p
        .format(&vars([("country", "France"), ("year", "2020"), ("contry", "typo")]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::ExtraVariable { name, .. } if name == "contry"),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(r#"unexpected variable "contry""#), "{e}");
    // The runnable form checks the same way.
    assert!(
        matches!(p.invoke(vars([("year", "1999")])), Err(Error::MissingVariable { name, .. }) if name == "country")
    );
}

#[test]
fn partials_bind_some_variables_now_and_the_rest_later() {
    let p = t("{greeting}, {name}! Today is {day}.");
    let q = p.partial([("greeting", "Hi")]).unwrap();
    assert_eq!(q.variables(), ["name", "day"]);
    assert_eq!(p.variables(), ["greeting", "name", "day"], "the original is unchanged");
    let r = q.partial([("day", "Monday")]).unwrap();
    assert_eq!(r.format(&vars([("name", "Bo")])).unwrap(), "Hi, Bo! Today is Monday.");
    // A bound variable is no longer an input, and binding an unknown one is an error.
    assert!(
        matches!(r.format(&vars([("name", "Bo"), ("day", "x")])), Err(Error::ExtraVariable { name, .. }) if name == "day")
    );
    assert!(matches!(p.partial([("nmae", "x")]), Err(Error::ExtraVariable { name, .. }) if name == "nmae"));
    assert!(matches!(q.partial([("greeting", "again")]), Err(Error::ExtraVariable { name, .. }) if name == "greeting"));
}

#[test]
fn korean_text_and_korean_variable_names() {
    let p = t("{나라}의 대통령은 누구입니까? {{답}}: {답변_형식}으로 답하세요.");
    assert_eq!(p.variables(), ["나라", "답변_형식"]);
    let out = p
        .format(&vars([("나라", "대한민국"), ("답변_형식", "한 문장")]))
        .unwrap();
    assert_eq!(out, "대한민국의 대통령은 누구입니까? {답}: 한 문장으로 답하세요.");
    // Positions in errors count characters, not bytes.
    let e = PromptTemplate::from_template("안녕 {이름").unwrap_err().to_string();
    assert!(e.contains("'{' at character 3 is not closed"), "{e}");
    let e = t("{이름}님").format(&vars::<&str, &str>([])).unwrap_err().to_string();
    assert!(e.contains(r#"missing variable "이름""#), "{e}");
}

#[test]
fn chat_templates_fill_each_message_and_check_roles() {
    let c = ChatPromptTemplate::from_messages([
        ("system", "You answer in {language}."),
        ("human", "Who is the president of {country}?"),
        ("ai", "In {language}: "),
    ])
    .unwrap();
    assert_eq!(c.variables(), ["language", "country"]);
    let msgs = c
        .format_messages(&vars([("language", "한국어"), ("country", "France")]))
        .unwrap();
    let want = [
        (Role::System, "You answer in 한국어."),
        (Role::User, "Who is the president of France?"),
        (Role::Assistant, "In 한국어: "),
    ];
    let got: Vec<(Role, &str)> = msgs.iter().map(|m| (m.role, m.content.as_str())).collect();
    assert_eq!(got, want);
    assert_eq!(
        msgs[1].to_json(),
        serde_json::json!({"role": "user", "content": "Who is the president of France?"})
    );

    let partial = c.partial([("language", "English")]).unwrap();
    assert_eq!(partial.variables(), ["country"]);
    let PromptValue::Chat(m) = partial.invoke(vars([("country", "Chile")])).unwrap() else {
        panic!("not chat")
    };
    assert_eq!(
        m[0],
        Message {
            role: Role::System,
            content: "You answer in English.".into()
        }
    );

    assert!(
        matches!(c.format_messages(&vars([("language", "x")])), Err(Error::MissingVariable { name, .. }) if name == "country")
    );
    let e = ChatPromptTemplate::from_messages([("wizard", "hi")]).unwrap_err();
    assert!(e.to_string().contains(r#"unknown chat role "wizard""#), "{e}");
    let e = ChatPromptTemplate::from_messages([("user", "{oops")]).unwrap_err();
    assert!(matches!(e, Error::Syntax { .. }), "{e:?}");
}

#[test]
fn a_prompt_value_reads_as_text() {
    let p = t("Q: {q}").invoke(vars([("q", "why?")])).unwrap();
    assert_eq!(p, PromptValue::Text("Q: why?".into()));
    assert_eq!(p.to_text(), "Q: why?");
    let c = ChatPromptTemplate::from_messages([("system", "be brief"), ("user", "{q}")]).unwrap();
    assert_eq!(
        c.invoke(vars([("q", "hi")])).unwrap().to_text(),
        "system: be brief\nuser: hi"
    );
}
