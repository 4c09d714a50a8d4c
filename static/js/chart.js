// The station chart (uPlot, vendored): live readings plus history with min/max
// bands, over 1 h / 24 h / 7 d / 30 d, and a CSV download.
//
// History comes from /api/history/<id>: the server picks the resolution from
// the range (raw up to 6 h, then rollups whose points carry `min`/`max`); an
// older server without `resolution` is asked for mean, min and max buckets.
import { state } from "./state.js";
import { decimalsOf, el, measure } from "./format.js";
import { authorised } from "./controls.js";

const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
// Bucket widths for older servers that do not pick a resolution (about 700 points a range).
const EVERY = { "1h": null, "24h": "2m", "7d": "15m", "30d": "1h" };
const LIVE_REDRAW_MS = 1000;
const $ = (id) => document.getElementById(id);

let plot = null;
let current = { nodeId: null, sensorId: null, range: "1h", data: null, resolution: null };
let liveTimer = null;

function seconds(t) {
  return typeof t === "number" ? (t > 1e11 ? t / 1000 : t) : Date.parse(t) / 1000;
}

async function getJson(path) {
  const reply = await authorised(path);
  if (!reply.ok) throw new Error(`${path} answered ${reply.status}`);
  return reply.json();
}

// -> {t: [], v: [], lo: [], hi: [], resolution}
async function loadHistory(sensorId, range) {
  const base = `/api/history/${encodeURIComponent(sensorId)}?start=-${range}`;
  const every = EVERY[range];
  let reply = await getJson(base);                   // the server picks the resolution ...
  if (!reply.resolution && every) {                  // ... or, an older server, buckets of our choosing
    reply = await getJson(`${base}&every=${every}&fn=mean`);
    reply.resolution = `${every} buckets`;
    const [lows, highs] = await Promise.all([getJson(`${base}&every=${every}&fn=min`), getJson(`${base}&every=${every}&fn=max`)]);
    const byT = (list) => new Map((list.points || []).map((p) => [seconds(p.t), p.v]));
    const lo = byT(lows), hi = byT(highs);
    for (const p of reply.points || []) { p.min = lo.get(seconds(p.t)); p.max = hi.get(seconds(p.t)); }
  }
  const out = { t: [], v: [], lo: [], hi: [], resolution: reply.resolution || "raw" };
  for (const p of reply.points || []) {
    out.t.push(seconds(p.t ?? p.time));
    out.v.push(p.v ?? p.mean ?? p.value ?? null);
    out.lo.push(p.min ?? null);
    out.hi.push(p.max ?? null);
  }
  return out;
}

function withLive(data) {
  // Append live readings newer than the history's last point.
  const trend = state.trends.get(current.sensorId);
  const t = [...data.t], v = [...data.v], lo = [...data.lo], hi = [...data.hi];
  const last = t.length ? t[t.length - 1] : 0;
  if (trend) {
    for (let i = 0; i < trend[0].length; i += 1) {
      if (trend[0][i] > last) { t.push(trend[0][i]); v.push(trend[1][i]); lo.push(null); hi.push(null); }
    }
  }
  return [t, v, lo, hi];
}

function draw() {
  const root = $("chart-plot");
  const spec = state.network?.sensorsById.get(current.sensorId);
  const metric = spec?.metric || "value";
  const unit = spec?.unit || "";
  const digits = decimalsOf(metric);
  const data = withLive(current.data);
  const opts = {
    width: Math.max(320, root.clientWidth || 900), height: 340,
    scales: { x: { time: true } },
    series: [
      {},
      { label: `${current.sensorId}${unit ? ` (${unit})` : ""}`, stroke: "#58a6ff", width: 1.5,
        value: (u, val) => (val == null ? "–" : measure(val, metric, unit)) },
      { label: "min", stroke: "rgba(88,166,255,0.35)", width: 1, dash: [4, 3], value: (u, val) => (val == null ? "–" : val.toFixed(digits)) },
      { label: "max", stroke: "rgba(88,166,255,0.35)", width: 1, dash: [4, 3], value: (u, val) => (val == null ? "–" : val.toFixed(digits)) },
    ],
    bands: [{ series: [3, 2], fill: "rgba(88,166,255,0.15)" }],
    axes: [{ stroke: "#9da7b3", grid: { stroke: "#30363d" } },
           { stroke: "#9da7b3", grid: { stroke: "#30363d" }, values: (u, vals) => vals.map((x) => x.toFixed(digits)) }],
  };
  if (plot) plot.destroy();
  root.replaceChildren();
  plot = new window.uPlot(opts, data, root);
}

