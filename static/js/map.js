// The network map, drawn by Cytoscape.js (vendored): zoom, pan, full screen,
// styles per node kind and link state, width by flow, animated direction.
// Nodes sit at their coordinates (distances from the city centre compressed);
// a label pass then places each label where it overlaps no other label or
// node, and hides the few that fit nowhere (they show on hover and selection).
// Large networks (EPANET models with thousands of nodes) get a level of
// detail: small junctions, labels only when zoomed in, no animation, and
// edges hidden while panning.
import { state } from "./state.js";
import { mld, shortNames } from "./format.js";

const LARGE = 500;                 // nodes from which the level of detail applies
const DASH_STEP_MS = 80;           // flow animation: dash offset step interval
const IDLE_MLD = 0.5;              // below this a link counts as carrying nothing
const LABEL_FONT = 11;             // model units; the view is fitted at about zoom 1
// Distances from the city centre are compressed (r^COMPRESS) so the far
// Cauvery stages fit without squeezing the city; bearings are kept.
const COMPRESS = 0.4;

const COLOURS = { source: "#a371f7", plant: "#39c5cf", pump_station: "#db6d28", reservoir: "#58a6ff",
  junction: "#8b949e", zone: "#3fb950" };
const SHAPES = { source: "diamond", plant: "round-rectangle", pump_station: "hexagon", reservoir: "barrel",
  junction: "ellipse", zone: "ellipse" };
const SIZES = { source: 22, plant: 18, pump_station: 18, reservoir: 16, junction: 9, zone: 22 };
// On a large network demand nodes are many and small; the few works stand out.
const LARGE_SIZES = { source: 14, plant: 12, pump_station: 12, reservoir: 12, junction: 3, zone: 5 };
// Kinds labelled on a large network (the rest on hover and selection).
const LARGE_LABELLED = new Set(["source", "plant", "pump_station", "reservoir"]);
const GRID = 60;           // spatial index cell for label placement (model units)
// Level of detail on a large network: below this many times the fitted zoom
// the thousands of demand nodes and junctions are not drawn (the links still
// are, with their flow colours); zoomed in, the canvas draws only what is in view.
const DETAIL_ZOOM = 2.5;

let cy = null;
let dashTimer = null;
let dashOffset = 0;
let onSelect = () => {};
let large = false;
let labelKey = "";

function projector(nodes, width, height) {
  const pad = 40;
  const lat0 = nodes.reduce((s, n) => s + n.lat, 0) / nodes.length;
  const zones = nodes.filter((n) => n.kind === "zone");
  const centre = zones.length ? zones : nodes;
  const cLat = centre.reduce((s, n) => s + n.lat, 0) / centre.length;
  const cLon = centre.reduce((s, n) => s + n.lon, 0) / centre.length;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const compress = nodes.length > LARGE ? 1 : COMPRESS;
  const raw = (n) => {
    const dx = (n.lon - cLon) * k, dy = n.lat - cLat;
    const r = Math.hypot(dx, dy);
    const s = r > 0 ? r ** compress / r : 0;
    return [dx * s, -dy * s];
  };
  const pts = nodes.map(raw);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const scale = Math.min((width - 2 * pad) / (maxX - minX || 1), (height - 2 * pad) / (maxY - minY || 1));
  return (n) => { const [x, y] = raw(n); return { x: pad + (x - minX) * scale, y: pad + (y - minY) * scale }; };
}

