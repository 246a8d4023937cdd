#!/usr/bin/env python3
"""Latency under arrival: N streams decode when a long prompt arrives; how much slower do their
tokens come while it prefills?

    ondo serve MODEL --port 8123 &
    python3 tools/arrival_latency.py --port 8123 --streams 16 --prompt-tokens 1500

The N clients stream /v1/completions (ignore_eos, temperature 0, long max_tokens) and record
when each chunk arrives. After `--warmup` seconds one more request arrives with a prompt of about
`--prompt-tokens` tokens (max_tokens 1). Reported: the p50/p99 gap between consecutive chunks of
the N streams before it arrived, and while it was being served (arrival to its answer), and the
ratio of the p99s. Stdlib only.
"""

import argparse
import http.client
import json
import threading
import time


def stream(port, idx, max_tokens, stamps, stop):
    body = {"prompt": f"Stream {idx}: once upon a time", "max_tokens": max_tokens, "ignore_eos": True,
            "temperature": 0, "stream": True}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    for raw in r:
        if raw.startswith(b"data: "):
            stamps.append(time.perf_counter())
        if stop.is_set():
            break
    c.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--prompt-tokens", type=int, default=1500)
    ap.add_argument("--warmup", type=float, default=4.0)
    a = ap.parse_args()
    stop = threading.Event()
    stamps = [[] for _ in range(a.streams)]
    threads = [threading.Thread(target=stream, args=(a.port, i, 4000, stamps[i], stop), daemon=True)
               for i in range(a.streams)]
    for t in threads:
        t.start()
    time.sleep(a.warmup)
    # about three tokens per "wNN" word on these tokenizers; the server reports the real count
    words = f"run {time.time_ns()}: " + " ".join(f"w{i % 97}" for i in range(a.prompt_tokens // 3))
    arrived = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps({"prompt": words, "max_tokens": 1}),
              {"Content-Type": "application/json"})
    resp = json.loads(c.getresponse().read())
    answered = time.perf_counter()
    time.sleep(1.0)
    stop.set()
    before, during = [], []
    for s in stamps:
        for t0, t1 in zip(s, s[1:]):
            if t1 < arrived and t0 > arrived - a.warmup / 2:
                before.append(t1 - t0)
            elif t0 >= arrived and t1 <= answered:
                during.append(t1 - t0)
    report = {
        "streams": a.streams, "prompt_tokens": resp.get("usage", {}).get("prompt_tokens"),
        "prefill_seconds": round(answered - arrived, 3),
        "before_ms": {"p50": round(pct(before, 50) * 1e3, 1), "p99": round(pct(before, 99) * 1e3, 1), "n": len(before)},
        "during_ms": {"p50": round(pct(during, 50) * 1e3, 1), "p99": round(pct(during, 99) * 1e3, 1), "n": len(during)},
    }
    report["p99_ratio"] = round(report["during_ms"]["p99"] / max(report["before_ms"]["p99"], 1e-9), 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
