// ondo's chat page: conversations kept in the browser, answers streamed from the server it was
// loaded from. Data flow: the composer -> `send` -> `generate` (one streaming request, abortable
// with Stop) -> deltas into the last message -> rendered with markdown.mjs -> saved by store.mjs.

import { renderAnswer, esc } from "./markdown.mjs";
import * as store from "./store.mjs";
import { listModels, streamChat } from "./api.mjs";

const $ = (id) => document.getElementById(id);
const settings = store.loadSettings();
let convs = store.loadConversations();
let current = convs.find((c) => c.id === store.loadCurrent()) || null;
/** The request in flight: {controller, conv, msg}. */
let running = null;
/** Which <think> sections of a message the reader opened. */
const openThinks = new WeakMap();

// ---- start ----

applyTheme();
bindSettings();
bindComposer();
bindSidebar();
bindMessages();
markInterrupted();
renderSidebar();
renderMessages();
loadModels();

/** A message still pending when the page was closed will never finish. */
function markInterrupted() {
  for (const c of convs) {
    for (const m of c.messages) {
      if (m.pending) {
        delete m.pending;
        m.finish = m.finish || "interrupted";
      }
    }
  }
}

// ---- models and the API key ----

async function loadModels() {
  const select = $("model");
  try {
    const ids = await listModels(settings.apiKey);
    select.replaceChildren(...ids.map((id) => new Option(id, id)));
    if (ids.includes(settings.model)) select.value = settings.model;
    else settings.model = ids[0] || "";
    notice("");
  } catch (e) {
    select.replaceChildren(new Option("(no model)", ""));
    if (e.status === 401) needKey();
    else if (e.status === 503) {
      // The server listens while the model loads: ask again shortly.
      notice(`Waiting for the server: ${e.message}`);
      setTimeout(loadModels, 2000);
    } else notice(`Could not list models: ${e.message}`);
  }
}

/** The server wants a key: show the field and say so. */
function needKey() {
  $("key-row").hidden = false;
  $("settings").hidden = false;
  notice("This server requires an API key: enter it under Settings.");
  $("api-key").focus();
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ---- settings and theme ----

function bindSettings() {
  const fields = { system: "system", temperature: "temperature", top_p: "top_p", max_tokens: "max_tokens" };
  for (const [id, key] of Object.entries(fields)) {
    const el = $(id);
    el.value = settings[key];
    el.addEventListener("change", () => {
      settings[key] = el.type === "number" ? Number(el.value) : el.value;
      store.saveSettings(settings);
    });
  }
  const key = $("api-key");
  key.value = settings.apiKey;
  $("key-row").hidden = !settings.apiKey;
  key.addEventListener("change", () => {
    settings.apiKey = key.value.trim();
    store.saveSettings(settings);
    loadModels();
  });
  $("model").addEventListener("change", () => {
    settings.model = $("model").value;
    store.saveSettings(settings);
  });
  $("open-settings").addEventListener("click", () => ($("settings").hidden = !$("settings").hidden));
  $("theme").addEventListener("click", () => {
    const order = ["auto", "light", "dark"];
    settings.theme = order[(order.indexOf(settings.theme) + 1) % order.length];
    store.saveSettings(settings);
    applyTheme();
  });
}

function applyTheme() {
  if (settings.theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = settings.theme;
  $("theme").title = `Theme: ${settings.theme}`;
}

// ---- the composer (Enter sends, except while an IME is composing) ----

function bindComposer() {
  const input = $("input");
  let composing = false;
  input.addEventListener("compositionstart", () => (composing = true));
  input.addEventListener("compositionend", () => (composing = false));
  input.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.shiftKey) return;
    // Korean, Japanese, Chinese input: Enter while composing commits the syllable, not the message.
    if (e.isComposing || composing || e.keyCode === 229) return;
    e.preventDefault();
    submit();
  });
  input.addEventListener("input", () => grow(input));
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("stop").addEventListener("click", stop);
}

function grow(el) {
  el.style.height = "auto";
  el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
}

function submit() {
  const input = $("input");
  const text = input.value.trim();
  if (!text || running) return;
  input.value = "";
  grow(input);
  send(text);
}

function stop() {
  if (running) running.controller.abort();
}

// ---- conversations ----

function send(text) {
  if (!current) {
    current = store.newConversation();
    convs.unshift(current);
  }
  current.messages.push({ role: "user", content: text });
  generate(current);
}

