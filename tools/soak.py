#!/usr/bin/env python3
"""Soak test: N concurrent streaming clients against a running `ondo serve` for a while.

    ondo serve MODEL --port 8123 &
    python3 tools/soak.py --port 8123 --pid $! --clients 64 --minutes 10

Each client loops: a streamed /v1/completions request (distinct prompt, ignore_eos, a random
max_tokens in 8..64, stream_options.include_usage), checking that the stream ends with usage and
[DONE], that usage.completion_tokens == max_tokens and that usage.prompt_tokens equals the
/tokenize count of its prompt. One in 16 requests disconnects
mid-stream on purpose. The server's resident memory (/proc/PID/status VmRSS) is sampled every
10 s. At the end: errors (must be 0), requests done, RSS after warm-up min/max (must stay within
5%), and ondo_kv_blocks_used after the clients stop (must be 0). Warm-up includes the KV pool
being touched once: the LRU free queue hands out every block of the pool before it reuses one,
so RSS grows to about model + --kv-cache-memory first (3.5 minutes for SmolLM2 with a 4 GiB pool
under 64 clients); pass a smaller --kv-cache-memory to the server for a shorter warm-up.
Stdlib only. Exits 1 when a check fails.
"""

import argparse
import http.client
import json
import random
import re
import sys
import threading
import time


def post(port, path, body, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data)


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client(threading.Thread):
    def __init__(self, port, idx, deadline, tallies, lock):
        super().__init__(daemon=True)
        self.port, self.idx, self.deadline = port, idx, deadline
        self.tallies, self.lock = tallies, lock
        self.rng = random.Random(idx)

    def count(self, key, what=None):
        with self.lock:
            self.tallies[key] = self.tallies.get(key, 0) + 1
            if what and len(self.tallies.setdefault("examples", [])) < 10:
                self.tallies["examples"].append(what)

    def run(self):
        n = 0
        while time.time() < self.deadline:
            n += 1
            try:
                self.one(n)
            except Exception as e:  # noqa: BLE001 - every failure is a counted error
                self.count("errors", f"client {self.idx}: {type(e).__name__}: {e}")

    def one(self, n):
        prompt = f"Client {self.idx} request {n}: tell me about the number {self.rng.randint(0, 10**6)}."
        max_tokens = self.rng.randint(8, 64)
        drop = self.rng.random() < 1 / 16
        body = {
            "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0.7,
            "seed": n, "stream": True, "stream_options": {"include_usage": True},
        }
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            self.count("errors", f"status {r.status}: {r.read()[:200]!r}")
            return
        chunks, usage, done = 0, None, False
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            obj = json.loads(data)
            if "error" in obj:
                self.count("errors", f"stream error {obj['error']}")
                return
            if obj.get("usage"):
                usage = obj["usage"]
            chunks += 1
            if drop and chunks == 3:
                c.close()
                self.count("dropped")
                return
        c.close()
        if not done or usage is None:
            self.count("errors", f"stream ended without [DONE]/usage (done={done})")
            return
        status, tok = post(self.port, "/tokenize", {"prompt": prompt})
        want_prompt = tok.get("count") if status == 200 else None
        if usage.get("completion_tokens") != max_tokens or usage.get("prompt_tokens") != want_prompt:
            self.count("errors", f"usage {usage} vs max_tokens {max_tokens}, prompt {want_prompt}")
            return
        self.count("ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (for its RSS)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=0.4, help="fraction of the run before RSS must be flat")
    a = ap.parse_args()
    tallies, lock = {}, threading.Lock()
    start = time.time()
    deadline = start + a.minutes * 60
    clients = [Client(a.port, i, deadline, tallies, lock) for i in range(a.clients)]
    for c in clients:
        c.start()
    samples = []
    while any(c.is_alive() for c in clients):
        samples.append((time.time() - start, rss_kib(a.pid)))
        time.sleep(10)
    for c in clients:
        c.join()
    time.sleep(1)
    used = metric(a.port, "ondo_kv_blocks_used")
    warm = [kib for t, kib in samples if t >= a.warmup * a.minutes * 60] or [kib for _, kib in samples]
    lo, hi = min(warm), max(warm)
    report = {
        "clients": a.clients, "minutes": a.minutes, "ok": tallies.get("ok", 0),
        "dropped_on_purpose": tallies.get("dropped", 0), "errors": tallies.get("errors", 0),
        "error_examples": tallies.get("examples", []),
        "rss_after_warmup_mib": [round(lo / 1024, 1), round(hi / 1024, 1)],
        "rss_spread": round((hi - lo) / max(lo, 1), 4),
        "kv_blocks_used_at_end": used,
        "generation_tokens_total": metric(a.port, "vllm:generation_tokens_total"),
        "rss_samples_mib": [(round(t), round(k / 1024, 1)) for t, k in samples],
    }
    print(json.dumps(report, indent=1))
    failed = report["errors"] > 0 or report["rss_spread"] > 0.05 or used != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