function styles() {
  const node = {
    "background-color": "data(colour)", shape: "data(shape)",
    width: "data(size)", height: "data(size)",
    "border-width": large ? 0 : 2, "border-color": "#0b0f14",
    label: "data(label)", color: "#c9d1d9", "font-size": LABEL_FONT,
    "text-halign": "data(halign)", "text-valign": "data(valign)", "text-margin-x": "data(mx)", "text-margin-y": "data(my)",
    "text-outline-color": "#0b0f14", "text-outline-width": 2, "min-zoomed-font-size": large ? 9 : 0,
  };
  return [
    { selector: "node", style: node },
    { selector: "node.nolabel", style: { label: "" } },
    { selector: "node.minor", style: { display: "element" } },
    { selector: "node.nolabel.hover, node.nolabel:selected", style: { label: "data(label)", "z-index": 20 } },
    { selector: "node.suspect", style: { "border-color": "#d29922", "border-width": 3 } },
    { selector: "node.bad", style: { "border-color": "#d2a8ff", "border-width": 3 } },
    { selector: "node.alarm", style: { "border-color": "#f85149", "border-width": 4 } },
    { selector: "node.isolated", style: { "background-color": "#3b4451", "border-color": "#c9d1d9", "border-style": "dashed", "border-width": 2, color: "#9da7b3" } },
    { selector: "node:selected", style: { "border-color": "#e6edf3", "border-width": 4, "overlay-opacity": 0 } },
    { selector: "edge", style: {
      width: "data(width)", "line-color": "#3b4451", "curve-style": large ? "haystack" : "straight",
      "target-arrow-shape": "none", "arrow-scale": 0.8, "overlay-opacity": 0,
      "font-size": 9, color: "#f2cc60", "text-outline-color": "#0b0f14", "text-outline-width": 2,
      "text-rotation": "none" } },
    { selector: "edge.restricted, edge.stopped", style: { label: "data(label)" } },
    { selector: "edge.low", style: { "line-color": "#58a6ff", "mid-target-arrow-color": "#58a6ff" } },
    { selector: "edge.mid", style: { "line-color": "#e3b341", "mid-target-arrow-color": "#e3b341" } },
    { selector: "edge.high", style: { "line-color": "#ff7b72", "mid-target-arrow-color": "#ff7b72" } },
    // Dashes and arrows cost most of a frame on a large network: there they
    // show only on the links of the selected node.
    { selector: large ? "edge.flowing.focus" : "edge.flowing", style: { "line-style": "dashed", "line-dash-pattern": [10, 4], "mid-target-arrow-shape": "triangle" } },
    { selector: large ? "edge.reverse.focus" : "edge.reverse", style: { "mid-target-arrow-shape": "none", "mid-source-arrow-shape": "triangle" } },
    { selector: "edge.reverse.low", style: { "mid-source-arrow-color": "#58a6ff" } },
    { selector: "edge.reverse.mid", style: { "mid-source-arrow-color": "#e3b341" } },
    { selector: "edge.reverse.high", style: { "mid-source-arrow-color": "#ff7b72" } },
    { selector: "edge.restricted", style: { "line-outline-width": 2, "line-outline-color": "#f2cc60" } },
    { selector: "edge.stopped", style: { "line-color": "#6e7681", "line-style": "dashed", "line-dash-pattern": [3, 3], width: 2,
      "mid-target-arrow-shape": "none", color: "#c9d1d9" } },
    { selector: "edge.isolated", style: { "line-color": "#c9d1d9", "line-style": "dotted", width: 2, "mid-target-arrow-shape": "none",
      "mid-source-arrow-shape": "none", color: "#c9d1d9" } },
    { selector: "edge.hover", style: { "overlay-opacity": 0.15, "overlay-color": "#e6edf3" } },
  ];
}

// -- labels ---------------------------------------------------------------------
function overlaps(a, b) {
  return a.x1 < b.x2 + LABEL_GAP && b.x1 < a.x2 + LABEL_GAP && a.y1 < b.y2 + LABEL_GAP && b.y1 < a.y2 + LABEL_GAP;
}

const LABEL_GAP = 2;       // model units kept free between a label and anything else
const MARGIN = 3;          // label to its own node
const PLACES = [           // [halign, valign]: Cytoscape's own label positions around a node
  ["right", "center"], ["left", "center"], ["center", "top"], ["center", "bottom"],
  ["right", "top"], ["right", "bottom"], ["left", "top"], ["left", "bottom"],
];
const LABEL_ORDER = { source: 0, zone: 1, plant: 2, pump_station: 3, reservoir: 4, junction: 5 };

function marginsOf(halign, valign) {
  return { mx: halign === "right" ? MARGIN : halign === "left" ? -MARGIN : 0,
           my: valign === "top" ? -MARGIN : valign === "bottom" ? MARGIN : 0 };
}

