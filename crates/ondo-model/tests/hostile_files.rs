//! Corrupt and hostile model files, table-driven: every case is a copy of a committed tiny
//! fixture (the Qwen2 HF folder, the GPT-2 GGUF) with one thing broken, loaded through
//! `load_model`. Each must fail with an error naming the file and the field or tensor, within
//! 2 s and 256 MiB of heap (counted by this binary's allocator), never a panic. No ../shared.

use ondo_model::load_model;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

// ---- heap accounting: current and peak bytes of this process ----

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        CURRENT.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

const HEAP_LIMIT: usize = 256 << 20;

// ---- fixtures and edits ----

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny-models")
        .join(name)
}

/// A fresh scratch folder for case `k`.
fn scratch(k: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ondo-hostile-{}-{k}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Qwen2 folder copied into `dir`.
fn hf_copy(dir: &Path) -> PathBuf {
    for f in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(fixture("qwen2").join(f), dir.join(f)).unwrap();
    }
    dir.to_path_buf()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The Qwen2 folder with `edit` applied to its config.json.
fn with_config(dir: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let d = hf_copy(dir);
    let mut cfg = read_json(&d.join("config.json"));
    edit(&mut cfg);
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    d
}

/// model.safetensors split into its 8-byte length, header JSON and data.
fn st_parts(dir: &Path) -> (Value, Vec<u8>) {
    let b = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&b[8..8 + n]).unwrap(), b[8 + n..].to_vec())
}

fn st_write(dir: &Path, header: &[u8], data: &[u8], claimed_len: Option<u64>) {
    let mut out = claimed_len.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    std::fs::write(dir.join("model.safetensors"), out).unwrap();
}

/// The Qwen2 folder with `edit` applied to the safetensors header of one tensor.
fn with_tensor(dir: &Path, tensor: &str, edit: impl Fn(&mut Value)) -> PathBuf {
    let d = hf_copy(dir);
    let (mut h, data) = st_parts(&d);
    edit(&mut h[tensor]);
    st_write(&d, h.to_string().as_bytes(), &data, None);
    d
}

/// The first tensor name of the header (data order).
fn st_first_tensor(h: &Value) -> String {
    h.as_object()
        .unwrap()
        .keys()
        .find(|k| *k != "__metadata__")
        .unwrap()
        .clone()
}

/// The GPT-2 GGUF's bytes.
fn gguf_bytes() -> Vec<u8> {
    std::fs::read(fixture("gpt2").join("model.gguf")).unwrap()
}

fn gguf_write(dir: &Path, b: &[u8]) -> PathBuf {
    let p = dir.join("model.gguf");
    std::fs::write(&p, b).unwrap();
    p
}

/// Where the bytes right after GGUF string `s` (length-prefixed) start.
fn after_string(b: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    let at = b
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{s} in the GGUF"));
    at + needle.len()
}

/// Overwrite the u32 value of metadata key `key` (type u32 in the fixture).
fn gguf_u32(dir: &Path, key: &str, v: u32) -> PathBuf {
    let mut b = gguf_bytes();
    let at = after_string(&b, key) + 4; // past the value type
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    gguf_write(dir, &b)
}

