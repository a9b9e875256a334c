// Runs chat.js in node against a minimal DOM and a fetch that plays a
// run's events, drops the stream in the middle of an event and serves the
// rest on resume. Exits non-zero when what the page shows is wrong.
// Usage: node harness.js chat.js boot.json (ui_test.go runs it).
const fs = require("fs");
const vm = require("vm");
class Node_ {
  constructor(tag) { this.tagName = tag; this.children = []; this.attrs = {}; this.listeners = {}; this._text = ""; this.hidden = false; this.dataset = {}; this.className = ""; this.value = ""; this.checked = false; this.disabled = false; this.parent = null; }
  appendChild(c) { if (c.parent) c.parent.children = c.parent.children.filter(x => x !== c); c.parent = this; this.children.push(c); return c; }
  insertBefore(c, ref) { c.parent = this; const i = this.children.indexOf(ref); this.children.splice(i < 0 ? this.children.length : i, 0, c); return c; }
  replaceChildren(...cs) { this.children = []; cs.forEach(c => this.appendChild(c)); }
  setAttribute(k, v) { this.attrs[k] = String(v); if (k === "hidden") this.hidden = true; if (k === "checked") this.checked = true; if (k==="id") this.id = v; }
  removeAttribute(k) { delete this.attrs[k]; }
  addEventListener(e, f) { (this.listeners[e] = this.listeners[e] || []).push(f); }
  dispatch(e, ev) { (this.listeners[e] || []).forEach(f => f(Object.assign({ preventDefault() {}, target: this }, ev || {}))); }
  set textContent(v) { this.children = []; this._text = String(v); }
  get textContent() { return this._text + this.children.map(c => c.textContent).join(""); }
  get options() { return this.children; }
  querySelector(sel) { return this.querySelectorAll(sel)[0] || null; }
  querySelectorAll(sel) {
    const out = [];
    const match = n => sel.startsWith(".") ? n.className.split(" ").includes(sel.slice(1)) : sel === 'input[name="server"]' ? (n.tagName === "input" && n.attrs.name === "server") : n.tagName === sel;
    const walk = n => n.children.forEach(c => { if (match(c)) out.push(c); walk(c); });
    walk(this); return out;
  }
  focus() {}
  requestSubmit() { this.dispatch("submit"); }
  get scrollHeight() { return 0; }
}
class Text_ extends Node_ { constructor(t) { super("#text"); this._text = t; } }
const ids = {};
const doc = {
  createElement: t => new Node_(t),
  createTextNode: t => new Text_(t),
  getElementById: id => ids[id] || (ids[id] = Object.assign(new Node_("div"), { id })),
  querySelector: sel => ({ content: "CSRF-TOK" }),
  body: new Node_("body"),
};
const boot = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
doc.body.dataset.boot = JSON.stringify(boot);
ids["agent"] = Object.assign(new Node_("select"), { id: "agent" });
ids["agent"].appendChild(Object.assign(new Node_("option"), { value: "" }));
ids["server-toggles"] = new Node_("fieldset"); ids["server-toggles"].appendChild(new Node_("legend"));
ids["empty-chat"] = new Node_("p");
const log = [];
const failures = [];
function check(cond, what) { if (!cond) failures.push(what); }
// fetch stub
const enc = new TextEncoder();
function stream(chunks, drop) {
  let i = 0;
  return { getReader() { return { read() { if (i < chunks.length) return Promise.resolve({ done: false, value: enc.encode(chunks[i++]) }); if (drop) return Promise.reject(new Error("network drop")); return Promise.resolve({ done: true }); }, cancel() { return Promise.resolve(); } }; } };
}
function sse(evs) { return evs.map(e => `id: run1:${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(Object.assign({ runId: "run1" }, e))}\n\n`).join(""); }
const evs = [
  { seq: 1, type: "run.started", conversationId: "c1" },
  { seq: 2, type: "message.delta", delta: "Hello " },
  { seq: 3, type: "tool.started", tool: { callId: "t1", server: "s", tool: "web_search", summary: "Searching the web for cats" } },
  { seq: 4, type: "tool.finished", tool: { callId: "t1", server: "s", tool: "web_search", summary: "Found 5 results", durationMs: 1234 } },
  { seq: 5, type: "auth.required", auth: { server: "github", url: "https://github.com/login/oauth?x=1" } },
  { seq: 6, type: "tool.started", tool: { callId: "t2", server: "s", tool: "bad", summary: "Calling bad" } },
  { seq: 7, type: "tool.finished", tool: { callId: "t2", server: "s", tool: "bad", summary: "bad failed", isError: true, durationMs: 50 } },
  { seq: 8, type: "message.delta", delta: "world [1]" },
  { seq: 9, type: "run.finished", result: { text: "Hello world [1]", stop: "done", references: [{ index: 1, title: "Cats", url: "https://www.example.com/cats" }, { index: 2, title: "Evil", url: "javascript:alert(1)" }] } },
];
const all = sse(evs);
const cut = all.indexOf("event: tool.finished") + 5; // drop mid-event after seq 3
const first = all.slice(0, cut);
let resumeHeaders = null;
global.fetch = (url, init) => {
  log.push([init && init.method || "GET", url]);
  if (!init || !init.headers || init.headers["X-Switchboard-CSRF"] !== "CSRF-TOK") failures.push("no CSRF header on " + url);
  const json = (status, body) => Promise.resolve({ status, ok: status < 300, json: () => Promise.resolve(body) });
  if (url === "/api/conversations") return json(200, { conversations: [{ id: "c1", title: "Cats" }] });
  if (url === "/api/agents") return json(200, { agents: [{ id: "a1", name: "Researcher" }] });
  if (url === "/api/servers") return json(200, { servers: [{ name: "github", state: "connected", tools: 3, authorization: "needs_authorization", oauthUrl: "https://gh/auth", missingVariables: ["TOKEN"], variables: { TOKEN: false } }, { name: "payroll", state: "failed", lastError: "boom" }] });
  if (url === "/api/chat") {
    if (init.headers["X-Switchboard-CSRF"] !== "CSRF-TOK") throw new Error("no csrf");
    global.sentBody = JSON.parse(init.body);
    // split into odd chunks and drop
    const chunks = []; for (let i = 0; i < first.length; i += 7) chunks.push(first.slice(i, i + 7));
    return Promise.resolve({ status: 200, ok: true, body: stream(chunks, true) });
  }
  if (url === "/api/chat/run1/events") {
    resumeHeaders = init.headers;
    // server resends from after Last-Event-ID; also resend seq 3 to test dedupe
    const after = parseInt(init.headers["Last-Event-ID"].split(":")[1], 10);
    return Promise.resolve({ status: 200, ok: true, body: stream([sse(evs.filter(e => e.seq >= after))], false) });
  }
  return json(404, { error: "nope" });
};
global.window = { prompt: () => "x", confirm: () => true };
global.location = { href: "http://sb.test/chat", assign: u => log.push(["ASSIGN", u]) };
global.document = doc;
global.URL = URL;
global.setTimeout = (f) => setImmediate(f);
vm.runInThisContext(fs.readFileSync(process.argv[2], "utf8"));
setTimeout(() => {
  ids["server-toggles"].querySelectorAll('input[name="server"]').forEach(b => { if (b.attrs.value === "github") b.checked = false; });
  ids["message"].value = "tell me about cats";
  ids["composer"].dispatch("submit");
}, 0);
function dump(n, d = 0) { let s = "  ".repeat(d) + n.tagName + (n.className ? "." + n.className : "") + (n.attrs.href ? " href=" + n.attrs.href : "") + (n.hidden ? " [hidden]" : "") + (n._text ? " " + JSON.stringify(n._text) : "") + "\n"; n.children.forEach(c => s += dump(c, d + 1)); return s; }
(async () => {
  for (let i = 0; i < 300; i++) await new Promise(r => setImmediate(r));
  const msgs = ids["messages"];
  const answer = msgs.querySelectorAll("article")[1];
  check(JSON.stringify(global.sentBody) === JSON.stringify({ message: "tell me about cats", language: "en", servers: [] }), "request body " + JSON.stringify(global.sentBody));
  check(resumeHeaders && resumeHeaders["Last-Event-ID"] === "run1:3", "resumed with Last-Event-ID " + (resumeHeaders && resumeHeaders["Last-Event-ID"]));
  check(answer && answer.querySelector(".text").textContent === "Hello world [1]", "answer text");
  const tools = answer ? answer.querySelectorAll("li").filter(li => li.className === "ok" || li.className === "failed") : [];
  check(tools.length === 2, "two tool lines, got " + tools.length);
  check(tools[0] && tools[0].className === "ok" && tools[0].textContent === "Found 5 results(1.2 s)", "tool 1: " + (tools[0] && tools[0].textContent));
  check(tools[1] && tools[1].className === "failed" && tools[1].textContent.includes("failed · 0.1 s"), "tool 2: " + (tools[1] && tools[1].textContent));
  const links = answer ? answer.querySelectorAll("a") : [];
  check(links.length === 2, "links in the answer: " + links.length);
  check(links[0] && links[0].attrs.href === "https://github.com/login/oauth?x=1", "auth link");
  check(links[1] && links[1].attrs.href === "https://www.example.com/cats" && links[1].attrs.rel === "noopener noreferrer", "source link");
  check(answer && answer.textContent.includes("[1] Cats — example.com"), "source line");
  check(answer && answer.textContent.includes("[2] Evil"), "unlinked source line");
  check(answer && answer.attrs["aria-busy"] === undefined, "aria-busy left on the answer");
  check(ids["stop"].hidden === true && ids["send"].disabled === false, "buttons after the run");
  check(ids["servers"].textContent.includes("Missing: TOKEN"), "missing variables");
  check(ids["servers"].querySelectorAll("form").length === 1, "credentials form");
  check(ids["server-toggles"].querySelectorAll("label").length === 1, "toggles only for chat servers");
  check(ids["conversations"].textContent.includes("Cats"), "conversation list");
  if (failures.length) {
    console.error(failures.join("\n"));
    console.error(dump(msgs));
    process.exit(1);
  }
})();
