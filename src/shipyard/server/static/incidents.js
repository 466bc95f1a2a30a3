// Shipyard review queue: incidents waiting for a reviewer, with their trace. Plain DOM, no dependencies.
(() => {
  "use strict";

  const BOOT = JSON.parse(document.getElementById("boot").textContent);
  const KEY_STORE = "shipyard.apiKey";
  const app = document.getElementById("app");

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---- the key: ?key= (then removed from the address bar), else localStorage, else asked for ------
  const url = new URL(location.href);
  if (url.searchParams.get("key")) {
    localStorage.setItem(KEY_STORE, url.searchParams.get("key"));
    url.searchParams.delete("key");
    history.replaceState(null, "", url);
  }
  const keybar = document.getElementById("keybar");
  function askForKey(message) {
    keybar.hidden = false;
    document.getElementById("key-message").textContent = message || "This page needs an API key (read to see the queue, admin to decide).";
  }
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = document.getElementById("key-input").value.trim();
    if (value) localStorage.setItem(KEY_STORE, value);
    document.getElementById("key-input").value = "";
    keybar.hidden = true;
    load();
  });
  document.getElementById("key-forget").addEventListener("click", () => { localStorage.removeItem(KEY_STORE); askForKey(); });
  document.getElementById("key-button").addEventListener("click", () => askForKey());
  for (const id of ["window-select", "live", "pause"]) {  // the health page's controls: not used here
    const el = document.getElementById(id);
    if (el) el.style.display = "none";
  }
  const sub = document.querySelector(".brand-sub");
  if (sub) sub.textContent = "review queue";

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const key = localStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(BOOT.api + path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401 || resp.status === 403) askForKey(data && data.error ? data.error.message : null);
    if (!resp.ok) throw new Error(data && data.error ? data.error.message : `HTTP ${resp.status}`);
    return data;
  }

  // ---- the expectation form -----------------------------------------------------------------------
  function expectationOf(form) {
    const out = {};
    const expected = form.querySelector("[name=expected]").value.trim();
    const forbid = form.querySelector("[name=must_not_call]").value.split(",").map((x) => x.trim()).filter(Boolean);
    const contains = form.querySelector("[name=contains]").value.trim();
    const asserts = [];
    if (contains) asserts.push({ type: "contains", value: contains });
    if (forbid.length) asserts.push({ type: "must_not_call", value: forbid });
    if (form.querySelector("[name=must_refuse]").checked) asserts.push({ type: "must_refuse" });
    if (expected) out.expected = expected;
    if (asserts.length) out.assert = asserts;
    return Object.keys(out).length ? out : null;
  }

  function card(inc) {
    const it = inc.interaction || {};
    const exp = inc.expectation || {};
    const asserts = exp.assert || [];
    const find = (type) => asserts.find((a) => a.type === type);
    const result = h("span", { class: "result muted", "data-role": "result" });
    const form = h("div", { class: "expect" },
      h("label", {}, "Expected answer (a correction)", h("input", { type: "text", name: "expected", value: exp.expected || "" })),
      h("label", {}, "Must contain", h("input", { type: "text", name: "contains", value: find("contains") ? find("contains").value : "" })),
      h("label", {}, "Must not call (tools, comma separated)", h("input", { type: "text", name: "must_not_call", value: find("must_not_call") ? [].concat(find("must_not_call").value).join(", ") : "" })),
      h("label", {}, h("input", { type: "checkbox", name: "must_refuse", checked: !!find("must_refuse") }), " must refuse"));
    async function act(action) {
      result.textContent = "…";
      const body = { action, by: "dashboard" };
      if (action !== "reject") {
        const e = expectationOf(form);
        if (e) body.expectation = e;
      }
      try {
        const after = await call("POST", `/${encodeURIComponent(inc.id)}/review`, body);
        result.textContent = `${action}: now ${after.state}`;
        setTimeout(load, 400);
      } catch (err) {
        result.textContent = err.message;
      }
    }
    const traceLink = it.trace_id ? h("a", { href: `/dashboard/traces/${encodeURIComponent(it.trace_id)}`, "data-role": "trace" }, "open trace") : h("span", { class: "muted", text: "no trace" });
    return h("section", { class: "panel incident", "data-incident": inc.id },
      h("header", {}, h("h2", { text: inc.title }), h("span", { class: `pill ${inc.state}`, "data-role": "state", text: inc.state })),
      h("div", { class: "panel-body" },
        h("div", { class: "meta" },
          h("span", { class: "mono", text: inc.id }), h("span", { text: `agent ${inc.agent}` }),
          h("span", { text: `failure ${inc.failure}` }), h("span", { text: `seen ${inc.count}×` }),
          h("span", { text: `version ${inc.version || "—"}` }), traceLink),
        h("p", { class: "muted", text: "Input" }), h("pre", { class: "message", "data-role": "input", text: it.input || inc.input }),
        h("p", { class: "muted", text: "Output" }), h("pre", { class: "message", "data-role": "output", text: it.output || "(not stored)" }),
        (it.tool_calls || []).length ? h("p", { class: "muted", text: `Tool calls: ${it.tool_calls.map((t) => `${t.name} (${t.status})`).join(", ")}` }) : null,
        (inc.occurrences || []).filter((o) => o.detail).slice(0, 3).map((o) => h("p", { class: "muted", text: `${o.source}: ${o.detail}` })),
        form,
        h("div", { class: "actions" },
          h("button", { type: "button", "data-action": "edit", onclick: () => act("edit") }, "Save expectation"),
          h("button", { type: "button", "data-action": "accept", onclick: () => act("accept") }, "Accept"),
          h("button", { type: "button", class: "ghost", "data-action": "reject", onclick: () => act("reject") }, "Reject"),
          result)));
  }

  async function load() {
    let listing;
    try {
      listing = await call("GET", "?review=1&state=open,triaged,candidate&limit=100");
    } catch (e) {
      app.replaceChildren(h("div", { class: "panel empty", id: "queue-error", text: e.message }));
      return;
    }
    const items = await Promise.all(listing.incidents.map((i) => call("GET", `/${encodeURIComponent(i.id)}`)));
    const head = h("section", { class: "panel" }, h("header", {}, h("h2", { text: "Review queue" }),
      h("span", { class: "sub", id: "queue-count", text: `${items.length} candidate${items.length === 1 ? "" : "s"} · accept makes a golden case (it needs an expectation), reject closes it as won't fix` })));
    app.replaceChildren(head, items.length ? h("div", { class: "queue", id: "queue" }, items.map(card))
      : h("div", { class: "panel empty", id: "queue-empty", text: "Nothing to review." }));
  }

  app.dataset.page = BOOT.page;
  load();
})();