/// Overwrite tensor `name`'s info: `f(dims, type, offset)` on its fields in place.
fn gguf_tensor(dir: &Path, name: &str, f: impl Fn(&mut [u8], usize, usize, usize)) -> PathBuf {
    let mut b = gguf_bytes();
    let at = after_string(&b, name);
    let n_dims = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (dims, ty) = (at + 4, at + 4 + 8 * n_dims);
    f(&mut b, dims, ty, ty + 4);
    gguf_write(dir, &b)
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

// ---- the table ----

type Make = Box<dyn Fn(&Path) -> PathBuf>;

/// (what, how to make it, words the error must contain)
fn cases() -> Vec<(&'static str, Make, Vec<&'static str>)> {
    let st = "model.safetensors";
    let cfg = "config.json";
    let gg = "model.gguf";
    let mut v: Vec<(&'static str, Make, Vec<&'static str>)> = vec![
        // safetensors: header
        (
            "empty safetensors",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::write(d.join("model.safetensors"), b"").unwrap();
                d
            }),
            vec![st],
        ),
        (
            "7-byte safetensors",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::write(d.join("model.safetensors"), [1u8; 7]).unwrap();
                d
            }),
            vec![st],
        ),
        (
            "header claims 100 GB",
            Box::new(|d| {
                let d = hf_copy(d);
                let (h, data) = st_parts(&d);
                st_write(&d, h.to_string().as_bytes(), &data, Some(100 << 30));
                d
            }),
            vec![st, "header"],
        ),
        (
            "header claims u64::MAX",
            Box::new(|d| {
                let d = hf_copy(d);
                let (h, data) = st_parts(&d);
                st_write(&d, h.to_string().as_bytes(), &data, Some(u64::MAX));
                d
            }),
            vec![st, "header"],
        ),
        (
            "header not JSON",
            Box::new(|d| {
                let d = hf_copy(d);
                st_write(&d, b"{not json", b"", None);
                d
            }),
            vec![st],
        ),
        (
            "header a JSON list",
            Box::new(|d| {
                let d = hf_copy(d);
                st_write(&d, b"[1,2,3]", b"", None);
                d
            }),
            vec![st],
        ),
        (
            "header not UTF-8",
            Box::new(|d| {
                let d = hf_copy(d);
                st_write(&d, &[0xFF, 0xFE, b'{', b'}'], b"", None);
                d
            }),
            vec![st],
        ),
        (
            "unknown dtype",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["dtype"] = json!("Q9"))
            }),
            vec![st, "Q9"],
        ),
        (
            "offsets past the end",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["data_offsets"] = json!([0, 1u64 << 40]))
            }),
            vec![st, "tensor `"],
        ),
        (
            "offsets reversed",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["data_offsets"] = json!([64, 0]))
            }),
            vec![st, "tensor `"],
        ),
        (
            "offsets not numbers",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["data_offsets"] = json!(["a", "b"]))
            }),
            vec![st, "tensor `"],
        ),
        (
            "shape does not match the bytes",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["shape"] = json!([3, 5]))
            }),
            vec![st, "tensor `"],
        ),
        (
            "2^40 elements",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| {
                    t["shape"] = json!([1u64 << 20, 1u64 << 20]);
                    t["data_offsets"] = json!([0, 1u64 << 41])
                })
            }),
            vec![st, "tensor `"],
        ),
        (
            "shape product overflows",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| {
                    t["shape"] = json!([1u64 << 32, 1u64 << 32, 1u64 << 32])
                })
            }),
            vec![st, "tensor `"],
        ),
        (
            "negative shape",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                with_tensor(d, &st_first_tensor(&h), |t| t["shape"] = json!([-1, 4]))
            }),
            vec![st, "tensor `"],
        ),
        (
            "a weight missing",
            Box::new(|d| {
                let d = hf_copy(d);
                let (mut h, data) = st_parts(&d);
                let t = h.as_object_mut().unwrap().remove("model.norm.weight").unwrap();
                h["model.norm.weight_renamed"] = t;
                st_write(&d, h.to_string().as_bytes(), &data, None);
                d
            }),
            vec!["model.norm.weight"],
        ),
        (
            "a tensor's data overlapping another's",
            Box::new(|d| {
                let h = st_parts(&hf_copy(d)).0;
                let name = h
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, t)| t["data_offsets"][0].as_u64().is_some_and(|s| s > 0))
                    .unwrap()
                    .0
                    .clone();
                with_tensor(d, &name, |t| {
                    let o = t["data_offsets"].as_array().unwrap().clone();
                    let (s, e) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
                    t["data_offsets"] = json!([s - 4, e - 4])
                })
            }),
            vec![st, "tensor `"],
        ),
        (
            "a weight transposed",
            Box::new(|d| {
                with_tensor(d, "model.layers.0.mlp.down_proj.weight", |t| {
                    let s = t["shape"].as_array().unwrap().clone();
                    t["shape"] = json!([s[1], s[0]])
                })
            }),
            vec!["model.layers.0.mlp.down_proj.weight"],
        ),
        (
            "a weight of the wrong rank",
            Box::new(|d| {
                with_tensor(d, "model.layers.0.mlp.down_proj.weight", |t| {
                    let n: u64 = t["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap())
                        .product();
                    t["shape"] = json!([n])
                })
            }),
            vec!["model.layers.0.mlp.down_proj.weight"],
        ),
        // shards
        (
            "index names a missing shard",
            Box::new(|d| {
                let d = hf_copy(d);
                let h = st_parts(&d).0;
                let map: serde_json::Map<String, Value> = h
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "__metadata__")
                    .map(|k| (k.clone(), json!("model-00002-of-00002.safetensors")))
                    .collect();
                std::fs::remove_file(d.join("model.safetensors")).unwrap();
                std::fs::write(
                    d.join("model.safetensors.index.json"),
                    json!({"weight_map": map}).to_string(),
                )
                .unwrap();
                d
            }),
            vec!["model-00002-of-00002.safetensors"],
        ),
        (
            "index not JSON",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::remove_file(d.join("model.safetensors")).unwrap();
                std::fs::write(d.join("model.safetensors.index.json"), "{").unwrap();
                d
            }),
            vec!["model.safetensors.index.json"],
        ),
        (
            "index without weight_map",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::remove_file(d.join("model.safetensors")).unwrap();
                std::fs::write(d.join("model.safetensors.index.json"), "{\"metadata\": {}}").unwrap();
                d
            }),
            vec!["model.safetensors.index.json", "weight_map"],
        ),
        (
            "index points into a shard lacking the tensor",
            Box::new(|d| {
                let d = hf_copy(d);
                let h = st_parts(&d).0;
                let mut map: serde_json::Map<String, Value> = h
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "__metadata__")
                    .map(|k| (k.clone(), json!("model.safetensors")))
                    .collect();
                map.insert("model.layers.9.mlp.up_proj.weight".into(), json!("model.safetensors"));
                std::fs::rename(d.join("model.safetensors"), d.join("model-00001-of-00001.safetensors")).unwrap();
                for v in map.values_mut() {
                    *v = json!("model-00001-of-00001.safetensors");
                }
                std::fs::write(
                    d.join("model.safetensors.index.json"),
                    json!({"weight_map": map}).to_string(),
                )
                .unwrap();
                d
            }),
            vec!["model.safetensors.index.json", "model.layers.9.mlp.up_proj.weight"],
        ),
        // config.json
        (
            "config missing",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::remove_file(d.join("config.json")).unwrap();
                d
            }),
            vec![cfg],
        ),
        (
            "config not JSON",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::write(d.join("config.json"), "{\"hidden_size\": ").unwrap();
                d
            }),
            vec![cfg],
        ),
        (
            "config a JSON list",
            Box::new(|d| {
                let d = hf_copy(d);
                std::fs::write(d.join("config.json"), "[]").unwrap();
                d
            }),
            vec![cfg],
        ),
        (
            "hidden_size 0",
            Box::new(|d| with_config(d, |c| c["hidden_size"] = json!(0))),
            vec![cfg, "hidden_size"],
        ),
        (
            "hidden_size a string",
            Box::new(|d| with_config(d, |c| c["hidden_size"] = json!("64"))),
            vec![cfg, "hidden_size"],
        ),
        (
            "hidden_size 2^40",
            Box::new(|d| with_config(d, |c| c["hidden_size"] = json!(1u64 << 40))),
            vec!["hidden_size"],
        ),
        (
            "num_attention_heads 0",
            Box::new(|d| with_config(d, |c| c["num_attention_heads"] = json!(0))),
            vec![cfg, "num_attention_heads"],
        ),
        (
            "kv heads do not divide heads",
            Box::new(|d| with_config(d, |c| c["num_key_value_heads"] = json!(4))),
            vec![cfg, "num_key_value_heads"],
        ),
        (
            "heads do not divide hidden",
            Box::new(|d| {
                with_config(d, |c| {
                    c["num_attention_heads"] = json!(7);
                    c["num_key_value_heads"] = json!(7);
                    c.as_object_mut().unwrap().remove("head_dim");
                })
            }),
            vec![cfg],
        ),
        (
            "head_dim 2^40",
            Box::new(|d| with_config(d, |c| c["head_dim"] = json!(1u64 << 40))),
            vec!["head_dim"],
        ),
        (
            "vocab_size 2^40",
            Box::new(|d| with_config(d, |c| c["vocab_size"] = json!(1u64 << 40))),
            vec!["vocab_size"],
        ),
        (
            "a billion layers",
            Box::new(|d| with_config(d, |c| c["num_hidden_layers"] = json!(1_000_000_000u64))),
            vec!["num_hidden_layers"],
        ),
        (
            "intermediate_size negative",
            Box::new(|d| with_config(d, |c| c["intermediate_size"] = json!(-5))),
            vec![cfg, "intermediate_size"],
        ),
        (
            "rope_theta a string",
            Box::new(|d| with_config(d, |c| c["rope_parameters"]["rope_theta"] = json!("10000"))),
            vec![cfg, "rope_theta"],
        ),
        (
            "rms_norm_eps negative",
            Box::new(|d| with_config(d, |c| c["rms_norm_eps"] = json!(-1.0))),
            vec![cfg, "rms_norm_eps"],
        ),
        (
            "sliding_window 0",
            Box::new(|d| {
                with_config(d, |c| {
                    c["use_sliding_window"] = json!(true);
                    c["sliding_window"] = json!(0)
                })
            }),
            vec![cfg, "sliding_window"],
        ),
        (
            "partial rotary over head_dim",
            Box::new(|d| with_config(d, |c| c["partial_rotary_factor"] = json!(2.0))),
            vec![cfg],
        ),
        (
            "unknown architecture",
            Box::new(|d| {
                with_config(d, |c| {
                    c["architectures"] = json!(["FooForCausalLM"]);
                    c["model_type"] = json!("foo")
                })
            }),
            vec![cfg, "FooForCausalLM"],
        ),
        // GGUF
        (
            "GGUF tensor offset past the end",
            Box::new(|d| gguf_tensor(d, "output_norm.weight", |b, _, _, off| put_u64(b, off, 1 << 40))),
            vec![gg, "output_norm.weight"],
        ),
        (
            "GGUF dimension 2^40",
            Box::new(|d| gguf_tensor(d, "token_embd.weight", |b, dims, _, _| put_u64(b, dims + 8, 1 << 40))),
            vec![gg, "token_embd.weight"],
        ),
        (
            "GGUF dimension 0",
            Box::new(|d| gguf_tensor(d, "blk.0.ffn_up.weight", |b, dims, _, _| put_u64(b, dims, 0))),
            vec![gg, "blk.0.ffn_up.weight"],
        ),
        (
            "GGUF unknown tensor type",
            Box::new(|d| {
                gguf_tensor(d, "blk.1.attn_qkv.weight", |b, _, ty, _| {
                    b[ty..ty + 4].copy_from_slice(&77u32.to_le_bytes())
                })
            }),
            vec![gg, "blk.1.attn_qkv.weight"],
        ),
        (
            "GGUF string of 2^63 bytes",
            Box::new(|d| {
                let mut b = gguf_bytes();
                let at = after_string(&b, "general.name") + 4;
                put_u64(&mut b, at, 1 << 63);
                gguf_write(d, &b)
            }),
            vec![gg],
        ),
        (
            "GGUF array of 2^62 items",
            Box::new(|d| {
                let mut b = gguf_bytes();
                let at = after_string(&b, "tokenizer.ggml.tokens") + 4 + 4;
                put_u64(&mut b, at, 1 << 62);
                gguf_write(d, &b)
            }),
            vec![gg],
        ),
        (
            "GGUF 2^60 tensors",
            Box::new(|d| {
                let mut b = gguf_bytes();
                put_u64(&mut b, 8, 1 << 60);
                gguf_write(d, &b)
            }),
            vec![gg],
        ),
        (
            "GGUF embedding_length 0",
            Box::new(|d| gguf_u32(d, "gpt2.embedding_length", 0)),
            vec![gg, "embedding_length"],
        ),
        (
            "GGUF a billion blocks",
            Box::new(|d| gguf_u32(d, "gpt2.block_count", 1_000_000_000)),
            vec![gg],
        ),
        (
            "GGUF head_count 0",
            Box::new(|d| gguf_u32(d, "gpt2.attention.head_count", 0)),
            vec![gg, "head_count"],
        ),
        (
            "GGUF head_count not dividing",
            Box::new(|d| gguf_u32(d, "gpt2.attention.head_count", 5)),
            vec![gg, "head_count"],
        ),
        (
            "GGUF unknown architecture",
            Box::new(|d| {
                let mut b = gguf_bytes();
                let at = after_string(&b, "general.architecture") + 4 + 8;
                b[at..at + 4].copy_from_slice(b"gptx");
                gguf_write(d, &b)
            }),
            vec![gg, "gptx"],
        ),
    ];
    // every truncation at a tensor boundary, for both formats
    v.push((
        "safetensors truncated at every tensor boundary",
        Box::new(|_| PathBuf::new()),
        vec![],
    ));
    v.push((
        "GGUF truncated at every tensor boundary",
        Box::new(|_| PathBuf::new()),
        vec![],
    ));
    v
}

