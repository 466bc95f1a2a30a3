// Shipyard health dashboard: plain DOM + inline SVG, no dependencies, no network beyond this server.
(() => {
  "use strict";

  const BOOT = JSON.parse(document.getElementById("boot").textContent);
  const KEY_STORE = "shipyard.apiKey";
  const WINDOW_STORE = "shipyard.dashboard.window";
  const SVGNS = "http://www.w3.org/2000/svg";
  const app = document.getElementById("app");
  const tooltip = document.getElementById("tooltip");

  // ---- DOM helpers (text only: nothing from the server is ever parsed as HTML) -------------------
  function build(ns, tag, attrs, children) {
    const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "style") Object.assign(el.style, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => build(null, tag, attrs, children);
  const s = (tag, attrs, ...children) => build(SVGNS, tag, attrs, children);

  // ---- formatting ------------------------------------------------------------------------------
  const nf = new Intl.NumberFormat();
  const fmt = {
    count: (v) => (v === null || v === undefined ? "—" : nf.format(Math.round(v))),
    rate: (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`),
    seconds: (v) => {
      if (v === null || v === undefined) return "—";
      if (v === 0) return "0 ms";
      if (v < 0.01) return `${(v * 1000).toFixed(v < 0.001 ? 2 : 1)} ms`;
      if (v < 1) return `${Math.round(v * 1000)} ms`;
      return `${v.toFixed(v < 10 ? 2 : 1)} s`;
    },
    ms: (v) => (v === null || v === undefined ? "—" : fmt.seconds(v / 1000)),
    usd: (v) => {
      if (v === null || v === undefined) return "—";
      if (v === 0) return "$0";
      if (Math.abs(v) < 0.01) return `$${Number(v.toPrecision(2))}`;
      return `$${v.toFixed(v < 10 ? 3 : 2)}`;
    },
    perMin: (v) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(1) : nf.format(Math.round(v))}/min`),
    score: (v) => (v === null || v === undefined ? "—" : `${v.toFixed(2)} / 5`),
  };
  const METRIC_UNITS = {
    completion_rate: "rate", error_rate: "rate", escalation_rate: "rate", tool_error_rate: "rate",
    p95_latency_s: "seconds", avg_latency_s: "seconds", cost_per_interaction: "usd", cost_per_session: "usd",
    safety_incidents: "count", satisfaction: "score", sessions: "count", interactions: "count", errors: "count",
  };
  const byMetric = (metric, v) => (fmt[METRIC_UNITS[metric] || "count"] || fmt.count)(v);

  function windowLabel(seconds) {
    if (seconds % 86400 === 0) return `${seconds / 86400}d`.replace(/^1d$/, "24h");
    if (seconds % 3600 === 0) return `${seconds / 3600}h`;
    if (seconds % 60 === 0) return `${seconds / 60}m`;
    return `${seconds}s`;
  }
  function ago(epoch) {
    const d = Math.max(0, Date.now() / 1000 - epoch);
    if (d < 60) return `${Math.round(d)}s ago`;
    if (d < 3600) return `${Math.round(d / 60)}m ago`;
    if (d < 86400) return `${Math.round(d / 3600)}h ago`;
    return `${Math.round(d / 86400)}d ago`;
  }
  const clock = (epoch, withSeconds) =>
    new Date(epoch * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: withSeconds ? "2-digit" : undefined });
  const stamp = (epoch) => new Date(epoch * 1000).toLocaleString();
  const shortId = (id) => (id && id.length > 12 ? `${id.slice(0, 8)}…` : id || "—");
  function shortVersion(v) {
    const m = /^[^@]+@(.+)$/.exec(v || "");
    return m ? m[1] : v;
  }

  // A change against the previous window: arrow + delta, coloured by whether it is good.
  function deltaText(c, unit) {
    if (c.direction === "none") return null;
    if (c.direction === "flat") return "→ no change";
    const arrow = c.direction === "up" ? "▲" : "▼";
    const abs = Math.abs(c.delta);
    let main;
    if (unit === "rate") main = `${(abs * 100).toFixed(1)} pp`;
    else if (unit === "seconds") main = fmt.seconds(abs);
    else if (unit === "usd") main = fmt.usd(abs);
    else main = fmt.count(abs);
    const pct = c.ratio !== null && unit !== "rate" ? ` (${Math.abs(c.ratio * 100).toFixed(0)}%)` : "";
    return `${arrow} ${main}${pct}`;
  }
  const goodClass = (c) => (c.good === true ? "good" : c.good === false ? "bad" : "neutral");

  // ---- API ---------------------------------------------------------------------------------------
  class AuthError extends Error {}
  function apiKey() {
    return localStorage.getItem(KEY_STORE) || "";
  }
  async function api(path, params) {
    const url = new URL(BOOT.api + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const resp = await fetch(url, { headers, cache: "no-store" });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    const message = body && body.error ? body.error.message : `HTTP ${resp.status}`;
    if (resp.status === 401 || resp.status === 403) throw new AuthError(message);
    if (!resp.ok) {
      const err = new Error(message);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  // The key: from ?key= (then removed from the address bar), else localStorage, else asked for.
  (function takeKeyFromUrl() {
    const url = new URL(location.href);
    const key = url.searchParams.get("key");
    if (key) {
      localStorage.setItem(KEY_STORE, key);
      url.searchParams.delete("key");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  })();
  const keybar = document.getElementById("keybar");
  function askForKey(message) {
    document.getElementById("key-message").textContent = message || "This server needs an API key with the read role.";
    keybar.hidden = false;
    document.getElementById("key-input").focus();
  }
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = document.getElementById("key-input").value.trim();
    if (value) localStorage.setItem(KEY_STORE, value);
    document.getElementById("key-input").value = "";
    keybar.hidden = true;
    kick();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORE);
    askForKey("Key forgotten. Paste a key with the read role to see the data.");
  });
  document.getElementById("key-button").addEventListener("click", () => {
    if (keybar.hidden) askForKey(apiKey() ? "A key is stored; paste another one to replace it." : null);
    else keybar.hidden = true;
  });

  // ---- live indicator and refresh loop ------------------------------------------------------------
  const live = document.getElementById("live");
  const liveText = document.getElementById("live-text");
  const pauseButton = document.getElementById("pause");
  let lastOk = 0;
  let lastError = null;
  let paused = false;
  let timer = null;
  let refreshFn = null;
  let inFlight = false;
  let autoRefresh = true;

  function showLive() {
    live.className = `live ${paused ? "paused" : lastError ? "err" : lastOk ? "ok" : ""}`;
    if (paused) liveText.textContent = "paused";
    else if (lastError) liveText.textContent = `refresh failed: ${lastError}`;
    else if (lastOk) liveText.textContent = `${autoRefresh ? "live · updated" : "loaded"} ${Math.max(0, Math.round((Date.now() - lastOk) / 1000))}s ago`;
    live.title = lastError || "The page fetches fresh numbers every few seconds";
  }
  setInterval(showLive, 1000);

  async function runRefresh() {
    if (!refreshFn || inFlight) return;
    inFlight = true;
    try {
      await refreshFn();
      lastOk = Date.now();
      lastError = null;
    } catch (e) {
      lastError = e.message;
      if (e instanceof AuthError) askForKey(e.message);
    } finally {
      inFlight = false;
      showLive();
    }
  }
  function schedule() {
    clearTimeout(timer);
    if (paused || !autoRefresh || !BOOT.refresh_s) return;
    timer = setTimeout(async () => {
      if (!document.hidden) await runRefresh();
      schedule();
    }, BOOT.refresh_s * 1000);
  }
  function kick() {
    runRefresh().then(schedule);
  }
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) kick(); else { clearTimeout(timer); showLive(); }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !paused) kick();
  });

  // ---- charts (inline SVG) -------------------------------------------------------------------------
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    // four grid steps that are round numbers: 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1, ...
    for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  let chartSeq = 0;
  function showTip(ev, lines) {
    tooltip.replaceChildren(...lines.map((l, i) => (i === 0 ? h("div", { class: "muted" }, l) : h("div", {}, h("b", {}, l)))));
    tooltip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    tooltip.style.left = `${x}px`;
    tooltip.style.top = `${ev.clientY - tooltip.offsetHeight - 10}px`;
  }
  const hideTip = () => { tooltip.hidden = true; };

  // points: [{t, end, value}], opts: {kind: "line"|"bar", color, format, yMax, label}
  function drawChart(box, points, opts) {
    const width = Math.max(240, box.clientWidth || 480);
    const height = box.clientHeight || 170;
    const pad = { l: 52, r: 12, t: 10, b: 22 };
    const iw = width - pad.l - pad.r;
    const ih = height - pad.t - pad.b;
    const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
    const yMax = opts.yMax || niceMax(Math.max(0, ...values) * 1.1);
    const t0 = points.length ? points[0].t : 0;
    const t1 = points.length ? points[points.length - 1].end : 1;
    const x = (t) => pad.l + ((t - t0) / (t1 - t0 || 1)) * iw;
    const y = (v) => pad.t + ih - (v / yMax) * ih;
    const id = `g${++chartSeq}`;
    const svg = s("svg", {
      class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": opts.label, "data-points": values.length,
    });
    svg.append(s("defs", {}, s("linearGradient", { id, x1: 0, y1: 0, x2: 0, y2: 1 },
      s("stop", { offset: "0%", "stop-color": opts.color, "stop-opacity": 0.28 }),
      s("stop", { offset: "100%", "stop-color": opts.color, "stop-opacity": 0.02 }))));
    const grid = s("g", { class: "grid" });
    const axis = s("g", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      grid.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }));
      axis.append(s("text", { x: pad.l - 8, y: y(v) + 3.5, "text-anchor": "end", text: opts.format(v) }));
    }
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const t = t0 + ((t1 - t0) * i) / ticks;
      const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
      axis.append(s("text", { x: x(t), y: height - 5, "text-anchor": anchor, text: clock(t, t1 - t0 <= 1800) }));
    }
    svg.append(grid, axis);
    const series = s("g", { class: "series", "data-series": opts.label });
    if (opts.kind === "bar") {
      const bw = Math.max(1, (iw / Math.max(points.length, 1)) * 0.72);
      for (const p of points) {
        if (!p.value) continue;
        const mid = x((p.t + p.end) / 2);
        series.append(s("rect", {
          class: "bar", x: mid - bw / 2, y: y(p.value), width: bw, height: Math.max(1, pad.t + ih - y(p.value)),
          rx: Math.min(3, bw / 3), fill: opts.color, "fill-opacity": p.partial ? 0.45 : 0.85,
        }));
      }
    } else {
      // one path per run of points with data (gaps stay gaps)
      let run = [];
      const flush = () => {
        if (!run.length) return;
        const line = run.map((p, i) => `${i ? "L" : "M"}${x((p.t + p.end) / 2).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
        const first = x((run[0].t + run[0].end) / 2).toFixed(1);
        const last = x((run[run.length - 1].t + run[run.length - 1].end) / 2).toFixed(1);
        series.append(s("path", { d: `${line}L${last},${pad.t + ih}L${first},${pad.t + ih}Z`, fill: `url(#${id})` }));
        series.append(s("path", { class: "series-line", d: line, stroke: opts.color }));
        if (run.length === 1) {
          series.append(s("circle", { cx: first, cy: y(run[0].value), r: 3, fill: opts.color }));
        }
        run = [];
      };
      for (const p of points) {
        if (p.value === null || p.value === undefined) flush(); else run.push(p);
      }
      flush();
    }
    svg.append(series);
    // hover: nearest bucket
    const hover = s("g", { visibility: "hidden" });
    const hl = s("line", { class: "hover-line", y1: pad.t, y2: pad.t + ih });
    const dot = s("circle", { r: 4, fill: opts.color, stroke: "white", "stroke-width": 2 });
    hover.append(hl, dot);
    svg.append(hover);
    const overlay = s("rect", { x: pad.l, y: pad.t, width: iw, height: ih, fill: "transparent" });
    overlay.addEventListener("mousemove", (ev) => {
      if (!points.length) return;
      const rect = svg.getBoundingClientRect();
      const px = ((ev.clientX - rect.left) / rect.width) * width;
      const t = t0 + ((px - pad.l) / iw) * (t1 - t0);
      let best = points[0];
      for (const p of points) if (Math.abs((p.t + p.end) / 2 - t) < Math.abs((best.t + best.end) / 2 - t)) best = p;
      const cx = x((best.t + best.end) / 2);
      hl.setAttribute("x1", cx); hl.setAttribute("x2", cx);
      const has = best.value !== null && best.value !== undefined;
      dot.setAttribute("cx", cx); dot.setAttribute("cy", has ? y(best.value) : -10);
      hover.setAttribute("visibility", "visible");
      showTip(ev, [`${clock(best.t, true)} – ${clock(best.end, true)}${best.partial ? " (so far)" : ""}`,
        has ? `${opts.label}: ${opts.format(best.value)}` : "no data"]);
    });
    overlay.addEventListener("mouseleave", () => { hover.setAttribute("visibility", "hidden"); hideTip(); });
    svg.append(overlay);
    box.replaceChildren(svg);
    if (!values.length) {
      box.append(h("div", { class: "empty", style: { position: "absolute", inset: "30% 0 auto 0" } }, "no interactions in this window"));
    }
  }

  // days: [{day: "YYYY-MM-DD", spent_usd, saved_usd, calls}], oldest first: stacked bars per day
  function drawDays(box, days) {
    const width = Math.max(240, box.clientWidth || 480);
    const height = box.clientHeight || 170;
    const pad = { l: 52, r: 12, t: 10, b: 22 };
    const iw = width - pad.l - pad.r;
    const ih = height - pad.t - pad.b;
    const yMax = niceMax(Math.max(0, ...days.map((d) => d.spent_usd + d.saved_usd)) * 1.1);
    const y = (v) => pad.t + ih - (v / yMax) * ih;
    const slot = iw / Math.max(days.length, 1);
    const bw = Math.max(2, slot * 0.7);
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": "Cost per day", "data-points": days.filter((d) => d.spent_usd || d.saved_usd).length });
    const grid = s("g", { class: "grid" });
    const axis = s("g", { class: "axis" });
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      grid.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }));
      axis.append(s("text", { x: pad.l - 8, y: y(v) + 3.5, "text-anchor": "end", text: fmt.usd(v) }));
    }
    const label = (d) => new Date(`${d}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    const series = s("g", { class: "series", "data-series": "cost per day" });
    days.forEach((d, i) => {
      const x = pad.l + slot * i + (slot - bw) / 2;
      if (i === 0 || i === days.length - 1 || i === Math.floor(days.length / 2)) {
        axis.append(s("text", { x: x + bw / 2, y: height - 5, "text-anchor": "middle", text: label(d.day) }));
      }
      const bar = s("g", { class: "day", "data-day": d.day, "data-spent": d.spent_usd, "data-saved": d.saved_usd });
      if (d.spent_usd > 0) bar.append(s("rect", { class: "bar spent", x, y: y(d.spent_usd), width: bw, height: Math.max(1, pad.t + ih - y(d.spent_usd)), rx: 2 }));
      if (d.saved_usd > 0) bar.append(s("rect", { class: "bar saved", x, y: y(d.spent_usd + d.saved_usd), width: bw, height: Math.max(1, y(d.spent_usd) - y(d.spent_usd + d.saved_usd)), rx: 2 }));
      bar.append(s("rect", { x: pad.l + slot * i, y: pad.t, width: slot, height: ih, fill: "transparent" }));
      bar.addEventListener("mousemove", (ev) => showTip(ev, [label(d.day), `spent ${fmt.usd(d.spent_usd)}`, `saved ${fmt.usd(d.saved_usd)}`, `${fmt.count(d.calls)} model calls`]));
      bar.addEventListener("mouseleave", hideTip);
      series.append(bar);
    });
    svg.append(grid, axis, series);
    box.replaceChildren(svg);
    if (!days.some((d) => d.spent_usd || d.saved_usd)) {
      box.append(h("div", { class: "empty", style: { position: "absolute", inset: "30% 0 auto 0" } }, "no model calls in these days"));
    }
  }

  // ---- the overview page ----------------------------------------------------------------------------
  const CHARTS = [
    { key: "per_min", label: "Interactions / min", kind: "bar", color: "#2563eb", format: fmt.perMin, pick: (p) => p.per_min },
    { key: "completion_rate", label: "Completion rate", kind: "line", color: "#16a34a", format: fmt.rate, pick: (p) => p.completion_rate, yMax: 1 },
    { key: "p95_latency_s", label: "p95 latency", kind: "line", color: "#d97706", format: fmt.seconds, pick: (p) => p.p95_latency_s },
    { key: "cost_usd", label: "Cost", kind: "bar", color: "#7c3aed", format: fmt.usd, pick: (p) => p.cost_usd },
  ];
  const VERSION_COLUMNS = [
    ["interactions", "Interactions", "count"], ["sessions", "Sessions", "count"], ["completion_rate", "Completion", "rate"],
    ["avg_latency_s", "Avg latency", "seconds"], ["p95_latency_s", "p95", "seconds"], ["cost_per_session", "Cost / session", "usd"],
    ["escalation_rate", "Escalation", "rate"], ["safety_incidents", "Safety", "count"], ["errors", "Errors", "count"],
  ];

  function initialWindow() {
    const fromUrl = new URL(location.href).searchParams.get("window");
    const stored = localStorage.getItem(WINDOW_STORE);
    return [fromUrl, stored].find((w) => w && BOOT.windows.includes(w)) || BOOT.windows[0];
  }

  function overviewPage() {
    const url = new URL(location.href);
    const view = {
      window: initialWindow(),
      filters: Object.fromEntries(["agent", "version", "status", "session_id", "traffic_source"].map((k) => [k, url.searchParams.get(k) || ""])),
      versions: [],
      series: null,
    };

    const banner = h("section", { class: "banner", id: "status-banner", "data-status": "" },
      h("div", { class: "state", id: "status-text", text: "…" }),
      h("div", { class: "what" }, h("b", { id: "status-title", text: "Loading" }), h("span", { id: "status-detail" })),
      h("div", { class: "meta", id: "status-meta" }));
    const cards = h("section", { class: "cards", id: "kpi-cards" });
    const panels = h("div", { id: "extra-panels", style: { display: "contents" } });
    const charts = h("section", { class: "charts", id: "charts" });
    const chartBoxes = {};
    for (const c of CHARTS) {
      const box = h("div", { class: "chart-box", "data-chart": c.key });
      chartBoxes[c.key] = { box, now: h("span", { class: "now" }) };
      charts.append(h("div", { class: "panel chart-panel" },
        h("header", {}, h("h2", { text: c.label }), h("span", { class: "sub", "data-bucket": c.key }), chartBoxes[c.key].now),
        h("div", { class: "panel-body" }, box)));
    }
    const versionsBody = h("tbody");
    const versionsPanel = h("section", { class: "panel", id: "versions" },
      h("header", {}, h("h2", { text: "Versions" }), h("span", { class: "sub", id: "versions-sub" })),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { text: "Agent / version" }), VERSION_COLUMNS.map(([, label]) => h("th", { class: "num", text: label })))),
        versionsBody)));

    // traces list with filters
    const selects = {};
    const option = (value, label) => h("option", { value, text: label });
    const filterForm = h("form", { class: "filters", id: "trace-filters" });
    const addSelect = (name, label, values) => {
      const sel = h("select", { name, "aria-label": label }, option("", "any"), values.map((v) => option(v, v)));
      sel.value = view.filters[name];
      sel.addEventListener("change", () => setFilter(name, sel.value));
      selects[name] = sel;
      filterForm.append(h("label", {}, label, sel));
    };
    addSelect("agent", "Agent", []);
    addSelect("version", "Version", []);
    addSelect("status", "Status", BOOT.statuses);
    addSelect("traffic_source", "Traffic", BOOT.traffic_sources);
    const sessionInput = h("input", { name: "session_id", placeholder: "session id", value: view.filters.session_id, "aria-label": "Session id" });
    sessionInput.addEventListener("change", () => setFilter("session_id", sessionInput.value.trim()));
    filterForm.append(h("label", {}, "Session", sessionInput));
    filterForm.append(h("div", { class: "actions" }, h("button", {
      type: "button", class: "ghost", onclick: () => {
        for (const k of Object.keys(view.filters)) view.filters[k] = "";
        for (const sel of Object.values(selects)) sel.value = "";
        sessionInput.value = "";
        syncUrl(); refreshTraces().catch(() => {});
      },
    }, "Clear")));
    filterForm.addEventListener("submit", (ev) => { ev.preventDefault(); setFilter("session_id", sessionInput.value.trim()); });
    const tracesBody = h("tbody");
    const tracesPanel = h("section", { class: "panel", id: "traces" },
      h("header", {}, h("h2", { text: "Traces" }), h("span", { class: "sub", id: "traces-sub", text: "newest first" })),
      filterForm,
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["When", "Status", "Agent", "Version", "Session", "Input", "Latency", "Cost", "Tools", "Rated"].map((t, i) =>
          h("th", { class: i >= 6 ? "num" : null, text: t })))),
        tracesBody)));

    const alertsBody = h("tbody");
    const alertsPanel = h("section", { class: "panel", id: "alerts" },
      h("header", {}, h("h2", { text: "Alert rules" }), h("span", { class: "sub", id: "alerts-sub" })),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Rule", "Metric", "Window", "Value", "Warn", "Alert", "Samples", "State", "Since"].map((t, i) =>
          h("th", { class: i >= 3 && i <= 6 ? "num" : null, text: t })))),
        alertsBody)));

    // cost: spend and savings per day (the cost ledger), the top users and features
    const costChart = h("div", { class: "chart-box", "data-chart": "cost-by-day" });
    const costUsers = h("tbody");
    const costFeatures = h("tbody");
    const costTable = (title, first, body) => h("div", { class: "cost-top" }, h("h3", { text: title }),
      h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {},
        h("th", { text: first }), h("th", { class: "num", text: "Spent" }), h("th", { class: "num", text: "Saved" }))), body)));
    const costPanel = h("section", { class: "panel", id: "cost" },
      h("header", {}, h("h2", { text: "Cost" }), h("span", { class: "sub", id: "cost-sub" }), h("span", { class: "right now", id: "cost-total" })),
      h("div", { class: "cost-grid" },
        h("div", { class: "panel-body" }, h("div", { class: "legend" },
          h("span", { class: "key spent" }), "spent", h("span", { class: "key saved" }), "saved by caches and routing"), costChart),
        costTable("Top users", "User", costUsers),
        costTable("Top features", "Feature", costFeatures)));

    app.replaceChildren(banner, cards, panels, charts, costPanel, versionsPanel, tracesPanel, alertsPanel);

    // window selector
    const seg = document.getElementById("window-select");
    const segButtons = BOOT.windows.map((w) => h("button", {
      type: "button", "data-window": w, "aria-pressed": String(w === view.window),
      onclick: () => {
        view.window = w;
        localStorage.setItem(WINDOW_STORE, w);
        for (const b of segButtons) b.setAttribute("aria-pressed", String(b.dataset.window === w));
        syncUrl(); kick();
      },
    }, w));
    seg.replaceChildren(...segButtons);

    function syncUrl() {
      const u = new URL(location.href);
      u.searchParams.set("window", view.window);
      for (const [k, v] of Object.entries(view.filters)) if (v) u.searchParams.set(k, v); else u.searchParams.delete(k);
      history.replaceState(null, "", u.pathname + u.search);
    }
    function setFilter(name, value) {
      view.filters[name] = value;
      syncUrl();
      refreshTraces().then(() => { lastOk = Date.now(); showLive(); }).catch((e) => { lastError = e.message; showLive(); });
    }

    function renderOverview(o) {
      const firing = o.alerts.filter((a) => a.state === "warn" || a.state === "alert");
      banner.className = `banner ${o.status}`;
      banner.dataset.status = o.status;
      document.getElementById("status-text").textContent = o.status;
      const title = { HEALTHY: "All systems normal", DEGRADED: "Degraded: a warning threshold is crossed", DOWN: "Down: an alert threshold is crossed" }[o.status] || o.status;
      document.getElementById("status-title").textContent = title;
      document.getElementById("status-detail").textContent = firing.length
        ? firing.map((a) => `${a.name} ${byMetric(a.metric, a.value)} (${a.state})`).join(" · ")
        : `${o.alerts.length} alert rule${o.alerts.length === 1 ? "" : "s"} within thresholds · ${fmt.count(o.current.interactions)} interactions in the last ${windowLabel(o.window_s)}`;
      document.getElementById("status-meta").replaceChildren(
        h("div", {}, `${fmt.count(o.last_24h.interactions)} interactions · 24h`),
        h("div", {}, `as of ${clock(o.now, true)}`));
      document.title = `${o.status === "HEALTHY" ? "●" : o.status === "DEGRADED" ? "▲" : "■"} Shipyard · ${o.status.toLowerCase()}`;

      cards.replaceChildren(...o.cards.map((c) => {
        const text = deltaText(c, c.unit);
        const prevWin = windowLabel(c.window_s);
        return h("div", { class: "panel card", "data-kpi": c.key },
          h("div", { class: "label", text: c.label.includes("·") ? c.label : `${c.label} · ${windowLabel(c.window_s)}` }),
          h("div", { class: "value", text: fmt[c.unit](c.value) }),
          h("div", { class: `delta ${goodClass(c)}` },
            text ? [h("span", { class: "chip", text }), h("span", {}, `vs previous ${prevWin}`)] : h("span", {}, `no data in the previous ${prevWin}`)));
      }));

      panels.replaceChildren(...(o.panels || []).map((p) => h("section", { class: "panel", id: `panel-${p.name}`, "data-panel": p.name },
        h("header", {}, h("h2", { text: p.title }), p.note ? h("span", { class: "sub", text: p.note }) : null),
        p.rows.length
          ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, p.columns.map((c) => h("th", { text: c })))),
            h("tbody", {}, p.rows.map((r) => h("tr", {}, r.map((v) => h("td", { text: v === null ? "—" : v })))))))
          : h("div", { class: "empty", text: "nothing to show" }))));

      const rules = o.alerts;
      document.getElementById("alerts-sub").textContent = `${firing.length} firing of ${rules.length}`;
      alertsBody.replaceChildren(...(rules.length ? rules.map((a) => h("tr", { "data-rule": a.name },
        h("td", {}, h("b", { text: a.name }), a.agent ? h("span", { class: "muted", text: ` · ${a.agent}` }) : null),
        h("td", { class: "mono", text: a.metric }),
        h("td", { text: windowLabel(a.window_s) }),
        h("td", { class: "num", text: byMetric(a.metric, a.value) }),
        h("td", { class: "num", text: a.warn === null ? "—" : `${a.comparator} ${byMetric(a.metric, a.warn)}` }),
        h("td", { class: "num", text: a.alert === null ? "—" : `${a.comparator} ${byMetric(a.metric, a.alert)}` }),
        h("td", { class: "num", text: `${a.samples} / ${a.min_samples}` }),
        h("td", {}, h("span", { class: `pill ${a.state}`, text: a.state.replace("_", " ") })),
        h("td", { class: "muted", title: stamp(a.since), text: ago(a.since) }),
      )) : [h("tr", {}, h("td", { colspan: 9, class: "empty", text: "no alert rules (alerts.rules is empty in shipyard.yaml)" }))]));
    }

    function renderSeries(ts) {
      view.series = ts;
      for (const c of CHARTS) {
        const points = ts.points.map((p) => ({ t: p.t, end: p.end, partial: p.partial, value: c.pick(p) }));
        drawChart(chartBoxes[c.key].box, points, c);
        const last = [...points].reverse().find((p) => p.value !== null && p.value !== undefined && !(c.kind === "bar" && p.partial));
        chartBoxes[c.key].now.textContent = last ? c.format(last.value) : "";
        const sub = charts.querySelector(`[data-bucket="${c.key}"]`);
        sub.textContent = `per ${windowLabel(ts.bucket_s)} · last ${windowLabel(ts.window_s)}`;
      }
    }

    function renderVersions(v) {
      view.versions = v.versions;
      document.getElementById("versions-sub").textContent = `last ${windowLabel(v.window_s)}, change vs the ${windowLabel(v.window_s)} before`;
      versionsBody.replaceChildren(...(v.versions.length ? v.versions.map((row) => h("tr", { "data-version": row.version },
        h("td", {}, h("div", { class: "version", text: shortVersion(row.version), title: row.version }), h("div", { class: "muted", text: row.agent })),
        VERSION_COLUMNS.map(([key, , unit]) => {
          const c = row.changes[key];
          const text = deltaText(c, unit);
          return h("td", { class: "num" }, fmt[unit](row.current[key]), text ? h("span", { class: `cell-delta ${goodClass(c)}`, text }) : null);
        }),
      )) : [h("tr", {}, h("td", { colspan: VERSION_COLUMNS.length + 1, class: "empty", text: "no production traffic in this window" }))]));
      // filter choices follow the versions seen
      const agents = [...new Set(v.versions.map((r) => r.agent))].sort();
      const versions = [...new Set(v.versions.filter((r) => !view.filters.agent || r.agent === view.filters.agent).map((r) => r.version))].sort();
      setOptions(selects.agent, agents);
      setOptions(selects.version, versions);
    }
    function setOptions(sel, values) {
      const current = sel.value;
      const all = [...new Set([...values, ...(current ? [current] : [])])];
      const have = [...sel.options].slice(1).map((o) => o.value);
      if (have.join("\n") === all.join("\n")) return;
      sel.replaceChildren(option("", "any"), ...all.map((v) => option(v, sel.name === "version" ? shortVersion(v) : v)));
      sel.value = current;
    }

    function renderTraces(t) {
      const active = Object.entries(view.filters).filter(([, v]) => v);
      document.getElementById("traces-sub").textContent =
        `${t.traces.length} newest${active.length ? ` matching ${active.map(([k, v]) => `${k}=${k === "version" ? shortVersion(v) : v}`).join(", ")}` : ""}`;
      tracesBody.replaceChildren(...(t.traces.length ? t.traces.map((r) => {
        const href = `/dashboard/traces/${encodeURIComponent(r.trace_id)}`;
        const fb = r.thumbs === 1 ? ["✓", "good", "thumbs up"] : r.thumbs === -1 ? ["✗", "bad", "thumbs down"]
          : r.score !== null && r.score !== undefined ? [`★ ${r.score}`, "neutral", "score"] : null;
        return h("tr", { class: "link", "data-trace": r.trace_id, onclick: (ev) => { if (ev.target.tagName !== "A") location.href = href; } },
          h("td", { title: stamp(r.created_at) }, h("a", { href, text: ago(r.created_at) })),
          h("td", {}, h("span", { class: `pill ${r.status}`, text: r.status }), r.traffic_source !== "production" ? h("span", { class: "muted", text: ` ${r.traffic_source}` }) : null),
          h("td", { text: r.agent }),
          h("td", { class: "version", title: r.version, text: shortVersion(r.version) }),
          h("td", { class: "mono", title: r.session_id, text: shortId(r.session_id) }),
          h("td", { class: "input-cell", title: r.error || r.input, text: r.input }),
          h("td", { class: "num", text: fmt.ms(r.latency_ms) }),
          h("td", { class: "num", text: fmt.usd(r.cost_usd) }),
          h("td", { class: "num" }, String(r.tool_calls), r.tool_errors ? h("span", { class: "cell-delta bad", text: `${r.tool_errors} failed` }) : null),
          h("td", { class: "num" }, fb ? h("span", { class: `cell-delta ${fb[1]}`, title: fb[2], text: fb[0] }) : null));
      }) : [h("tr", {}, h("td", { colspan: 10, class: "empty", text: "no traces match these filters" }))]));
    }

    async function refreshTraces() {
      renderTraces(await api("/traces", { ...view.filters, limit: 25 }));
    }

    let width = 0;
    window.addEventListener("resize", () => {
      if (view.series && Math.abs(window.innerWidth - width) > 20) { width = window.innerWidth; renderSeries(view.series); }
    });

    refreshFn = async () => {
      const w = view.window;
      const [o, ts, v] = await Promise.all([
        api("/overview", { window: w }), api("/timeseries", { window: w }), api("/versions", { window: w }),
      ]);
      if (w !== view.window) return; // the window changed while this was in flight
      renderOverview(o);
      renderSeries(ts);
      renderVersions(v);
      await refreshTraces();
      await refreshCost();
    };

    function renderCost(c) {
      const days = c.days.length;
      document.getElementById("cost-sub").textContent = `per day · last ${days} day${days === 1 ? "" : "s"} (UTC)`;
      document.getElementById("cost-total").textContent =
        `${fmt.usd(c.total.spent_usd)} spent · ${fmt.usd(c.total.saved_usd)} saved`;
      drawDays(costChart, c.days);
      const rows = (list, body, what) => body.replaceChildren(...(list.length ? list.map((r) => h("tr", { "data-key": r.key === null ? "" : r.key },
        h("td", { class: "mono", title: r.key === null ? `no ${what}` : r.key, text: r.key === null ? "(none)" : r.key }),
        h("td", { class: "num", text: fmt.usd(r.spent_usd) }),
        h("td", { class: "num", title: Object.entries(r.savings).map(([k, v]) => `${k} ${fmt.usd(v)}`).join(", "), text: fmt.usd(r.saved_usd) })))
        : [h("tr", {}, h("td", { colspan: 3, class: "empty", text: `no ${what} spent anything in these days` }))]));
      rows(c.top_users, costUsers, "user");
      rows(c.top_features, costFeatures, "feature");
    }
    async function refreshCost() {
      try {
        renderCost(await api("/cost", { days: 14, top: 5 }));
      } catch (e) {
        if (e instanceof AuthError) throw e;
        document.getElementById("cost-sub").textContent = `cost unavailable: ${e.message}`;
      }
    }
    syncUrl();
    kick();
  }

  // ---- the trace page ---------------------------------------------------------------------------------
  function tracePage() {
    document.getElementById("window-select").hidden = true;
    pauseButton.hidden = true;
    autoRefresh = false; // a finished trace does not change: load once (the key form retries)
    const id = BOOT.trace_id;
    app.replaceChildren(h("div", { class: "crumbs" }, h("a", { href: "/dashboard", text: "← Dashboard" }), h("span", { text: "/" }), h("span", { class: "mono", text: id })),
      h("div", { class: "panel empty", id: "trace-loading", text: "loading trace…" }));

    const fact = (k, v, title) => h("div", { class: "fact" }, h("span", { class: "k", text: k }), h("span", { class: "v", text: v, title }));
    const OP_LABEL = { invoke_agent: "AGENT", chat: "LLM", execute_tool: "TOOL", apply_guardrail: "GUARD" };

    function spanDetail(sp) {
      const bits = [];
      if (sp.model) bits.push(sp.model);
      if (sp.input_tokens !== undefined || sp.output_tokens !== undefined) {
        bits.push(`${sp.input_tokens ?? 0} in${sp.cached_tokens ? ` (${sp.cached_tokens} cached)` : ""} / ${sp.output_tokens ?? 0} out tokens`);
      }
      if (sp.tool_status) bits.push(`status ${sp.tool_status}${sp.tool_cached ? " (cached)" : ""}`);
      if (sp.verdict) bits.push(`verdict ${sp.verdict}`);
      if (sp.attempt) bits.push(`attempt ${sp.attempt}`);
      if (sp.cost_usd) bits.push(fmt.usd(sp.cost_usd));
      if (sp.error) bits.push(`error ${sp.error}`);
      return bits.join(" · ");
    }

    function renderWaterfall(d) {
      const total = d.duration_ms || 1;
      const wrap = h("div", { class: "waterfall", id: "waterfall" });
      const ticks = h("div", { class: "wf-ticks muted" }, [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { style: { left: `${f * 100}%` }, text: fmt.ms(total * f) })));
      wrap.append(h("div", { class: "wf-row head" }, h("div", { class: "wf-name", text: "span" }), ticks));
      for (const sp of d.spans) {
        const op = sp.attempt ? "attempt" : sp.operation || "other";
        const left = (sp.offset_ms / total) * 100;
        const widthPct = Math.max((sp.duration_ms / total) * 100, 0.25);
        const labelLeft = left + widthPct > 82 ? null : `calc(${left + widthPct}% + 6px)`;
        const label = h("span", { class: "wf-label", text: fmt.ms(sp.duration_ms) });
        if (labelLeft) label.style.left = labelLeft; else { label.style.right = `calc(${100 - left}% + 6px)`; }
        const attrs = h("div", { class: "wf-attrs", hidden: true },
          h("div", { class: "kv" }, Object.entries(sp.attributes).flatMap(([k, v]) => [h("span", { class: "k", text: k }), h("span", { class: "v", text: typeof v === "string" ? v : JSON.stringify(v) })])));
        const row = h("div", { class: "wf-row", "data-span": sp.span_id, "data-depth": sp.depth, title: "click for attributes" },
          h("div", { class: "wf-name", style: { paddingLeft: `${18 + sp.depth * 18}px` } },
            h("span", { class: `op ${op}`, text: OP_LABEL[op] || op.toUpperCase() }),
            h("span", { class: "txt" }, h("span", { class: "n", text: sp.name }), h("span", { class: "d", text: spanDetail(sp) }))),
          h("div", { class: "wf-track" },
            h("div", { class: `wf-bar ${op} ${sp.status === "error" || (sp.tool_status && sp.tool_status !== "success") ? "error" : ""}`, style: { left: `${left}%`, width: `${widthPct}%` } }),
            label),
          attrs);
        row.addEventListener("click", () => { attrs.hidden = !attrs.hidden; });
        wrap.append(row);
      }
      return wrap;
    }

    function render(d) {
      const t = d.trace;
      const fb = d.feedback;
      const feedbackText = !fb ? "no feedback yet" : [
        fb.thumbs === 1 ? "✓ thumbs up" : fb.thumbs === -1 ? "✗ thumbs down" : null,
        fb.score !== null && fb.score !== undefined ? `score ${fb.score}` : null,
        fb.comment ? `“${fb.comment}”` : null,
      ].filter(Boolean).join(" · ");
      document.title = `Trace ${shortId(t.trace_id)} · Shipyard`;
      const head = h("section", { class: "panel", id: "trace-summary" },
        h("div", { class: "trace-head" },
          h("div", { class: "title" }, h("span", { class: `pill ${t.status}`, text: t.status }), `${t.agent}`,
            h("span", { class: "version muted", text: t.version })),
          h("div", { class: "muted", title: stamp(t.created_at), text: `${stamp(t.created_at)} · ${ago(t.created_at)}` })),
        h("div", { class: "facts" },
          fact("Latency", fmt.ms(t.latency_ms)), fact("Cost", fmt.usd(t.cost_usd)),
          fact("Tokens", `${fmt.count(t.input_tokens)} in / ${fmt.count(t.output_tokens)} out`),
          fact("LLM calls", String(t.llm_calls)), fact("Tool calls", `${t.tool_calls}${t.tool_errors ? ` (${t.tool_errors} failed)` : ""}`),
          fact("Traffic", t.traffic_source),
          h("div", { class: "fact" }, h("span", { class: "k", text: "Session" }),
            h("a", { class: "v", href: `/dashboard?session_id=${encodeURIComponent(t.session_id)}`, title: "this session's traces", text: shortId(t.session_id) })),
          fact("Trace", shortId(t.trace_id), t.trace_id), fact("Feedback", feedbackText)));
      const spansPanel = h("section", { class: "panel", id: "spans" },
        h("header", {}, h("h2", { text: "Span tree" }), h("span", { class: "sub", text: `${d.spans.length} spans · ${fmt.ms(d.duration_ms)} total · bars scaled to the trace` })),
        d.spans.length ? renderWaterfall(d) : h("div", { class: "empty", text: "The spans of this trace were not kept (sampled out); the tree below comes from the interaction record." }));
      const io = h("section", { class: "two" },
        h("div", { class: "panel", id: "trace-input" }, h("header", {}, h("h2", { text: "Input" }), h("span", { class: "sub", text: "as stored (redacted unless content capture is on)" })),
          h("div", { class: "panel-body" }, h("pre", { class: "message", text: t.input }))),
        h("div", { class: "panel", id: "trace-output" }, h("header", {}, h("h2", { text: "Output" }), t.error ? h("span", { class: "sub", text: "" }) : null),
          h("div", { class: "panel-body" }, h("pre", { class: "message", text: d.output || "(empty)" }),
            t.error ? h("p", { class: "error-note", text: `Error: ${t.error}` }) : null)));
      const tools = d.tool_calls.length ? h("section", { class: "panel", id: "trace-tools" },
        h("header", {}, h("h2", { text: "Tool calls" })),
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Tool", "Arguments", "Status", "Duration"].map((x, i) => h("th", { class: i === 3 ? "num" : null, text: x })))),
          h("tbody", {}, d.tool_calls.map((c) => h("tr", {},
            h("td", { class: "mono", text: c.name }),
            h("td", { class: "mono", text: JSON.stringify(c.arguments) }),
            h("td", {}, h("span", { class: `pill ${c.status}`, text: c.status }), c.error ? h("span", { class: "muted", text: ` ${c.error}` }) : null),
            h("td", { class: "num", text: fmt.ms(c.duration_ms) }))))))) : null;
      const tree = h("section", { class: "panel", id: "trace-tree" }, h("header", {}, h("h2", { text: "As text" }), h("span", { class: "sub", text: "shipyard traces show " + t.trace_id })),
        h("pre", { class: "tree", text: d.tree.join("\n") }));
      app.replaceChildren(app.firstChild, head, spansPanel, io, tools, tree);
    }

    refreshFn = async () => {
      try {
        render(await api(`/traces/${encodeURIComponent(id)}`));
      } catch (e) {
        if (e.status === 404) {
          app.replaceChildren(app.firstChild, h("div", { class: "panel empty", id: "trace-missing", text: e.message }));
          return;
        }
        throw e;
      }
    };
    kick();
  }

  app.dataset.page = BOOT.page;
  if (BOOT.page === "trace") tracePage(); else overviewPage();
})();
