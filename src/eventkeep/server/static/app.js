// The eventkeep console: a single page over the server's own /v1 API. No build step, no
// dependencies. Every value from the store is inserted as text (esc() or textContent).
"use strict";

const state = {
  token: localStorage.getItem("eventkeep.token") || "",
  live: null, // the AbortController of the page's live subscription
  generation: 0, // counts page renders: a late error of an earlier page is not shown
};

// -- helpers --------------------------------------------------------------------------------

function esc(value) {
  return String(value)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function $(selector, root = document) { return root.querySelector(selector); }

function headers(extra = {}) {
  const h = { ...extra };
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  return h;
}

// Read a Server-Sent Events body: onFrame(event, id, data) for each frame, until the body
// ends or onFrame returns true (then the result is true).
async function readEvents(response, onFrame) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message", id = null, data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (onFrame(event, id, data)) {
        reader.cancel().catch(() => {});
        return true;
      }
    }
  }
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error(data && data.detail ? data.detail : `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.problem = data;
    throw error;
  }
  return data;
}

function toast(message, kind = "") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = message;
  $("#toasts").appendChild(el);
  setTimeout(() => el.remove(), 5000);
}

function fail(error) {
  toast(error.problem && error.problem.error ? `${error.problem.error}: ${error.message}` : error.message, "bad");
}

function when(iso) {
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.round(seconds)}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

// -- JSON viewer ----------------------------------------------------------------------------

function jsonHtml(value, depth = 0) {
  if (value === null) return '<span class="z">null</span>';
  if (typeof value === "string") return `<span class="s">"${esc(value)}"</span>`;
  if (typeof value === "number") return `<span class="n">${value}</span>`;
  if (typeof value === "boolean") return `<span class="b">${value}</span>`;
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (!entries.length) return `<span class="z">${open}${close}</span>`;
  const inner = entries.map(([k, v]) =>
    `<div>${isArray ? "" : `<span class="k">"${esc(k)}"</span>: `}${jsonHtml(v, depth + 1)}</div>`).join("");
  const label = isArray ? `${entries.length} items` : `${entries.length} keys`;
  return `<details ${depth < 2 ? "open" : ""}><summary>${open} <span class="z">${label}</span></summary>${inner}${close}</details>`;
}

function jsonView(value) { return `<div class="json">${jsonHtml(value)}</div>`; }

// -- live subscriptions (SSE over fetch, so the token goes in a header) ----------------------

function stopLive() {
  if (state.live) state.live.abort();
  state.live = null;
}

async function follow(path, onEvent, onStatus) {
  stopLive();
  const controller = new AbortController();
  state.live = controller;
  let lastId = null;
  while (!controller.signal.aborted) {
    try {
      const h = headers({ Accept: "text/event-stream" });
      if (lastId !== null) h["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers: h, signal: controller.signal });
      if (!response.ok) {
        const problem = await response.json().catch(() => null);
        onStatus(false, problem ? problem.detail : response.statusText);
        if (response.status === 401 || response.status === 403) return;
        throw new Error("retry");
      }
      onStatus(true);
      const ended = await readEvents(response, (event, id, data) => {
        if (event === "event" && data) {
          lastId = id;
          onEvent(JSON.parse(data));
        } else if (event === "dropped" && data) {
          lastId = String(JSON.parse(data).resume_after);
        } else if (event === "unauthorized") {
          onStatus(false, "the token was revoked");
          return true;
        }
        return false;
      });
      if (ended) return;
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    onStatus(false, "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// -- sidebar ---------------------------------------------------------------------------------

async function refreshStats() {
  try {
    const stats = await api("GET", "/v1/stats");
    $("#stat-events").textContent = stats.events.toLocaleString();
    $("#stat-streams").textContent = stats.streams.toLocaleString();
    $("#stat-head").textContent = stats.head_position.toLocaleString();
    $("#store-url").textContent = stats.url;
    $("#store-url").title = stats.url;
  } catch (error) {
    $("#store-url").textContent = error.status === 401 ? "sign in with a token" : "unreachable";
  }
}

function showTokenState(text, kind) {
  const el = $("#token-state");
  el.textContent = text;
  el.className = `token-state ${kind || ""}`;
}

async function checkToken() {
  if (!state.token) {
    showTokenState("no token: read-only if the server allows it");
    return;
  }
  try {
    await api("GET", "/v1/stats");
    showTokenState("token accepted", "ok");
  } catch (error) {
    showTokenState(error.message, "bad");
  }
}

// -- pages -----------------------------------------------------------------------------------

const pages = {};

pages.streams = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>Streams</h1><p class="subtitle">Every stream in the store, by id.</p></div></div>
    <div class="card">
      <div class="row"><input id="search" class="grow" placeholder="Search by stream id prefix, e.g. account-" autofocus></div>
    </div>
    <div class="card"><table><thead><tr><th>Stream</th><th class="num">Version</th><th class="num">Last position</th></tr></thead>
      <tbody id="stream-rows"><tr><td colspan="3" class="empty">Loading…</td></tr></tbody></table></div>`;
  const input = $("#search");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  input.value = params.get("q") || "";
  let latest = 0; // a slower, older search must not overwrite a newer one's results
  const load = async () => {
    const mine = ++latest;
    try {
      const data = await api("GET", `/v1/streams?limit=500&prefix=${encodeURIComponent(input.value)}`);
      if (mine !== latest || !$("#stream-rows")) return; // a newer search, or another page now
      const rows = data.streams.map((s) => `
        <tr class="clickable" data-stream="${esc(s.stream_id)}">
          <td class="mono">${esc(s.stream_id)}</td><td class="num">${s.version}</td><td class="num">${s.last_position}</td>
        </tr>`).join("");
      $("#stream-rows").innerHTML = rows || `<tr><td colspan="3" class="empty">No stream starts with “${esc(input.value)}”.</td></tr>`;
    } catch (error) {
      const tbody = $("#stream-rows");
      if (tbody) tbody.innerHTML = `<tr><td colspan="3" class="empty">${esc(error.message)}</td></tr>`;
    }
  };
  let timer;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 150); });
  $("#stream-rows").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-stream]");
    if (row) location.hash = `#/stream/${encodeURIComponent(row.dataset.stream)}`;
  });
  await load();
};

