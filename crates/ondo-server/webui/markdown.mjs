// Markdown -> HTML for model answers, written for ondo's chat page.
//
// Safety rule: every piece of the model's text goes through `esc` before any markup is added, so
// raw HTML in an answer (`<script>`, `<img onerror>`) is shown as text. The only tags in the output
// are the ones this file writes. Links keep only http(s) and mailto targets; images become links
// (an answer must not make the page load anything).
//
// Supported: fenced code blocks (with a copy button), headings, lists, block quotes, rules,
// paragraphs; inline code, bold, italics, strikethrough, links. `<think>...</think>` sections are
// split off first and rendered collapsed.

export function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

// `<think>` sections of an answer: [{think: bool, text, open: bool}], `open` = not yet closed.
export function splitThink(text) {
  const parts = [];
  let rest = text;
  for (;;) {
    const start = rest.indexOf("<think>");
    if (start < 0) break;
    if (start > 0) parts.push({ think: false, text: rest.slice(0, start) });
    rest = rest.slice(start + 7);
    const end = rest.indexOf("</think>");
    if (end < 0) {
      parts.push({ think: true, text: rest, open: true });
      return parts;
    }
    parts.push({ think: true, text: rest.slice(0, end), open: false });
    rest = rest.slice(end + 8);
  }
  if (rest) parts.push({ think: false, text: rest });
  return parts;
}

// An answer: think sections as <details> (closed unless `openThinks` has their index), the rest
// as markdown.
export function renderAnswer(text, openThinks = new Set()) {
  return splitThink(text)
    .map((p, i) => {
      if (!p.think) return renderMarkdown(p.text);
      const label = p.open ? "Thinking…" : "Thought";
      const open = openThinks.has(i) ? " open" : "";
      return `<details class="think" data-think="${i}"${open}><summary>${label}</summary>${renderMarkdown(p.text)}</details>`;
    })
    .join("");
}

export function renderMarkdown(src) {
  const lines = src.replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/);
    if (fence) {
      i = codeBlock(lines, i, fence, out);
    } else if (/^\s*$/.test(line)) {
      i++;
    } else if (/^#{1,6}\s/.test(line)) {
      const level = line.match(/^#+/)[0].length;
      out.push(`<h${level}>${inline(line.slice(level).trim())}</h${level}>`);
      i++;
    } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push("<hr>");
      i++;
    } else if (/^\s*>/.test(line)) {
      i = quote(lines, i, out);
    } else if (listMarker(line)) {
      i = list(lines, i, out);
    } else {
      i = paragraph(lines, i, out);
    }
  }
  return out.join("");
}

function codeBlock(lines, i, fence, out) {
  const marker = fence[1];
  const body = [];
  i++;
  while (i < lines.length && !lines[i].trim().startsWith(marker)) body.push(lines[i++]);
  const lang = fence[2] ? ` data-lang="${esc(fence[2])}"` : "";
  const label = fence[2] ? `<span class="lang">${esc(fence[2])}</span>` : "";
  out.push(
    `<div class="code"${lang}><div class="code-bar">${label}<button type="button" class="copy">Copy</button></div>` +
      `<pre><code>${esc(body.join("\n"))}</code></pre></div>`,
  );
  return i + 1;
}

function quote(lines, i, out) {
  const body = [];
  while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
  out.push(`<blockquote>${renderMarkdown(body.join("\n"))}</blockquote>`);
  return i;
}

function listMarker(line) {
  const m = line.match(/^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/);
  return m && { indent: m[1].length, ordered: /\d/.test(m[2]), start: parseInt(m[2], 10), text: m[3] };
}

// A list of items at one indent; deeper-indented lines belong to the item above them.
function list(lines, i, out) {
  const first = listMarker(lines[i]);
  const items = [];
  while (i < lines.length) {
    const m = listMarker(lines[i]);
    if (m && m.indent <= first.indent && m.ordered === first.ordered) {
      items.push([m.text]);
      i++;
    } else if (items.length && /^\s+\S/.test(lines[i]) && (!m || m.indent > first.indent)) {
      items[items.length - 1].push(lines[i].slice(Math.min(first.indent + 2, lines[i].search(/\S/))));
      i++;
    } else break;
  }
  const tag = first.ordered ? "ol" : "ul";
  const start = first.ordered && first.start !== 1 ? ` start="${first.start}"` : "";
  const body = items.map((it) => `<li>${it.length > 1 ? renderMarkdown(it.join("\n")) : inline(it[0])}</li>`);
  out.push(`<${tag}${start}>${body.join("")}</${tag}>`);
  return i;
}

function paragraph(lines, i, out) {
  const body = [];
  while (
    i < lines.length &&
    !/^\s*$/.test(lines[i]) &&
    !/^\s*(`{3,}|~{3,})/.test(lines[i]) &&
    !/^#{1,6}\s/.test(lines[i]) &&
    !/^\s*>/.test(lines[i]) &&
    !(body.length && listMarker(lines[i]))
  ) {
    body.push(lines[i++]);
  }
  out.push(`<p>${body.map(inline).join("<br>")}</p>`);
  return i;
}

// Inline markup over one escaped line. Code spans are cut out first so nothing inside them is
// touched; the rest is escaped, then bold/italic/strike/links are added to the escaped text.
export function inline(text) {
  return text
    .split(/(`+[^`]*?`+)/)
    .map((part, k) => (k % 2 ? `<code>${esc(part.replace(/^`+|`+$/g, ""))}</code>` : spans(esc(part))))
    .join("");
}

function spans(s) {
  return s
    .replace(/!?\[([^\]]*)\]\(([^)\s]+)\)/g, (all, label, url) => link(label, url))
    .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|\s)__(?=\S)([^_]*?\S)__(?![\w])/g, "$1<strong>$2</strong>")
    .replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\w)/g, "$1<em>$2</em>")
    .replace(/(^|\s)_(?=\S)([^_]*?\S)_(?!\w)/g, "$1<em>$2</em>")
    .replace(/~~(?=\S)([^~]*?\S)~~/g, "<del>$1</del>");
}

// `url` is already escaped (no quotes or angle brackets left in it).
function link(label, url) {
  if (!/^(https?:\/\/|mailto:)/i.test(url)) return label;
  return `<a href="${url}" target="_blank" rel="noopener noreferrer">${label || url}</a>`;
}
