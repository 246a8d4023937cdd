// The chat page in headless Chromium (Debian's `chromium`, driven by playwright-core; the test
// tool downloads no browser) against `ondo serve` on SmolLM2-135M-Instruct (Q4_1 GGUF).
//
// Checks: a Korean question's answer streams in (the text grows across >= 3 observations) and
// tokens/s is shown; Stop mid-answer cancels the request on the server (/metrics'
// ondo_requests_aborted_total); a reload keeps the conversation; IME composition keeps Enter from
// sending; a `<script>` in a model answer shows as text and does not run; regenerate and edit;
// no request leaves the server's origin. Screenshots go to target/webui-screenshots/.
//
// Some steps shape what the server answers, and say so where they do it: the Stop step adds
// `ignore_eos` to the page's request (so the answer is long enough to stop); the script,
// regenerate and edit steps answer from a fixed SSE stream (a real model will not reliably write
// `<script>`); the first /v1/models answers 503 once. All go through the page's own code from
// the request to the rendered message.
//
// Env: ONDO_BIN (default target/debug/ondo), ONDO_WEBUI_MODEL (default the SmolLM2 GGUF in
// ONDO_TEST_MODELS, else ~/.cache/ondo-test-models),
// CHROMIUM (default /usr/bin/chromium). Missing model or browser: skipped, or a failure when CI=true.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.ONDO_BIN || join(ROOT, "target/debug/ondo");
const MODELS = process.env.ONDO_TEST_MODELS || join(homedir(), ".cache/ondo-test-models");
const MODEL = process.env.ONDO_WEBUI_MODEL || join(MODELS, "smollm2-135m-instruct-q4_1.gguf");
const BROWSER = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = join(ROOT, "target/webui-screenshots");
const KOREAN = "한국의 역사에 대해 자세히 설명해 주세요.";

function skipOrFail(reason) {
  if (process.env.CI === "true") {
    console.error(`FAIL: ${reason} (required under CI=true)`);
    process.exit(1);
  }
  console.log(`skipped: ${reason}`);
  process.exit(0);
}

for (const [path, what] of [[BIN, "the ondo binary"], [MODEL, "the SmolLM2 GGUF"], [BROWSER, "chromium"]]) {
  if (!existsSync(path)) skipOrFail(`${what} not found at ${path}`);
}

// ---- the server ----

/** `ondo serve` on a free port; resolves once the model is loaded. */
function startServer(extra = []) {
  const child = spawn(BIN, ["serve", MODEL, "--port", "0", "--served-model-name", "smollm2", "-t", "2", ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const server = { child, log: "", origin: null };
  return new Promise((ok, fail) => {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      server.log += chunk;
      // Whole lines only: a chunk may end inside the address.
      server.origin ??= server.log.match(/listening on (http:\/\/\S+)\n/)?.[1] ?? null;
      if (server.origin && server.log.includes("model loaded")) ok(server);
    });
    child.on("exit", (code) => fail(new Error(`ondo serve exited (${code}):\n${server.log}`)));
  });
}

async function abortedTotal(origin) {
  const text = await (await fetch(`${origin}/metrics`)).text();
  return Number(text.match(/^ondo_requests_aborted_total (\d+)/m)?.[1]);
}