function eventRow(ev, fresh) {
  const tags = (ev.tags || []).map((t) => `<span class="tag">${esc(t)}</span>`).join("");
  return `
    <tr class="clickable ${fresh ? "fresh" : ""}" data-position="${ev.position}">
      <td class="num mono">${ev.position}</td>
      <td class="mono"><a href="#/stream/${encodeURIComponent(ev.stream_id)}">${esc(ev.stream_id)}</a> <span class="muted">v${ev.version}</span></td>
      <td><span class="pill type">${esc(ev.type)}</span> ${tags}</td>
      <td class="muted" title="${esc(ev.recorded_at)}">${esc(when(ev.recorded_at))}</td>
    </tr>
    <tr class="detail" data-detail="${ev.position}" hidden><td colspan="4">
      <div class="grid-2">
        <div><div class="muted">data</div><div class="event-detail">${jsonView(ev.data)}</div></div>
        <div><div class="muted">metadata · event id <span class="mono">${esc(ev.event_id)}</span></div><div class="event-detail">${jsonView(ev.metadata)}</div></div>
      </div>
    </td></tr>`;
}

function toggleDetails(tbody) {
  tbody.addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    const row = e.target.closest("tr[data-position]");
    if (!row) return;
    const detail = tbody.querySelector(`tr[data-detail="${row.dataset.position}"]`);
    detail.hidden = !detail.hidden;
  });
}

