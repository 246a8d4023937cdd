// The page's calls to the server it came from (same origin only): /v1/models and streaming
// /v1/chat/completions (server-sent events, parsed here).

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function headers(apiKey) {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

// OpenAI's error body `{"error": {"message"}}` when there is one, else the status line.
async function failure(resp) {
  let message = `HTTP ${resp.status}`;
  try {
    const body = await resp.json();
    if (body?.error?.message) message = body.error.message;
  } catch {
    /* not JSON */
  }
  return new ApiError(message, resp.status);
}

export async function listModels(apiKey) {
  const resp = await fetch("/v1/models", { headers: headers(apiKey) });
  if (!resp.ok) throw await failure(resp);
  const body = await resp.json();
  return (body.data || []).map((m) => m.id);
}

// Stream one chat completion. `on.delta(text)` per content delta, `on.usage(usage)` for the
// usage chunk; resolves with the finish reason. Aborting `signal` closes the connection, which
// the server takes as a cancel.
export async function streamChat(body, apiKey, signal, on) {
  const resp = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(apiKey),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const result = handleEvent(event, on);
      if (result.finish) finish = result.finish;
      if (result.done) return finish;
    }
  }
  return finish;
}

function handleEvent(event, on) {
  const data = event
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
  if (!data) return {};
  if (data === "[DONE]") return { done: true };
  const chunk = JSON.parse(data);
  if (chunk.error) throw new ApiError(chunk.error.message || "the server reported an error", 500);
  if (chunk.usage) on.usage(chunk.usage);
  const choice = chunk.choices?.[0];
  if (choice?.delta?.content) on.delta(choice.delta.content);
  return { finish: choice?.finish_reason || null };
}
