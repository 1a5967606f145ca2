// vidsight page: plain JS, no build step. REST calls carry the key as a bearer token; the /v1/live
// WebSocket gets it as a subprotocol ("bearer.<key>": browsers cannot set WebSocket headers, and a
// query string would end up in access logs). Thumbnails are fetched with the key, shown from object URLs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: localStorage.getItem("vidsight.key") || "", ws: null, askId: null, askSeq: 0, retryMs: 1000 };

function notice(text) {
  const el = $("notice");
  el.textContent = text || "";
  el.hidden = !text;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.key}` };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  for (const child of children) node.append(child);
  return node;
}

async function thumbnail(url) {
  const img = el("img", { alt: "" });
  if (url) {
    api(url).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => {});
  }
  return img;
}

function clock(seconds, isWall) {
  if (seconds === null || seconds === undefined) return "?";
  if (isWall) return new Date(seconds * 1000).toLocaleTimeString();
  const m = Math.floor(seconds / 60), s = (seconds % 60).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

async function resultItem(r) {
  const isWall = r.start_wall_s !== null && r.start_wall_s !== undefined;
  const start = isWall ? r.start_wall_s : r.start_pts_s, end = isWall ? r.end_wall_s : r.end_pts_s;
  const text = el("div", {},
    el("div", { className: "what", textContent: r.stream_id }),
    el("div", { className: "when", textContent: `${clock(start, isWall)} – ${clock(end, isWall)}` }),
  );
  if (r.score !== undefined) text.append(el("div", { className: "score", textContent: `score ${Number(r.score).toFixed(3)}` }));
  if (r.snippet) text.append(el("div", { textContent: r.snippet }));
  return el("li", { dataset: { eventId: r.event_id } }, await thumbnail(r.thumbnail_url), text);
}

// ---------------------------------------------------------------------------------------- live

function connect() {
  if (!state.key) return;
  if (state.ws) state.ws.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/live`, ["vidsight", `bearer.${state.key}`]);
  state.ws = ws;
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").classList.add("on"); state.retryMs = 1000; notice(""); };
  ws.onclose = (e) => {
    $("conn").textContent = "offline"; $("conn").classList.remove("on");
    if (state.ws !== ws) return;
    if (e.code === 1008) { notice(`live connection refused: ${e.reason || "check the API key"}`); return; }
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 30000);
  };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
}

const handlers = {
  token(m) { if (m.id === state.askId) $("answer").textContent += m.text; },
  async answer_done(m) {
    if (m.id !== state.askId) return;
    $("ask-button").disabled = false; $("cancel-button").disabled = true;
    const ttft = m.ttft_ms === null || m.ttft_ms === undefined ? "" : `, first token ${m.ttft_ms} ms`;
    $("answer-meta").textContent = `${m.finish_reason}: ${m.generated_tokens || 0} tokens${ttft}`;
    const items = await Promise.all((m.cited || []).map(resultItem));
    $("cited").replaceChildren(...items);
    $("answer").dataset.done = "true";
  },
  async event(m) {
    const list = $("events");
    list.prepend(await resultItem(m));
    while (list.children.length > 100) list.lastChild.remove();
  },
  stream_health(m) { renderStreams(m.streams, true); },
  alert(m) { if (m.firing) addFiring(m.firing, m.alert_name || m.alert_id, m.kind); },
  error(m) {
    notice(m.message);
    if (m.id && m.id === state.askId) { $("ask-button").disabled = false; $("cancel-button").disabled = true; }
  },
};

function onMessage(m) {
  const h = handlers[m.type];
  if (h) Promise.resolve(h(m)).catch((err) => notice(`page error: ${err.message}`));
}

function ask(question) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) { notice("not connected: enter an API key"); return; }
  state.askId = `q${++state.askSeq}`;
  $("answer").textContent = ""; delete $("answer").dataset.done;
  $("answer-meta").textContent = "…"; $("cited").replaceChildren();
  $("ask-button").disabled = true; $("cancel-button").disabled = false;
  state.ws.send(JSON.stringify({ type: "ask", id: state.askId, question, scope: {} }));
}

// ---------------------------------------------------------------------------------------- panels

const liveStreams = new Map();

