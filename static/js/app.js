// Dashboard entry point: connects to /live, applies events to the state, and
// redraws panels on a schedule (at most a few times a second per panel), so a
// busy network never means a full re-render per event.
import { applyAlert, applyDecision, applyReadings, applySnapshot, loadCache, saveCache, setNetwork, state } from "./state.js";
import { age, setServerClock, tickAges } from "./format.js";
import { buildMap, fit, markAlerting, markQuality, markSelected, updateFlows, zoomBy } from "./map.js";
import * as panels from "./panels.js";
import { cueIfNewCritical, renderAlarms, renderSummary, visibleAlarms, wireAlarmOptions } from "./alarms.js";
import { openChart, wireChart } from "./chart.js";
import { applyCommandUpdate, authorised, call, control, populateControls, refreshSimulator, show, showMode, token,
  wireControls } from "./controls.js";

const $ = (id) => document.getElementById(id);
const REDRAW_MS = 250;          // panels redraw at most 4 times a second
const SAVE_MIN_MS = 2_000;      // the offline snapshot is saved at most this often
const WQI_EVERY_MS = 10_000;    // WQI has no event of its own; it is polled
const FORECAST_EVERY_MS = 60_000;
const LIVE_WITHIN_MS = 5_000;   // the badge says LIVE only if data arrived this recently

const dirty = new Set();
let selected = null;
let lastDraw = 0;
let lastSave = 0;
let everConnected = false;
let refused = false;

function markDirty(...names) {
  for (const name of names) dirty.add(name);
}

// The LIVE badge, truthfully: connecting, live (data in the last 5 s), stale, offline.
function badgeState(socket) {
  if (refused) return ["offline", "TOKEN NEEDED"];
  if (!socket?.connected) return everConnected || state.connectFailed ? ["offline", "OFFLINE"] : ["connecting", "CONNECTING"];
  if (!state.lastDataAt) return ["connecting", "CONNECTED · WAITING FOR DATA"];
  const quiet = Date.now() - state.lastDataAt;
  if (quiet <= LIVE_WITHIN_MS) return ["live", "LIVE"];
  return ["stale", `STALE · no data for ${age(quiet / 1000).replace(" ago", "")}`];
}

function showBadge() {
  const [kind, text] = badgeState(socket);
  const badge = $("connection");
  if (badge.dataset.state !== kind) { badge.className = `connection ${kind}`; badge.dataset.state = kind; }
  if ($("connection-text").textContent !== text) $("connection-text").textContent = text;
}

function showStaleBanner() {
  const banner = $("stale-banner");
  if (state.fromCache && state.savedAt) {
    banner.hidden = false;
    banner.textContent = `Showing saved data from ${age((Date.now() - state.savedAt) / 1000)}: not live`;
  } else {
    banner.hidden = true;
  }
}

function select(nodeId) {
  selected = nodeId;
  markSelected(nodeId);
  panels.renderDetail($("detail"), $("detail-kind"), nodeId, openChart);
}

// -- alarm and decision actions --------------------------------------------------------
function replaceAlert(reply) {
  if (reply?.alert) { applyAlert(reply.alert); markDirty("alerts"); }
  for (const a of reply?.alerts || []) applyAlert(a);
  if (reply?.alerts) markDirty("alerts");
}

const alarmActions = {
  ack: async (a) => { const r = await call(`/api/alerts/${encodeURIComponent(a.id)}/ack`); if (r) { show("Alarm acknowledged.", true); replaceAlert(r); } },
  shelve: async (a, seconds) => {
    const r = await call(`/api/alerts/${encodeURIComponent(a.id)}/shelve`, { duration_s: seconds, reason: "shelved from the dashboard" });
    if (r) { show(`Alarm shelved for ${age(seconds).replace(" ago", "")}; it returns by itself.`, true); replaceAlert(r); }
  },
  unshelve: async (a) => { const r = await call(`/api/alerts/${encodeURIComponent(a.id)}/unshelve`); if (r) { show("Alarm unshelved.", true); replaceAlert(r); } },
};

async function acknowledgeVisible() {
  const ids = visibleAlarms().filter((a) => !a.acknowledged).map((a) => a.id);
  if (!ids.length) { show("Nothing to acknowledge.", true); return; }
  const r = await call("/api/alerts/ack", { ids });
  if (r) { show(`${r.acknowledged.length} alarm(s) acknowledged.`, true); replaceAlert(r); }
}