// The label's box for a place, as Cytoscape lays it out: the text anchored
// beside the node body, grown by `e` (outline and padding) on every side.
function labelBox(n, halign, valign, w, h, e) {
  const { x, y } = n.position();
  const { mx, my } = marginsOf(halign, valign);
  const W = n.width(), H = n.height();
  const tw = w - 2 * e, th = h - 2 * e;
  const tx1 = halign === "right" ? x + W / 2 + mx : halign === "left" ? x - W / 2 + mx - tw : x + mx - tw / 2;
  const ty1 = valign === "bottom" ? y + H / 2 + my : valign === "top" ? y - H / 2 + my - th : y + my - th / 2;
  return { x1: tx1 - e, y1: ty1 - e, x2: tx1 + tw + e, y2: ty1 + th + e };
}

// Boxes bucketed on a grid, so a placement looks only at its neighbours.
class BoxIndex {
  constructor() { this.cells = new Map(); }
  *keys(b) {
    for (let i = Math.floor((b.x1 - LABEL_GAP) / GRID); i <= Math.floor((b.x2 + LABEL_GAP) / GRID); i += 1)
      for (let j = Math.floor((b.y1 - LABEL_GAP) / GRID); j <= Math.floor((b.y2 + LABEL_GAP) / GRID); j += 1) yield `${i},${j}`;
  }
  push(b) { for (const k of this.keys(b)) { if (!this.cells.has(k)) this.cells.set(k, []); this.cells.get(k).push(b); } }
  near(b) { const out = new Set(); for (const k of this.keys(b)) for (const x of this.cells.get(k) || []) out.add(x); return [...out]; }
}

// Greedy placement: most important kinds first; a label goes in the first of
// Cytoscape's eight places that overlaps no node body, no edge label and no
// label placed before; a label that fits nowhere shows on hover and selection.
export function placeLabels() {
  if (!cy) return;
  const labelled = cy.nodes().filter((n) => n.data("label") && (!large || LARGE_LABELLED.has(n.data("kind"))));
  cy.batch(() => {
    if (!large) cy.nodes().addClass("nolabel");
    labelled.removeClass("nolabel").forEach((n) => n.data({ halign: "right", valign: "center", ...marginsOf("right", "center") }));
  });
  const size = new Map();
  labelled.forEach((n) => {
    const bb = n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true });
    const e = (n.position().x + n.width() / 2 + MARGIN) - bb.x1;
    size.set(n.id(), [bb.w, bb.h, e]);
  });
  const taken = new BoxIndex();
  cy.nodes().forEach((n) => {      // node bodies, from position and size (cheaper than a bounding box each)
    const { x, y } = n.position(), r = n.data("size") / 2 + (large ? 0 : 2);
    taken.push({ x1: x - r, y1: y - r, x2: x + r, y2: y + r, owner: n.id() });
  });
  // Link labels (openings, stopped pumps) sit at the link's middle; one that
  // would cover another is left to the tooltip.
  const edges = cy.edges().filter((e) => e.data("fullLabel"));
  cy.batch(() => cy.edges().forEach((e) => e.data("label", e.data("fullLabel") || "")));
  edges.forEach((e) => {
    const bb = e.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true });
    if (bb.w <= 0) return;
    if (taken.near(bb).some((t) => !t.owner && overlaps(bb, t))) e.data("label", "");
    else taken.push(bb);
  });
  const chosen = new Map();
  labelled.sort((a, b) => (LABEL_ORDER[a.data("kind")] ?? 9) - (LABEL_ORDER[b.data("kind")] ?? 9)).forEach((n) => {
    const [w, h, e] = size.get(n.id());
    for (const [halign, valign] of PLACES) {
      const box = labelBox(n, halign, valign, w, h, e);
      if (!taken.near(box).some((t) => t.owner !== n.id() && overlaps(box, t))) {
        taken.push(box);
        chosen.set(n.id(), [halign, valign]);
        return;
      }
    }
  });
  cy.batch(() => labelled.forEach((n) => {
    const place = chosen.get(n.id());
    if (!place) { n.addClass("nolabel"); return; }
    n.data({ halign: place[0], valign: place[1], ...marginsOf(place[0], place[1]) });
  }));
}

