// Dashboard entry point: connects to /live, applies events to the state, and
// redraws panels on a schedule (at most a few times a second per panel), so a
// busy network never means a full re-render per event.
import { applyAlert, applyReadings, applySnapshot, loadCache, saveCache, setNetwork, state } from "./state.js";
import { age, tickAges } from "./format.js";
import { buildMap, markAlerting, markSelected, updateFlows } from "./map.js";
import * as panels from "./panels.js";
import { authorised, control, populateControls, refreshSimulator, showMode, token, wireControls } from "./controls.js";

const $ = (id) => document.getElementById(id);
const REDRAW_MS = 250;          // panels redraw at most 4 times a second
const SAVE_MIN_MS = 2_000;      // the offline snapshot is saved at most this often
const WQI_EVERY_MS = 10_000;    // WQI has no event of its own; it is polled

const dirty = new Set();
let selected = null;
let lastDraw = 0;
let lastSave = 0;

function markDirty(...names) {
  for (const name of names) dirty.add(name);
}

function setConnection(kind, text) {
  const badge = $("connection");
  badge.className = `connection ${kind}`;
  $("connection-text").textContent = text;
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
  panels.renderDetail($("detail"), $("detail-kind"), nodeId);
}

async function acknowledge(alertId) {
  await control("ack_alert", alertId, null, "Acknowledgement");
}

function draw(now) {
  requestAnimationFrame(draw);
  if (now - lastDraw < REDRAW_MS || !dirty.size || !state.network) return;
  lastDraw = now;
  if (dirty.has("network")) { buildMap($("map"), select); populateControls(); if (selected) select(selected); }
  if (dirty.has("routing") || dirty.has("network")) {
    updateFlows();
    panels.renderZones($("zones"));
    panels.renderSources($("sources"));
    showMode(state.routing?.mode);
  }
  if (dirty.has("sensors")) { panels.renderReservoirs($("reservoirs")); panels.updateDetail(); panels.renderForecast($("forecast")); }
  if (dirty.has("alerts")) {
    panels.renderAlerts($("alerts"), $("alerts-count"), acknowledge);
    markAlerting(new Set([...state.alerts.values()].map((a) => a.node_id).filter(Boolean)));
  }
  if (dirty.has("decisions") || dirty.has("routing")) panels.renderDecisions($("decisions"), $("routing-status"));
  if (dirty.has("health")) panels.renderHealth($("health"), $("health-score"));
  if (dirty.has("wqi")) panels.renderWqi($("wqi"));
  if (dirty.has("forecast")) panels.renderForecast($("forecast"));
  dirty.clear();
  tickAges();
  showStaleBanner();
  if (state.live && now - lastSave > SAVE_MIN_MS) { saveCache(); lastSave = now; }
}

const ALL = ["network", "routing", "sensors", "alerts", "decisions", "health", "wqi", "forecast"];

async function refreshWqi() {
  try {
    const reply = await authorised("/api/wqi");
    if (reply.ok) { state.wqi = (await reply.json()).stations; markDirty("wqi"); }
  } catch { /* the socket will say we're offline */ }
}

async function loadNetwork() {
  const reply = await authorised("/api/network");
  if (!reply.ok) throw new Error(`GET /api/network answered ${reply.status}`);
  setNetwork(await reply.json());
  markDirty("network");
  saveCache();
}

let socket = null;

function connect() {
  // auth is a function so every reconnection sends the current token.
  socket = io("/live", { transports: ["websocket"], reconnectionDelayMax: 5000,
                         auth: (send) => send({ token: token() }) });
  socket.on("connect", async () => {
    setConnection("live", "LIVE");
    state.live = true;
    try { await loadNetwork(); } catch (err) { console.warn(err.message); }
    refreshSimulator();
    setTimeout(refreshWqi, 3000);   // quality sensors report within seconds of a start
  });
  socket.on("disconnect", () => { state.live = false; setConnection("reconnecting", "RECONNECTING"); });
  socket.io.on("reconnect_attempt", () => setConnection("reconnecting", "RECONNECTING"));
  socket.on("connect_error", (err) => {
    state.live = false;
    if (/unauthori[sz]ed|refused by server/i.test(err.message)) {
      // Refused, not unreachable: the server wants a (valid) viewer token.
      setConnection("reconnecting", "TOKEN NEEDED");
      $("token").focus();
    } else {
      setConnection("reconnecting", "RECONNECTING");
    }
  });
  // Sent by the server on every (re)connect: the page never shows a frozen picture as live.
  socket.on("snapshot", (snapshot) => {
    applySnapshot(snapshot);
    state.fromCache = false;
    markDirty(...ALL.filter((n) => n !== "network"));
    saveCache();
  });
  socket.on("sensor_update", (frame) => { applyReadings(frame.readings); markDirty("sensors"); });
  socket.on("minor_update", (frame) => { applyReadings(frame.readings); markDirty("sensors"); });
  socket.on("routing_update", (routing) => { state.routing = routing; markDirty("routing"); });
  socket.on("decision", (decision) => { state.decisions.unshift(decision); state.decisions.length = Math.min(state.decisions.length, 200); markDirty("decisions"); });
  socket.on("alert", (alert) => { applyAlert(alert); markDirty("alerts"); });
  socket.on("health_update", (health) => { state.health = health; markDirty("health"); });
  socket.on("prediction_update", (forecast) => { state.forecast = forecast; markDirty("forecast"); });
  socket.on("control_update", (c) => {
    if (c.action === "set_mode") showMode(c.value);
    if (["isolate", "restore", "set_valve", "set_pump"].includes(c.action)) loadNetwork().catch(() => {});
  });
  return socket;
}

function boot() {
  wireControls(() => { if (socket && !socket.connected) socket.connect(); });
  if (loadCache()) markDirty(...ALL);
  connect();
  requestAnimationFrame(draw);
  setInterval(() => { tickAges(); showStaleBanner(); }, 1000);
  setInterval(() => { if (state.live) refreshWqi(); }, WQI_EVERY_MS);
  addEventListener("pagehide", () => { if (state.live) saveCache(); });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch((err) => console.warn("no offline shell:", err.message));
  }
}

boot();