async function actOnDecision(decision, verb) {
  const r = await call(`/api/decisions/${encodeURIComponent(decision.id)}/${verb}`, { reason: "from the dashboard" });
  if (!r) return;
  applyDecision(r.decision || { id: decision.id, state: verb === "apply" ? "applied" : "dismissed" });
  show(`Decision ${verb === "apply" ? "applied" : "dismissed"}.`, true);
  markDirty("decisions");
}

// -- drawing --------------------------------------------------------------------------
function qualityByNode() {
  const rank = { good: 0, suspect: 1, bad: 2 };
  const worst = new Map();
  for (const r of state.sensors.values()) {
    if (!r.node_id || !r.quality) continue;
    if ((rank[r.quality] ?? 0) > (rank[worst.get(r.node_id)] ?? 0)) worst.set(r.node_id, r.quality);
  }
  return worst;
}

function draw(now) {
  requestAnimationFrame(draw);
  if (now - lastDraw < REDRAW_MS || !dirty.size || !state.network) return;
  lastDraw = now;
  if (dirty.has("network")) {
    buildMap($("map"), select, $("map-tooltip"));
    populateControls();
    if (selected) select(selected);
    markDirty("alerts", "sensors");
  }
  if (dirty.has("routing") || dirty.has("network") || dirty.has("links")) {
    updateFlows();
    panels.renderZones($("zones"));
    panels.renderSources($("sources"));
    showMode(state.routing?.mode);
  }
  if (dirty.has("sensors")) {
    panels.renderReservoirs($("reservoirs")); panels.updateDetail(); panels.renderForecast($("forecast"));
    markQuality(qualityByNode());
  }
  if (dirty.has("alerts")) {
    renderSummary($("alarm-summary"));
    renderAlarms($("alerts"), $("alerts-count"), alarmActions);
    markAlerting(new Set([...state.alerts.values()].filter((a) => a.active !== false).map((a) => a.node_id).filter(Boolean)));
  }
  if (dirty.has("decisions") || dirty.has("routing")) panels.renderDecisions($("decisions"), $("routing-status"), actOnDecision);
  if (dirty.has("health")) panels.renderHealth($("health"), $("health-score"));
  if (dirty.has("wqi")) panels.renderWqi($("wqi"));
  if (dirty.has("forecast")) panels.renderForecast($("forecast"));
  dirty.clear();
  tickAges();
  showStaleBanner();
  if (state.live && now - lastSave > SAVE_MIN_MS) { saveCache(); lastSave = now; }
}

const ALL = ["network", "routing", "sensors", "alerts", "decisions", "health", "wqi", "forecast"];

async function refresh(path, apply) {
  try {
    const reply = await authorised(path);
    if (reply.ok) apply(await reply.json());
  } catch { /* the socket will say we're offline */ }
}

const refreshWqi = () => refresh("/api/wqi", (body) => { state.wqi = body.stations; markDirty("wqi"); });
const refreshExternal = () => refresh("/api/sources", (body) => {
  panels.renderExternalSources($("ext-sources"), body.sources || [], async (id) => {
    if (await call(`/api/sources/${encodeURIComponent(id)}/refresh`)) { show(`Refreshing ${id}.`, true); setTimeout(refreshExternal, 1500); }
  });
});
const refreshForecast = () => refresh("/api/forecast", (body) => { state.forecast = body; markDirty("forecast"); });

async function loadNetwork(rebuild = true) {
  const reply = await authorised("/api/network");
  if (!reply.ok) throw new Error(`GET /api/network answered ${reply.status}`);
  const network = await reply.json();
  const same = state.network && network.nodes.length === state.network.nodes.length
    && network.links.length === state.network.links.length;
  setNetwork(network);
  markDirty(rebuild || !same ? "network" : "links");
  saveCache();
}

async function reloadAfterReset() {
  await refresh("/api/alerts?state=open", (body) => { state.alerts = new Map(body.alerts.map((a) => [a.id, a])); markDirty("alerts"); });
  await refresh("/api/decisions?limit=50", (body) => { state.decisions = body.decisions; markDirty("decisions"); });
  await refresh("/api/sensors", (body) => {
    state.sensors.clear();
    for (const id of [...state.trends.keys()]) if (!body.sensors.some((s) => s.sensor_id === id)) state.trends.delete(id);
    applyReadings(body.sensors);
    markDirty("sensors");
  });
}

