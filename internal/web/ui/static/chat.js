// Switchboard chat UI: plain script, no dependencies. It calls /api with
// the browser's session cookie and the page's CSRF token, streams a run's
// Server-Sent Events from fetch (EventSource cannot POST or send headers)
// and resumes with Last-Event-ID when the stream drops.
(function () {
  "use strict";

  var boot = JSON.parse(document.body.dataset.boot);
  var S = boot.strings;
  var csrf = document.querySelector('meta[name="sb-csrf"]').content;

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    conversations: $("conversations"),
    noConversations: $("no-conversations"),
    newChat: $("new-chat"),
    agent: $("agent"),
    toggles: $("server-toggles"),
    togglesOff: $("toggles-off"),
    servers: $("servers"),
    refresh: $("refresh-servers"),
    messages: $("messages"),
    empty: $("empty-chat"),
    status: $("status"),
    form: $("composer"),
    input: $("message"),
    send: $("send"),
    stop: $("stop")
  };

  var state = {
    conversationId: "",
    run: null,            // the run being shown, see startRun
    toggled: {}           // server name -> false when the user unchecked it
  };

  // fmt fills %s and %d in order.
  function fmt(s) {
    var args = Array.prototype.slice.call(arguments, 1);
    return String(s).replace(/%[sd]/g, function () { return args.length ? String(args.shift()) : ""; });
  }

  function h(tag, attrs, children) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") n.textContent = v;
        else if (k === "class") n.className = v;
        else if (k === "on") Object.keys(v).forEach(function (e) { n.addEventListener(e, v[e]); });
        else n.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return n;
  }

  // safeURL returns u when it is an http(s) URL, so that a tool result or
  // server status can never put a javascript: link on the page.
  function safeURL(u) {
    try {
      var p = new URL(u, location.href);
      return (p.protocol === "https:" || p.protocol === "http:") ? p.href : null;
    } catch (e) {
      return null;
    }
  }

  function domainOf(u) {
    try { return new URL(u).hostname.replace(/^www\./, ""); } catch (e) { return ""; }
  }

  function setStatus(text) { el.status.textContent = text || ""; }

  function signedOut() {
    setStatus(S.signed_out);
    location.assign(boot.loginUrl);
  }

  function headers(extra) {
    var hd = { "Accept": "application/json" };
    hd[boot.csrfHeader] = csrf;
    Object.keys(extra || {}).forEach(function (k) { hd[k] = extra[k]; });
    return hd;
  }

  // api calls a JSON endpoint; it throws an Error with the server's
  // message on failure.
  function api(method, path, body) {
    var init = { method: method, headers: headers(), credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      if (res.status === 401) {
        signedOut();
        throw new Error(S.signed_out);
      }
      if (res.status === 204) return null;
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) {
          var err = new Error((data && (data.error_description || data.error)) || ("HTTP " + res.status));
          err.status = res.status;
          err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  // ---- conversations ----

  function loadConversations() {
    return api("GET", "/api/conversations").then(function (data) {
      renderConversations((data && data.conversations) || []);
    }).catch(function (e) {
      if (e.status === 501) { // conversations are not stored
        el.conversations.replaceChildren();
        el.noConversations.hidden = false;
        return;
      }
      setStatus(fmt(S.load_failed, e.message));
    });
  }

  function renderConversations(list) {
    el.noConversations.hidden = list.length > 0;
    el.conversations.replaceChildren.apply(el.conversations, list.map(function (c) {
      var title = c.title || S.untitled;
      return h("li", null, [
        h("button", {
          type: "button", class: "open", text: title, title: title,
          "aria-current": c.id === state.conversationId ? "true" : null,
          on: { click: function () { openConversation(c.id); } }
        }),
        h("button", {
          type: "button", class: "small-action", text: S.rename, "aria-label": fmt(S.rename_label, title),
          on: { click: function () { renameConversation(c.id, title); } }
        }),
        h("button", {
          type: "button", class: "small-action", text: S.delete, "aria-label": fmt(S.delete_label, title),
          on: { click: function () { deleteConversation(c.id, title); } }
        })
      ]);
    }));
  }

  function renameConversation(id, title) {
    var t = window.prompt(S.rename_prompt, title);
    if (t === null || !t.trim()) return;
    api("PATCH", "/api/conversations/" + encodeURIComponent(id), { title: t.trim() })
      .then(loadConversations)
      .catch(function (e) { setStatus(fmt(S.error, e.message)); });
  }

  function deleteConversation(id, title) {
    if (!window.confirm(fmt(S.delete_confirm, title))) return;
    api("DELETE", "/api/conversations/" + encodeURIComponent(id)).then(function () {
      if (id === state.conversationId) newChat();
      return loadConversations();
    }).catch(function (e) { setStatus(fmt(S.error, e.message)); });
  }

  function detachRun() {
    // The run goes on at the server and is stored with its conversation;
    // only this page stops following it.
    if (state.run && !state.run.done) state.run.abort.abort();
    state.run = null;
    setRunning(false);
  }

  function clearMessages() {
    el.messages.replaceChildren(el.empty);
    el.empty.hidden = false;
  }

  function newChat() {
    detachRun();
    state.conversationId = "";
    clearMessages();
    setStatus("");
    loadConversations();
    el.input.focus();
  }

  function openConversation(id) {
    detachRun();
    api("GET", "/api/conversations/" + encodeURIComponent(id)).then(function (c) {
      state.conversationId = c.id;
      clearMessages();
      (c.messages || []).forEach(function (m) {
        if (m.role === "user") {
          addUserMessage(m.text);
          return;
        }
        var v = addAssistantMessage();
        (m.toolCalls || []).forEach(function (tc) {
          toolStarted(v, { callId: tc.id, summary: tc.summary });
          toolFinished(v, { callId: tc.id, summary: tc.summary, isError: tc.isError, durationMs: tc.durationMs });
        });
        v.text.textContent = m.text || "";
        renderSources(v, m.references);
        v.box.removeAttribute("aria-busy");
      });
      loadConversations();
      scrollDown();
    }).catch(function (e) { setStatus(fmt(S.load_failed, e.message)); });
  }

  // ---- agents and servers ----

  function loadAgents() {
    return api("GET", "/api/agents").then(function (data) {
      var keep = el.agent.value;
      var opts = [el.agent.options[0]];
      ((data && data.agents) || []).forEach(function (a) {
        opts.push(h("option", { value: a.id, text: a.name || a.id }));
      });
      el.agent.replaceChildren.apply(el.agent, opts);
      el.agent.value = keep;
      if (el.agent.value !== keep) el.agent.value = "";
      agentChanged();
    }).catch(function (e) { setStatus(fmt(S.load_failed, e.message)); });
  }

  function agentChanged() {
    var chatMenu = el.agent.value === "";
    el.toggles.hidden = !chatMenu;
    el.togglesOff.hidden = chatMenu;
  }

  function isChatServer(name) {
    return !boot.chatServers || boot.chatServers.indexOf(name) >= 0;
  }

  function loadServers() {
    return api("GET", "/api/servers").then(function (data) {
      var list = (data && data.servers) || [];
      renderToggles(list.filter(function (s) { return isChatServer(s.name); }));
      renderServers(list);
    }).catch(function (e) { setStatus(fmt(S.load_failed, e.message)); });
  }

  function renderToggles(list) {
    var legend = el.toggles.querySelector("legend");
    var items = list.map(function (s) {
      var box = h("input", {
        type: "checkbox", name: "server", value: s.name,
        checked: state.toggled[s.name] !== false,
        on: { change: function (ev) { state.toggled[s.name] = ev.target.checked; } }
      });
      return h("label", null, [box, " " + (s.title || s.name)]);
    });
    el.toggles.replaceChildren.apply(el.toggles, [legend].concat(items));
  }

  // selectedServers is the servers field of a chat-menu request: undefined
  // while every server is on (the host's default, which also covers
  // servers added since the page loaded).
  function selectedServers() {
    var boxes = el.toggles.querySelectorAll('input[name="server"]');
    var on = [], all = true;
    Array.prototype.forEach.call(boxes, function (b) {
      if (b.checked) on.push(b.value); else all = false;
    });
    return all ? undefined : on;
  }

  function stateLabel(s) {
    if (s.authorization === "needs_authorization") return [S.needs_auth, "state-needs"];
    return [S["state_" + s.state] || s.state, "state-" + s.state];
  }

  function renderServers(list) {
    if (!list.length) {
      el.servers.replaceChildren(h("li", { class: "muted", text: S.no_servers }));
      return;
    }
    el.servers.replaceChildren.apply(el.servers, list.map(function (s) {
      var label = stateLabel(s);
      var li = h("li", null, [
        h("div", null, [
          h("span", { class: "name", text: s.title || s.name }),
          h("span", { class: "state " + label[1], text: label[0] }),
          s.state === "connected" ? h("span", { class: "muted small", text: " · " + fmt(S.tools_count, s.tools || 0) }) : null
        ])
      ]);
      if (s.lastError) li.appendChild(h("p", { class: "error", text: s.lastError }));
      var oauth = s.oauthUrl && safeURL(s.oauthUrl);
      if (oauth) {
        li.appendChild(h("p", null, [h("a", {
          class: "button", href: oauth, target: "_blank", rel: "noopener noreferrer",
          text: fmt(S.authorize, s.title || s.name)
        })]));
      }
      if (s.missingVariables && s.missingVariables.length) {
        li.appendChild(h("p", { class: "error", text: fmt(S.missing, s.missingVariables.join(", ")) }));
      }
      var names = Object.keys(s.variables || {});
      (s.missingVariables || []).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
      if (names.length) li.appendChild(credentialsForm(s, names));
      return li;
    }));
  }

  var formSeq = 0;

  // credentialsForm sets the user's values for a server's variables. Values
  // are sent, never shown: the API answers which are set, not what they are.
  function credentialsForm(s, names) {
    var inputs = {};
    var note = h("p", { class: "small", role: "status" });
    var described = {};
    (s.customUserVars || []).forEach(function (v) { described[v.name] = v; });
    var fields = names.map(function (n) {
      var id = "var-" + (++formSeq);
      var v = described[n] || {};
      var isSet = s.variables && s.variables[n];
      inputs[n] = h("input", {
        id: id, type: v.sensitive === false ? "text" : "password", autocomplete: "off", spellcheck: "false",
        placeholder: isSet ? S.value_set : null, required: isSet ? null : true
      });
      var field = h("div", null, [h("label", { for: id, text: v.title || n }), inputs[n]]);
      if (v.description) {
        // The API sanitizes descriptions (bluemonday) for exactly this.
        var d = h("p", { class: "small muted", id: id + "-d" });
        d.innerHTML = v.description;
        inputs[n].setAttribute("aria-describedby", id + "-d");
        field.appendChild(d);
      }
      return field;
    });
    var form = h("form", { "aria-label": fmt(S.variables, s.title || s.name) },
      fields.concat([h("button", { type: "submit", text: S.save }), note]));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var values = {}, any = false;
      names.forEach(function (n) {
        if (inputs[n].value !== "") { values[n] = inputs[n].value; any = true; }
      });
      if (!any) return;
      api("PUT", "/api/servers/" + encodeURIComponent(s.name) + "/credentials", { values: values }).then(function () {
        names.forEach(function (n) { inputs[n].value = ""; });
        setStatus(S.saved);
        return loadServers();
      }).catch(function (e) {
        names.forEach(function (n) { inputs[n].value = ""; });
        note.textContent = fmt(S.error, e.message);
      });
    });
    return form;
  }

  // ---- messages ----

  function scrollDown() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function addUserMessage(text) {
    el.empty.hidden = true;
    var box = h("article", { class: "msg user" }, [
      h("h3", { text: S.you }),
      h("div", { class: "text", text: text })
    ]);
    el.messages.appendChild(box);
    scrollDown();
  }

  // addAssistantMessage returns the parts of an answer that events fill.
  function addAssistantMessage() {
    el.empty.hidden = true;
    var v = {
      tools: h("ul", { class: "tools", "aria-label": S.tool_calls, hidden: true }),
      reasoning: null,
      auth: h("div"),
      text: h("div", { class: "text" }),
      notes: h("div"),
      calls: {}
    };
    v.box = h("article", { class: "msg assistant", "aria-busy": "true" }, [
      h("h3", { text: S.assistant }), v.tools, v.auth, v.text, v.notes
    ]);
    el.messages.appendChild(v.box);
    return v;
  }

  function toolStarted(v, t) {
    v.tools.hidden = false;
    var li = h("li", null, [
      h("span", { class: "summary", text: t.summary || (t.server + "/" + t.tool) }),
      h("span", { class: "meta", text: S.running })
    ]);
    v.calls[t.callId] = li;
    v.tools.appendChild(li);
  }

  function toolFinished(v, t) {
    var li = v.calls[t.callId];
    if (!li) {
      toolStarted(v, t);
      li = v.calls[t.callId];
    }
    if (t.summary) li.querySelector(".summary").textContent = t.summary;
    var secs = ((t.durationMs || 0) / 1000).toFixed(1);
    var meta = fmt(S.seconds, secs);
    if (t.isError) meta = S.failed + " · " + meta;
    li.querySelector(".meta").textContent = "(" + meta + ")";
    li.className = t.isError ? "failed" : "ok";
  }

  function authRequired(v, a) {
    var url = a.url && safeURL(a.url);
    var box = h("div", { class: "auth", role: "alert" }, [h("p", { text: fmt(S.auth_needed, a.server) })]);
    if (url) {
      box.appendChild(h("a", {
        class: "button", href: url, target: "_blank", rel: "noopener noreferrer", text: fmt(S.authorize, a.server)
      }));
    }
    v.auth.appendChild(box);
  }

  function renderSources(v, refs) {
    if (!refs || !refs.length) return;
    var items = refs.map(function (r) {
      var url = r.url && safeURL(r.url);
      var label = "[" + r.index + "] ";
      if (!url) return h("li", null, [label + (r.title || "")]);
      var dom = domainOf(url);
      return h("li", null, [
        label,
        h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: r.title || url }),
        dom ? h("span", { class: "domain", text: " — " + dom }) : null
      ]);
    });
    var id = "src-" + (++formSeq);
    v.notes.appendChild(h("section", { "aria-labelledby": id }, [
      h("h4", { id: id, text: S.sources }),
      h("ul", { class: "sources" }, items)
    ]));
  }

  function addNote(v, text, cls) {
    v.notes.appendChild(h("p", { class: cls || "note", text: text }));
  }

  // ---- runs ----

  function setRunning(on) {
    el.send.disabled = on;
    el.stop.hidden = !on;
    el.stop.disabled = false;
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function startRun(text) {
    var body = { message: text };
    if (state.conversationId) body.conversationId = state.conversationId;
    if (el.agent.value) {
      body.agent = el.agent.value;
    } else {
      body.language = boot.lang;
      var servers = selectedServers();
      if (servers) body.servers = servers;
    }
    addUserMessage(text);
    var r = {
      id: "", lastEventId: "", seq: 0, done: false, stopRequested: false,
      abort: new AbortController(), view: addAssistantMessage(), answer: ""
    };
    state.run = r;
    setRunning(true);
    setStatus(S.working);
    fetch("/api/chat", {
      method: "POST", credentials: "same-origin", signal: r.abort.signal,
      headers: headers({ "Content-Type": "application/json", "Accept": "text/event-stream" }),
      body: JSON.stringify(body)
    }).then(function (res) {
      if (res.status === 401) { signedOut(); throw new Error(S.signed_out); }
      if (!res.ok) {
        return res.json().catch(function () { return {}; }).then(function (d) {
          r.done = true;
          addNote(r.view, fmt(S.error, d.error || ("HTTP " + res.status)), "error");
        });
      }
      return readEvents(res, r);
    }).catch(function (e) {
      if (r.abort.signal.aborted) return;
      if (!r.id) { // nothing to resume
        r.done = true;
        addNote(r.view, fmt(S.error, e.message), "error");
      }
    }).then(function () {
      return resume(r);
    }).then(function () {
      finishRun(r);
    });
  }

  // resume follows a run whose stream ended before its last event, with
  // Last-Event-ID so that nothing is shown twice, backing off between tries.
  function resume(r) {
    var tries = 0;
    function next() {
      if (r.done || !r.id || r.abort.signal.aborted) return Promise.resolve();
      if (tries >= 8) {
        addNote(r.view, S.stream_lost, "error");
        return Promise.resolve();
      }
      setStatus(S.reconnecting);
      var wait = Math.min(500 * Math.pow(2, tries), 8000);
      tries++;
      return sleep(wait).then(function () {
        if (r.abort.signal.aborted) return null;
        return fetch("/api/chat/" + encodeURIComponent(r.id) + "/events", {
          credentials: "same-origin", signal: r.abort.signal,
          headers: headers({ "Accept": "text/event-stream", "Last-Event-ID": r.lastEventId })
        });
      }).then(function (res) {
        if (!res) return;
        if (res.status === 401) { signedOut(); return; }
        if (res.status === 404) { // the run is gone from this server
          tries = 8;
          return;
        }
        if (!res.ok) return;
        setStatus(S.working);
        return readEvents(res, r).then(function (n) { if (n > 0) tries = 0; });
      }).catch(function () { /* try again */ }).then(next);
    }
    return next();
  }

  // readEvents parses the text/event-stream body and handles each event;
  // it resolves with the number of events read.
  function readEvents(res, r) {
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buf = "", count = 0;
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return count;
        buf += decoder.decode(chunk.value, { stream: true });
        var i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          var block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          var ev = parseEvent(block);
          if (ev) {
            count++;
            handleEvent(r, ev);
          }
          if (r.done) {
            reader.cancel().catch(function () {});
            return count;
          }
        }
        return pump();
      });
    }
    return pump();
  }

  function parseEvent(block) {
    var id = "", type = "message", data = [];
    block.split("\n").forEach(function (line) {
      line = line.replace(/\r$/, "");
      if (!line || line[0] === ":") return;
      var c = line.indexOf(":");
      var field = c < 0 ? line : line.slice(0, c);
      var value = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return null;
    try {
      return { id: id, type: type, data: JSON.parse(data.join("\n")) };
    } catch (e) {
      return null;
    }
  }

  function handleEvent(r, ev) {
    var d = ev.data, v = r.view;
    if (typeof d.seq === "number") {
      if (d.seq <= r.seq) return; // seen before the reconnect
      r.seq = d.seq;
    }
    if (ev.id) r.lastEventId = ev.id;
    switch (ev.type) {
      case "run.started":
        r.id = d.runId;
        if (d.conversationId) state.conversationId = d.conversationId;
        if (r.stopRequested) cancelRun(r);
        break;
      case "message.delta":
        r.answer += d.delta || "";
        v.text.textContent = r.answer;
        break;
      case "reasoning.delta":
        if (!v.reasoning) {
          v.reasoning = h("div");
          v.box.insertBefore(h("details", { class: "reasoning" }, [h("summary", { text: S.thinking }), v.reasoning]), v.tools);
        }
        v.reasoning.textContent += d.delta || "";
        break;
      case "tool.started":
        if (d.tool) toolStarted(v, d.tool);
        break;
      case "tool.finished":
        if (d.tool) toolFinished(v, d.tool);
        break;
      case "auth.required":
        if (d.auth) authRequired(v, d.auth);
        break;
      case "run.finished":
        r.done = true;
        var res = d.result || {};
        if (typeof res.text === "string" && res.text !== r.answer) v.text.textContent = res.text;
        renderSources(v, res.references);
        if (res.stop === "cancelled") addNote(v, S.cancelled);
        else if (res.stop === "max_iterations") addNote(v, S.max_iterations);
        break;
      case "error":
        r.done = true;
        addNote(v, fmt(S.error, d.message || ""), "error");
        break;
    }
    scrollDown();
  }

  function cancelRun(r) {
    el.stop.disabled = true;
    api("POST", "/api/chat/" + encodeURIComponent(r.id) + "/cancel").catch(function (e) {
      el.stop.disabled = false;
      setStatus(fmt(S.error, e.message));
    });
  }

  function finishRun(r) {
    r.view.box.removeAttribute("aria-busy");
    if (state.run !== r) return;
    state.run = null;
    setRunning(false);
    if (r.done) setStatus(S.done);
    loadConversations();
    loadServers();
  }

  // ---- wiring ----

  el.form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = el.input.value.trim();
    if (!text || state.run) return;
    el.input.value = "";
    startRun(text);
  });
  el.input.addEventListener("keydown", function (ev) {
    // Not while an IME (Korean input) is composing: that Enter ends the syllable.
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      el.form.requestSubmit();
    }
  });
  el.stop.addEventListener("click", function () {
    var r = state.run;
    if (!r) return;
    if (!r.id) { r.stopRequested = true; el.stop.disabled = true; return; }
    cancelRun(r);
  });
  el.newChat.addEventListener("click", newChat);
  el.agent.addEventListener("change", agentChanged);
  el.refresh.addEventListener("click", loadServers);

  loadConversations();
  loadAgents();
  loadServers();
})();