/** Ask for the next assistant message of `conv` and stream it in. */
async function generate(conv) {
  const msg = { role: "assistant", content: "", pending: true };
  const request = requestBody(conv);
  conv.messages.push(msg);
  conv.updated = Date.now();
  running = { controller: new AbortController(), conv, msg };
  persist();
  renderSidebar();
  renderMessages();
  setRunning(true);
  const t = { start: performance.now(), first: null, usage: null };
  let saved = Date.now();
  try {
    msg.finish = await streamChat(request, settings.apiKey, running.controller.signal, {
      delta(text) {
        t.first ??= performance.now();
        msg.content += text;
        scheduleUpdate(msg);
        if (Date.now() - saved > 1000) (saved = Date.now()), persist();
      },
      usage(u) {
        t.usage = u;
      },
    });
  } catch (e) {
    if (e.name === "AbortError") msg.finish = "stopped";
    else msg.error = e.message;
    if (e.status === 401) needKey();
  }
  msg.stats = stats(t, performance.now());
  delete msg.pending;
  running = null;
  setRunning(false);
  persist();
  renderMessages();
}

/** The request: system prompt, the conversation so far (failed answers left out), sampling. */
function requestBody(conv) {
  const messages = conv.messages.filter((m) => !m.error).map((m) => ({ role: m.role, content: m.content }));
  if (settings.system.trim()) messages.unshift({ role: "system", content: settings.system });
  const body = { messages, temperature: settings.temperature, top_p: settings.top_p, max_tokens: settings.max_tokens };
  if (settings.model) body.model = settings.model;
  return body;
}

/** Token counts from the usage chunk; speed over the tokens after the first. */
function stats(t, end) {
  if (!t.usage) return null;
  const n = Number(t.usage.completion_tokens) || 0;
  const secs = t.first === null ? 0 : (end - t.first) / 1000;
  return {
    prompt_tokens: Number(t.usage.prompt_tokens) || 0,
    completion_tokens: n,
    // No figure when the tokens came in one burst (nothing streamed to time).
    tokens_per_s: n > 1 && secs >= 0.01 ? (n - 1) / secs : null,
    ttft_s: t.first === null ? null : (t.first - t.start) / 1000,
  };
}

function setRunning(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
}

function persist() {
  store.saveConversations(convs);
  store.saveCurrent(current ? current.id : null);
}

function regenerate() {
  const last = current?.messages.at(-1);
  if (running || !last || last.role !== "assistant") return;
  current.messages.pop();
  generate(current);
}

/** Replace the last user message's bubble with an editor; saving drops what came after it. */
function editLast(bubble) {
  const index = current.messages.findLastIndex((m) => m.role === "user");
  if (running || index < 0) return;
  const editor = document.createElement("div");
  editor.className = "editor";
  const area = document.createElement("textarea");
  area.value = current.messages[index].content;
  const save = button("Save & send", "primary", () => {
    const text = area.value.trim();
    if (!text) return;
    current.messages.splice(index);
    current.messages.push({ role: "user", content: text });
    generate(current);
  });
  editor.append(area, save, button("Cancel", "", renderMessages));
  bubble.replaceChildren(editor);
  area.focus();
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

// ---- the sidebar: switch, rename, delete ----

function bindSidebar() {
  $("new-chat").addEventListener("click", () => {
    if (running) return;
    current = null;
    persist();
    renderSidebar();
    renderMessages();
    closeSidebar();
    $("input").focus();
  });
  $("open-sidebar").addEventListener("click", () => $("sidebar").classList.add("open"));
  $("close-sidebar").addEventListener("click", closeSidebar);
  // On a phone the list covers the chat: a tap beside it or Escape closes it; Escape also stops.
  $("messages").addEventListener("click", closeSidebar);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    closeSidebar();
    stop();
  });
}

function closeSidebar() {
  $("sidebar").classList.remove("open");
}

function renderSidebar() {
  const list = $("conversations");
  const sorted = [...convs].sort((a, b) => b.updated - a.updated);
  list.replaceChildren(...sorted.map(conversationItem));
}

function conversationItem(conv) {
  const li = document.createElement("li");
  li.className = conv === current ? "conv active" : "conv";
  li.dataset.id = conv.id;
  const open = button(store.titleFrom(conv), "title", () => {
    if (running) return;
    current = conv;
    persist();
    renderSidebar();
    renderMessages();
    closeSidebar();
  });
  const rename = button("✎", "icon rename", () => renameItem(li, conv));
  rename.setAttribute("aria-label", "Rename");
  const del = button("×", "icon delete", () => deleteConversation(conv));
  del.setAttribute("aria-label", "Delete");
  li.append(open, rename, del);
  return li;
}

