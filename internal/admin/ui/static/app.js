// Stoke dashboard. Each page is server-rendered HTML with empty tables; this
// script fills them from the admin API (same origin, authenticated by the
// HttpOnly login cookie) and polls every second, so a cold start shows up
// without reloading. No framework, no build step.
"use strict";

// ---- helpers ----

// el builds an element; strings become text nodes, so data is never parsed as HTML.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}

const status = document.getElementById("status");
function setStatus(msg, isError) {
  if (!status) return;
  // Only errors change the announced text; "updated" would chatter every second.
  status.classList.toggle("error", !!isError);
  if (isError) status.textContent = msg;
  else if (status.textContent !== msg) status.textContent = msg;
}

// api GETs JSON. 401 means the cookie is gone: back to the login page.
// 404 resolves to null, which the trace and tune pages show as "no data yet".
async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (r.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("logged out");
  }
  if (r.status === 404) return null;
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

// poll runs fn now and then every ms after it finishes (never overlapping),
// more slowly while the tab is hidden.
function poll(fn, ms) {
  let timer;
  const tick = async () => {
    clearTimeout(timer);
    try {
      await fn();
      setStatus("Live · updated " + new Date().toLocaleTimeString(), false);
    } catch (e) {
      if (e.message !== "logged out") setStatus("Cannot update: " + e.message, true);
    }
    timer = setTimeout(tick, document.hidden ? ms * 5 : ms);
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tick();
  return tick;
}

const fmt = {
  ms: (v) => (v == null || Number.isNaN(v) ? "–" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString()),
  // Lambda prices are tiny: three significant digits, never an exponent.
  usd: (v) => (v == null ? "–" : "$" + v.toLocaleString("en-US", v !== 0 && Math.abs(v) < 0.01 ? { maximumSignificantDigits: 3 } : { minimumFractionDigits: 2, maximumFractionDigits: 4 })),
  int: (v) => (v == null ? "–" : Number(v).toLocaleString()),
  age: (ns) => {
    const s = ns / 1e9;
    if (s < 60) return s.toFixed(0) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  },
  time: (t) => new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(new Date(t).getMilliseconds()).padStart(3, "0"),
};

// fillTable replaces a tbody's rows; cells are [label, content, className?].
// The label feeds data-label, which the phone layout shows beside each value.
function fillTable(tbody, rows, emptyText, cols) {
  tbody.replaceChildren();
  if (!rows.length) {
    tbody.append(el("tr", {}, el("td", { colspan: cols, class: "empty" }, emptyText)));
    return;
  }
  for (const r of rows) {
    const tr = el("tr", r.attrs || {});
    for (const [label, content, cls] of r.cells) tr.append(el("td", { "data-label": label, class: cls }, content));
    tbody.append(tr);
  }
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// chart makes a uPlot that follows its container's width and the colour scheme.
function chart(container, opts, data) {
  const theme = () => ({ stroke: cssVar("--fg"), grid: { stroke: cssVar("--line"), width: 1 }, ticks: { stroke: cssVar("--line") } });
  opts.axes = (opts.axes || [{}, {}]).map((a) => Object.assign(theme(), a));
  const u = new uPlot(Object.assign({ width: Math.max(container.clientWidth - 10, 280), height: 260 }, opts), data, container);
  new ResizeObserver(() => u.setSize({ width: Math.max(container.clientWidth - 10, 280), height: 260 })).observe(container);
  return u;
}

function markNav() {
  for (const a of document.querySelectorAll(".top nav a")) {
    const here = a.getAttribute("href") === "/" ? location.pathname === "/" || location.pathname.startsWith("/functions/") : location.pathname.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page");
  }
}

// ---- Functions overview ----

function byState(instances) {
  const n = {};
  for (const i of instances || []) n[i.state] = (n[i.state] || 0) + 1;
  const order = ["busy", "idle", "starting", "draining", "failed", "stopped"];
  const parts = order.filter((s) => n[s]).map((s) => el("span", { class: "state-" + s }, n[s] + " " + s));
  if (!parts.length) return "none";
  return parts.flatMap((p, i) => (i ? [" · ", p] : [p]));
}

function functionsPage() {
  const tbody = document.querySelector("#functions tbody");
  let hour = {}, day = {};
  // Cost reports replay traffic for their advice: cheaper to ask less often.
  poll(async () => {
    const rep = await api("/v1/cost?since=1h");
    hour = Object.fromEntries((rep?.functions || []).map((s) => [s.function, s]));
  }, 2000);
  poll(async () => {
    const rep = await api("/v1/cost?since=24h");
    day = Object.fromEntries((rep?.functions || []).map((s) => [s.function, s]));
  }, 10000);
  poll(async () => {
    const fns = (await api("/v1/functions")) || [];
    fns.sort((a, b) => a.name.localeCompare(b.name));
    fillTable(tbody, fns.map((f) => {
      const h = hour[f.name] || {}, d = day[f.name] || {};
      return {
        attrs: { "data-function": f.name },
        cells: [
          ["Function", el("a", { href: "/functions/" + encodeURIComponent(f.name) }, f.name)],
          ["Runtime", f.runtime],
          ["Version", f.version],
          ["Memory", f.memory_mb + " MB", "num"],
          ["Keep warm", String(f.keep_warm), "num"],
          ["Routes", (f.routes || []).length ? el("code", {}, f.routes.join(" ")) : "–"],
          ["Instances", f.health?.failing ? [el("strong", { class: "error failing", title: f.health.last_error }, "failing"), " · ", byState(f.instances)] : byState(f.instances)],
          ["Invocations (1 h)", fmt.int(h.invocations || 0), "num"],
          ["Cold starts (1 h)", fmt.int(h.cold_starts || 0), "num cold-count"],
          ["p50", h.invocations ? fmt.ms(h.duration_p50_ms) + " ms" : "–", "num"],
          ["p99", h.invocations ? fmt.ms(h.duration_p99_ms) + " ms" : "–", "num"],
          ["Cost (24 h)", fmt.usd(d.total), "num"],
        ],
      };
    }), "No functions are deployed. Deploy some with stoke deploy -f stoke.yaml.", 12);
  }, 1000);
}

// ---- Function page ----

function functionPage(name) {
  const enc = encodeURIComponent(name);
  const instBody = document.querySelector("#instances tbody");
  const invBody = document.querySelector("#invocations tbody");
  const coldOnly = document.getElementById("cold-only");
  const summary = document.getElementById("summary");
  const seen = new Set();
  let first = true, plot;

  poll(async () => {
    const fns = (await api("/v1/functions")) || [];
    const f = fns.find((x) => x.name === name);
    if (!f) {
      summary.textContent = "This function is not deployed.";
      fillTable(instBody, [], "No instances.", 8);
      return;
    }
    // A python-wsgi template is made once per version: its start-up is shown
    // apart from the instances' cold starts, as SnapStart shows its snapshot.
    const sn = f.snapshot;
    summary.replaceChildren(`${f.runtime} · version ${f.version} · ${f.memory_mb} MB · timeout ${f.timeout} · keep_warm ${f.keep_warm} · max_instances ${f.max_instances} · routes `,
      el("code", {}, (f.routes || []).join(" ") || "none"), f.waiting ? ` · ${f.waiting} waiting` : "",
      sn ? el("span", { class: "snapshot" }, ` · instances fork from template ${sn.id}: import and warm-up ${Math.round(sn.init_ms)} ms, ${sn.memory_mb} MB` +
        (sn.interpreter ? `, python ${sn.interpreter}` : "")) : "",
      sn?.warning ? el("strong", { class: "error snapshot-warning" }, ` · warning: ${sn.warning}`) : "",
      f.keep_alive ? el("span", { class: "keep-alive" }, ` · keep_alive ${f.keep_alive.policy}: ` + (f.keep_alive.warm ? `holding ${f.keep_alive.warm} warm` : f.keep_alive.next_prewarm ? `unloaded, next pre-warm ${new Date(f.keep_alive.next_prewarm).toLocaleTimeString()}` : `idle kept ${fmt.age(f.keep_alive.keep_alive_ns)} (scale-out ${fmt.age(f.keep_alive.scale_out_keep_alive_ns)})`) + `, ${f.keep_alive.prewarms} pre-warms (${f.keep_alive.prewarms_unused} unused), ${f.keep_alive.evictions} evictions, ${f.keep_alive.idle_gb_seconds.toFixed(1)} GB-s idle`) : "",
      f.health?.failing ? el("strong", { class: "error failing" }, ` · failing: ${f.health.failures} starts failed in a row; requests get 502 with: ${f.health.last_error}`) : "",
      f.cache ? el("span", { class: "cache" }, ` · response cache: hit ratio ${Math.round(100 * f.cache.hit_ratio)}%, ${f.cache.entries} entries, ${(f.cache.bytes / 1048576).toFixed(1)} of ${(f.cache.max_bytes / 1048576).toFixed(0)} MB`) : "");
    fillTable(instBody, (f.instances || []).map((i) => ({
      cells: [
        ["Instance", el("code", {}, i.id)],
        ["State", el("span", { class: "state-" + i.state }, i.state)],
        ["PID", i.pid ? String(i.pid) : "–", "num"],
        ["Memory used", i.memory_used_mb
          ? [el("meter", { min: 0, max: f.memory_mb, value: i.memory_used_mb, "aria-label": `${i.memory_used_mb} of ${f.memory_mb} MB` }), ` ${i.memory_used_mb} / ${f.memory_mb} MB`]
          : `– / ${f.memory_mb} MB`],
        ["Age", fmt.age(i.age_ns), "num"],
        ["Requests served", fmt.int(i.served), "num"],
        ["In flight", String(i.inflight), "num"],
        ["Node", i.node || "–"], // the cluster node it runs on
      ],
    })), "No instances: the function is scaled to zero. The next request starts one (a cold start).", 8);
  }, 1000);

  // The latest invocations, a page at a time: page 1 follows live; Older
  // pages back from the oldest row shown (by start time, as listed).
  const pageSize = 20;
  const newer = document.getElementById("inv-newer"), older = document.getElementById("inv-older");
  const pageLabel = document.getElementById("inv-page");
  let cursors = [], before = null, oldestShown = null;
  const refreshInvocations = poll(async () => {
    const q = `limit=${pageSize + 1}` + (coldOnly.checked ? "&cold=1" : "") + (before ? "&before=" + encodeURIComponent(before) : "");
    const rows = (await api(`/v1/functions/${enc}/invocations?${q}`)) || [];
    const more = rows.length > pageSize, shown = rows.slice(0, pageSize);
    oldestShown = shown.length ? shown[shown.length - 1].Start : null;
    older.disabled = !more;
    newer.disabled = !before;
    pageLabel.textContent = before ? `page ${cursors.length + 1}` : "";
    fillTable(invBody, shown.map((r) => {
      const fresh = !first && !seen.has(r.RequestID);
      seen.add(r.RequestID);
      return {
        attrs: { class: fresh ? "fresh" : null, "data-request": r.RequestID, "data-cold": String(r.Cold), "data-start": r.Start },
        cells: [
          ["Time", fmt.time(r.Start), "mono"],
          ["Request", el("a", { href: `/traces/${encodeURIComponent(r.RequestID)}?fn=${enc}`, "aria-label": "Trace of request " + r.RequestID }, el("code", {}, r.RequestID.slice(0, 8)))],
          ["Start", r.Cold
            ? [el("span", { class: "tag cold" }, "cold"),
              r.InitBoost ? [" ", el("span", { class: "tag boost", title: "init ran without the CPU quota (init_boost)" }, "boost")] : []].flat()
            : el("span", { class: "tag warm" }, "warm")],
          ["Init ms", r.Cold ? fmt.ms(r.InitMS) : "–", "num init"],
          ["Queue ms", fmt.ms(r.QueueMS), "num"],
          ["Duration ms", fmt.ms(r.DurationMS), "num"],
          ["Billed ms", fmt.int(r.BilledMS), "num"],
          ["Max memory", r.MaxMemoryMB ? r.MaxMemoryMB + " MB" : "–", "num"],
          ["Status", r.ErrorType ? `${r.Status} ${r.ErrorType}` : String(r.Status), r.Status >= 400 ? "error" : null],
          ["Path", el("code", {}, `${r.Method || ""} ${r.Path || ""}`.trim())],
        ],
      };
    }), before ? "No older invocations." : coldOnly.checked ? "No cold starts recorded." : "No invocations yet. Send a request to one of the routes.", 10);
    first = false;
  }, 1000);
  coldOnly.addEventListener("change", () => { cursors = []; before = null; refreshInvocations(); });
  older.addEventListener("click", () => { if (oldestShown) { cursors.push(before); before = oldestShown; refreshInvocations(); } });
  newer.addEventListener("click", () => { before = cursors.pop() || null; refreshInvocations(); });

  // The chart holds the last hour: loaded once whole (up to 10,000
  // invocations), then topped up with the last two minutes every two
  // seconds, so a busy function does not reload thousands of rows a second.
  const box = document.getElementById("latency-chart");
  const hour = new Map();
  let loaded = false;
  poll(async () => {
    const recs = (await api(`/v1/functions/${enc}/invocations?since=${loaded ? "2m" : "1h"}&limit=10000`)) || [];
    loaded = true;
    for (const r of recs) hour.set(r.RequestID, r);
    const cutoff = Date.now() - 3600e3;
    for (const [id, r] of hour) if (new Date(r.Start).getTime() < cutoff) hour.delete(id);
    plot = latencyChart(box, plot, [...hour.values()]);
  }, 2000);

  followLog(name);
}

// Time ticks fall on whole seconds, minutes, hours or days, so a label
// never reads ":51.500", and are labelled at the precision of their step.
const timeIncrs = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
function timeLabel(sec, incr) {
  const d = new Date(sec * 1000), p = (n) => String(n).padStart(2, "0");
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (incr < 60) return `${hm}:${p(d.getSeconds())}`;
  if (incr < 86400) return hm;
  return d.toLocaleDateString([], { day: "numeric", month: "short" });
}

// latencySeries turns records (any order) into the chart's columns: time in
// seconds, latency, cold-start latency, run time. An idle stretch (over a
// minute, and ten times the median spacing) gets a null row, so the line
// breaks there instead of joining points across the gap.
function latencySeries(recs) {
  const rs = recs.filter((r) => r.InstanceID || r.DurationMS)
    .map((r) => ({ r, t: new Date(r.Start).getTime() / 1000 })).sort((a, b) => a.t - b.t);
  const steps = rs.slice(1).map((x, i) => x.t - rs[i].t).sort((a, b) => a - b);
  const gapAt = Math.max(60, 10 * (steps.length ? steps[Math.floor(steps.length / 2)] : 0));
  const cols = [[], [], [], []];
  let gaps = 0;
  rs.forEach(({ r, t }, i) => {
    if (i && t - rs[i - 1].t > gapAt) {
      cols[0].push((t + rs[i - 1].t) / 2); cols[1].push(null); cols[2].push(null); cols[3].push(null);
      gaps++;
    }
    // Latency is what the caller waited: the queue (which holds a cold
    // start's init) plus the run; the run alone is what Lambda bills.
    const lat = r.QueueMS + r.DurationMS;
    cols[0].push(t); cols[1].push(lat); cols[2].push(r.Cold ? lat : null); cols[3].push(r.DurationMS);
  });
  return { cols, rs: rs.map((x) => x.r), gaps };
}

// latencyChart draws recs on box (creating the plot on first use) with a
// real time axis that fits the data: one invocation shows a two-minute
// window around it, not years. With no records it shows the empty state.
// The container's data-* attributes say what was drawn (points, gaps, the
// x range, the tick labels), for people reading the DOM and for the tests.
function latencyChart(box, plot, recs) {
  const { cols, rs, gaps } = latencySeries(recs);
  const empty = document.getElementById("latency-empty");
  if (empty && box.id === "latency-chart") empty.hidden = rs.length > 0;
  box.hidden = rs.length === 0;
  const xs = rs.map((r) => new Date(r.Start).getTime() / 1000);
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const pad = Math.max(60 - (hi - lo) / 2, (hi - lo) * 0.02, 1);
  const range = rs.length ? [lo - pad, hi + pad] : [Date.now() / 1000 - 3600, Date.now() / 1000];
  Object.assign(box.dataset, { points: rs.length, gaps, xMin: range[0], xMax: range[1] });
  const sorted = rs.map((r) => r.QueueMS + r.DurationMS).sort((a, b) => a - b);
  const cold = rs.filter((r) => r.Cold).length;
  box.setAttribute("aria-label", rs.length
    ? `Chart: latency of the ${rs.length} invocations of the last hour; median ${fmt.ms(sorted[Math.floor(sorted.length / 2)])} ms, slowest ${fmt.ms(sorted[sorted.length - 1])} ms, ${cold} cold start${cold === 1 ? "" : "s"}${gaps ? `, ${gaps} idle gap${gaps === 1 ? "" : "s"}` : ""}.`
    : "Chart: no invocations in the last hour.");
  if (!rs.length) return plot;
  box.xRange = range;
  if (!plot) {
    const none = () => null; // no line: points only
    plot = chart(box, {
      title: "Latency per invocation (ms)",
      scales: { x: { time: true, range: () => box.xRange } },
      series: [
        { value: (u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleTimeString([], { hour12: false })) },
        { label: "Latency ms", stroke: cssVar("--bar-invoke"), width: 1.5 },
        { label: "Cold start", stroke: cssVar("--cold"), fill: cssVar("--cold"), paths: none, points: { show: true, size: 11, fill: cssVar("--cold") } },
        { label: "Run ms (billed part)", stroke: cssVar("--bar-queue"), width: 1, dash: [4, 4] },
      ],
      axes: [{
        space: 80, incrs: timeIncrs,
        values: (u, splits, ax, space, incr) => {
          const labels = splits.map((v) => timeLabel(v, incr));
          box.dataset.ticks = labels.join("|");
          return labels;
        },
      }, { label: "ms" }],
    }, cols);
  } else {
    plot.setData(cols);
  }
  return plot;
}

// followLog streams the function's log (NDJSON, follow=1) into the page and
// reconnects after the last line it saw if the stream ends.
function followLog(name) {
  const pre = document.getElementById("log");
  const state = document.getElementById("log-state");
  const pause = document.getElementById("log-pause");
  let paused = false, buffered = [], after = 0;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { buffered.forEach(add); buffered = []; }
  });
  function add(l) {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    pre.append(el("span", { class: l.Stream }, el("span", { class: "t" }, fmt.time(l.Time) + " "), l.Text + "\n"));
    while (pre.childNodes.length > 1000) pre.firstChild.remove();
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  async function run() {
    const q = after ? `after=${after}` : "tail=1&limit=200";
    try {
      const r = await fetch(`/v1/functions/${encodeURIComponent(name)}/logs?${q}&follow=1`, { cache: "no-store" });
      if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      state.textContent = "Following live.";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let rest = "";
      if (!pre.childNodes.length) pre.append(el("span", { class: "empty" }, "No log lines yet.\n"));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
        const lines = rest.split("\n");
        rest = lines.pop();
        for (const s of lines) {
          if (!s) continue;
          const l = JSON.parse(s);
          after = Math.max(after, l.Seq);
          const empty = pre.querySelector(".empty");
          if (empty) empty.remove();
          paused ? buffered.push(l) : add(l);
        }
      }
    } catch (e) {
      state.textContent = "Log stream interrupted (" + e.message + "); reconnecting…";
    }
    setTimeout(run, 1000);
  }
  run();
}

