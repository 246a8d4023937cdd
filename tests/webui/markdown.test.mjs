// The chat page's markdown renderer (crates/ondo-server/webui/markdown.mjs) under node's test
// runner: raw HTML in an answer stays text, code blocks get a copy button, think blocks fold.

import { test } from "node:test";
import assert from "node:assert/strict";
import { renderAnswer, renderMarkdown, splitThink } from "../../crates/ondo-server/webui/markdown.mjs";

test("raw HTML is escaped, never emitted as tags", () => {
  const html = renderMarkdown('hi <script>alert(1)</script> <img src=x onerror="alert(2)"> **b**');
  assert.ok(!html.includes("<script"), html);
  assert.ok(!html.includes("<img"), html);
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), html);
  assert.ok(html.includes("<strong>b</strong>"), html);
});

test("HTML inside code blocks and spans is escaped too", () => {
  const html = renderMarkdown("```html\n<b onclick=x>hi</b>\n```\nand `<i>`");
  assert.ok(html.includes("&lt;b onclick=x&gt;hi&lt;/b&gt;"), html);
  assert.ok(html.includes("<code>&lt;i&gt;</code>"), html);
  assert.ok(html.includes('class="copy"') && html.includes('data-lang="html"'), html);
});

test("links keep only http(s) and mailto; images are not loaded", () => {
  const html = renderMarkdown("[ok](https://example.com/a?b=1&c=2) [bad](javascript:alert(1)) ![pic](https://x.test/p.png)");
  assert.ok(html.includes('<a href="https://example.com/a?b=1&amp;c=2"'), html);
  assert.ok(!html.includes("javascript:"), html);
  assert.ok(!html.includes("<img"), html);
  const quoted = renderMarkdown('[x](https://e.com/"onmouseover="alert(1))');
  assert.ok(!/href="[^"]*"onmouseover/.test(quoted), quoted);
});

test("blocks: headings, lists, quotes, paragraphs", () => {
  const html = renderMarkdown("# Title\n\n- one\n- two\n\n1. a\n2. b\n\n> quoted\n\nplain *em* ~~gone~~");
  assert.ok(html.startsWith("<h1>Title</h1>"), html);
  assert.ok(html.includes("<ul><li>one</li><li>two</li></ul>"), html);
  assert.ok(html.includes("<ol><li>a</li><li>b</li></ol>"), html);
  assert.ok(html.includes("<blockquote><p>quoted</p></blockquote>"), html);
  assert.ok(html.includes("<em>em</em>") && html.includes("<del>gone</del>"), html);
  assert.equal(renderMarkdown("x.__a = b.__ and snake_case_name"), "<p>x.__a = b.__ and snake_case_name</p>");
  assert.equal(renderMarkdown("__bold__ _it_"), "<p><strong>bold</strong> <em>it</em></p>");
});

test("think sections are split off, closed or still open", () => {
  assert.deepEqual(splitThink("<think>hmm</think>Answer"), [
    { think: true, text: "hmm", open: false },
    { think: false, text: "Answer" },
  ]);
  assert.deepEqual(splitThink("<think>still going"), [{ think: true, text: "still going", open: true }]);
  const html = renderAnswer("<think>secret <b>x</b></think>Done");
  assert.ok(html.startsWith('<details class="think" data-think="0"><summary>Thought</summary>'), html);
  assert.ok(!html.includes("<b>") && html.endsWith("<p>Done</p>"), html);
  assert.ok(renderAnswer("<think>a</think>b", new Set([0])).includes(" open>"));
});