function appendForm(streamId) {
  return `
    <div class="card"><h2>Append an event</h2>
      <form id="append-form" class="row">
        ${streamId ? "" : '<input id="append-stream" placeholder="stream id" required>'}
        <input id="append-type" placeholder="event type, e.g. Deposited" required>
        <input id="append-data" class="grow mono" placeholder='data, e.g. {"amount": "10.00"}' value="{}">
        <button type="submit">Append</button>
      </form>
    </div>`;
}

function wireAppendForm(streamId) {
  $("#append-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const stream = streamId || $("#append-stream").value.trim();
    let data;
    try { data = JSON.parse($("#append-data").value || "{}"); } catch (error) { toast(`data is not JSON: ${error.message}`, "bad"); return; }
    try {
      const result = await api("POST", `/v1/streams/${encodeURIComponent(stream)}`, {
        events: [{ type: $("#append-type").value.trim(), data }],
      });
      toast(`appended to ${stream} at version ${result.version} (position ${result.position})`, "ok");
      refreshStats();
    } catch (error) { fail(error); }
  });
}

pages.stream = async (main, streamId) => {
  main.innerHTML = `
    <div class="page-head"><div><h1 class="mono">${esc(streamId)}</h1>
      <p class="subtitle"><span class="live-dot" id="live-dot"></span><span id="live-text">connecting…</span> · version <b id="stream-version">…</b></p></div>
      <a href="#/streams"><button class="secondary">All streams</button></a></div>
    ${appendForm(streamId)}
    <div class="card"><table><thead><tr><th class="num">Position</th><th>Stream · version</th><th>Type</th><th>Recorded</th></tr></thead>
      <tbody id="event-rows"></tbody></table></div>`;
  wireAppendForm(streamId);
  const tbody = $("#event-rows");
  toggleDetails(tbody);
  let version = 0;
  try {
    const data = await api("GET", `/v1/streams/${encodeURIComponent(streamId)}?limit=1000`);
    version = data.version;
    tbody.innerHTML = data.events.map((ev) => eventRow(ev, false)).join("");
  } catch (error) {
    if (error.status !== 404) fail(error);
    tbody.innerHTML = `<tr class="placeholder"><td colspan="4" class="empty">${esc(error.message)}</td></tr>`;
  }
  $("#stream-version").textContent = version;
  const after = [...tbody.querySelectorAll("tr[data-position]")].map((r) => Number(r.dataset.position)).pop() || 0;
  follow(`/v1/streams/${encodeURIComponent(streamId)}/live?after=${after}`, (ev) => {
    const placeholder = tbody.querySelector("tr.placeholder");
    if (placeholder) placeholder.remove();
    tbody.insertAdjacentHTML("beforeend", eventRow(ev, true));
    $("#stream-version").textContent = ev.version;
  }, liveStatus);
};

function liveStatus(on, text) {
  const dot = $("#live-dot");
  if (!dot) return;
  dot.className = `live-dot ${on ? "on" : "off"}`;
  $("#live-text").textContent = on ? "live" : text || "disconnected";
}

