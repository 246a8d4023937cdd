#!/usr/bin/env bash
# The openai and LangChain clients against the release `ondo serve` binary.
#
# Creates tests/python/.venv (pinned requirements.txt), builds `ondo` in release, then twice:
# starts `ondo serve` on a free port with an API key, waits for /health (bounded), runs pytest,
# stops the server. First SmolLM2-135M-Instruct Q4_1 (the tests here), then
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tools and structured output, qwen/). Exits non-zero on
# any failure.
# Env: ONDO_BIN (skip the build), ONDO_TEST_MODELS (model folder), CI=true (a missing model fails).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
models="${ONDO_TEST_MODELS:-$HOME/.cache/ondo-test-models}"
key="ondo-test-key-$RANDOM$RANDOM"

for file in smollm2-135m-instruct-q4_1.gguf qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; do
    if [[ ! -f "$models/$file" ]]; then
        echo "tests/python: $models/$file is missing (run ../shared/models/fetch.sh --large)"
        if [[ "${CI:-}" == "true" ]]; then exit 1; fi
        echo "skipping"; exit 0
    fi
done

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


# serve_and_test MODEL NAME PYTEST-ARGS...: one server, one pytest run; returns pytest's status.
serve_and_test() {
    local model="$1" name="$2"; shift 2
    local log port="" ready="" status=0
    log="$(mktemp)"
    "$ONDO_BIN" serve "$model" --port 0 --api-key "$key" --served-model-name "$name" 2>"$log" &
    server=$!
    # The port the server chose, then the model loaded (bounded waits).
    for _ in $(seq 1 300); do
        port="$(sed -n 's#^listening on http://[^ ]*:\([0-9][0-9]*\)$#\1#p' "$log" | head -n 1)"
        [[ -n "$port" ]] && break
        kill -0 "$server" 2>/dev/null || { cat "$log"; echo "ondo serve exited early"; return 1; }
        sleep 0.2
    done
    [[ -n "$port" ]] || { cat "$log"; echo "ondo serve did not report its port"; return 1; }
    local url="http://127.0.0.1:$port"
    for _ in $(seq 1 600); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/health" 2>/dev/null; then
            ready=1; break
        fi
        kill -0 "$server" 2>/dev/null || { cat "$log"; echo "ondo serve exited while loading"; return 1; }
        sleep 0.2
    done
    [[ -n "$ready" ]] || { cat "$log"; echo "ondo serve was not healthy within 120 s"; return 1; }
    ONDO_BASE_URL="$url/v1" ONDO_API_KEY="$key" ONDO_MODEL_NAME="$name" \
        "$venv/bin/pytest" -q -p no:cacheprovider "$@" || status=$?
    if [[ $status -ne 0 ]]; then
        echo "--- ondo serve log (last 40 lines) ---"; tail -n 40 "$log"
    fi
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
    rm -f "$log"
    return $status
}

server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
}
trap cleanup EXIT

status=0
serve_and_test "$models/smollm2-135m-instruct-q4_1.gguf" smollm2-135m-instruct "$here" --ignore="$here/qwen" || status=$?
serve_and_test "$models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" qwen2.5-coder-1.5b-instruct "$here/qwen" || status=$?
exit $status