async function load() {
  const { sensorId, range } = current;
  $("chart-info").textContent = `Loading ${range} of ${sensorId} …`;
  for (const b of document.querySelectorAll("#chart .range")) b.setAttribute("aria-pressed", String(b.dataset.range === range));
  try {
    const data = await loadHistory(sensorId, range);
    if (sensorId !== current.sensorId || range !== current.range) return;
    current.data = data;
    const banded = data.lo.some((x) => x != null);
    $("chart-info").textContent = `${data.t.length} points · resolution ${data.resolution}` +
      `${banded ? " · band: min to max" : ""} · live readings appended`;
    draw();
    $("chart").dataset.points = String(data.t.length);
  } catch (err) {
    $("chart-info").textContent = `History unavailable: ${err.message}`;
    current.data = { t: [], v: [], lo: [], hi: [] };
    draw();
  }
}

export function openChart(nodeId, sensorId) {
  const specs = state.network?.sensorsByNode.get(nodeId) || [];
  current = { ...current, nodeId, sensorId: sensorId || specs[0]?.id, data: { t: [], v: [], lo: [], hi: [] } };
  if (!current.sensorId) return;
  const node = state.network.nodesById.get(nodeId);
  $("chart-title").textContent = `${node?.name || nodeId}`;
  const select = $("chart-sensor");
  select.replaceChildren(...specs.map((s) => el("option", { value: s.id, text: `${s.metric} (${s.id})` })));
  select.value = current.sensorId;
  $("chart").dataset.sensor = current.sensorId;
  if (!$("chart").open) $("chart").showModal();
  load();
  clearInterval(liveTimer);
  liveTimer = setInterval(() => { if ($("chart").open && current.data) draw(); }, LIVE_REDRAW_MS);
}

function csvOf(data, sensorId) {
  const lines = ["time,sensor_id,value,min,max"];
  const [t, v, lo, hi] = withLive(data);
  for (let i = 0; i < t.length; i += 1) {
    lines.push([new Date(t[i] * 1000).toISOString(), sensorId, v[i] ?? "", lo[i] ?? "", hi[i] ?? ""].join(","));
  }
  return lines.join("\n") + "\n";
}

async function download() {
  const { sensorId, range } = current;
  let blob = null;
  try {   // the server's streaming export, where it has one
    const reply = await authorised(`/api/history/export?sensor_id=${encodeURIComponent(sensorId)}&start=-${range}&format=csv`);
    if (reply.ok && (reply.headers.get("Content-Type") || "").includes("csv")) blob = await reply.blob();
  } catch { /* fall back to what the chart holds */ }
  blob ||= new Blob([csvOf(current.data, sensorId)], { type: "text/csv" });
  const a = el("a", { href: URL.createObjectURL(blob), download: `${sensorId}-${range}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

export function wireChart() {
  for (const b of document.querySelectorAll("#chart .range")) {
    b.addEventListener("click", () => { current.range = b.dataset.range; load(); });
  }
  $("chart-sensor").addEventListener("change", (e) => { current.sensorId = e.target.value; $("chart").dataset.sensor = current.sensorId; load(); });
  $("chart-close").addEventListener("click", () => $("chart").close());
  $("chart").addEventListener("close", () => clearInterval(liveTimer));
  $("chart-csv").addEventListener("click", download);
}