pages.log = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>Live log</h1>
      <p class="subtitle"><span class="live-dot" id="live-dot"></span><span id="live-text">connecting…</span> · <span id="log-count">0</span> events shown</p></div>
      <form id="log-filter" class="row">
        <input id="log-type" placeholder="type">
        <input id="log-prefix" placeholder="stream prefix">
        <button class="secondary" type="submit">Filter</button>
      </form></div>
    ${appendForm(null)}
    <div class="card"><table><thead><tr><th class="num">Position</th><th>Stream · version</th><th>Type</th><th>Recorded</th></tr></thead>
      <tbody id="log-rows"></tbody></table>
      <div class="empty" id="log-empty">Waiting for events…</div></div>`;
  wireAppendForm(null);
  const tbody = $("#log-rows");
  toggleDetails(tbody);
  const start = async () => {
    tbody.innerHTML = "";
    $("#log-empty").hidden = false;
    let count = 0;
    const type = $("#log-type").value.trim();
    const prefix = $("#log-prefix").value.trim();
    const query = new URLSearchParams({ limit: "50" });
    if (type) query.append("type", type);
    if (prefix) query.set("prefix", prefix);
    let after = 0;
    try {
      const head = (await api("GET", `/v1/stats`)).head_position;
      query.set("after", String(Math.max(0, head - 50)));
      const recent = await api("GET", `/v1/log?${query}`);
      for (const ev of recent.events) { tbody.insertAdjacentHTML("afterbegin", eventRow(ev, false)); count++; }
      after = recent.events.length ? recent.events[recent.events.length - 1].position : Math.max(0, head - 50);
      after = Math.max(after, head);
    } catch (error) { fail(error); }
    $("#log-count").textContent = count;
    $("#log-empty").hidden = count > 0;
    const live = new URLSearchParams({ after: String(after) });
    if (type) live.append("type", type);
    if (prefix) live.set("prefix", prefix);
    follow(`/v1/log/live?${live}`, (ev) => {
      tbody.insertAdjacentHTML("afterbegin", eventRow(ev, true));
      count++;
      $("#log-count").textContent = count;
      $("#log-empty").hidden = true;
      while (tbody.rows.length > 1000) tbody.deleteRow(-1);
      refreshStats();
    }, liveStatus);
  };
  $("#log-filter").addEventListener("submit", (e) => { e.preventDefault(); start(); });
  await start();
};

// -- time travel ------------------------------------------------------------------------------

function flatten(value, path = "", out = {}) {
  if (value !== null && typeof value === "object" && Object.keys(value).length) {
    for (const [k, v] of Object.entries(value)) flatten(v, path ? `${path}.${k}` : k, out);
  } else {
    out[path || "(state)"] = value;
  }
  return out;
}

function diff(before, after) {
  const a = flatten(before), b = flatten(after);
  const rows = [];
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const inA = key in a, inB = key in b;
    const same = JSON.stringify(a[key]) === JSON.stringify(b[key]);
    if (inA && inB && same) continue;
    rows.push({ key, kind: !inA ? "added" : !inB ? "removed" : "changed", before: a[key], after: b[key] });
  }
  return rows.sort((x, y) => x.key.localeCompare(y.key));
}

pages.travel = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>Time travel</h1><p class="subtitle">Pick an aggregate: see its state at any version, and what each event changed.</p></div></div>
    <div class="card"><form id="travel-form" class="row">
      <select id="travel-type"></select>
      <input id="travel-id" class="grow" placeholder="aggregate id" list="travel-ids" required>
      <datalist id="travel-ids"></datalist>
      <button type="submit">Load history</button>
    </form></div>
    <div id="travel-out"></div>`;
  let aggregates = [];
  try { aggregates = (await api("GET", "/v1/aggregates")).aggregates; } catch (error) { fail(error); }
  if (!aggregates.length) {
    $("#travel-out").innerHTML = `<div class="card empty">No aggregate types are served. Start the server with <span class="mono">--aggregate module:Class</span>.</div>`;
  }
  $("#travel-type").innerHTML = aggregates.map((a) => `<option value="${esc(a.name)}">${esc(a.name)}</option>`).join("");
  const fillIds = () => {
    const chosen = aggregates.find((a) => a.name === $("#travel-type").value);
    $("#travel-ids").innerHTML = chosen ? chosen.ids.map((id) => `<option value="${esc(id)}">`).join("") : "";
  };
  $("#travel-type").addEventListener("change", fillIds);
  fillIds();
  $("#travel-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("#travel-type").value, id = $("#travel-id").value.trim();
    try {
      const data = await api("GET", `/v1/aggregates/${encodeURIComponent(name)}/${encodeURIComponent(id)}`);
      showHistory(data);
    } catch (error) {
      $("#travel-out").innerHTML = `<div class="card empty">${esc(error.message)}</div>`;
    }
  });
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (params.get("type")) { $("#travel-type").value = params.get("type"); fillIds(); }
  if (params.get("id")) { $("#travel-id").value = params.get("id"); $("#travel-form").requestSubmit(); }
};

