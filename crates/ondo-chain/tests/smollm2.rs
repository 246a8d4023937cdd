//! Chains on SmolLM2-135M-Instruct (Q4_1 GGUF), greedy: `prompt | llm` against `Llm::generate`,
//! streams against invokes, a batch of 8 against 8 invokes, a two-step SimpleSequentialChain
//! whose second prompt holds the first step's text, and the same chain through `OpenAiEndpoint`
//! against the server `ondo serve` runs (`ondo_server::Server`, started here on 127.0.0.1)
//! giving the same text as the local model. Skips without the model, fails without it under CI.

use ondo_chain::{
    vars, ChatPromptTemplate, LlmChain, Local, Model, OpenAiEndpoint, PromptTemplate, PromptValue, Runnable,
    SimpleSequentialChain, StrOutputParser,
};
use ondo_engine::{Llm, LoadOptions, Prompt, SamplingParams};
use std::sync::OnceLock;

const MODEL: &str = "smollm2-135m-instruct-q4_1.gguf";

fn load() -> Option<Llm> {
    let path = ondo_testdata::fetched(MODEL)?;
    let opts = LoadOptions {
        offline: true,
        ..Default::default()
    };
    Some(Llm::load(path.to_str().expect("utf-8 path"), &opts).expect("load SmolLM2"))
}

/// One model for the whole test binary (its tests share the engine, as a program would).
fn llm() -> Option<Llm> {
    ondo_testdata::fetched(MODEL)?; // each skipping test says why
    static LLM: OnceLock<Option<Llm>> = OnceLock::new();
    LLM.get_or_init(load).clone()
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        temperature: 0.0,
        max_tokens: Some(max_tokens),
        ..Default::default()
    }
}

fn local(llm: &Llm, params: SamplingParams) -> Model {
    Model::new(Local(llm.clone()), params).expect("valid params")
}

#[test]
fn prompt_pipe_llm_invoke_equals_llm_generate() {
    let Some(llm) = llm() else { return };
    let params = greedy(24);
    let prompt = PromptTemplate::from_template("The capital of {country} is").unwrap();
    let chain = prompt.clone() | local(&llm, params.clone());
    let input = vars([("country", "France")]);
    let got = chain.invoke(input.clone()).unwrap();

    let rendered = prompt.format(&input).unwrap();
    assert_eq!(rendered, "The capital of France is");
    let direct = llm.generate(&[Prompt::Text(rendered)], &params).unwrap();
    assert!(!got.is_empty());
    assert_eq!(got, direct[0].outputs[0].text);

    // A chat prompt goes through the model's chat template, as `Llm::chat` does.
    let chat = ChatPromptTemplate::from_messages([("user", "What is the capital of {country}?")]).unwrap();
    let got = (chat | local(&llm, params.clone())).invoke(input).unwrap();
    let messages = [serde_json::json!({"role": "user", "content": "What is the capital of France?"})];
    let direct = llm.chat(&messages, &params, &mut |_, _| true).unwrap();
    assert!(!got.is_empty());
    assert_eq!(got, direct.outputs[0].text);
}

#[test]
fn stream_deltas_join_to_the_invoke_text() {
    let Some(llm) = llm() else { return };
    let prompt = PromptTemplate::from_template("Once upon a time, {name} the {animal}").unwrap();
    let chain = prompt | local(&llm, greedy(32)) | StrOutputParser;
    let input = vars([("name", "Mia"), ("animal", "fox")]);
    let deltas: Vec<String> = chain.stream(input.clone()).collect::<Result<_, _>>().unwrap();
    assert!(deltas.len() > 1, "the text came in one piece, not streamed: {deltas:?}");
    assert_eq!(deltas.concat(), chain.invoke(input).unwrap());

    let korean = PromptTemplate::from_template("{나라}의 수도는").unwrap() | local(&llm, greedy(24));
    let input = vars([("나라", "대한민국")]);
    let deltas: Vec<String> = korean.stream(input.clone()).collect::<Result<_, _>>().unwrap();
    assert_eq!(deltas.concat(), korean.invoke(input).unwrap());
}

#[test]
fn a_batch_of_eight_equals_eight_invokes() {
    let Some(llm) = llm() else { return };
    let chain = PromptTemplate::from_template("Q: What is {country} known for?\nA:").unwrap() | local(&llm, greedy(20));
    let countries = ["France", "Japan", "Brazil", "Kenya", "Norway", "Korea", "Peru", "Egypt"];
    let inputs: Vec<_> = countries.iter().map(|c| vars([("country", *c)])).collect();
    let batch = chain.batch(inputs.clone()).unwrap();
    let one_by_one: Vec<String> = inputs.into_iter().map(|i| chain.invoke(i).unwrap()).collect();
    assert_eq!(batch.len(), 8);
    assert_eq!(batch, one_by_one);
    let distinct: std::collections::BTreeSet<&String> = batch.iter().collect();
    assert!(distinct.len() > 1, "eight prompts gave one text: {batch:?}");
}

