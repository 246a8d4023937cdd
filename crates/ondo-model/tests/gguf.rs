//! GGUF reader: real files from ../shared and the fetched models, then bad input built in memory
//! by a small writer, then a deterministic mutation fuzz over a small valid file.

use ondo_kernels::DType;
use ondo_model::gguf::{Array, GgufError, GgufFile, Value};
use std::collections::BTreeMap;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Real files.

#[test]
fn stories260k_metadata_and_tensors() {
    let Some(path) = ondo_testdata::shared("models/stories260K/stories260K.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), Some("llama"));
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(5));
    assert_eq!(f.get_u32("llama.embedding_length").unwrap(), Some(64));
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), Some(4));
    assert_eq!(f.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(), Some(1e-5));
    assert_eq!(f.get_u32("no.such.key").unwrap(), None);
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 512);
    assert_eq!(&tokens[..3], ["<unk>", "<s>", "</s>"]);
    assert_eq!(f.get_f32_array("tokenizer.ggml.scores").unwrap().unwrap().len(), 512);
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type").unwrap().unwrap()[..2],
        [2, 3]
    );
    assert!(f.warnings().is_empty());

    // 3 global tensors + 9 per layer, all F32, contiguous in the data section.
    assert_eq!(f.tensors().len(), 3 + 5 * 9);
    assert!(f.tensors().iter().all(|t| t.dtype == Some(DType::F32)));
    let shape = |name: &str| f.tensor(name).unwrap().dims.clone();
    assert_eq!(shape("token_embd.weight"), [64, 512]);
    assert_eq!(shape("output_norm.weight"), [64]);
    assert_eq!(shape("blk.0.attn_k.weight"), [64, 32]);
    assert_eq!(shape("blk.4.ffn_down.weight"), [172, 64]);
    assert!(f.tensor("blk.5.attn_q.weight").is_none());
    let file_len = std::fs::metadata(&path).unwrap().len();
    let last = f
        .tensors()
        .iter()
        .map(|t| t.start + t.size_bytes.unwrap())
        .max()
        .unwrap();
    assert!(
        last <= file_len && file_len - last < 32,
        "data ends at {last}, file at {file_len}"
    );

    let embd = f.weight("token_embd.weight").unwrap();
    assert_eq!((embd.rows(), embd.cols(), embd.dtype()), (512, 64, DType::F32));
    assert!(embd.to_f32().iter().all(|v| v.is_finite()));
    assert!(embd.to_f32().iter().any(|&v| v != 0.0));
    let norm = f.weight("output_norm.weight").unwrap();
    assert_eq!((norm.rows(), norm.cols()), (1, 64));
    let err = f.weight("nope").unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("stories260K.gguf"), "{err}");
}

#[test]
fn weight_bytes_are_the_file_bytes() {
    let Some(path) = ondo_testdata::shared("models/stories260K/stories260K.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    let raw = std::fs::read(&path).unwrap();
    let info = f.tensor("blk.2.attn_v.weight").unwrap();
    let bytes = f.bytes(info).unwrap();
    let start = info.start as usize;
    assert_eq!(bytes.as_slice(), &raw[start..start + 64 * 32 * 4]);
    assert_eq!(f.data_start() % 32, 0);
}

#[test]
fn vocab_only_files_have_arrays_and_no_tensors() {
    for (name, n_vocab, merges) in [
        ("ggml-vocab-llama-spm.gguf", 32000, false),
        ("ggml-vocab-phi-3.gguf", 32064, false),
        ("ggml-vocab-gpt-2.gguf", 50257, true),
    ] {
        let Some(path) = ondo_testdata::shared(&format!("models/tokenizer-tests/{name}")) else {
            return;
        };
        let f = GgufFile::open(&path).unwrap();
        assert!(f.tensors().is_empty(), "{name}");
        let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
        assert_eq!(tokens.len(), n_vocab, "{name}");
        assert_eq!(
            f.get_i32_array("tokenizer.ggml.token_type").unwrap().unwrap().len(),
            n_vocab
        );
        if merges {
            let merges = f.get_str_array("tokenizer.ggml.merges").unwrap().unwrap();
            assert_eq!(merges.len(), 50000);
            assert_eq!(merges[0], "Ġ t");
            assert_eq!(tokens[0], "!");
        } else {
            assert_eq!(
                f.get_f32_array("tokenizer.ggml.scores").unwrap().unwrap().len(),
                n_vocab
            );
            assert_eq!(f.get_bool("tokenizer.ggml.add_bos_token").unwrap(), Some(true));
        }
    }
}

fn type_counts(f: &GgufFile) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for t in f.tensors() {
        *counts.entry(t.dtype.map_or("?", |d| d.name())).or_insert(0) += 1;
    }
    counts
}

