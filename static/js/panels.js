// The live panels. Each render function rebuilds only its own panel, and is
// called at most a few times a second by the scheduler in app.js. Numbers
// carry their unit at the metric's precision (format.js).
import { state } from "./state.js";
import { ageSpan, el, measure, mld, num, shortName, tsOf } from "./format.js";

const STALE_INTERVALS = 3;

function node(id) {
  return state.network?.nodesById.get(id);
}

export function nodeName(id) {
  return node(id)?.name ?? id;
}

export function nodeShort(id) {
  const n = node(id);
  return n ? shortName(n) : id;
}

function bar(name, full, value, max, text, { short = false, off = false, ts = null, staleAfter = null } = {}) {
  const pct = max > 0 ? Math.max(0, Math.min(100, (100 * value) / max)) : 0;
  const fill = el("div", { class: `fill${short ? " short" : ""}${off ? " off" : ""}` });
  fill.style.width = `${pct}%`;
  return el("div", { class: "bar" },
    el("span", { class: "name", title: full, text: name }),
    el("div", { class: "track", role: "meter", "aria-label": full, "aria-valuemin": "0",
                "aria-valuemax": String(Math.round(max)), "aria-valuenow": String(Math.round(value)) }, fill),
    el("span", { class: `val${short ? " short" : ""}` }, text, ts === null ? null : el("br"),
      ts === null ? null : ageSpan(ts, staleAfter)));
}

export function renderZones(root) {
  const zones = state.routing?.zones || [];
  root.replaceChildren(...zones.map((z) => {
    const short = z.shortfall >= 1;
    const text = `${num(z.supplied, 0)} / ${mld(z.demand)}${short ? ` (−${num(z.shortfall, 0)})` : ""}`;
    return bar(nodeShort(z.node_id), nodeName(z.node_id), z.supplied, z.demand || 1, text, { short });
  }));
  if (!zones.length) root.replaceChildren(el("p", { class: "muted", text: "No routing plan yet." }));
}

export function renderSources(root) {
  const sources = state.routing?.sources || [];
  root.replaceChildren(...sources.map((s) => bar(nodeShort(s.node_id), nodeName(s.node_id), s.output, s.capacity,
    `${num(s.output, 0)} / ${mld(s.capacity)}${s.excluded ? " ✕" : ""}`, { off: !!s.excluded })));
}

export function renderReservoirs(root) {
  const glrs = (state.network?.nodes || []).filter((n) => n.kind === "reservoir");
  root.replaceChildren(...glrs.map((glr) => {
    const spec = (state.network.sensorsByNode.get(glr.id) || []).find((s) => s.metric === "level");
    const reading = spec && state.sensors.get(spec.id);
    return bar(shortName(glr).replace(/ GLR$/, ""), glr.name, reading?.value ?? 0, 100,
      reading ? measure(reading.value, "level", "%") : "no data",
      { ts: reading ? tsOf(reading.timestamp) : 0, staleAfter: spec && spec.interval_s * STALE_INTERVALS });
  }));
}

export function renderHealth(root, badge) {
  const h = state.health;
  if (!h) { root.replaceChildren(el("p", { class: "muted", text: "No health data yet." })); return; }
  badge.textContent = h.network.score;
  const reasons = h.network.reasons?.length ? h.network.reasons : ["No problems."];
  const services = Object.entries(h.services || {}).filter(([, v]) => typeof v === "string")
    .map(([k, v]) => `${k} ${v}`).join(" · ");
  root.replaceChildren(
    el("p", {}, el("strong", { text: `${h.network.score}/100` }), ` · service ${h.status}`, services ? ` · ${services}` : ""),
    el("ul", {}, ...reasons.map((r) => el("li", { text: r }))),
    el("p", { class: "muted", text: `${h.network.sensors} sensors, ${h.network.stale_sensors} stale, ` +
      `${h.network.active_alerts} active alarms, ${h.network.zones_in_shortfall} zones in shortfall` }));
}

// Decisions: newest first; recommended ones (manual mode) carry Apply and Dismiss.
export function renderDecisions(root, statusEl, act) {
  const r = state.routing;
  statusEl.textContent = r ? `plan ${r.status}${r.solve_ms != null ? `, ${num(r.solve_ms, 0)} ms` : ""}${r.mode ? `, ${r.mode} mode` : ""}` : "";
  root.replaceChildren(...state.decisions.slice(0, 40).map((d) => {
    const actions = Array.isArray(d.actions) ? d.actions : [];
    const buttons = d.state === "recommended" ? el("span", { class: "actions" },
      el("button", { type: "button", class: "small apply", text: "Apply", onclick: () => act(d, "apply") }),
      el("button", { type: "button", class: "small dismiss", text: "Dismiss", onclick: () => act(d, "dismiss") })) : null;
    return el("li", { dataset: { decision: d.id, kind: d.kind || "", state: d.state || "" } },
      el("div", {}, d.state ? el("span", { class: `decision-state ${d.state}`, text: d.state.toUpperCase() }) : null,
        el("strong", { text: d.action || actions.map((a) => a.text || "").join("; ") })),
      actions.length > 1 ? el("ul", { class: "meta" }, ...actions.map((a) =>
        el("li", { text: a.text || `${(a.kind || "").replace(/_/g, " ")} ${a.target ?? ""}` }))) : null,
      el("div", { class: "reason", text: d.reason || d.explanation || "" }),
      el("div", { class: "meta" }, `${(d.kind || "").replace(/_/g, " ")}`,
        d.confidence != null ? ` · confidence ${Math.round(d.confidence * 100)} %` : "",
        d.confidence_reason ? ` (${d.confidence_reason})` : "", " · ", ageSpan(tsOf(d.state_at || d.timestamp))),
      buttons);
  }));
  if (!state.decisions.length) root.replaceChildren(el("li", { class: "muted", text: "No decisions yet." }));
}

