#!/usr/bin/env bash
# The chat page's tests: the markdown renderer under node's test runner, then the browser test
# (headless Debian chromium driven by playwright-core, which downloads no browser) against
# `ondo serve` on SmolLM2. Needs node/npm and chromium; ONDO_BIN names the ondo binary
# (default target/debug/ondo). Screenshots land in target/webui-screenshots/.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
node --test markdown.test.mjs
node browser.test.mjs
