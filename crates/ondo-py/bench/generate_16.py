"""Python `LLM.generate` of 16 prompts vs `ondo generate --prompts FILE.jsonl` on the same input.

    python bench/generate_16.py MODEL.gguf ONDO_BIN [--runs 3] [--max-tokens 128]

Writes the 16 prompts (greedy, ignore_eos, the same max_tokens) to a JSONL file, then alternates
whole-process runs: `python -c "<load + generate>"` and `ondo generate MODEL --prompts FILE`.
Both load the model and generate the same tokens; the difference is what Python adds. Prints
each run's wall and CPU time (user + sys), the Python side's time inside `generate`, and the
medians.
"""

from __future__ import annotations

import argparse
import resource
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "The capital of France is", "대한민국의 수도는", "Once upon a time,", "인공지능의 미래는",
    "Write a haiku about the sea.", "The three primary colours are", "In Python, a list comprehension",
    "서울에서 부산까지", "The theory of relativity says", "My favourite food is", "오늘 날씨는",
    "A recipe for pancakes:", "The largest planet in the solar system", "한국어를 배우는 방법은",
    "def fibonacci(n):", "The history of the Roman Empire",
]

PY = """
import sys, time, json
from ondo import LLM, SamplingParams
model, path, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
prompts = [json.loads(l)["prompt"] for l in open(path, encoding="utf-8")]
llm = LLM(model, show_progress=False)
params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
t = time.perf_counter()
outs = llm.generate(prompts, params)
dt = time.perf_counter() - t
assert len(outs) == 16 and all(len(o.outputs[0].token_ids) == max_tokens for o in outs)
print(json.dumps({"generate_s": dt, "first": outs[0].outputs[0].text}))
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ondo_bin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    jsonl = tmp / "prompts.jsonl"
    jsonl.write_text("".join(json.dumps({"prompt": p, "temperature": 0, "max_tokens": a.max_tokens, "ignore_eos": True},
                                        ensure_ascii=False) + "\n" for p in PROMPTS), encoding="utf-8")
    py_wall, py_gen, cli_wall, py_cpu, cli_cpu = [], [], [], [], []
    first_py = first_cli = None
    for i in range(a.runs):
        t, c = time.perf_counter(), _cpu()
        out = subprocess.run([sys.executable, "-c", PY, a.model, str(jsonl), str(a.max_tokens)],
                             capture_output=True, text=True, check=True)
        py_wall.append(time.perf_counter() - t)
        py_cpu.append(_cpu() - c)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        py_gen.append(r["generate_s"])
        first_py = r["first"]
        t, c = time.perf_counter(), _cpu()
        out = subprocess.run([a.ondo_bin, "generate", a.model, "--prompts", str(jsonl), "--json"],
                             capture_output=True, text=True, check=True)
        cli_wall.append(time.perf_counter() - t)
        cli_cpu.append(_cpu() - c)
        first_cli = json.loads(out.stdout.splitlines()[0])["outputs"][0]["text"]
        print(f"run {i + 1}: python {py_wall[-1]:.2f} s wall, {py_cpu[-1]:.2f} s CPU (generate() {py_gen[-1]:.2f} s); "
              f"ondo generate {cli_wall[-1]:.2f} s wall, {cli_cpu[-1]:.2f} s CPU", flush=True)
    assert first_py == first_cli, "python and the CLI generated different text"
    mp, mc = statistics.median(py_wall), statistics.median(cli_wall)
    print(f"median wall: python {mp:.2f} s, ondo generate {mc:.2f} s, python/cli = {mp / mc:.3f}; "
          f"python generate() alone {statistics.median(py_gen):.2f} s; median CPU: python "
          f"{statistics.median(py_cpu):.2f} s, ondo generate {statistics.median(cli_cpu):.2f} s; "
          f"{16 * a.max_tokens} tokens")


if __name__ == "__main__":
    main()
