#!/usr/bin/env python3
"""llama.cpp's greedy tokens on the GGUF twins of fixtures/tiny-models, as goldens.

Run by hand (never by CI), with a llama.cpp build at hand (standard library only):

    python3 tools/make_llamacpp_greedy.py --llama-server /tmp/llama/build/bin/llama-server

For each folder with a `model.gguf` twin it starts `llama-server` on 127.0.0.1 (1 thread, f32 KV
cache, one slot) on a copy whose general.name is blanked (see neutral_name_copy), and for each case of the folder's golden.json asks `/completion` for 20 tokens
from the case's `prompt_token_ids` (given as ids, so no BOS is added), temperature 0, EOS
ignored, no prompt cache. It also asks `/tokenize` for the prompt text with special tokens
added as llama.cpp adds them. Writes `llamacpp_golden.json` beside golden.json:

    {"llama_cpp": commit, "how": ..., "cases": [{"n_ctx": ..., "prompt_token_ids": [...] | null,
                                                 "greedy_token_ids": [...]}, ...]}

A model llama.cpp refuses to load is reported and gets no file.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "tiny-models"
TWINS = ["gemma2", "gpt2", "gptneox", "phi3", "exaone"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("llama-server did not become ready")


def neutral_name_copy(src: Path, dst: Path) -> None:
    """A copy of `src` whose `general.name` is all "x": llama.cpp gives files named like "phi3"
    Phi-3's special-token attributes, looking up tokens (`<|endoftext|>`) a tiny vocabulary lacks."""
    data = bytearray(src.read_bytes())
    key = b"general.name"
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
    (vtype,), (n,) = struct.unpack_from("<I", data, at), struct.unpack_from("<Q", data, at + 4)
    assert vtype == 8, "general.name is not a string"
    data[at + 12:at + 12 + n] = b"x" * n
    dst.write_bytes(bytes(data))


def case_contexts(name: str, golden: dict) -> list[int]:
    """The context size for each case. llama.cpp picks Phi-3's longrope factors by context size
    (long when n_ctx > original_max_position_embeddings), transformers by sequence length: a case
    that fits the original context runs with n_ctx = that, so both use the short factors."""
    cfg = json.loads((FIXTURES / name / "config.json").read_text(encoding="utf-8"))
    orig = cfg.get("original_max_position_embeddings")
    sizes = []
    for case in golden["cases"]:
        need = len(case["prompt_token_ids"]) + len(case["greedy_token_ids"])
        sizes.append(orig if orig and need <= orig else 512)
    return sizes


def run_model(exe: str, name: str, tmp: Path) -> list[dict]:
    golden = json.loads((FIXTURES / name / "golden.json").read_text(encoding="utf-8"))
    model = tmp / "model.gguf"
    neutral_name_copy(FIXTURES / name / "model.gguf", model)
    sizes = case_contexts(name, golden)
    cases: list[dict] = [{} for _ in sizes]
    for n_ctx in sorted(set(sizes)):
        todo = [i for i, s in enumerate(sizes) if s == n_ctx]
        with server(exe, model, n_ctx) as port:
            for i in todo:
                cases[i] = run_case(port, golden["cases"][i], n_ctx)
    return cases


@contextlib.contextmanager
def server(exe: str, model: Path, n_ctx: int):
    port = free_port()
    log = tempfile.TemporaryFile("w+")
    args = [exe, "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-c", str(n_ctx), "-np", "1", "-t", "1", "-ctk", "f32", "-ctv", "f32", "--seed", "0"]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_ready(port, proc)
        except RuntimeError as e:
            log.seek(0)
            raise RuntimeError(f"{e}; its log ends:\n" + "".join(log.readlines()[-15:])) from None
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def run_case(port: int, case: dict, n_ctx: int) -> dict:
    n = len(case["greedy_token_ids"])
    body = {"prompt": case["prompt_token_ids"], "n_predict": n, "temperature": 0.0, "ignore_eos": True,
            "cache_prompt": False, "return_tokens": True, "samplers": ["temperature"]}
    out = post(port, "/completion", body)
    prompt_ids = None
    if case["prompt"] is not None:
        prompt_ids = post(port, "/tokenize", {"content": case["prompt"], "add_special": True})["tokens"]
    return {"n_ctx": n_ctx, "prompt_token_ids": prompt_ids, "greedy_token_ids": out["tokens"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-server", default="/tmp/llama/build/bin/llama-server")
    ap.add_argument("--llama-commit", default="c392e50")
    ap.add_argument("models", nargs="*", default=TWINS)
    args = ap.parse_args()
    for name in args.models:
        try:
            with tempfile.TemporaryDirectory(prefix="ondo-llamacpp-") as tmp:
                cases = run_model(args.llama_server, name, Path(tmp))
        except Exception as e:  # noqa: BLE001 - report and go on with the next model
            print(f"{name}: llama.cpp failed: {e}")
            continue
        doc = {
            "llama_cpp": args.llama_commit,
            "how": "llama-server /completion, prompt as token ids, temperature 0, ignore_eos, f32 KV cache, "
                   "1 thread, general.name blanked, n_ctx per case (see case_contexts); prompt_token_ids from /tokenize (add_special) for text prompts "
                   "(tools/make_llamacpp_greedy.py)",
            "cases": cases,
        }
        text = json.dumps(doc, indent=1, ensure_ascii=False)
        (FIXTURES / name / "llamacpp_golden.json").write_text(text + "\n", encoding="utf-8")
        print(name, "ok", [len(c["greedy_token_ids"]) for c in cases])


if __name__ == "__main__":
    main()