function renameItem(li, conv) {
  const input = document.createElement("input");
  input.className = "rename-input";
  input.value = store.titleFrom(conv);
  let finished = false; // Enter, then the blur of the removed input: save once
  const done = (keep) => {
    if (finished) return;
    finished = true;
    if (keep && input.value.trim()) conv.title = input.value.trim();
    persist();
    renderSidebar();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing && e.keyCode !== 229) done(true);
    if (e.key === "Escape") done(false);
  });
  input.addEventListener("blur", () => done(true));
  li.replaceChildren(input);
  input.focus();
  input.select();
}

function deleteConversation(conv) {
  if (running?.conv === conv) return;
  if (!confirm(`Delete “${store.titleFrom(conv)}”?`)) return;
  convs = convs.filter((c) => c !== conv);
  if (current === conv) current = null;
  persist();
  renderSidebar();
  renderMessages();
}

// ---- messages ----

function bindMessages() {
  const box = $("messages");
  box.addEventListener("click", (e) => {
    const copy = e.target.closest(".copy");
    if (copy) copyCode(copy);
  });
  // <details> toggles do not bubble; catch them on the way down.
  box.addEventListener(
    "toggle",
    (e) => {
      const details = e.target;
      if (!details.matches?.("details.think")) return;
      const msg = current?.messages[Number(details.closest(".msg")?.dataset.index)];
      if (!msg) return;
      const set = openThinks.get(msg) || new Set();
      const i = Number(details.dataset.think);
      if (details.open) set.add(i);
      else set.delete(i);
      openThinks.set(msg, set);
    },
    true,
  );
}

async function copyCode(btn) {
  const code = btn.closest(".code").querySelector("code").textContent;
  try {
    await navigator.clipboard.writeText(code);
  } catch {
    // Not a secure context (plain http on another host): the old way.
    const area = document.createElement("textarea");
    area.value = code;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  btn.textContent = "Copied";
  setTimeout(() => (btn.textContent = "Copy"), 1500);
}

function renderMessages() {
  const box = $("messages");
  const msgs = current ? current.messages : [];
  if (!msgs.length) {
    box.innerHTML = `<div class="empty"><h1>ondo</h1><p>Ask anything. Answers stay on this machine; conversations are kept in this browser.</p></div>`;
    return;
  }
  const lastUser = msgs.findLastIndex((m) => m.role === "user");
  box.replaceChildren(...msgs.map((m, i) => messageNode(m, i, i === lastUser, i === msgs.length - 1)));
  box.scrollTop = box.scrollHeight;
}

function messageNode(msg, index, isLastUser, isLast) {
  const node = document.createElement("div");
  node.className = `msg ${msg.role}`;
  node.dataset.index = index;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  fillBubble(bubble, msg);
  node.append(bubble);
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.innerHTML = metaHtml(msg);
  if (!running && isLastUser && msg.role === "user") meta.append(button("Edit", "link edit", () => editLast(bubble)));
  if (!running && isLast && msg.role === "assistant") meta.append(button("Regenerate", "link regenerate", regenerate));
  node.append(meta);
  return node;
}

function fillBubble(bubble, msg) {
  if (msg.role === "user") {
    bubble.textContent = msg.content;
    return;
  }
  bubble.innerHTML = renderAnswer(msg.content, openThinks.get(msg)) + (msg.pending ? `<span class="cursor"></span>` : "");
  if (msg.error) bubble.insertAdjacentHTML("beforeend", `<p class="error">${esc(msg.error)}</p>`);
}

function metaHtml(msg) {
  const parts = [];
  const s = msg.stats;
  if (s) {
    parts.push(`<span class="tokens">${s.prompt_tokens} prompt · ${s.completion_tokens} completion tokens</span>`);
    if (s.tokens_per_s !== null) parts.push(`<span class="speed">${s.tokens_per_s.toFixed(1)} tokens/s</span>`);
  }
  if (msg.finish === "stopped") parts.push(`<span class="stopped">stopped</span>`);
  if (msg.finish === "interrupted") parts.push(`<span class="stopped">interrupted</span>`);
  if (msg.finish === "length") parts.push(`<span>max_tokens reached</span>`);
  return parts.join("");
}

let updateQueued = false;
/** Re-render the streaming message at most once a frame. */
function scheduleUpdate(msg) {
  if (updateQueued) return;
  updateQueued = true;
  requestAnimationFrame(() => {
    updateQueued = false;
    if (!current || current.messages.at(-1) !== msg) return;
    const box = $("messages");
    const bubble = box.querySelector(".msg:last-child .bubble");
    if (!bubble) return;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    fillBubble(bubble, msg);
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
}
