//! Chain files without loading a model: defaults and what a step overrides, output names,
//! the inputs `--var` must give, endpoint settings, and errors that name the step and key.

use ondo_chain::file::{sampling_params, BackendSpec};
use ondo_chain::{ChainFile, Error, Template};
use ondo_engine::SamplingParams;
use std::path::Path;
use std::time::Duration;

fn parse(text: &str) -> Result<ChainFile, Error> {
    ChainFile::parse(text, Path::new("/chains/test.toml"))
}

fn error(text: &str) -> String {
    let e = parse(text).expect_err(text);
    assert!(matches!(e, Error::File { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn steps_inherit_defaults_and_override_them() {
    let file = parse(
        r#"
        [defaults]
        endpoint = "http://127.0.0.1:8000/v1"
        model = "smollm2"
        api_key = "sk-1"
        timeout = 2.5
        temperature = 0
        max_tokens = 40

        [[step]]
        output = "president"
        messages = [["system", "Name only."], ["user", "Who leads {country}?"]]

        [[step]]
        template = "{president} changed {topic}:"
        local = "/models/m.gguf"
        max_tokens = 99
        "#,
    )
    .unwrap();
    assert_eq!(file.steps.len(), 2);
    let (a, b) = (&file.steps[0], &file.steps[1]);
    assert_eq!((a.output_key.as_str(), b.output_key.as_str()), ("president", "step2"));
    assert!(matches!(&a.template, Template::Chat(c) if c.variables() == ["country"]));
    assert!(matches!(&b.template, Template::Text(t) if t.template() == "{president} changed {topic}:"));
    let BackendSpec::Endpoint(e) = &a.backend else {
        panic!("{:?}", a.backend)
    };
    assert_eq!(
        (e.base_url.as_str(), e.model.as_str(), e.api_key.as_deref()),
        ("http://127.0.0.1:8000/v1", "smollm2", Some("sk-1"))
    );
    assert_eq!(e.timeout, Duration::from_millis(2500));
    // A step with its own backend drops the default one's settings (model, key, timeout).
    assert_eq!(b.backend, BackendSpec::Local("/models/m.gguf".into()));
    assert_eq!(
        (a.options["max_tokens"].as_i64(), b.options["max_tokens"].as_i64()),
        (Some(40), Some(99))
    );
    assert_eq!(b.options["temperature"].as_i64(), Some(0));
    // Variables no step writes are the inputs, in order of first use.
    assert_eq!(file.input_variables(), ["country", "topic"]);
}

#[test]
fn sampling_options_go_through_sampling_params() {
    let file = parse("[[step]]\ntemplate = \"x\"\nlocal = \"m\"\ntop_k = 5\nstop = [\"\\n\"]\nseed = 3\n").unwrap();
    let p = sampling_params(SamplingParams::default(), &file.steps[0].options).unwrap();
    assert_eq!((p.top_k, p.stop.clone(), p.seed), (5, vec!["\n".to_string()], Some(3)));
    assert_eq!(
        p.max_tokens,
        Some(256),
        "vLLM's 16-token default is raised for chain steps"
    );
    let base = SamplingParams {
        max_tokens: Some(77),
        temperature: 0.3,
        ..Default::default()
    };
    let p = sampling_params(base, &file.steps[0].options).unwrap();
    assert_eq!(
        (p.max_tokens, p.temperature),
        (Some(77), 0.3),
        "a model's own defaults are kept"
    );
}

#[test]
fn mistakes_name_the_file_the_step_and_the_key() {
    for (text, says) in [
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\ntemprature = 0\n", "step 1: unknown key \"temprature\""),
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\nmax_tokens = -1\n", "step 1: sampling options: max_tokens must be at least 1, got -1"),
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\ntemperature = \"hot\"\n", "step 1: sampling options: invalid type: string \"hot\""),
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\n[[step]]\ntemplate = \"b\"\nlocal = \"m\"\nmin_p = 3.0\n", "step 2: invalid sampling parameter: min_p must be in [0, 1], got 3.0"),
        ("[[step]]\ntemplate = \"a\"\nmessages = [[\"user\", \"b\"]]\nlocal = \"m\"\n", "step 1: give either template or messages"),
        ("[[step]]\nmessages = [[\"user\"]]\nlocal = \"m\"\n", "step 1: messages must be a list of [role, template] pairs"),
        ("[[step]]\nmessages = [[\"robot\", \"x\"]]\nlocal = \"m\"\n", "step 1: unknown chat role \"robot\""),
        ("[[step]]\ntemplate = \"{a\"\nlocal = \"m\"\n", "step 1: bad template \"{a\""),
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\nendpoint = \"http://x/v1\"\n", "step 1: give either local or endpoint"),
        ("[[step]]\ntemplate = \"a\"\nlocal = \"m\"\nmodel = \"x\"\n", "step 1: model is for an endpoint, not a local model"),
        ("[[step]]\ntemplate = \"a\"\nendpoint = \"http://x/v1\"\n", "step 1: an endpoint needs model"),
        ("[[step]]\ntemplate = \"a\"\nendpoint = \"http://x/v1\"\nmodel = \"m\"\napi_key_env = \"ONDO_CHAIN_TEST_UNSET_KEY\"\n", "api_key_env: $ONDO_CHAIN_TEST_UNSET_KEY is not set"),
        ("[[step]]\ntemplate = \"a\"\nendpoint = \"http://x/v1\"\nmodel = \"m\"\ntimeout = -1\n", "timeout must be positive seconds"),
        ("[defaults]\ntemplate = \"a\"\n", "\"template\" belongs in a [[step]]"),
        ("title = \"x\"\n[[step]]\ntemplate = \"a\"\nlocal = \"m\"\n", "unknown top-level key \"title\""),
        ("[defaults]\nlocal = \"m\"\n", "no steps"),
        ("[[step]\n", "TOML parse error"),
    ] {
        let e = error(text);
        assert!(e.starts_with("/chains/test.toml: "), "{e}");
        assert!(e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn model_paths_resolve_against_the_file_and_home() {
    let dir = std::env::temp_dir().join(format!("ondo-chain-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("beside.gguf"), b"").unwrap();
    let file = ChainFile::parse(
        "[[step]]\ntemplate = \"a\"\nlocal = \"beside.gguf\"\n[[step]]\ntemplate = \"b\"\nlocal = \"org/name\"\n[[step]]\ntemplate = \"c\"\nlocal = \"~/m.gguf\"\n",
        &dir.join("chain.toml"),
    )
    .unwrap();
    let home = std::env::var("HOME").unwrap();
    let want = [
        dir.join("beside.gguf").display().to_string(),
        "org/name".to_string(),
        format!("{home}/m.gguf"),
    ];
    let got: Vec<String> = file
        .steps
        .iter()
        .map(|s| match &s.backend {
            BackendSpec::Local(m) => m.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn structured_outputs_is_a_step_option_and_reaches_an_endpoint() {
    let text = "[defaults]\nendpoint = \"http://x/v1\"\nmodel = \"m\"\n[[step]]\ntemplate = \"a\"\n\
                structured_outputs = { choice = [\"yes\", \"no\"] }\n";
    let file = parse(text).unwrap();
    let p = sampling_params(SamplingParams::default(), &file.steps[0].options).unwrap();
    let choice = p.structured_outputs.as_ref().and_then(|s| s.choice.clone());
    assert_eq!(choice, Some(vec!["yes".to_string(), "no".to_string()]));
    let BackendSpec::Endpoint(endpoint) = &file.steps[0].backend else {
        panic!("an endpoint step")
    };
    let body = endpoint.body(&ondo_chain::PromptValue::Text("a".into()), &p);
    assert_eq!(body["structured_outputs"]["choice"], serde_json::json!(["yes", "no"]));
    // A malformed constraint is named like any other sampling option.
    let bad = "[[step]]\ntemplate = \"a\"\nlocal = \"m\"\nstructured_outputs = { choise = [\"a\"] }\n";
    assert!(
        error(bad).contains("step 1: sampling options: unknown field `choise`"),
        "{}",
        error(bad)
    );
    let two = "[[step]]\ntemplate = \"a\"\nlocal = \"m\"\nstructured_outputs = { regex = \"a\", choice = [\"a\"] }\n";
    assert!(
        error(two).contains("structured_outputs must set only one of"),
        "{}",
        error(two)
    );
}
