//! The kept inputs of the text fuzz targets (`fuzz/regressions/<target>/`: every crash input
//! and a slice of each corpus), replayed through the same entries the targets call
//! (`ondo_text::fuzz`): each gives Ok or a clean error, without a panic or a hang.

use ondo_testdata::fuzz::replay;
use ondo_text::fuzz::{template, tokenizer_config, tokenizer_json, BaseTokenizer};
use std::path::Path;

/// The tokenizer.json the `tokenizer_config` target pairs every config with.
fn base() -> BaseTokenizer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models/qwen2/tokenizer.json");
    BaseTokenizer::open(&path).expect("the qwen2 tiny model's tokenizer.json")
}

#[test]
fn tokenizer_json_inputs() {
    let (ok, failed) = replay("tokenizer_json", tokenizer_json);
    assert!(ok > 0 && failed > 0, "the slice has both working and broken tokenizers");
}

#[test]
fn tokenizer_config_inputs() {
    let base = base();
    let (ok, failed) = replay("tokenizer_config", move |data| tokenizer_config(data, &base));
    assert!(ok > 0 && failed > 0, "the slice has both working and broken configs");
}

#[test]
fn template_inputs() {
    let (ok, failed) = replay("template", template);
    assert!(
        ok > 0 && failed > 0,
        "the slice has templates that render and ones that fail"
    );
}

/// The harness goes all the way: a real tokenizer.json round-trips the sample text, and a real
/// tokenizer_config.json's template renders the short chat.
#[test]
fn real_files_pass_through_the_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-models/qwen2");
    let tok = std::fs::read(dir.join("tokenizer.json")).unwrap();
    assert!(tokenizer_json(&tok).expect("the qwen2 tokenizer") > 0);
    let config = std::fs::read(dir.join("tokenizer_config.json")).unwrap();
    assert!(tokenizer_config(&config, &base()).expect("the qwen2 tokenizer_config") > 0);
    let chat = b"{% for m in messages %}<{{ m.role }}>{% if m.content is string %}{{ m.content }}\
                 {% else %}{{ m.content[0].text }}{% endif %}{% endfor %}\0{}";
    let rendered = template(chat).expect("a plain template");
    assert_eq!(rendered, "<system>Be brief.<user>Hi!<assistant>Hello.<user>Bye?".len());
}
