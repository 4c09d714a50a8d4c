// The network map: nodes at their coordinates, links drawn with planned flow.
// Built once from /api/network; a routing update only changes link attributes.
import { state } from "./state.js";
import { svg } from "./format.js";

const WIDTH = 1000, HEIGHT = 700, PAD = 40;
let linkEls = new Map();
let nodeEls = new Map();
let onSelect = () => {};

// Distances from the city centre are compressed (r^COMPRESS) so the far
// Cauvery stages fit without squeezing the city; bearings are kept.
const COMPRESS = 0.4;
function projector(nodes) {
  const lat0 = nodes.reduce((s, n) => s + n.lat, 0) / nodes.length;
  const zones = nodes.filter((n) => n.kind === "zone");
  const centre = zones.length ? zones : nodes;
  const cLat = centre.reduce((s, n) => s + n.lat, 0) / centre.length;
  const cLon = centre.reduce((s, n) => s + n.lon, 0) / centre.length;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const raw = (n) => {
    const dx = (n.lon - cLon) * k, dy = n.lat - cLat;
    const r = Math.hypot(dx, dy);
    const s = r > 0 ? r ** COMPRESS / r : 0;
    return [dx * s, -dy * s];
  };
  const pts = nodes.map(raw);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const scale = Math.min((WIDTH - 2 * PAD) / (maxX - minX || 1), (HEIGHT - 2 * PAD) / (maxY - minY || 1));
  return (n) => {
    const [x, y] = raw(n);
    return [PAD + (x - minX) * scale, PAD + (y - minY) * scale];
  };
}

export function buildMap(root, select) {
  onSelect = select;
  root.replaceChildren();
  linkEls = new Map(); nodeEls = new Map();
  const { nodes, links } = state.network;
  const place = projector(nodes);
  const at = new Map(nodes.map((n) => [n.id, place(n)]));
  const linkLayer = svg("g"), nodeLayer = svg("g"), labelLayer = svg("g");
  for (const link of links) {
    const [x1, y1] = at.get(link.from), [x2, y2] = at.get(link.to);
    const line = svg("line", { x1, y1, x2, y2, class: "link idle", "stroke-width": 2 });
    const title = svg("title"); title.textContent = link.name || link.id; line.append(title);
    linkLayer.append(line);
    linkEls.set(link.id, { line, title, link });
  }
  for (const node of nodes) {
    const [x, y] = at.get(node.id);
    const r = node.kind === "zone" ? 11 : node.kind === "reservoir" ? 9 : node.kind === "junction" ? 5 : 8;
    const shape = node.kind === "pump_station" || node.kind === "plant"
      ? svg("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r })
      : svg("circle", { cx: x, cy: y, r });
    shape.setAttribute("class", `node ${node.kind}`);
    shape.setAttribute("tabindex", "0");
    shape.setAttribute("role", "button");
    shape.setAttribute("aria-label", `${node.name} (${node.kind.replace("_", " ")})`);
    shape.dataset.node = node.id;
    shape.addEventListener("click", () => onSelect(node.id));
    shape.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(node.id); } });
    const title = svg("title"); title.textContent = node.name; shape.append(title);
    nodeLayer.append(shape);
    nodeEls.set(node.id, shape);
    if (node.kind !== "junction") {
      const label = svg("text", { x: x + r + 3, y: y + 4 });
      label.textContent = node.name.replace(/ (GLR|pumping station|water treatment plants?)$/i, "");
      labelLayer.append(label);
    }
  }
  root.append(linkLayer, nodeLayer, labelLayer);
}

export function updateFlows() {
  const routing = state.routing;
  const status = new Map(state.network.links.map((l) => [l.id, l.status]));
  const flows = new Map((routing?.flows || []).map((f) => [f.link_id, f.flow]));
  let maxCap = 1;
  for (const { link } of linkEls.values()) maxCap = Math.max(maxCap, link.capacity);
  for (const [id, { line, title, link }] of linkEls) {
    const flow = Math.abs(flows.get(id) ?? 0);
    const use = link.capacity ? flow / link.capacity : 0;
    const closed = status.get(id) === "isolated" || status.get(id) === "closed";
    const cls = closed ? "isolated" : flow < 0.5 ? "idle" : use < 0.5 ? "low" : use < 0.85 ? "mid" : "high";
    line.setAttribute("class", `link ${cls}`);
    line.setAttribute("stroke-width", (1.5 + 9 * Math.sqrt(flow / maxCap)).toFixed(1));
    title.textContent = `${link.name || link.id}: ${flow.toFixed(0)} of ${link.capacity.toFixed(0)} MLD (${Math.round(use * 100)}%)${closed ? ", " + status.get(id) : ""}`;
  }
}

export function markAlerting(nodeIds) {
  for (const [id, shape] of nodeEls) shape.classList.toggle("alerting", nodeIds.has(id));
}

export function markSelected(nodeId) {
  for (const [id, shape] of nodeEls) shape.classList.toggle("selected", id === nodeId);
}
