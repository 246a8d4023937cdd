#!/usr/bin/env python3
"""llama.cpp's token ids for every BPE pre-tokenizer name, as goldens for ondo's GGUF tokenizer.

Run by hand (never by CI), with a llama.cpp build at hand:

    /work/venv-fixtures/bin/python tools/make_pretok_goldens.py \
        --llama-tokenize /tmp/llama/build/bin/llama-tokenize \
        --tokenizer-json ../shared/models/smollm2-135m-instruct-hf/tokenizer.json

For each `tokenizer.ggml.pre` name llama.cpp knows (and for a file without the key) it writes a
vocabulary-only GGUF (SmolLM2's byte-level BPE: tokens, types, merges, BOS/EOS; no
`add_bos_token`, so llama.cpp's per-name default decides BOS) into a temporary folder, runs
`llama-tokenize` on each text of TEXTS, and stores the ids in
fixtures/tokenizers/llamacpp_pretok_goldens.json. The GGUFs are not kept: the Rust test
(crates/ondo-text/tests/pretok_goldens.rs) builds the same vocabulary from the same tokenizer.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import gguf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "tokenizers" / "llamacpp_pretok_goldens.json"

# Every name llama.cpp's llama-vocab.cpp maps to a BPE pre-tokenizer type; None = no key in the file.
NAMES = [
    None, "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "deepseek-llm", "deepseek-coder",
    "deepseek-v3", "falcon", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
    "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "refact", "command-r",
    "qwen2", "deepseek-r1-qwen", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe",
    "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon",
    "minerva-7b", "megrez",
]

# Texts on which the split rules differ: contractions in both cases, digit runs, Korean, CJK,
# emoji, code with spacing, newlines, punctuation runs, accents (composed and combining).
TEXTS = [
    "I'm sure you've seen it; they'll say we'd done it, can't you? "
    "I'M SURE YOU'VE SEEN IT; THEY'LL SAY WE'D DONE IT, CAN'T YOU?",
    "In 2024, 1234567 people paid $3.50 each; 42% said 'yes'. Call 555-0199 or +1 (800) 123 4567.",
    "3.14159 1,000,000 007 x2 ²³ ١٢٣ 12345678901234567890",
    "안녕하세요, 세계! 한국어 문장입니다. 123개의 사과",
    "日本語のテキスト、中文文本。カタカナ ひらがな 漢字かな混じり",
    "Emoji: 😀👍🏽 🎉🎉 ❤️ done 👨‍👩‍👧",
    "def f(x):\n    return x ** 2  # square\n\n\n\tif a<=b && c!=d: print(a->b)",
    "line one\nline two\r\n\r\nline four\n\n\n   indented\t\ttabs   trailing   ",
    "Wait... what?!? No!!! ---- ==== (((nested))) [[x]] {{y}} ~~tilde~~ @user #tag $$$ %%% ^^^ &&& |||",
    "Ünïcödé café naïve résumé Ångström ÉCOLE éÉ Ñandú e\u0301te\u0301 n\u0303",
    "Ελληνικά русский текст العربية हिन्दी ไทย",
    "MixedCase camelCase snake_case SCREAMING_CASE HTTPServer iPhone xmlHTTPRequest",
    "<sentinel:12> IMGIMGABCZ tab\there    four  two…end。，、",
    "   leading spaces and a final newline\n",
]


def write_vocab(path: Path, tj: dict, pre: str | None) -> None:
    model = tj["model"]
    vocab = dict(model["vocab"])
    specials = {a["id"]: a["content"] for a in tj["added_tokens"]}
    for i, s in specials.items():
        vocab[s] = i
    tokens = [""] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    if pre is not None and pre.startswith("jina-v2-"):
        tokens[MASK_ID] = "<mask>"  # llama.cpp looks this token up for these names (and fails without it)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(8)
    w.add_head_count(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    types = [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(len(tokens))]
    w.add_token_types(types)
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


BOS_ID, EOS_ID = 1, 2
MASK_ID = 16  # "<empty_output>", unused by the texts


def tokenize(exe: str, gguf_path: Path, text_path: Path) -> list[int]:
    args = [exe, "-m", str(gguf_path), "-f", str(text_path), "--ids", "--log-disable", "--no-escape"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def dump(doc: dict) -> str:
    """JSON with one line per text and per pre-tokenizer name, so diffs show what changed."""
    lines = ["{"]
    for key in ("about", "llama_cpp", "vocabulary", "bos_id", "eos_id", "mask_id"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(doc[key], ensure_ascii=False)},")
    texts = ",\n".join("    " + json.dumps(t, ensure_ascii=False) for t in doc["texts"])
    lines.append(f'  "texts": [\n{texts}\n  ],')
    ids = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in doc["ids"].items())
    lines.append(f'  "ids": {{\n{ids}\n  }}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-tokenize", default="/tmp/llama/build/bin/llama-tokenize")
    ap.add_argument("--llama-commit", default="c392e50")
    ap.add_argument("--tokenizer-json", default=str(ROOT.parent / "shared/models/smollm2-135m-instruct-hf/tokenizer.json"))
    args = ap.parse_args()
    tj = json.loads(Path(args.tokenizer_json).read_text(encoding="utf-8"))
    goldens: dict[str, list[list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="ondo-pretok-") as tmp:
        texts = []
        for i, t in enumerate(TEXTS):
            p = Path(tmp) / f"text{i}.txt"
            p.write_bytes(t.encode("utf-8"))
            texts.append(p)
        for pre in NAMES:
            g = Path(tmp) / "vocab.gguf"
            write_vocab(g, tj, pre)
            goldens["" if pre is None else pre] = [tokenize(args.llama_tokenize, g, p) for p in texts]
            print(pre, [len(ids) for ids in goldens["" if pre is None else pre]])
    doc = {
        "about": "llama.cpp llama-tokenize ids (BOS as llama.cpp adds it by default) per tokenizer.ggml.pre "
                 "name (\"\" = key absent), made by tools/make_pretok_goldens.py; for jina-v2-* token mask_id "
                 "is renamed <mask>",
        "llama_cpp": args.llama_commit,
        "vocabulary": "smollm2-135m-instruct-hf/tokenizer.json (shared/models)",
        "bos_id": BOS_ID,
        "mask_id": MASK_ID,
        "eos_id": EOS_ID,
        "texts": TEXTS,
        "ids": goldens,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dump(doc), encoding="utf-8")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