function showHistory(data) {
  const history = data.history;
  const out = $("#travel-out");
  out.innerHTML = `
    <div class="card">
      <div class="row"><h2 class="grow mono">${esc(data.stream_id)}</h2><span class="muted">${history.length} events</span></div>
      <div class="slider-row">
        <button class="secondary" id="tt-prev">◀</button>
        <input type="range" id="tt-slider" min="1" max="${history.length}" value="${history.length}">
        <button class="secondary" id="tt-next">▶</button>
        <span class="version-badge" id="tt-version"></span>
      </div>
      <div class="timeline" id="tt-timeline">${history.map((h) => `<button data-v="${h.version}" title="${esc(h.type)}">v${h.version}</button>`).join("")}</div>
    </div>
    <div class="grid-2">
      <div class="card"><h2>State after version <span id="tt-v2"></span></h2><div id="tt-state"></div></div>
      <div class="card"><h2>The event: <span id="tt-type" class="pill type"></span> <span id="tt-when" class="muted"></span></h2><div id="tt-event"></div>
        <h2 style="margin-top:16px">What it changed</h2>
        <table class="diff"><thead><tr><th class="op"></th><th>Field</th><th>Before</th><th>After</th></tr></thead><tbody id="tt-diff"></tbody></table>
      </div>
    </div>`;
  const show = (version) => {
    const entry = history[version - 1];
    const before = version > 1 ? history[version - 2].state : {};
    $("#tt-slider").value = version;
    $("#tt-version").textContent = `v${version} / ${history.length}`;
    $("#tt-v2").textContent = version;
    $("#tt-state").innerHTML = jsonView(entry.state);
    $("#tt-type").textContent = entry.type;
    $("#tt-when").textContent = `${when(entry.recorded_at)} · position ${entry.position}`;
    $("#tt-event").innerHTML = `<div class="event-detail">${jsonView(entry.data)}</div>`;
    const rows = diff(before, entry.state);
    const sign = { added: "+", removed: "−", changed: "~" };
    $("#tt-diff").innerHTML = rows.map((r) => `
      <tr class="${r.kind}"><td class="op">${sign[r.kind]}</td><td>${esc(r.key)}</td>
        <td>${r.kind === "added" ? "" : esc(JSON.stringify(r.before))}</td>
        <td>${r.kind === "removed" ? "" : esc(JSON.stringify(r.after))}</td></tr>`).join("")
      || `<tr><td colspan="4" class="empty">This event changed nothing in the state.</td></tr>`;
    for (const b of $("#tt-timeline").children) b.classList.toggle("current", Number(b.dataset.v) === version);
  };
  $("#tt-slider").addEventListener("input", (e) => show(Number(e.target.value)));
  $("#tt-prev").addEventListener("click", () => show(Math.max(1, Number($("#tt-slider").value) - 1)));
  $("#tt-next").addEventListener("click", () => show(Math.min(history.length, Number($("#tt-slider").value) + 1)));
  $("#tt-timeline").addEventListener("click", (e) => { if (e.target.dataset.v) show(Number(e.target.dataset.v)); });
  if (history.length) show(history.length);
}

// -- projections -------------------------------------------------------------------------------

function statePill(p) {
  const kind = { "caught-up": "ok", running: "ok", failed: "bad", rebuilding: "warn", stopped: "" }[p.state] || "";
  return `<span class="pill ${kind}">${esc(p.state)}</span>`;
}

