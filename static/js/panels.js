// The live panels. Each render function rebuilds only its own panel, and is
// called at most a few times a second by the scheduler in app.js.
import { state } from "./state.js";
import { ageSpan, el, num, tsOf } from "./format.js";

const STALE_INTERVALS = 3;

function nodeName(id) {
  return state.network?.nodesById.get(id)?.name ?? id;
}

function bar(name, value, max, text, { short = false, off = false, ts = null, staleAfter = null } = {}) {
  const pct = max > 0 ? Math.max(0, Math.min(100, (100 * value) / max)) : 0;
  const fill = el("div", { class: `fill${short ? " short" : ""}${off ? " off" : ""}` });
  fill.style.width = `${pct}%`;
  return el("div", { class: "bar" },
    el("span", { class: "name", title: name, text: name }),
    el("div", { class: "track", role: "meter", "aria-label": name, "aria-valuemin": "0",
                "aria-valuemax": String(Math.round(max)), "aria-valuenow": String(Math.round(value)) }, fill),
    el("span", { class: `val${short ? " short" : ""}` }, text, ts === null ? null : el("br"),
      ts === null ? null : ageSpan(ts, staleAfter)));
}

export function renderZones(root) {
  const zones = state.routing?.zones || [];
  root.replaceChildren(...zones.map((z) => {
    const short = z.shortfall >= 1;
    const text = short ? `${num(z.supplied)} / ${num(z.demand)} (−${num(z.shortfall)})` : `${num(z.supplied)} / ${num(z.demand)}`;
    return bar(nodeName(z.node_id), z.supplied, z.demand || 1, text, { short });
  }));
  if (!zones.length) root.replaceChildren(el("p", { class: "muted", text: "No routing plan yet." }));
}

export function renderSources(root) {
  const sources = state.routing?.sources || [];
  root.replaceChildren(...sources.map((s) => bar(nodeName(s.node_id), s.output, s.capacity,
    `${num(s.output)} / ${num(s.capacity)}${s.excluded ? " ✕" : ""}`, { off: !!s.excluded })));
}

export function renderReservoirs(root) {
  const glrs = (state.network?.nodes || []).filter((n) => n.kind === "reservoir");
  root.replaceChildren(...glrs.map((glr) => {
    const spec = (state.network.sensorsByNode.get(glr.id) || []).find((s) => s.metric === "level");
    const reading = spec && state.sensors.get(spec.id);
    return bar(glr.name.replace(/ GLR$/, ""), reading?.value ?? 0, 100,
      reading ? `${num(reading.value)} %` : "no data",
      { ts: reading ? tsOf(reading.timestamp) : 0, staleAfter: spec && spec.interval_s * STALE_INTERVALS });
  }));
}

export function renderHealth(root, badge) {
  const h = state.health;
  if (!h) { root.replaceChildren(el("p", { class: "muted", text: "No health data yet." })); return; }
  badge.textContent = h.network.score;
  const reasons = h.network.reasons.length ? h.network.reasons : ["No problems."];
  root.replaceChildren(
    el("p", {}, el("strong", { text: `${h.network.score}/100` }), ` · service ${h.status}`,
      ` · InfluxDB ${h.services.influxdb} · MQTT ${h.services.mqtt}`),
    el("ul", {}, ...reasons.map((r) => el("li", { text: r }))),
    el("p", { class: "muted", text: `${h.network.sensors} sensors, ${h.network.stale_sensors} stale, ` +
      `${h.network.active_alerts} open alerts, ${h.network.zones_in_shortfall} zones in shortfall` }));
}

export function renderAlerts(root, countEl, acknowledge) {
  const alerts = [...state.alerts.values()].sort((a, b) =>
    (b.severity === "critical") - (a.severity === "critical") || (b.raised_at > a.raised_at ? 1 : -1));
  countEl.textContent = alerts.length ? `${alerts.length} open` : "none open";
  root.replaceChildren(...alerts.map((a) => el("li", { dataset: { alert: a.id } },
    el("span", { class: `sev ${a.severity}`, text: a.severity === "critical" ? "▲ CRITICAL" : "● WARNING" }),
    el("span", { class: "reason", text: a.message }),
    a.state === "acknowledged"
      ? el("span", { class: "meta", text: ` · acknowledged by ${a.acknowledged_by}` })
      : el("button", { type: "button", class: "ack", text: "Acknowledge", onclick: () => acknowledge(a.id) }),
    el("div", { class: "meta" }, `${a.node_id ? nodeName(a.node_id) + " · " : ""}raised `, ageSpan(tsOf(a.raised_at))))));
}