/** Wait for `cond()` to hold, checking every 50 ms (a condition, not a timing). */
async function until(what, cond, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- page helpers ----

/** Load the chat page; fail unless the answer is the server's (it carries our CSP). */
async function openPage(page, origin) {
  const resp = await page.goto(`${origin}/`);
  assert.ok(resp?.headers()["content-security-policy"], `${origin}/ did not answer with the chat page`);
}

const lastAnswer = (page) => page.locator(".msg.assistant").last();

/** Record the last answer's text length at every DOM change, in the page. */
async function watchGrowth(page) {
  await page.evaluate(() => {
    window.__lengths = [];
    const box = document.getElementById("messages");
    new MutationObserver(() => {
      const b = box.querySelector(".msg.assistant:last-child .bubble");
      const n = b ? b.textContent.length : 0;
      if (n && n !== window.__lengths.at(-1)) window.__lengths.push(n);
    }).observe(box, { childList: true, subtree: true, characterData: true });
  });
}

async function setSetting(page, id, value) {
  if (await page.locator("#settings").isHidden()) await page.click("#open-settings");
  await page.fill(`#${id}`, String(value));
  await page.locator(`#${id}`).dispatchEvent("change");
}

async function ask(page, text) {
  await page.click("#input");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

// ---- the steps ----

async function koreanStreams(page) {
  await setSetting(page, "temperature", 0);
  await setSetting(page, "max_tokens", 64);
  await page.click("#open-settings");
  await watchGrowth(page);
  await ask(page, KOREAN);
  await lastAnswer(page).locator(".speed").waitFor({ timeout: 120000 });
  const lengths = await page.evaluate(() => window.__lengths);
  const growing = lengths.filter((n, i) => i === 0 || n > lengths[i - 1]);
  assert.ok(growing.length >= 3, `the answer grew in ${growing.length} steps: ${lengths}`);
  const speed = await lastAnswer(page).locator(".speed").textContent();
  assert.match(speed, /^\d+(\.\d)? tokens\/s$/);
  const tokens = await lastAnswer(page).locator(".tokens").textContent();
  assert.match(tokens, /^\d+ prompt · \d+ completion tokens$/);
  assert.equal(await page.locator(".msg.user .bubble").first().textContent(), KOREAN);
  console.log(`ok: Korean answer streamed in ${growing.length} steps; ${tokens}; ${speed}`);
}

async function stopCancels(page, origin) {
  const before = await abortedTotal(origin);
  await setSetting(page, "system", "Answer in numbers.");
  await setSetting(page, "top_p", 0.9);
  await page.click("#open-settings");
  // Test-only: let this one answer run past EOS so it is still going when Stop is pressed.
  let sent = null;
  await page.route("**/v1/chat/completions", (route) => {
    sent = JSON.parse(route.request().postData());
    route.continue({ postData: JSON.stringify({ ...sent, ignore_eos: true, max_tokens: 4000 }) });
  });
  await ask(page, "Count from 1 to 1000, one number per line.");
  await until("the request", async () => sent !== null, 10000);
  // What the page asked for: the settings, the picked model, the usage chunk, the whole history.
  assert.deepEqual(
    { model: sent.model, temperature: sent.temperature, top_p: sent.top_p, max_tokens: sent.max_tokens, stream: sent.stream },
    { model: "smollm2", temperature: 0, top_p: 0.9, max_tokens: 64, stream: true },
  );
  assert.deepEqual(sent.stream_options, { include_usage: true });
  assert.deepEqual(sent.messages.map((m) => m.role), ["system", "user", "assistant", "user"]);
  assert.equal(sent.messages[0].content, "Answer in numbers.");
  assert.equal(sent.messages[1].content, KOREAN);
  await until("some of the answer", async () => ((await lastAnswer(page).locator(".bubble").textContent()) || "").length > 20);
  await page.click("#stop");
  await lastAnswer(page).locator(".stopped").waitFor();
  await until("the server to count the cancel", async () => (await abortedTotal(origin)) === before + 1, 30000);
  await page.unroute("**/v1/chat/completions");
  assert.ok(await page.locator("#send").isVisible(), "Send is back after Stop");
  console.log(`ok: settings, model and history go into the request; Stop aborted it (ondo_requests_aborted_total ${before} -> ${before + 1})`);
}

async function reloadKeeps(page) {
  const before = await page.locator(".msg").allTextContents();
  await page.reload();
  await page.locator(".msg").first().waitFor();
  const after = await page.locator(".msg").allTextContents();
  assert.equal(after.length, before.length, "messages after reload");
  assert.equal(await page.locator(".msg.user .bubble").first().textContent(), KOREAN);
  assert.equal(await page.locator(".conv").count(), 1);
  console.log(`ok: reload kept the conversation (${after.length} messages)`);
}

async function imeEnterDoesNotSend(page) {
  const count = await page.locator(".msg").count();
  await page.click("#input");
  await page.keyboard.type("안녕");
  // What a Korean IME does: composition events around the syllable; Enter inside it commits.
  await page.dispatchEvent("#input", "compositionstart");
  await page.keyboard.press("Enter");
  await page.evaluate(() =>
    document.getElementById("input").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", isComposing: true, bubbles: true })),
  );
  assert.equal(await page.locator(".msg").count(), count, "Enter while composing sent the message");
  assert.equal((await page.inputValue("#input")).trim(), "안녕", "the composed text stays in the box");
  await page.dispatchEvent("#input", "compositionend");
  await page.fill("#input", "");
  console.log("ok: Enter during IME composition does not send");
}

/** Test-only: answer from a fixed SSE stream (see the header). */
function fakeAnswer(page, text) {
  const chunk = (obj) => `data: ${JSON.stringify(obj)}\n\n`;
  const pieces = text.match(/[\s\S]{1,7}/g);
  const body =
    pieces.map((p) => chunk({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: p }, finish_reason: null }] })).join("") +
    chunk({ object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) +
    chunk({ object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 9, completion_tokens: pieces.length, total_tokens: 9 + pieces.length } }) +
    "data: [DONE]\n\n";
  return page.route("**/v1/chat/completions", (route) =>
    route.fulfill({ status: 200, headers: { "content-type": "text/event-stream" }, body }),
  );
}