pages.projections = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>Projections</h1><p class="subtitle">Checkpoints, lag, failures and parked events. Retry and skip need an admin token.</p></div>
      <button class="secondary" id="proj-refresh">Refresh</button></div>
    <div id="proj-out"><div class="card empty">Loading…</div></div>`;
  const load = async () => {
    let projections;
    try { projections = (await api("GET", "/v1/projections")).projections; } catch (error) {
      $("#proj-out").innerHTML = `<div class="card empty">${esc(error.message)}</div>`;
      return;
    }
    if (!projections.length) {
      $("#proj-out").innerHTML = `<div class="card empty">No projection has run on this store yet.</div>`;
      return;
    }
    $("#proj-out").innerHTML = projections.map((p) => `
      <div class="card" data-projection="${esc(p.name)}">
        <div class="row"><h2 class="grow mono">${esc(p.name)} <span class="muted">v${p.version}</span></h2>${statePill(p)}</div>
        <table><thead><tr><th class="num">Position</th><th class="num">Head</th><th class="num">Lag (events)</th><th class="num">Lag (time)</th><th class="num">Retries</th><th class="num">Parked</th><th>Owner</th></tr></thead>
          <tbody><tr><td class="num">${p.position}</td><td class="num">${p.head}</td><td class="num">${p.lag_events}</td>
            <td class="num">${p.lag_seconds.toFixed(1)}s</td><td class="num">${p.retries}</td><td class="num">${p.parked.length}</td>
            <td class="mono muted">${esc(p.owner || "–")}</td></tr></tbody></table>
        ${p.state === "failed" ? `
          <div class="card" style="margin:14px 0 0;border-color:rgba(239,78,78,.5)">
            <div class="row"><div class="grow"><b>Failed at position ${p.failing_position}</b><div class="mono muted">${esc(p.error || p.last_error || "")}</div></div>
              <button class="secondary" data-action="retry">Retry now</button>
              <button class="danger" data-action="skip" data-position="${p.failing_position}">Skip event…</button></div>
          </div>` : ""}
        ${p.parked.length ? `<h2 style="margin-top:14px">Parked events</h2><table><thead><tr><th class="num">Position</th><th>Stream</th><th>Type</th><th>Error</th></tr></thead><tbody>
          ${p.parked.map((x) => `<tr><td class="num">${x.position}</td><td class="mono">${esc(x.stream_id)}</td><td><span class="pill type">${esc(x.type)}</span></td><td class="mono muted">${esc(x.error)}</td></tr>`).join("")}
          </tbody></table>` : ""}
        ${p.skips.length ? `<h2 style="margin-top:14px">Skipped</h2><ul class="plain">${p.skips.map((s) => `<li>position ${s.position} by ${esc(s.by)}: ${esc(s.reason)}</li>`).join("")}</ul>` : ""}
      </div>`).join("");
  };
  $("#proj-out").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const name = button.closest("[data-projection]").dataset.projection;
    try {
      if (button.dataset.action === "retry") {
        await api("POST", `/v1/projections/${encodeURIComponent(name)}/retry`);
        toast(`retry of ${name} requested`, "ok");
      } else {
        const reason = prompt(`Skip the event at position ${button.dataset.position} for ${name}? Give a reason:`);
        if (!reason) return;
        await api("POST", `/v1/projections/${encodeURIComponent(name)}/skip`, { position: Number(button.dataset.position), reason });
        toast(`event ${button.dataset.position} skipped for ${name}`, "ok");
      }
      setTimeout(load, 400);
    } catch (error) { fail(error); }
  });
  $("#proj-refresh").addEventListener("click", load);
  await load();
  const timer = setInterval(() => { if (!document.body.contains($("#proj-out"))) clearInterval(timer); else load(); }, 3000);
};

// -- verify -------------------------------------------------------------------------------------

// POST /v1/verify as Server-Sent Events: progress frames, then the report (or a problem).
async function verifyWithProgress(onProgress) {
  const response = await fetch("/v1/verify", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ deep: true }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    const error = new Error(problem && problem.detail ? problem.detail : `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  let report = null;
  await readEvents(response, (event, id, data) => {
    if (!data) return false;
    const body = JSON.parse(data);
    if (event === "progress") onProgress(body.checked, body.total);
    else if (event === "error") throw new Error(body.detail || "verify failed");
    else if (event === "result") { report = body; return true; }
    return false;
  });
  if (report === null) throw new Error("the server ended the verify stream without a report");
  return report;
}