let socket = null;

function connect() {
  // auth is a function so every reconnection sends the current token.
  socket = io("/live", { transports: ["websocket"], reconnectionDelayMax: 5000,
                         auth: (send) => send({ token: token() }) });
  socket.on("connect", async () => {
    everConnected = true; refused = false;
    state.live = true;
    state.lastDataAt = null;    // LIVE only once data arrives on this connection
    showBadge();
    try { await loadNetwork(); } catch (err) { console.warn(err.message); }
    refreshSimulator();
    setTimeout(refreshWqi, 3000);   // quality sensors report within seconds of a start
    refreshForecast();
    refreshExternal();
  });
  socket.on("disconnect", () => { state.live = false; showBadge(); });
  socket.on("connect_error", (err) => {
    state.live = false;
    state.connectFailed = true;
    refused = /unauthori[sz]ed|refused by server/i.test(err.message);
    if (refused) $("token").focus();   // refused, not unreachable: the server wants a (valid) viewer token
    showBadge();
  });
  // Sent by the server on every (re)connect: the page never shows a frozen picture as live.
  socket.on("snapshot", (snapshot) => {
    setServerClock(snapshot.clock);
    applySnapshot(snapshot);
    state.fromCache = false;
    markDirty(...ALL.filter((n) => n !== "network"));
    saveCache();
  });
  const onReadings = (frame) => {
    applyReadings(frame.readings);
    if (frame.readings?.length) state.lastDataAt = Date.now();
    markDirty("sensors");
  };
  socket.on("sensor_update", onReadings);
  socket.on("minor_update", onReadings);
  socket.on("routing_update", (routing) => { state.routing = routing; markDirty("routing"); });
  socket.on("decision", (decision) => { applyDecision(decision); markDirty("decisions"); });
  socket.on("decision_update", (decision) => { applyDecision(decision); markDirty("decisions"); });
  socket.on("alert", (alert) => { applyAlert(alert); cueIfNewCritical(alert); markDirty("alerts"); });
  socket.on("alerts_reset", () => { state.alerts.clear(); markDirty("alerts"); });
  socket.on("health_update", (health) => { state.health = health; markDirty("health"); });
  socket.on("prediction_update", (forecast) => { state.forecast = forecast; markDirty("forecast"); });
  socket.on("command_update", (command) => applyCommandUpdate(command));
  socket.on("control_update", (c) => {
    if (c.action === "set_mode") showMode(c.value);
    if (["isolate", "restore", "set_valve", "set_pump"].includes(c.action)) loadNetwork(false).catch(() => {});
    if (c.action === "reset_demo") reloadAfterReset();
  });
  return socket;
}

function wireMap() {
  $("map-zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("map-zoom-out").addEventListener("click", () => zoomBy(0.8));
  $("map-fit").addEventListener("click", fit);
  $("map-legend-toggle").addEventListener("click", (e) => {
    const legend = $("legend");
    legend.hidden = !legend.hidden;
    e.target.setAttribute("aria-expanded", String(!legend.hidden));
  });
  $("map-fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else $("map-panel").requestFullscreen?.().catch((err) => console.warn("no full screen:", err.message));
  });
  document.addEventListener("fullscreenchange", () => {
    $("map-fullscreen").textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
    setTimeout(fit, 50);
  });
  addEventListener("resize", () => setTimeout(fit, 100));
}

function boot() {
  wireControls(() => { if (socket && !socket.connected) socket.connect(); }, reloadAfterReset);
  wireAlarmOptions(() => markDirty("alerts"));
  $("ack-visible").addEventListener("click", acknowledgeVisible);
  wireChart();
  wireMap();
  if (loadCache()) markDirty(...ALL);
  connect();
  requestAnimationFrame(draw);
  setInterval(() => { tickAges(); showStaleBanner(); showBadge(); }, 1000);
  setInterval(() => { if (state.live) refreshWqi(); }, WQI_EVERY_MS);
  setInterval(() => { if (state.live) { refreshForecast(); refreshExternal(); } }, FORECAST_EVERY_MS);
  // Shelved alarms return by themselves; redraw so the panel shows them again on time.
  setInterval(() => { if ([...state.alerts.values()].some((a) => a.shelved)) markDirty("alerts"); }, 5000);
  addEventListener("pagehide", () => { if (state.live) saveCache(); });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch((err) => console.warn("no offline shell:", err.message));
  }
}

boot();