async function scriptShowsAsText(page) {
  await page.click("#new-chat");
  const answer = '<think>plan <b>quietly</b></think>Here: <script>window.__pwned = 1</script> <img src="x" onerror="window.__pwned = 2">\n\n```js\nlet a = "<b>";\n```';
  await fakeAnswer(page, answer);
  await ask(page, "Show me a script tag");
  await lastAnswer(page).locator(".tokens").waitFor();
  const bubble = lastAnswer(page).locator(".bubble");
  assert.ok((await bubble.textContent()).includes("<script>window.__pwned = 1</script>"), await bubble.innerHTML());
  assert.equal(await bubble.locator("script, img, b").count(), 0, await bubble.innerHTML());
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "the answer's script ran");
  assert.equal(await bubble.locator("details.think").getAttribute("open"), null, "the think block is collapsed");
  assert.equal(await bubble.locator(".code .copy").count(), 1);
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(page.url()).origin });
  await bubble.locator(".code .copy").click();
  await bubble.locator(".code .copy", { hasText: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'let a = "<b>";');
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, "desktop-markdown.png") });
  await page.unroute("**/v1/chat/completions");
  console.log("ok: <script> and <img onerror> in an answer are text; think block collapsed; the code's copy button copies it");
}

async function regenerateAndEdit(page) {
  await fakeAnswer(page, "second answer");
  await lastAnswer(page).locator(".regenerate").click();
  await until("the regenerated answer", async () => (await lastAnswer(page).locator(".bubble").textContent()) === "second answer");
  assert.equal(await page.locator(".msg").count(), 2);
  await page.unroute("**/v1/chat/completions");
  await fakeAnswer(page, "edited answer");
  await page.locator(".msg.user .edit").click();
  await page.fill(".editor textarea", "An edited question");
  await page.click(".editor .primary");
  await until("the answer to the edit", async () => (await lastAnswer(page).locator(".bubble").textContent()) === "edited answer");
  assert.equal(await page.locator(".msg.user .bubble").textContent(), "An edited question");
  await page.unroute("**/v1/chat/completions");
  console.log("ok: regenerate replaces the last answer; edit resends the last question");
}

async function renameAndDelete(page) {
  const before = await page.locator(".conv").count();
  await page.locator(".conv.active .rename").click();
  await page.fill(".rename-input", "마이 대화");
  await page.keyboard.press("Enter");
  await page.locator(".conv.active .title", { hasText: "마이 대화" }).waitFor();
  await page.reload();
  await page.locator(".conv .title", { hasText: "마이 대화" }).waitFor();
  page.once("dialog", (d) => d.accept());
  await page.locator(".conv", { hasText: "마이 대화" }).locator(".delete").click();
  await until("the conversation to go", async () => (await page.locator(".conv").count()) === before - 1, 5000);
  await page.reload();
  assert.equal(await page.locator(".conv", { hasText: "마이 대화" }).count(), 0, "deleted conversation came back");
  console.log("ok: a conversation is renamed and deleted, and both survive a reload");
}

