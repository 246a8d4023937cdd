// What the chat page keeps in the browser (localStorage): conversations and settings.
//
// A conversation is {id, title, created, updated, messages: [{role, content, stats?}]}; `stats`
// on an assistant message holds the usage chunk's counts and the measured speed.

const CONVS = "ondo.conversations";
const CURRENT = "ondo.current";
const SETTINGS = "ondo.settings";

export const DEFAULT_SETTINGS = {
  model: "",
  system: "",
  temperature: 0.7,
  top_p: 1,
  max_tokens: 1024,
  apiKey: "",
  theme: "auto",
};

function read(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    console.warn("could not save to localStorage:", e);
  }
}

export function loadSettings() {
  return { ...DEFAULT_SETTINGS, ...read(SETTINGS, {}) };
}

export function saveSettings(s) {
  write(SETTINGS, s);
}

export function loadConversations() {
  const list = read(CONVS, []);
  return Array.isArray(list) ? list.filter((c) => c && c.id && Array.isArray(c.messages)) : [];
}

export function saveConversations(list) {
  write(CONVS, list);
}

export function loadCurrent() {
  return read(CURRENT, null);
}

export function saveCurrent(id) {
  write(CURRENT, id);
}

export function newConversation() {
  const now = Date.now();
  return { id: `c${now.toString(36)}${Math.random().toString(36).slice(2, 7)}`, title: "", created: now, updated: now, messages: [] };
}

// A title from the first user message: its first line, cut at 40 characters.
export function titleFrom(conv) {
  if (conv.title) return conv.title;
  const first = conv.messages.find((m) => m.role === "user");
  if (!first) return "New chat";
  const line = first.content.trim().split("\n")[0];
  return line.length > 40 ? `${line.slice(0, 40)}…` : line || "New chat";
}