// ---- Trace page ----

// spansOf reads GET /v1/traces/{id} (internal/trace.Trace): spans with
// RFC 3339 start and end, and duration_ms. Date keeps milliseconds only, so
// the microseconds are read from the string for sub-millisecond spans.
function spansOf(t) {
  const ms = (v) => {
    const m = typeof v === "string" && v.match(/\.\d{3}(\d{1,3})/);
    return new Date(v).getTime() + (m ? Number(m[1].padEnd(3, "0")) / 1000 : 0);
  };
  return (t?.spans || []).map((s) => ({ name: s.name, start: ms(s.start), end: ms(s.start) + s.duration_ms, error: s.error || "", attrs: s.attributes || {} }));
}

const spanOrder = { gateway: 0, queue: 1, init: 2, invoke: 3 };

async function tracePage(id) {
  const box = document.getElementById("waterfall");
  let t = null;
  try {
    t = await api("/v1/traces/" + encodeURIComponent(id));
    setStatus("Loaded " + new Date().toLocaleTimeString(), false);
  } catch (e) {
    setStatus("Cannot load the trace: " + e.message, true);
  }
  const fn = new URLSearchParams(location.search).get("fn") || t?.function;
  if (fn) {
    const crumb = document.getElementById("crumb-fn");
    crumb.replaceChildren(el("a", { href: "/functions/" + encodeURIComponent(fn) }, fn), " › ");
  }
  if (t && t.function) {
    box.before(el("p", { class: "summary", id: "trace-summary" },
      `${t.function} version ${t.version} · `, el("span", { class: "tag " + (t.cold ? "cold" : "warm") }, t.cold ? "cold" : "warm"),
      ` · status ${t.status} · ${fmt.ms(t.duration_ms)} ms · started ${new Date(t.start).toLocaleString()} · trace id `, el("code", {}, t.trace_id || "–")));
  }
  const spans = spansOf(t);
  if (!spans.length) {
    box.replaceChildren(el("div", { class: "empty-state", id: "trace-empty" },
      el("p", { class: "empty" }, `No trace is stored for request ${id}.`),
      el("p", {}, "Traces are kept for recent invocations once tracing is part of this Stoke server; older traces are dropped. " +
        "The invocation's init, queue and duration times are on its function's page.")));
  } else {
    drawWaterfall(box, spans, id);
  }
  if (fn) recentTraces(fn, id);
}