#[test]
fn smollm2_q4_1() {
    let Some(path) = ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(30));
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), Some("smollm"));
    assert_eq!(f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap().len(), 49152);
    assert_eq!(f.get_str_array("tokenizer.ggml.merges").unwrap().unwrap().len(), 48900);
    assert!(f
        .get_str("tokenizer.chat_template")
        .unwrap()
        .unwrap()
        .contains("im_start"));
    let counts = type_counts(&f);
    assert_eq!(counts, BTreeMap::from([("F32", 61), ("Q4_1", 210), ("Q8_0", 1)]));
    let q = f.weight("blk.0.attn_k.weight").unwrap();
    assert_eq!((q.dtype(), q.rows(), q.cols()), (DType::Q4_1, 192, 576));
    let e = f.weight("token_embd.weight").unwrap();
    assert_eq!((e.dtype(), e.rows(), e.cols()), (DType::Q8_0, 49152, 576));
}

#[test]
fn gemma3_k_quants() {
    let Some(path) = ondo_testdata::fetched("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.get_str("general.architecture").unwrap(), Some("gemma3"));
    assert_eq!(f.get_u32("gemma3.attention.sliding_window").unwrap(), Some(512));
    assert_eq!(f.get_str_array("general.tags").unwrap().unwrap().len(), 4);
    assert_eq!(f.get_f32_array("tokenizer.ggml.scores").unwrap().unwrap().len(), 262144);
    let counts = type_counts(&f);
    let expected = [("F32", 109), ("Q4_K", 27), ("Q5_0", 81), ("Q6_K", 9), ("Q8_0", 10)];
    assert_eq!(counts, BTreeMap::from(expected));
    for t in f.tensors() {
        let w = f.weight(&t.name).unwrap();
        assert_eq!(w.cols() as u64, t.dims[0], "{}", t.name);
    }
}

#[test]
fn qwen25_large_file_opens_without_reading_tensor_data() {
    let Some(path) = ondo_testdata::fetched("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf") else {
        return;
    };
    let t = std::time::Instant::now();
    let f = GgufFile::open(&path).unwrap();
    eprintln!("opened {} in {:?}", path.display(), t.elapsed()); // timing is printed, not asserted
    assert_eq!(f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap().len(), 151936);
    assert_eq!(f.get_str_array("tokenizer.ggml.merges").unwrap().unwrap().len(), 151387);
    assert_eq!(f.tensors().len(), 339);
    assert_eq!(
        type_counts(&f),
        BTreeMap::from([("F32", 141), ("Q4_K", 169), ("Q6_K", 29)])
    );
    let bias = f.weight("blk.0.attn_k.bias").unwrap();
    assert_eq!((bias.rows(), bias.cols()), (1, 256));
}

// ---------------------------------------------------------------------------------------------
// A tiny GGUF writer for building test files in memory.

struct Writer {
    version: u32,
    alignment: usize,
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn gguf_string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

impl Writer {
    fn new() -> Writer {
        Writer {
            version: 3,
            alignment: 32,
            kv: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }

    /// A key, a value type and the value's encoded bytes.
    fn raw(mut self, key: &str, type_id: u32, value: &[u8]) -> Writer {
        self.kv.extend(gguf_string(key.as_bytes()));
        self.kv.extend(type_id.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.n_kv += 1;
        self
    }
    fn u32(self, key: &str, v: u32) -> Writer {
        self.raw(key, 4, &v.to_le_bytes())
    }
    fn str(self, key: &str, v: &str) -> Writer {
        self.raw(key, 8, &gguf_string(v.as_bytes()))
    }
    fn array(self, key: &str, elem_type: u32, count: u64, elems: &[u8]) -> Writer {
        let mut v = elem_type.to_le_bytes().to_vec();
        v.extend(count.to_le_bytes());
        v.extend_from_slice(elems);
        self.raw(key, 9, &v)
    }
    fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) -> Writer {
        self.tensors.push((name.into(), dims.to_vec(), ggml_type, data));
        self
    }
    fn f32_tensor(self, name: &str, dims: &[u64]) -> Writer {
        let n: u64 = dims.iter().product();
        let data = (0..n).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect();
        self.tensor(name, dims, 0, data)
    }

    fn finish(self) -> Vec<u8> {
        self.finish_with_offsets(|_, offset| offset)
    }

    /// Write the file; `offset_of(i, natural)` may move tensor i's stored offset.
    fn finish_with_offsets(self, offset_of: impl Fn(usize, u64) -> u64) -> Vec<u8> {
        let pad = |n: usize| n.div_ceil(self.alignment) * self.alignment;
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        let mut data = Vec::new();
        for (i, (name, dims, ggml_type, bytes)) in self.tensors.iter().enumerate() {
            data.resize(pad(data.len()), 0);
            out.extend(gguf_string(name.as_bytes()));
            out.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(ggml_type.to_le_bytes());
            out.extend(offset_of(i, data.len() as u64).to_le_bytes());
            data.extend_from_slice(bytes);
        }
        if !self.tensors.is_empty() {
            out.resize(pad(out.len()), 0);
            out.extend(data);
        }
        out
    }
}

/// A small file with every value type, a nested array and two tensors.
fn sample() -> Vec<u8> {
    let f32s: Vec<u8> = [0.5f32, -1.0, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let strs: Vec<u8> = ["a", "bc", "한"]
        .iter()
        .flat_map(|s| gguf_string(s.as_bytes()))
        .collect();
    let mut nested = Vec::new();
    for row in [[1i32, 2], [3, 4]] {
        nested.extend(5u32.to_le_bytes());
        nested.extend(2u64.to_le_bytes());
        row.iter().for_each(|x| nested.extend(x.to_le_bytes()));
    }
    Writer::new()
        .str("general.architecture", "llama")
        .raw("t.u8", 0, &[200])
        .raw("t.i8", 1, &(-3i8).to_le_bytes())
        .raw("t.u16", 2, &60000u16.to_le_bytes())
        .raw("t.i16", 3, &(-300i16).to_le_bytes())
        .u32("t.u32", 7)
        .raw("t.i32", 5, &(-7i32).to_le_bytes())
        .raw("t.f32", 6, &1.5f32.to_le_bytes())
        .raw("t.bool", 7, &[1])
        .raw("t.u64", 10, &(1u64 << 40).to_le_bytes())
        .raw("t.i64", 11, &(-5i64).to_le_bytes())
        .raw("t.f64", 12, &0.25f64.to_le_bytes())
        .array("t.scores", 6, 3, &f32s)
        .array("t.tokens", 8, 3, &strs)
        .array("t.nested", 9, 2, &nested)
        .f32_tensor("w", &[4, 3])
        .f32_tensor("v", &[4])
        .finish()
}

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_vec("test.gguf", bytes)
}

fn err(bytes: Vec<u8>) -> String {
    match parse(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_value_type_round_trips() {
    let f = parse(sample()).unwrap();
    assert_eq!(f.get("t.u8"), Some(&Value::U8(200)));
    assert_eq!(f.get_i32("t.i8").unwrap(), Some(-3));
    assert_eq!(f.get_u32("t.u16").unwrap(), Some(60000));
    assert_eq!(f.get_i64("t.i16").unwrap(), Some(-300));
    assert_eq!(f.get_u32("t.u32").unwrap(), Some(7));
    assert_eq!(f.get_i32("t.i32").unwrap(), Some(-7));
    assert_eq!(f.get_f32("t.f32").unwrap(), Some(1.5));
    assert_eq!(f.get_bool("t.bool").unwrap(), Some(true));
    assert_eq!(f.get_u64("t.u64").unwrap(), Some(1 << 40));
    assert_eq!(f.get_i64("t.i64").unwrap(), Some(-5));
    assert_eq!(f.get_f32("t.f64").unwrap(), Some(0.25));
    assert_eq!(f.get_f32_array("t.scores").unwrap().unwrap(), [0.5, -1.0, 2.0]);
    assert_eq!(f.get_str_array("t.tokens").unwrap().unwrap(), ["a", "bc", "한"]);
    let nested = f.get_array("t.nested").unwrap().unwrap().as_arrays().unwrap();
    assert_eq!(nested, [Array::I32(vec![1, 2]), Array::I32(vec![3, 4])]);
    assert_eq!(f.metadata().len(), 15);
}

#[test]
fn integer_getters_reject_values_that_do_not_fit() {
    let f = parse(sample()).unwrap();
    assert!(f.get_u32("t.u64").is_err()); // 2^40
    assert!(f.get_u32("t.i32").is_err()); // negative
    assert!(f.get_i32("t.u64").is_err());
    assert!(f.get_u32("t.f32").is_err());
}

#[test]
fn tensors_from_the_writer() {
    let f = parse(sample()).unwrap();
    let w = f.weight("w").unwrap();
    assert_eq!((w.rows(), w.cols()), (3, 4));
    assert_eq!(w.to_f32()[..3], [0.0, 0.5, 1.0]);
    let v = f.weight("v").unwrap();
    assert_eq!((v.rows(), v.cols()), (1, 4));
    assert_eq!(f.tensor("v").unwrap().offset, 64); // 48 bytes of w, padded to 32
}

#[test]
fn version_2_is_read() {
    let mut w = Writer::new().u32("k", 1).f32_tensor("w", &[2, 2]);
    w.version = 2;
    let f = parse(w.finish()).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.weight("w").unwrap().rows(), 2);
}

#[test]
fn custom_alignment_moves_the_data_section() {
    let mut w = Writer::new()
        .u32("general.alignment", 64)
        .f32_tensor("a", &[3])
        .f32_tensor("b", &[3]);
    w.alignment = 64;
    let f = parse(w.finish()).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_start() % 64, 0);
    assert_eq!(f.tensor("b").unwrap().offset, 64);
    assert_eq!(f.weight("b").unwrap().to_f32(), [0.0, 0.5, 1.0]);
}

#[test]
fn bad_alignment_is_an_error() {
    let e = err(Writer::new().u32("general.alignment", 24).finish());
    assert!(e.contains("alignment 24"), "{e}");
    let e = err(Writer::new().str("general.alignment", "32").finish());
    assert!(e.contains("general.alignment") && e.contains("string"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Bad input.

#[test]
fn every_truncation_is_an_error() {
    let full = sample();
    for len in 0..full.len() {
        let cut = full[..len].to_vec();
        assert!(parse(cut).is_err(), "a prefix of {len} of {} bytes parsed", full.len());
    }
    assert!(parse(full).is_ok());
}

#[test]
fn truncation_names_the_field() {
    let full = sample();
    let e = err(full[..10].to_vec());
    assert!(e.contains("test.gguf") && e.contains("tensor count"), "{e}");
    let at = full.windows(8).position(|w| w == b"t.tokens").unwrap();
    let e = err(full[..at + 30].to_vec());
    assert!(e.contains("t.tokens"), "{e}");
}

#[test]
fn wrong_magic() {
    let mut bytes = sample();
    bytes[..4].copy_from_slice(b"GGML");
    let e = err(bytes);
    assert!(e.contains("not a GGUF file"), "{e}");
}

#[test]
fn versions_1_and_99_are_unsupported() {
    for version in [1, 99] {
        let mut w = Writer::new().u32("k", 1);
        w.version = version;
        let e = err(w.finish());
        assert!(e.contains(&format!("unsupported GGUF version {version}")), "{e}");
    }
}

#[test]
fn unknown_value_type() {
    let e = err(Writer::new().raw("odd.key", 13, &[0; 8]).finish());
    assert!(e.contains("odd.key") && e.contains("unknown value type 13"), "{e}");
    let e = err(Writer::new().array("odd.array", 77, 1, &[0; 8]).finish());
    assert!(e.contains("odd.array") && e.contains("77"), "{e}");
}

#[test]
fn huge_counts_are_truncation_not_allocation() {
    let e = err(Writer::new().array("big", 8, u64::MAX / 4, &[]).finish());
    assert!(e.contains("truncated") && e.contains("big"), "{e}");
    let e = err(Writer::new().raw("s", 8, &u64::MAX.to_le_bytes()).finish());
    assert!(e.contains("truncated"), "{e}");
    let mut bytes = Writer::new().u32("k", 1).finish();
    bytes[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes()); // tensor count
    assert!(err(bytes).contains("tensor infos"));
}

#[test]
fn deep_nesting_is_an_error() {
    let mut value = Vec::new();
    for _ in 0..100 {
        value.extend(9u32.to_le_bytes());
        value.extend(1u64.to_le_bytes());
    }
    let e = err(Writer::new().raw("deep", 9, &value).finish());
    assert!(e.contains("deep") && e.contains("nested"), "{e}");
}

#[test]
fn bool_must_be_0_or_1() {
    let e = err(Writer::new().raw("flag", 7, &[2]).finish());
    assert!(e.contains("bool"), "{e}");
}

#[test]
fn invalid_utf8_in_values_is_lossy_and_reported() {
    let strs: Vec<u8> = [&b"ok"[..], &[0xff, b'x']]
        .iter()
        .flat_map(|s| gguf_string(s))
        .collect();
    let f = parse(Writer::new().array("tokens", 8, 2, &strs).finish()).unwrap();
    assert_eq!(f.get_str_array("tokens").unwrap().unwrap(), ["ok", "\u{fffd}x"]);
    assert_eq!(f.warnings().len(), 1);
    assert!(f.warnings()[0].contains("element 1 of tokens"), "{:?}", f.warnings());
    let mut bytes = Writer::new().u32("key", 1).finish();
    let at = bytes.windows(3).position(|w| w == b"key").unwrap();
    bytes[at] = 0xc3;
    let e = err(bytes);
    assert!(e.contains("not valid UTF-8") && e.contains("metadata key #0"), "{e}");
}

#[test]
fn duplicate_keys_and_tensors() {
    let e = err(Writer::new().u32("k", 1).u32("k", 2).finish());
    assert!(e.contains("k appears twice"), "{e}");
    let e = err(Writer::new().f32_tensor("w", &[2]).f32_tensor("w", &[2]).finish());
    assert!(e.contains("tensor w appears twice"), "{e}");
}

#[test]
fn wrong_metadata_type_names_key_expected_and_found() {
    let f = parse(sample()).unwrap();
    let e = f.get_u32("general.architecture").unwrap_err().to_string();
    assert!(
        e.contains("general.architecture") && e.contains("u32") && e.contains("string"),
        "{e}"
    );
    let e = f.get_str_array("t.scores").unwrap_err().to_string();
    assert!(e.contains("t.scores") && e.contains("array of 3 f32"), "{e}");
}

#[test]
fn unsupported_quant_type_opens_and_fails_on_use() {
    // IQ4_NL (20): 32 values in 18 bytes.
    let f = parse(Writer::new().tensor("iq", &[32, 2], 20, vec![0; 36]).finish()).unwrap();
    let info = f.tensor("iq").unwrap();
    assert_eq!((info.dtype, info.size_bytes), (None, Some(36)));
    assert_eq!(f.bytes(info).unwrap().len(), 36);
    let e = f.weight("iq").unwrap_err().to_string();
    assert!(
        e.contains("tensor iq") && e.contains("20") && e.contains("IQ4_NL"),
        "{e}"
    );
    // A type id ggml never had: opens, no size, fails on use.
    let f = parse(Writer::new().tensor("odd", &[4], 200, vec![0; 16]).finish()).unwrap();
    assert!(f.bytes(f.tensor("odd").unwrap()).is_err());
    assert!(f.weight("odd").unwrap_err().to_string().contains("200"));
}

#[test]
fn tensor_data_past_the_end() {
    let mut bytes = Writer::new().f32_tensor("a", &[8]).f32_tensor("big", &[16]).finish();
    bytes.truncate(bytes.len() - 4);
    let e = err(bytes);
    assert!(e.contains("tensor big") && e.contains("past the end"), "{e}");
    let bytes = Writer::new()
        .f32_tensor("far", &[4])
        .finish_with_offsets(|_, _| 1 << 62);
    assert!(err(bytes).contains("tensor far"));
    let bytes = Writer::new()
        .f32_tensor("wrap", &[4])
        .finish_with_offsets(|_, _| u64::MAX - 31);
    assert!(err(bytes).contains("tensor wrap"));
}

#[test]
fn misaligned_offset() {
    let bytes = Writer::new().f32_tensor("a", &[4]).finish_with_offsets(|_, o| o + 4);
    let e = err(bytes);
    assert!(e.contains("tensor a") && e.contains("not a multiple"), "{e}");
}

#[test]
fn bad_shapes() {
    let e = err(Writer::new().tensor("q", &[33], 2, vec![0; 36]).finish());
    assert!(e.contains("tensor q") && e.contains("blocks"), "{e}");
    let e = err(Writer::new().tensor("huge", &[1 << 32, 1 << 32], 0, vec![]).finish());
    assert!(e.contains("tensor huge") && e.contains("too many"), "{e}");
    // Found by cargo-fuzz: a zero dim hid rows of 2^64 bytes, or 2^80 rows, from the total check.
    let e = err(Writer::new().tensor("wide", &[1 << 62, 0], 0, vec![]).finish());
    assert!(e.contains("tensor wide") && e.contains("too many bytes"), "{e}");
    let e = err(Writer::new().tensor("rows", &[0, 1 << 40, 1 << 40], 0, vec![]).finish());
    assert!(e.contains("tensor rows") && e.contains("too many elements"), "{e}");
    let e = err(Writer::new().tensor("neg", &[1 << 63], 0, vec![]).finish());
    assert!(e.contains("tensor neg") && e.contains("2^63"), "{e}");
    let e = err(Writer::new().tensor("five", &[1, 1, 1, 1, 1], 0, vec![0; 4]).finish());
    assert!(e.contains("tensor five") && e.contains("5 dimensions"), "{e}");
}

#[test]
fn open_reports_missing_files_and_maps_real_ones() {
    let e = GgufFile::open(Path::new("/nonexistent/x.gguf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/x.gguf"), "{e}");
    let dir = std::env::temp_dir().join(format!("ondo-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sample.gguf");
    std::fs::write(&path, sample()).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.weight("w").unwrap().to_f32()[1], 0.5);
    std::fs::write(&path, b"").unwrap();
    assert!(GgufFile::open(&path).unwrap_err().to_string().contains("truncated"));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Deterministic mutation fuzz: no input may panic.

/// xorshift64*, so the run is the same everywhere.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.insert(at, rng.next() as u8),
            3 => {
                bytes.remove(at);
            }
            // Interesting values over a u32/u64 field.
            4 if at + 8 <= bytes.len() => {
                let v = [0u64, 1, 0xff, 1 << 31, u32::MAX as u64, 1 << 62, u64::MAX][rng.below(7)];
                bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => bytes.truncate(at),
        }
        if bytes.is_empty() {
            return;
        }
    }
}

fn use_everything(f: &GgufFile) {
    ondo_model::fuzz::use_gguf(f);
}

/// Every input cargo-fuzz found to crash the reader (`fuzz/regressions/gguf_open`) now
/// parses or fails cleanly.
#[test]
fn fuzz_regressions() {
    let (ok, failed) = ondo_testdata::fuzz::replay("gguf_open", ondo_model::fuzz::gguf_file);
    assert!(
        ok >= 1 && failed >= 2,
        "the sample opens and both crash inputs are rejected"
    );
}

#[test]
fn mutation_fuzz_never_panics() {
    let seeds = [sample(), Writer::new().tensor("q", &[32, 2], 2, vec![0; 36]).finish()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut failed) = (0, 0);
    for i in 0..50_000 {
        let mut bytes = seeds[i % seeds.len()].clone();
        mutate(&mut rng, &mut bytes);
        match parse(bytes) {
            Ok(f) => {
                use_everything(&f);
                ok += 1
            }
            Err(e) => {
                assert!(e.to_string().contains("test.gguf"), "{e}");
                failed += 1
            }
        }
    }
    eprintln!("mutation fuzz: {ok} parsed, {failed} rejected");
    assert!(ok > 100 && failed > 100, "the mutator should hit both outcomes");
}