pages.verify = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>Verify</h1><p class="subtitle">Recompute every stream's hash chain and check the database's own structures (admin).</p></div>
      <button id="verify-run">Run verify</button></div>
    <div id="verify-out"><div class="card empty">Not run yet.</div></div>`;
  $("#verify-run").addEventListener("click", async () => {
    const out = $("#verify-out");
    $("#verify-run").disabled = true;
    const started = performance.now();
    out.innerHTML = `<div class="card"><b>Checking…</b><div class="progress"><div id="verify-bar"></div></div><div class="muted"><span id="verify-count">starting</span> · <span id="verify-elapsed">0.0 s</span></div></div>`;
    const tick = setInterval(() => { const el = $("#verify-elapsed"); if (el) el.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`; }, 100);
    try {
      const r = await verifyWithProgress((checked, total) => {
        const bar = $("#verify-bar");
        if (bar) { bar.classList.add("determinate"); bar.style.width = `${total ? Math.min(100, (100 * checked) / total) : 100}%`; }
        const count = $("#verify-count");
        if (count) count.textContent = `${checked.toLocaleString()} of ${total.toLocaleString()} events checked`;
      });
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      out.innerHTML = `
        <div class="card"><div class="verdict"><svg class="verdict-icon ${r.ok ? "ok" : "bad"}" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="10"/><path d="${r.ok ? "M7 12.5l3.2 3.2L17 9" : "M8 8l8 8M16 8l-8 8"}"/></svg>
          ${r.ok ? "History intact" : "Problems found"}<span class="muted" style="font-size:14px;font-weight:400">${r.events_checked.toLocaleString()} events in ${r.streams_checked.toLocaleString()} streams · ${seconds} s</span></div></div>
        ${r.broken.length ? `<div class="card"><h2>Broken links</h2><table><thead><tr><th>Stream</th><th class="num">Version</th><th>Reason</th></tr></thead><tbody>
          ${r.broken.map((b) => `<tr><td class="mono">${esc(b.stream_id)}</td><td class="num">${b.version}</td><td>${esc(b.reason)}</td></tr>`).join("")}</tbody></table></div>` : ""}
        ${r.problems.length ? `<div class="card"><h2>Problems</h2><ul class="plain">${r.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul></div>` : ""}
        <div class="grid-2"><div class="card"><h2>Checked</h2><ul class="plain">${r.checked.map((c) => `<li>${esc(c)}</li>`).join("")}</ul></div>
          <div class="card"><h2>Not checked</h2><ul class="plain">${r.not_checked.map((c) => `<li>${esc(c)}</li>`).join("")}</ul></div></div>`;
    } catch (error) {
      out.innerHTML = `<div class="card empty">${esc(error.message)}</div>`;
    } finally {
      clearInterval(tick);
      $("#verify-run").disabled = false;
    }
  });
};

// -- tokens -------------------------------------------------------------------------------------