/// Step 1 names a president; step 2 asks what that president changed.
fn president_chain(model: &Model) -> SimpleSequentialChain {
    let who = ChatPromptTemplate::from_messages([
        ("system", "Answer with the name only."),
        ("user", "Who was the first president of {country}?"),
    ])
    .unwrap();
    let changes = PromptTemplate::from_template("Changes that {president} made as president:\n1.").unwrap();
    SimpleSequentialChain::new(vec![
        LlmChain::new(who, model.clone()),
        LlmChain::new(changes, model.clone()),
    ])
    .unwrap()
}

#[test]
fn a_two_step_chain_feeds_step_one_into_step_two() {
    let Some(llm) = llm() else { return };
    let model = local(&llm, greedy(16));
    let chain = president_chain(&model);
    let records = chain.run("the United States").unwrap();
    assert_eq!(records.len(), 2);
    let first = &records[0].text;
    assert!(!first.trim().is_empty(), "step 1 said nothing");
    // Step 1 on its own says the same.
    let alone = LlmChain::new(chain.steps()[0].prompt.clone(), model.clone());
    assert_eq!(&alone.invoke(vars([("country", "the United States")])).unwrap(), first);
    let PromptValue::Text(second) = &records[1].prompt else {
        panic!("step 2 is a text prompt")
    };
    assert!(
        second.contains(first.as_str()),
        "step 2's prompt {second:?} lacks step 1's output {first:?}"
    );
    assert_eq!(second, &format!("Changes that {first} made as president:\n1."));
    assert!(!records[1].text.is_empty());
    assert_eq!(chain.invoke("the United States".into()).unwrap(), records[1].text);

    let mut streamed = String::new();
    let again = chain.run_streaming("the United States", &mut |d| {
        streamed.push_str(d);
        true
    });
    assert_eq!(again.unwrap(), records);
    assert_eq!(streamed, records[1].text);
}

fn start_server(llm: Llm) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let config = ondo_server::Config {
                host: "127.0.0.1".into(),
                port: 0,
                model_name: "smollm2".into(),
                ..Default::default()
            };
            let server = ondo_server::Server::bind(config).await.expect("bind");
            server.state().install(llm);
            tx.send(server.local_addr()).expect("report address");
            server.run(std::future::pending()).await.expect("serve");
        });
    });
    format!("http://{}/v1", rx.recv().expect("server started"))
}

#[test]
fn the_same_chain_over_ondo_serve_gives_the_local_text() {
    let Some(llm) = llm() else { return };
    // The server gets its own engine, as a separate `ondo serve` would have.
    let base = start_server(load().expect("model present"));
    let params = greedy(16);
    let remote = Model::new(OpenAiEndpoint::new(&base, "smollm2"), params.clone()).unwrap();
    let here = president_chain(&local(&llm, params));
    let there = president_chain(&remote);
    for country in ["the United States", "France"] {
        let want = here.run(country).unwrap();
        let got = there.run(country).unwrap();
        assert!(!want[1].text.is_empty());
        assert_eq!(got, want, "{country}: prompts and texts over HTTP differ from local");
    }
    let streamed: Vec<String> = there.stream("France".into()).collect::<Result<_, _>>().unwrap();
    assert_eq!(streamed.concat(), here.invoke("France".into()).unwrap());
    let inputs = vec!["Chile".to_string(), "Ghana".to_string(), "Poland".to_string()];
    assert_eq!(there.batch(inputs.clone()).unwrap(), here.batch(inputs).unwrap());
}

#[test]
fn a_chain_file_with_structured_outputs_keeps_each_step_in_its_constraint() {
    let Some(path) = ondo_testdata::fetched(MODEL) else {
        return;
    };
    let text = format!(
        "[defaults]\nlocal = {:?}\ntemperature = 0.8\nseed = 7\nmax_tokens = 12\n\n\
         [[step]]\noutput = \"color\"\ntemplate = \"Name a color of {{thing}}:\"\n\
         structured_outputs = {{ choice = [\"red\", \"green\", \"blue\"] }}\n\n\
         [[step]]\ntemplate = \"Three digits for {{color}}:\"\nstructured_outputs = {{ regex = \"[0-9]{{3}}\" }}\n",
        path.to_str().expect("utf-8 path")
    );
    let file = ondo_chain::ChainFile::parse(&text, std::path::Path::new("/chains/colors.toml")).unwrap();
    let opts = LoadOptions {
        offline: true,
        ..Default::default()
    };
    let chain = file.build(&opts).unwrap();
    for thing in ["the sky", "grass", "a fire truck"] {
        let records = chain.run(vars([("thing", thing)])).unwrap();
        let color = &records[0].text;
        assert!(
            ["red", "green", "blue"].contains(&color.as_str()),
            "step 1 said {color:?}"
        );
        let digits = &records[1].text;
        assert!(
            digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()),
            "step 2 said {digits:?}"
        );
        let PromptValue::Text(second) = &records[1].prompt else {
            panic!("step 2 is a text prompt")
        };
        assert_eq!(second, &format!("Three digits for {color}:"));
    }
}