function drawWaterfall(box, spans, id) {
  spans.sort((a, b) => a.start - b.start || (spanOrder[a.name] ?? 9) - (spanOrder[b.name] ?? 9));
  const t0 = Math.min(...spans.map((s) => s.start));
  const total = Math.max(...spans.map((s) => s.end)) - t0 || 1;
  const rows = spans.map((s) => {
    const off = s.start - t0, dur = s.end - s.start;
    const attrs = Object.entries(s.attrs).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("  ");
    return el("tr", { "data-span": s.name },
      el("th", { scope: "row" }, s.name),
      el("td", { class: "num", "data-label": "Starts at" }, "+" + fmt.ms(off) + " ms"),
      el("td", { class: "num", "data-label": "Duration" }, fmt.ms(dur) + " ms"),
      el("td", { class: "bar-cell", "aria-hidden": "true" },
        el("div", { class: "track" }, el("div", { class: "bar " + s.name, style: `left:${(off / total) * 100}%;width:${(dur / total) * 100}%` }))),
      el("td", { class: "attrs", "data-label": "Attributes" }, s.error ? el("strong", { class: "error" }, s.error + "  ") : null, attrs));
  });
  box.replaceChildren(el("div", { class: "table-wrap", role: "region", "aria-labelledby": "wf-caption", tabindex: "0" },
    el("table", { class: "waterfall cards", id: "waterfall-table" },
      el("caption", { id: "wf-caption" }, `Spans of request ${id}, ${fmt.ms(total)} ms in all, in start order`),
      el("thead", {}, el("tr", {}, ["Span", "Starts at", "Duration", "Timeline", "Attributes"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows))));
}

async function recentTraces(fn, current) {
  const sec = document.getElementById("recent"), list = document.getElementById("recent-list");
  sec.hidden = false;
  let ts = null;
  try { ts = await api(`/v1/functions/${encodeURIComponent(fn)}/traces`); } catch (_) { /* shown as empty */ }
  const items = ts || [];
  if (!items.length) {
    list.replaceChildren(el("p", { class: "empty" }, `No stored traces for ${fn} yet.`));
    return;
  }
  list.replaceChildren(el("ul", {}, items.slice(0, 20).map((x) => {
    const rid = x.request_id;
    return el("li", {}, el("a", { href: `/traces/${encodeURIComponent(rid)}?fn=${encodeURIComponent(fn)}`, "aria-current": rid === current ? "page" : null }, el("code", {}, rid)),
      ` · ${fmt.ms(x.duration_ms)} ms · status ${x.status}`, x.cold ? " · cold" : "");
  })));
}

// ---- Cost page ----

function costPage() {
  const tbody = document.querySelector("#cost tbody"), tfoot = document.querySelector("#cost tfoot");
  const win = document.getElementById("window");
  const refresh = poll(async () => {
    const rep = await api("/v1/cost?since=" + win.value);
    const fs = rep?.functions || [];
    const p = rep?.prices || {};
    document.getElementById("prices").textContent =
      `Prices: ${fmt.usd(p.price_per_gb_second)} per GB-s, ${fmt.usd(p.price_per_request)} per request, keep-warm ${fmt.usd(p.keep_warm_price_per_gb_second)} per GB-s; init ${p.bill_init ? "billed" : "not billed"}.`;
    const invTotal = (s) => s.total - s.keep_warm_cost;
    fillTable(tbody, fs.map((s) => ({
      attrs: { "data-function": s.function },
      cells: [
        ["Function", el("a", { href: "/functions/" + encodeURIComponent(s.function) }, s.function)],
        ["Memory", s.memory_mb ? s.memory_mb + " MB" : "not deployed", "num"],
        ["Invocations", fmt.int(s.invocations), "num"],
        ["Cold starts", fmt.int(s.cold_starts), "num"],
        ["GB-s", s.gb_seconds.toFixed(3), "num"],
        ["Requests", fmt.usd(s.request_cost), "num"],
        ["Duration", fmt.usd(s.duration_cost), "num"],
        ["Init", fmt.usd(s.init_cost), "num"],
        ["Invocations total", fmt.usd(invTotal(s)), "num"],
        ["Keep warm", `${fmt.usd(s.keep_warm_cost)} (${s.keep_warm})`, "num"],
        ["Total", fmt.usd(s.total), "num"],
      ],
    })), "No invocations in this window.", 11);
    const sum = (k) => fs.reduce((a, s) => a + (typeof k === "function" ? k(s) : s[k]), 0);
    tfoot.replaceChildren(el("tr", {},
      el("th", { scope: "row", colspan: 2 }, "All functions"),
      el("td", { class: "num", "data-label": "Invocations" }, fmt.int(sum("invocations"))),
      el("td", { class: "num", "data-label": "Cold starts" }, fmt.int(sum("cold_starts"))),
      el("td", { class: "num", "data-label": "GB-s" }, sum("gb_seconds").toFixed(3)),
      el("td", { class: "num", "data-label": "Requests" }, fmt.usd(sum("request_cost"))),
      el("td", { class: "num", "data-label": "Duration" }, fmt.usd(sum("duration_cost"))),
      el("td", { class: "num", "data-label": "Init" }, fmt.usd(sum("init_cost"))),
      el("td", { class: "num", "data-label": "Invocations total" }, fmt.usd(sum(invTotal))),
      el("td", { class: "num", "data-label": "Keep warm" }, fmt.usd(sum("keep_warm_cost"))),
      el("td", { class: "num", "data-label": "Total", id: "cost-total" }, fmt.usd(sum("total")))));
    drawAdvice(fs);
  }, 5000);
  win.addEventListener("change", refresh);
  loadTunes();
}

function drawAdvice(fs) {
  const box = document.getElementById("advice");
  const withAdvice = fs.filter((s) => (s.keep_warm_advice || []).length);
  if (!withAdvice.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No advice yet: it replays recorded traffic, so it needs invocations in this window."));
    return;
  }
  box.replaceChildren(...withAdvice.map((s) => el("div", { class: "table-wrap", role: "region", "aria-label": "Keep-warm advice for " + s.function, tabindex: "0" },
    el("table", { class: "cards" },
      el("caption", {}, `${s.function}: the recorded traffic replayed with keep_warm N. Recorded: ${s.keep_warm_advice[0].recorded} cold start${s.keep_warm_advice[0].recorded === 1 ? "" : "s"} with keep_warm ${s.keep_warm}.`),
      el("thead", {}, el("tr", {}, ["keep_warm", "Cold starts (replayed)", "Recorded cold starts removed", "Cost per day"].map((h) => el("th", { scope: "col", class: h === "keep_warm" ? null : "num" }, h)))),
      el("tbody", {}, s.keep_warm_advice.map((a) => el("tr", { "data-keep-warm": a.keep_warm },
        el("td", { "data-label": "keep_warm" }, String(a.keep_warm)),
        el("td", { class: "num cold-starts", "data-label": "Cold starts (replayed)" }, String(a.cold_starts)),
        el("td", { class: "num", "data-label": "Recorded cold starts removed" }, String(a.removed)),
        el("td", { class: "num", "data-label": "Cost per day" }, fmt.usd(a.cost_per_day)))))))));
}

async function loadTunes() {
  const box = document.getElementById("tune");
  const fns = (await api("/v1/functions").catch(() => null)) || [];
  if (!fns.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No functions are deployed."));
    return;
  }
  const parts = [], draws = [];
  for (const f of fns.sort((a, b) => a.name.localeCompare(b.name))) {
    let d = null;
    try { d = await api(`/v1/functions/${encodeURIComponent(f.name)}/tune/latest`); } catch (_) { /* shown as empty */ }
    // d is internal/tune.Report: sizes ascending, recommendations with the
    // headline strategy first.
    const rows = d?.sizes || [];
    if (!rows.length) {
      parts.push(el("div", { class: "tune-item empty-state", "data-function": f.name },
        el("h3", {}, f.name),
        el("p", { class: "empty" }, `No stoke tune result for ${f.name} yet.`),
        el("p", {}, "Run ", el("code", {}, `stoke tune ${f.name}`), " to measure cold and warm duration and cost at several memory sizes; the latest result shows here.")));
      continue;
    }
    const recs = d.recommendations || [];
    const fig = el("div", { role: "img", "aria-label": `Chart: ${f.name}'s cold and warm duration and cost per million requests against memory size, from the latest stoke tune. The same numbers are in the table below.` });
    const item = el("div", { class: "tune-item", "data-function": f.name },
      el("h3", {}, `${f.name} (version ${d.version}, tuned ${new Date(d.started).toLocaleString()}, live at ${d.live_memory_mb} MB)`),
      recs.length ? el("div", { class: "recommendation", id: "recommendation-" + f.name },
        el("p", {}, el("strong", {}, `Recommendation (${recs[0].strategy}): ${recs[0].memory_mb} MB. `), recs[0].why),
        recs.length > 1 ? el("ul", {}, recs.slice(1).map((r) => el("li", {}, `${r.strategy}: ${r.memory_mb} MB. ${r.why}`))) : null) : null,
      el("figure", { class: "chart" }, fig, el("figcaption", {}, "Duration (left axis, ms) and cost per 1 M requests (right axis) at each memory size.")),
      el("div", { class: "table-wrap", role: "region", "aria-label": `stoke tune results for ${f.name}`, tabindex: "0" },
        el("table", { class: "cards" },
          el("caption", {}, `stoke tune results for ${f.name}`),
          el("thead", {}, el("tr", {}, ["Memory", "Cold p50 ms", "Warm p50 ms", "Warm p99 ms", "Billed ms", "Cost per 1 M", `… at ${(d.plan?.cold_rate || 0) * 100}% cold`].map((h) => el("th", { scope: "col", class: "num" }, h)))),
          el("tbody", {}, rows.map((r) => el("tr", {},
            el("td", { class: "num", "data-label": "Memory" }, r.memory_mb + " MB"),
            el("td", { class: "num", "data-label": "Cold p50 ms" }, r.cold_samples?.length ? fmt.ms(r.cold_p50_ms) : "–"),
            el("td", { class: "num", "data-label": "Warm p50 ms" }, fmt.ms(r.warm_p50_ms)),
            el("td", { class: "num", "data-label": "Warm p99 ms" }, fmt.ms(r.warm_p99_ms)),
            el("td", { class: "num", "data-label": "Billed ms" }, fmt.int(r.billed_ms)),
            el("td", { class: "num", "data-label": "Cost per 1 M" }, fmt.usd(r.cost_per_1m)),
            el("td", { class: "num", "data-label": "At cold rate" }, fmt.usd(r.cost_per_1m_at_cold_rate))))))));
    parts.push(item);
    // uPlot measures its container, so draw once the figure is in the page.
    const sizes = rows.map((r) => r.memory_mb);
    draws.push(() => chart(fig, {
      title: `${f.name}: duration and cost by memory`,
      // Sizes double (128, 256, 512…): a log axis spaces them evenly, and
      // the ticks are the sizes measured, not every 10 MB.
      scales: { x: { time: false, distr: 3, log: 2, range: () => [Math.min(...sizes) / 1.2, Math.max(...sizes) * 1.2] }, cost: {} },
      series: [
        { label: "Memory MB" },
        { label: "Cold p50 ms", stroke: cssVar("--cold"), width: 2, points: { show: true } },
        { label: "Warm p50 ms", stroke: cssVar("--bar-invoke"), width: 2, points: { show: true } },
        { label: "$ per 1 M at the cold rate", stroke: cssVar("--warm"), width: 2, dash: [6, 4], scale: "cost", points: { show: true } },
      ],
      axes: [{
        label: "memory (MB)", splits: () => sizes,
        values: (u, splits) => {
          const labels = splits.map((v) => String(v));
          fig.dataset.ticks = labels.join("|");
          return labels;
        },
      }, { label: "ms" }, { side: 1, scale: "cost", label: "$ per 1 M", grid: { show: false }, size: 70, values: (u, vals) => vals.map((v) => "$" + v.toPrecision(4)) }],
    }, [rows.map((r) => r.memory_mb), rows.map((r) => (r.cold_samples?.length ? r.cold_p50_ms : null)), rows.map((r) => r.warm_p50_ms), rows.map((r) => r.cost_per_1m_at_cold_rate)]));
  }
  box.replaceChildren(...parts);
  draws.forEach((d) => d());
}

// ---- banner: Stoke's own faults ----

// storeBanner says, on every page, when records and logs cannot be written
// to data_dir (disk full, read-only): Stoke serves on, and counts the loss.
function storeBanner() {
  const b = document.getElementById("banner");
  if (!b) return;
  poll(async () => {
    const st = (await api("/v1/status"))?.store;
    const bad = st && !st.writable;
    b.hidden = !bad;
    if (bad) b.textContent = `Stoke cannot write to ${st.path} since ${new Date(st.failing_since).toLocaleString()}: ${st.last_error}. Functions keep serving; ${fmt.int(st.lost)} records and log lines lost so far.`;
  }, 5000);
}

// ---- start ----

markNav();
storeBanner();
const main = document.getElementById("main");
switch (main?.dataset.page) {
  case "functions": functionsPage(); break;
  case "function": functionPage(main.dataset.name); break;
  case "trace": tracePage(main.dataset.id); break;
  case "cost": costPage(); break;
}