export function renderWqi(root) {
  const body = root.tBodies[0];
  body.replaceChildren(...state.wqi.map((s) => el("tr", {},
    el("td", { text: nodeShort(s.node_id), title: nodeName(s.node_id) }),
    el("td", { text: num(s.wqi, 0) + (s.complete ? "" : " *"), title: s.complete ? "" : `from ${Object.keys(s.parameters).join(", ")} only` }),
    el("td", { text: s.band }))));
  if (!state.wqi.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "3", class: "muted", text: "No quality data yet." })));
}

export function renderForecast(root) {
  const body = root.tBodies[0];
  const zones = state.forecast?.zones || [];
  body.replaceChildren(...zones.map((z) => {
    const spec = (state.network?.sensorsByNode.get(z.node_id) || []).find((s) => s.metric === "flow");
    const now = spec && state.sensors.get(spec.id);
    const estimate = z.estimate === true;
    return el("tr", { class: estimate ? "estimated" : "" },
      el("td", { text: nodeShort(z.node_id), title: nodeName(z.node_id) }),
      el("td", { text: now ? num(now.value, 0) : "–" }),
      el("td", { text: num(z.steps[0]?.demand, 0) }),
      el("td", { text: num(z.steps[z.steps.length - 1]?.demand, 0) }),
      el("td", { text: z.mape == null ? "–" : `${num(z.mape, 0)} %` }),
      el("td", { title: z.method || "" }, estimate ? el("span", { class: "estimate", text: "profile estimate" })
        : el("span", { class: "muted", text: z.method === "profile x level" ? "learned profile" : "smoothing" })));
  }));
  if (!zones.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "Waiting for the first forecast." })));
  else if (zones.some((z) => z.estimate)) {
    body.append(el("tr", {}, el("td", { colspan: "6", class: "estimate",
      text: "History too short: profile-based estimate (a typical day × base demand or readings so far)." })));
  }
}

// Node detail: built once per selection; values update in place.
const detailCells = new Map();   // sensor id -> {value, flag, age, chart}

export function renderDetail(root, kindEl, nodeId, openChart) {
  detailCells.clear();
  const n = node(nodeId);
  if (!n) { root.replaceChildren(); return; }
  kindEl.textContent = `${n.name} · ${n.kind.replace("_", " ")}${n.capacity ? ` · capacity ${mld(n.capacity)}` : ""}` +
    `${n.status === "isolated" ? " · ISOLATED" : ""}`;
  const specs = state.network.sensorsByNode.get(nodeId) || [];
  const rows = specs.map((spec) => {
    const value = el("span", { class: "v" });
    const flag = el("span");
    const ageCell = ageSpan(null, spec.interval_s * STALE_INTERVALS);
    const chart = el("td", { class: "spark" });
    detailCells.set(spec.id, { value, flag, age: ageCell, chart, plot: null, spec });
    return el("tr", { dataset: { sensor: spec.id } },
      el("td", { text: spec.id.slice(nodeId.length + 1) || spec.id }),
      el("td", {}, value, el("div", {}, flag, " ", ageCell)), chart,
      el("td", {}, el("button", { type: "button", class: "small chart-open", text: "Chart",
        "aria-label": `Chart of ${spec.id}`, onclick: () => openChart(nodeId, spec.id) })));
  });
  root.replaceChildren(rows.length ? el("table", { class: "sensors" }, el("tbody", {}, ...rows))
    : el("p", { class: "muted", text: "No sensors at this node." }));
  updateDetail();
}

export function updateDetail() {
  for (const [id, cell] of detailCells) {
    const r = state.sensors.get(id);
    cell.value.textContent = r ? measure(r.value, cell.spec.metric, cell.spec.unit) : "no data";
    cell.flag.textContent = r && r.quality && r.quality !== "good" ? r.quality : "";
    cell.flag.className = cell.flag.textContent ? "flag" : "";
    cell.flag.title = r?.quality_reason || "";
    if (r?.source) cell.value.title = `source: ${r.source}`;
    cell.age.dataset.ts = r ? String(tsOf(r.timestamp)) : "";
    const trend = state.trends.get(id);
    if (trend && trend[0].length > 1 && window.uPlot) {
      if (!cell.plot) {
        cell.plot = new window.uPlot({
          width: 80, height: 28, legend: { show: false }, cursor: { show: false },
          axes: [{ show: false }, { show: false }], scales: { x: { time: false } },
          series: [{}, { stroke: "#58a6ff", width: 1.5 }],
        }, trend, cell.chart);
      } else {
        cell.plot.setData(trend);
      }
    }
  }
}

// External sources (SOURCES_FILE): each one's state, last success and what it brought.
export function renderExternalSources(root, sources, refresh) {
  const body = root.tBodies[0];
  if (sources === null) { body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "Not available on this server." }))); return; }
  body.replaceChildren(...sources.map((s) => el("tr", { dataset: { source: s.id } },
    el("td", { text: s.id, title: `${s.type || ""} ${s.url || ""}`.trim() }),
    el("td", {}, el("span", { class: `ext-status ${s.status}`, text: s.status, title: s.last_error || "" })),
    el("td", {}, s.last_success ? ageSpan(tsOf(s.last_success)) : el("span", { class: "muted", text: "never" })),
    el("td", { text: String(s.readings_ingested ?? "–") }),
    el("td", {}, el("button", { type: "button", class: "small", text: "Refresh", "aria-label": `Refresh ${s.id}`,
      onclick: () => refresh(s.id) })))));
  if (!sources.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted", text: "None configured (SOURCES_FILE)." })));
}