/// Loads `path`; the error text (panics if it loads).
fn load_err(path: &Path) -> String {
    match load_model(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

fn check(what: &str, k: usize, run: impl FnOnce(&Path) -> Vec<String>, words: &[&str]) {
    let dir = scratch(k);
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let start = Instant::now();
    let errors = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&dir)))
        .unwrap_or_else(|_| panic!("{what}: panicked"));
    let (took, heap) = (start.elapsed(), PEAK.load(Relaxed) - base);
    for e in &errors {
        for w in words {
            assert!(e.contains(w), "{what}: the error does not name {w:?}: {e}");
        }
    }
    assert!(heap <= HEAP_LIMIT, "{what}: {} MiB of heap", heap >> 20);
    assert!(took <= Duration::from_secs(2), "{what}: took {took:?}");
    eprintln!("{what}: {} ({} KiB, {took:.1?})", errors[0], heap >> 10);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_files_are_clear_errors_in_bounded_time_and_memory() {
    let cases = cases();
    let n = cases.len();
    for (k, (what, make, words)) in cases.into_iter().enumerate() {
        if what.contains("every tensor boundary") {
            continue;
        }
        check(what, k, |d| vec![load_err(&make(d))], &words);
    }
    // truncations: every tensor's start and end (the data section cut short there)
    check(
        "safetensors truncated at every tensor boundary",
        n,
        |d| {
            let d = hf_copy(d);
            let (h, data) = st_parts(&d);
            let header = h.to_string();
            let mut cuts: Vec<usize> = h
                .as_object()
                .unwrap()
                .values()
                .filter_map(|t| t["data_offsets"].as_array())
                .flat_map(|o| o.iter().map(|x| x.as_u64().unwrap() as usize))
                .filter(|&c| c < data.len())
                .collect();
            cuts.sort();
            cuts.dedup();
            cuts.iter()
                .map(|&c| {
                    st_write(&d, header.as_bytes(), &data[..c], None);
                    load_err(&d)
                })
                .collect()
        },
        &["model.safetensors"],
    );
    check(
        "GGUF truncated at every tensor boundary",
        n + 1,
        |d| {
            let b = gguf_bytes();
            let f = ondo_model::gguf::GgufFile::from_vec("x.gguf", b.clone()).unwrap();
            let start = f.data_start() as usize;
            let mut cuts: Vec<usize> = f.tensors().iter().map(|t| start + t.offset as usize).collect();
            cuts.push(start);
            cuts.iter()
                .map(|&c| load_err(&gguf_write(d, &b[..c.min(b.len() - 1)])))
                .collect()
        },
        &["model.gguf"],
    );
    assert!(n >= 40, "{n} cases");
}