function renderStreams(rows, liveOnly) {
  if (liveOnly) for (const r of rows) liveStreams.set(r.stream_id, r);
  const all = liveOnly ? [...liveStreams.values()] : rows;
  if (!liveOnly) { liveStreams.clear(); for (const r of rows) liveStreams.set(r.stream_id, r); }
  const body = document.querySelector("#streams tbody");
  body.replaceChildren(...all.map((r) => el("tr", {},
    el("td", { textContent: r.stream_id }),
    el("td", { textContent: r.kind }),
    el("td", { textContent: r.state, className: `state-${r.state}` }),
    el("td", { textContent: r.fps === null || r.fps === undefined ? "" : Number(r.fps).toFixed(2) }),
    el("td", { textContent: r.processing_lag_s === null || r.processing_lag_s === undefined ? "" : Number(r.processing_lag_s).toFixed(2) }),
    el("td", { textContent: r.events ?? "" }),
    el("td", { textContent: r.tokens_kept ? `${r.tokens_kept}/${r.tokens_in}` : "" }),
  )));
}

function addFiring(f, title, kind) {
  const list = $("firings");
  const existing = list.querySelector(`[data-firing-id="${CSS.escape(f.id)}"]`);
  const verdict = f.verdict ? ` — ${f.verdict}` : "";
  const item = el("li", { dataset: { firingId: f.id } },
    el("div", {},
      el("div", { className: "what", textContent: `${title} (${kind || f.state})` }),
      el("div", { className: `when verdict-${f.verdict || "none"}`, textContent: `${f.stream_id} ${f.event_id}${verdict}` }),
      el("div", { className: "score", textContent: f.explanation || "" }),
    ));
  if (existing) existing.replaceWith(item); else list.prepend(item);
}

async function refresh() {
  if (!state.key) return;
  try {
    renderStreams((await (await api("/v1/streams")).json()).streams, false);
    const jobs = (await (await api("/v1/videos")).json()).jobs.slice(-5).reverse();
    $("jobs").replaceChildren(...jobs.map((j) => el("li", {},
      el("span", { textContent: `${j.stream_id}: ${j.state}` }),
      el("span", { textContent: `${Math.round(j.progress * 100)}%, ${j.events} events` }))));
    const alerts = (await (await api("/v1/alerts")).json()).alerts;
    $("alerts").replaceChildren(...alerts.map((a) => el("li", {},
      el("span", { textContent: a.name || a.query }), el("span", { className: "score", textContent: a.id }))));
    const firings = (await (await api("/v1/firings?limit=20")).json()).firings;
    const names = Object.fromEntries(alerts.map((a) => [a.id, a.name || a.query]));
    for (const f of firings.reverse()) addFiring(f, names[f.alert_id] || f.alert_id);
  } catch (err) {
    notice(err.message);
  }
}

// ---------------------------------------------------------------------------------------- forms

function on(formId, handler) {
  $(formId).addEventListener("submit", async (e) => {
    e.preventDefault();
    notice("");
    try { await handler(); } catch (err) { notice(err.message); }
  });
}

on("key-form", async () => {
  state.key = $("api-key").value.trim();
  localStorage.setItem("vidsight.key", state.key);
  connect();
  await refresh();
});
on("ask-form", async () => ask($("question").value.trim()));
$("cancel-button").addEventListener("click", () => {
  if (state.ws && state.askId) state.ws.send(JSON.stringify({ type: "cancel", id: state.askId }));
});
on("search-form", async () => {
  const body = await (await api("/v1/search", { method: "POST", json: { query: $("query").value.trim() } })).json();
  const list = $("search-results");
  list.replaceChildren();
  for (const r of body.results) list.append(await resultItem(r));
  if (!body.results.length) list.append(el("li", { textContent: "no results" }));
});
on("stream-form", async () => {
  await api("/v1/streams", { method: "POST", json: { url: $("stream-url").value.trim() } });
  await refresh();
});
on("video-form", async () => {
  const value = $("video-path").value.trim();
  const json = /^https?:\/\//.test(value) ? { url: value } : { path: value };
  await api("/v1/videos", { method: "POST", json });
  await refresh();
});
on("alert-form", async () => {
  await api("/v1/alerts", { method: "POST", json: { query: $("alert-query").value.trim() } });
  await refresh();
});

$("api-key").value = state.key;
if (state.key) { connect(); refresh(); }
setInterval(refresh, 10000);
