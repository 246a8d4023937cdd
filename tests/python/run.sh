#!/usr/bin/env bash
# The openai and LangChain clients against the release `ondo serve` binary.
#
# Creates tests/python/.venv (pinned requirements.txt), builds `ondo` in release, starts
# `ondo serve` on SmolLM2-135M-Instruct Q4_1 on a free port with an API key, waits for /health
# (bounded), runs pytest, stops the server. Exits non-zero on any failure.
# Env: ONDO_BIN (skip the build), ONDO_TEST_MODELS (model folder), CI=true (a missing model fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model="${ONDO_TEST_MODELS:-$HOME/.cache/ondo-test-models}/smollm2-135m-instruct-q4_1.gguf"
name="smollm2-135m-instruct"
key="ondo-test-key-$RANDOM$RANDOM"

if [[ ! -f "$model" ]]; then
    echo "tests/python: $model is missing (run ../shared/models/fetch.sh)"
    if [[ "${CI:-}" == "true" ]]; then exit 1; fi
    echo "skipping"; exit 0
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/pytest" ]] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi

if [[ -z "${ONDO_BIN:-}" ]]; then
    (cd "$root" && cargo build --quiet --release -p ondo)
    ONDO_BIN="${CARGO_TARGET_DIR:-$root/target}/release/ondo"
fi

log="$(mktemp)"
"$ONDO_BIN" serve "$model" --port 0 --api-key "$key" --served-model-name "$name" 2>"$log" &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

# The port the server chose, then the model loaded (bounded waits).
port=""
for _ in $(seq 1 300); do
    port="$(sed -n 's#^listening on http://[^ ]*:\([0-9][0-9]*\)$#\1#p' "$log" | head -n 1)"
    [[ -n "$port" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$log"; echo "ondo serve exited early"; exit 1; }
    sleep 0.2
done
[[ -n "$port" ]] || { cat "$log"; echo "ondo serve did not report its port"; exit 1; }
url="http://127.0.0.1:$port"
ready=""
for _ in $(seq 1 600); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/health" 2>/dev/null; then
        ready=1; break
    fi
    kill -0 "$server" 2>/dev/null || { cat "$log"; echo "ondo serve exited while loading"; exit 1; }
    sleep 0.2
done
[[ -n "$ready" ]] || { cat "$log"; echo "ondo serve was not healthy within 120 s"; exit 1; }

status=0
ONDO_BASE_URL="$url/v1" ONDO_API_KEY="$key" ONDO_MODEL_NAME="$name" \
    "$venv/bin/pytest" -q -p no:cacheprovider "$here" || status=$?
if [[ $status -ne 0 ]]; then
    echo "--- ondo serve log (last 40 lines) ---"; tail -n 40 "$log"
fi
exit $status