// A layout pass over the projected coordinates: nodes closer than MIN_GAP are
// pushed apart (sources at one intake, a plant beside its pump station) so
// no node hides another; positions move only as far as needed.
const MIN_GAP = 30;
const SPREAD_ROUNDS = 60;
function spread(positions) {
  const ids = [...positions.keys()];
  if (ids.length > LARGE) return positions;
  for (let round = 0; round < SPREAD_ROUNDS; round += 1) {
    let moved = false;
    for (let i = 0; i < ids.length; i += 1) {
      for (let j = i + 1; j < ids.length; j += 1) {
        const a = positions.get(ids[i]), b = positions.get(ids[j]);
        let dx = b.x - a.x, dy = b.y - a.y;
        let d = Math.hypot(dx, dy);
        if (d >= MIN_GAP) continue;
        if (d < 0.01) { dx = Math.cos(i + j); dy = Math.sin(i + j); d = 1; }
        const push = (MIN_GAP - d) / 2 + 0.5;
        a.x -= (dx / d) * push; a.y -= (dy / d) * push;
        b.x += (dx / d) * push; b.y += (dy / d) * push;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return positions;
}

export function buildMap(container, select, tooltip) {
  const started = performance.now();
  onSelect = select;
  const { nodes, links } = state.network;
  large = nodes.length > LARGE;
  const width = Math.max(400, container.clientWidth), height = Math.max(300, container.clientHeight);
  const project = projector(nodes, width, height);
  const positions = spread(new Map(nodes.map((n) => [n.id, project(n)])));
  const place = (n) => positions.get(n.id);
  const names = shortNames(nodes);
  const elements = [
    ...nodes.map((n) => ({ group: "nodes", data: { id: n.id, kind: n.kind, name: n.name,
      size: (large ? LARGE_SIZES : SIZES)[n.kind] || 12, colour: COLOURS[n.kind] || "#8b949e",
      shape: SHAPES[n.kind] || "ellipse",
      label: (names.get(n.id) || n.id).replace(/ GLR$/, ""),
      halign: "right", valign: "center", mx: 2, my: 0 }, position: place(n),
      // Large networks start unlabelled: measuring thousands of labels is the slow part.
      classes: large ? `nolabel${n.kind === "junction" || n.kind === "zone" ? " minor" : ""}` : "" })),
    ...links.map((l) => ({ group: "edges", data: { id: l.id, source: l.from, target: l.to, kind: l.kind,
      name: l.name || l.id, width: 2, label: "" } })),
  ];
  if (cy) cy.destroy();
  cy = window.cytoscape({
    container, elements, style: styles(), layout: { name: "preset" },
    minZoom: 0.2, maxZoom: large ? 30 : 6, boxSelectionEnabled: false,
    autoungrabify: true, selectionType: "single",
    hideEdgesOnViewport: large, textureOnViewport: large, pixelRatio: large ? 1 : "auto",
  });
  cy.on("tap", "node", (event) => onSelect(event.target.id()));
  cy.on("mouseover", "node, edge", (event) => {
    event.target.addClass("hover");
    const text = describe(event.target);
    if (tooltip && text) { tooltip.textContent = text; tooltip.hidden = false; moveTip(event); }
  });
  const moveTip = (event) => {
    if (!tooltip || tooltip.hidden) return;
    tooltip.style.left = `${container.offsetLeft + event.renderedPosition.x + 14}px`;
    tooltip.style.top = `${container.offsetTop + event.renderedPosition.y + 14}px`;
  };
  cy.on("mousemove", moveTip);
  cy.on("mouseout", "node, edge", (event) => { event.target.removeClass("hover"); if (tooltip) tooltip.hidden = true; });
  labelKey = "";
  updateFlows();
  placeLabels();
  cy.fit(undefined, 16);        // after the labels, so none sits outside the view
  if (large) watchDetail();
  startDashes();
  window.bhsMap = cy;          // for the browser tests, the bench and the console
  window.bhsMapBuildMs = Math.round(performance.now() - started);
  return cy;
}

function describe(element) {
  if (element.isNode()) {
    const node = state.network.nodesById.get(element.id());
    return node ? `${node.name} (${node.kind.replace("_", " ")})${element.hasClass("isolated") ? " · isolated" : ""}` : element.id();
  }
  return element.data("tip") || element.data("name");
}

function linkState(link) {
  // `opening` (valves) and `running` (pumps) come from /api/network when the
  // server reports them; `status` (isolated / closed) always does.
  if (link.status === "isolated") return { cls: "isolated", label: "" };     // the dotted line says it
  if (link.kind === "pump" && (link.running === false || link.status === "closed")) return { cls: "stopped", label: "■ stopped" };
  if (link.status === "closed" || link.opening === 0) return { cls: "stopped", label: "shut" };
  if (typeof link.opening === "number" && link.opening < 100) return { cls: "restricted", label: `${Math.round(link.opening)} %` };
  return { cls: "", label: "" };
}

export function updateFlows() {
  if (!cy || !state.network) return;
  const flows = new Map((state.routing?.flows || []).map((f) => [f.link_id, f.flow]));
  const links = state.network.links;
  const maxCap = Math.max(1, ...links.map((l) => l.capacity || 0));
  const isolatedNodes = new Set(state.network.nodes.filter((n) => n.status === "isolated").map((n) => n.id));
  let key = "";
  cy.batch(() => {
    for (const link of links) {
      const edge = cy.getElementById(link.id);
      if (edge.empty()) continue;
      const signed = flows.get(link.id) ?? 0;
      const flow = Math.abs(signed);
      const use = link.capacity ? flow / link.capacity : 0;
      const { cls, label } = linkState(link);
      const carrying = flow >= IDLE_MLD && cls !== "isolated" && cls !== "stopped";
      const level = !carrying ? "" : use < 0.5 ? "low" : use < 0.85 ? "mid" : "high";
      edge.classes([level, cls, carrying ? "flowing" : "", carrying && signed < 0 ? "reverse" : ""].filter(Boolean));
      edge.data({ width: Number((1.5 + 9 * Math.sqrt(flow / maxCap)).toFixed(1)), fullLabel: label,
        tip: `${link.name || link.id}: ${mld(flow)} of ${mld(link.capacity)} (${Math.round(use * 100)} %)` +
             `${label ? ` · ${label}` : ""}` });
      key += label ? `${link.id}:${label};` : "";
    }
    cy.nodes().forEach((n) => n.toggleClass("isolated", isolatedNodes.has(n.id())));
  });
  if (key !== labelKey) { labelKey = key; placeLabels(); }
}

let fittedZoom = 1;
let detailShown = null;
function watchDetail() {
  fittedZoom = cy.zoom();
  const apply = () => {
    const show = cy.zoom() >= fittedZoom * DETAIL_ZOOM;
    if (show === detailShown) return;
    detailShown = show;
    cy.style().selector("node.minor").style("display", show ? "element" : "none").update();
  };
  detailShown = null;
  apply();
  cy.on("zoom", apply);
}

function startDashes() {
  clearInterval(dashTimer);
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  const moving = large ? "edge.flowing.focus" : "edge.flowing";
  dashTimer = setInterval(() => {
    if (!cy || document.hidden || (large && cy.edges(".focus").empty())) return;
    dashOffset = (dashOffset + 1) % 14;
    cy.style().selector(moving).style("line-dash-offset", -dashOffset).update();
  }, DASH_STEP_MS);
}

export function markQuality(byNode) {
  // byNode: node id -> "good" | "suspect" | "bad"
  if (!cy) return;
  cy.batch(() => cy.nodes().forEach((n) => {
    const q = byNode.get(n.id());
    n.toggleClass("suspect", q === "suspect");
    n.toggleClass("bad", q === "bad");
  }));
}

export function markAlerting(nodeIds) {
  if (!cy) return;
  cy.batch(() => cy.nodes().forEach((n) => n.toggleClass("alarm", nodeIds.has(n.id()))));
}

export function markSelected(nodeId) {
  if (!cy) return;
  cy.nodes(":selected").unselect();
  cy.edges(".focus").removeClass("focus");
  if (nodeId) cy.getElementById(nodeId).select().connectedEdges().addClass("focus");
}

export function zoomBy(factor) {
  if (!cy) return;
  cy.zoom({ level: cy.zoom() * factor, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
}

export function fit() {
  if (cy) { cy.resize(); cy.fit(undefined, 16); }
}