/** A server started with --api-key: the page loads, asks for the key, then works with it. */
async function apiKey(context) {
  const keyed = await startServer(["--api-key", "test-key-123"]);
  const page = await context.newPage(); // its own origin, so its own storage

  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  try {
    await openPage(page, keyed.origin);
    await page.locator("#notice", { hasText: "requires an API key" }).waitFor();
    assert.ok(await page.locator("#api-key").isVisible(), "the key field is shown");
    await page.fill("#api-key", "test-key-123");
    await page.locator("#api-key").dispatchEvent("change");
    await page.locator("#model option[value=smollm2]").waitFor({ state: "attached" });
    assert.ok(await page.locator("#notice").isHidden(), "the notice goes once the key works");
    assert.deepEqual(requests.filter((u) => !u.startsWith(`${keyed.origin}/`)), [], "requests that left the origin");
    console.log("ok: a server with --api-key serves the page, which asks for the key and then lists models");
  } catch (e) {
    await page.screenshot({ path: join(SHOTS, "failure-api-key.png") }).catch(() => {});
    console.error(`--- ondo serve --api-key log (tail) ---\n${keyed.log.slice(-2000)}`);
    throw e;
  } finally {
    await page.close();
    keyed.child.kill("SIGTERM");
  }
}

async function screenshots(page) {
  mkdirSync(SHOTS, { recursive: true });
  await page.locator(".conv .title").last().click(); // the Korean conversation
  await page.screenshot({ path: join(SHOTS, "desktop.png") });
  await page.click("#theme"); // auto -> light
  await page.click("#theme"); // light -> dark
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  await page.screenshot({ path: join(SHOTS, "desktop-dark.png") });
  await page.click("#theme"); // back to auto
  await page.setViewportSize({ width: 390, height: 844 });
  const sidebarRight = () => page.locator("#sidebar").evaluate((el) => el.getBoundingClientRect().right);
  await until("the list to slide away at phone width", async () => (await sidebarRight()) <= 0, 5000);
  await page.screenshot({ path: join(SHOTS, "phone.png") });
  await page.click("#open-sidebar");
  const sidebarLeft = () => page.locator("#sidebar").evaluate((el) => el.getBoundingClientRect().left);
  await until("the list to slide in", async () => (await sidebarLeft()) >= -0.5, 5000);
  await page.screenshot({ path: join(SHOTS, "phone-conversations.png") });
  console.log(`ok: screenshots in ${SHOTS}`);
}

// ---- run ----

rmSync(SHOTS, { recursive: true, force: true }); // no stale screenshots among the artifacts

const server = await startServer();
const browser = await chromium.launch({ executablePath: BROWSER, headless: true, args: ["--no-sandbox", "--no-proxy-server", "--disable-dev-shm-usage"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "ko-KR" });
const page = await context.newPage();
const requests = [];
page.on("request", (r) => requests.push(r.url()));
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
let failed = false;
try {
  // Test-only: the first /v1/models answers 503 as while the model loads; the page asks again.
  let modelCalls = 0;
  await page.route("**/v1/models", (route) =>
    modelCalls++ === 0
      ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":{"message":"The model is still loading"}}' })
      : route.continue(),
  );
  await openPage(page, server.origin);
  await page.locator("#notice", { hasText: "Waiting for the server" }).waitFor();
  await page.locator("#model option[value=smollm2]").waitFor({ state: "attached" });
  assert.ok(await page.locator("#notice").isHidden());
  await page.unroute("**/v1/models");
  console.log("ok: a 503 from /v1/models (model loading) is retried until the model is listed");
  await koreanStreams(page);
  await stopCancels(page, server.origin);
  await reloadKeeps(page);
  await imeEnterDoesNotSend(page);
  await scriptShowsAsText(page);
  await regenerateAndEdit(page);
  await renameAndDelete(page);
  await screenshots(page);
  await apiKey(context);
  const foreign = requests.filter((u) => !u.startsWith(`${server.origin}/`));
  assert.deepEqual(foreign, [], "requests that left the server's origin");
  assert.deepEqual(pageErrors, [], "errors in the page");
  console.log(`ok: all ${requests.length} requests went to ${server.origin}`);
} catch (e) {
  failed = true;
  console.error(e);
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, "failure.png") }).catch(() => {});
  console.error(`--- ondo serve log (tail) ---\n${server.log.slice(-3000)}`);
} finally {
  await browser.close();
  server.child.kill("SIGTERM");
}
process.exit(failed ? 1 : 0);