export function renderDecisions(root, statusEl) {
  const r = state.routing;
  statusEl.textContent = r ? `plan ${r.status}${r.solve_ms != null ? `, solved in ${num(r.solve_ms)} ms` : ""}${r.mode ? `, ${r.mode} mode` : ""}` : "";
  root.replaceChildren(...state.decisions.slice(0, 40).map((d) => el("li", { dataset: { decision: d.id, kind: d.kind } },
    el("div", {}, el("strong", { text: d.action })),
    el("div", { class: "reason", text: d.reason }),
    el("div", { class: "meta" }, `${d.kind.replace(/_/g, " ")} · confidence ${Math.round(d.confidence * 100)}% · `, ageSpan(tsOf(d.timestamp))))));
}

export function renderWqi(root) {
  const body = root.tBodies[0];
  body.replaceChildren(...state.wqi.map((s) => el("tr", {},
    el("td", { text: nodeName(s.node_id) }),
    el("td", { text: num(s.wqi) + (s.complete ? "" : " *"), title: s.complete ? "" : `from ${Object.keys(s.parameters).join(", ")} only` }),
    el("td", { text: s.band }))));
  if (!state.wqi.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "3", class: "muted", text: "No quality data yet." })));
}

export function renderForecast(root) {
  const body = root.tBodies[0];
  const zones = state.forecast?.zones || [];
  body.replaceChildren(...zones.map((z) => {
    const spec = (state.network?.sensorsByNode.get(z.node_id) || []).find((s) => s.metric === "flow");
    const now = spec && state.sensors.get(spec.id);
    return el("tr", {},
      el("td", { text: nodeName(z.node_id) }),
      el("td", { text: now ? num(now.value) : "–" }),
      el("td", { text: num(z.steps[0]?.demand) }),
      el("td", { text: num(z.steps[z.steps.length - 1]?.demand) }),
      el("td", { text: z.mape == null ? "–" : `${num(z.mape)} %` }),
      el("td", { text: z.seasonal_naive_mape == null ? "–" : `${num(z.seasonal_naive_mape)} %` }));
  }));
  if (!zones.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "The forecast starts after the first 15-minute slot." })));
}

// Node detail: built once per selection; values update in place.
const detailCells = new Map();   // sensor id -> {value, flag, age, chart}

export function renderDetail(root, kindEl, nodeId) {
  detailCells.clear();
  const node = state.network?.nodesById.get(nodeId);
  if (!node) { root.replaceChildren(); return; }
  kindEl.textContent = `${node.name} · ${node.kind.replace("_", " ")}${node.capacity ? ` · capacity ${num(node.capacity)} MLD` : ""}`;
  const specs = state.network.sensorsByNode.get(nodeId) || [];
  const rows = specs.map((spec) => {
    const value = el("td", { class: "v" });
    const flag = el("span");
    const ageCell = ageSpan(null, spec.interval_s * STALE_INTERVALS);
    const chart = el("td", { class: "spark" });
    detailCells.set(spec.id, { value, flag, age: ageCell, chart, plot: null, spec });
    return el("tr", { dataset: { sensor: spec.id } },
      el("td", { text: spec.id.slice(nodeId.length + 1) || spec.id }), value,
      el("td", {}, flag, " ", ageCell), chart);
  });
  root.replaceChildren(rows.length ? el("table", { class: "sensors" }, el("tbody", {}, ...rows))
    : el("p", { class: "muted", text: "No sensors at this node." }));
  updateDetail();
}

export function updateDetail() {
  for (const [id, cell] of detailCells) {
    const r = state.sensors.get(id);
    const unit = cell.spec.unit ? ` ${cell.spec.unit}` : "";
    cell.value.textContent = r ? `${num(r.value, 2)}${unit}` : "no data";
    cell.flag.textContent = r && r.quality && r.quality !== "good" ? r.quality : "";
    cell.flag.className = cell.flag.textContent ? "flag" : "";
    cell.flag.title = r?.quality_reason || "";
    cell.age.dataset.ts = r ? String(tsOf(r.timestamp)) : "";
    const trend = state.trends.get(id);
    if (trend && trend[0].length > 1 && window.uPlot) {
      if (!cell.plot) {
        cell.plot = new window.uPlot({
          width: 140, height: 34, legend: { show: false }, cursor: { show: false },
          axes: [{ show: false }, { show: false }], scales: { x: { time: false } },
          series: [{}, { stroke: "#58a6ff", width: 1.5 }],
        }, trend, cell.chart);
      } else {
        cell.plot.setData(trend);
      }
    }
  }
}