pages.tokens = async (main) => {
  main.innerHTML = `
    <div class="page-head"><div><h1>API tokens</h1><p class="subtitle">Scopes: read ⊂ append ⊂ admin, optionally limited to stream prefixes. The store keeps only digests.</p></div></div>
    <div class="card"><h2>New token</h2><form id="token-create" class="row">
      <input id="tok-name" placeholder="name, e.g. billing-service" required>
      <select id="tok-scope"><option>read</option><option>append</option><option>admin</option></select>
      <input id="tok-prefixes" class="grow" placeholder="stream prefixes, comma-separated (empty: all)">
      <input id="tok-rate" type="number" min="0.1" step="0.1" placeholder="req/s" style="width:100px">
      <button type="submit">Create</button></form><div id="tok-secret"></div></div>
    <div class="card"><table><thead><tr><th>Id</th><th>Name</th><th>Scope</th><th>Prefixes</th><th>Rate</th><th>Created</th><th></th></tr></thead>
      <tbody id="tok-rows"><tr><td colspan="7" class="empty">Loading…</td></tr></tbody></table></div>`;
  const load = async () => {
    try {
      const tokens = (await api("GET", "/v1/tokens")).tokens;
      $("#tok-rows").innerHTML = tokens.map((t) => `
        <tr data-token="${esc(t.token_id)}"><td class="mono">${esc(t.token_id)}</td><td>${esc(t.name)}</td>
          <td><span class="pill ${t.scope === "admin" ? "warn" : ""}">${esc(t.scope)}</span></td>
          <td class="mono muted">${t.prefixes.length ? t.prefixes.map(esc).join(", ") : "all streams"}</td>
          <td class="muted">${t.rate_limit ? `${t.rate_limit}/s` : "–"}</td>
          <td class="muted">${esc(when(new Date(t.created_at / 1000).toISOString()))}</td>
          <td>${t.revoked ? '<span class="pill bad">revoked</span>' : '<button class="danger" data-revoke>Revoke</button>'}</td></tr>`).join("")
        || `<tr><td colspan="7" class="empty">No tokens yet.</td></tr>`;
    } catch (error) {
      $("#tok-rows").innerHTML = `<tr><td colspan="7" class="empty">${esc(error.message)}</td></tr>`;
    }
  };
  $("#token-create").addEventListener("submit", async (e) => {
    e.preventDefault();
    const prefixes = $("#tok-prefixes").value.split(",").map((p) => p.trim()).filter(Boolean);
    const rate = $("#tok-rate").value ? Number($("#tok-rate").value) : null;
    try {
      const created = await api("POST", "/v1/tokens", { name: $("#tok-name").value.trim(), scope: $("#tok-scope").value, prefixes, rate_limit: rate });
      $("#tok-secret").innerHTML = `<p class="muted">Copy it now: it is not shown again.</p><div class="secret" id="tok-secret-value"></div>`;
      $("#tok-secret-value").textContent = created.token;
      load();
    } catch (error) { fail(error); }
  });
  $("#tok-rows").addEventListener("click", async (e) => {
    if (!e.target.matches("button[data-revoke]")) return;
    const id = e.target.closest("tr").dataset.token;
    if (!confirm(`Revoke token ${id}? Requests with it are refused from now on.`)) return;
    try { await api("DELETE", `/v1/tokens/${encodeURIComponent(id)}`); toast(`token ${id} revoked`, "ok"); load(); } catch (error) { fail(error); }
  });
  await load();
};

// -- routing ------------------------------------------------------------------------------------

async function route() {
  stopLive();
  const generation = ++state.generation;
  const hash = location.hash.replace(/^#\/?/, "") || "streams";
  const [path] = hash.split("?");
  const [page, ...rest] = path.split("/");
  const main = $("#main");
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.page === page || (page === "stream" && link.dataset.page === "streams"));
  }
  const render = pages[page] || pages.streams;
  try {
    await render(main, decodeURIComponent(rest.join("/")));
  } catch (error) {
    if (generation === state.generation) fail(error);
  }
}

$("#token-input").value = state.token;
$("#token-input").addEventListener("change", (e) => {
  if (e.target.value.trim() === state.token) return;
  state.token = e.target.value.trim();
  localStorage.setItem("eventkeep.token", state.token);
  checkToken();
  refreshStats();
  route();
});
$("#token-form").addEventListener("submit", (e) => e.preventDefault());
window.addEventListener("hashchange", route);
checkToken();
refreshStats();
setInterval(refreshStats, 5000);
route();
