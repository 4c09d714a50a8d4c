// Small helpers: numbers with units, ages, DOM building without innerHTML.

export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  const d = abs >= 100 ? 0 : abs >= 10 ? Math.min(digits, 1) : digits + 1;
  return Number(value).toFixed(d);
}

export function age(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return "now";
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86400).toFixed(1)} d ago`;
}

export function tsOf(isoOrSeconds) {
  if (typeof isoOrSeconds === "number") return isoOrSeconds;
  const t = Date.parse(isoOrSeconds);
  return Number.isNaN(t) ? null : t / 1000;
}

// el("li", {class: "x", text: "hi", onclick: fn}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// The server's clock, from each snapshot: under SIMULATOR_SPEED > 1 it runs
// `rate` times faster than the browser's, so ages and shelf ends use it.
let serverClock = null;

export function setServerClock(clock) {
  const at = clock && Date.parse(clock.now);
  serverClock = Number.isFinite(at) ? { at: at / 1000, seen: Date.now() / 1000, rate: clock.rate || 1 } : null;
}

// Now on the server's clock (epoch seconds); the browser's until a snapshot says otherwise.
export function serverNow() {
  const now = Date.now() / 1000;
  return serverClock ? serverClock.at + (now - serverClock.seen) * serverClock.rate : now;
}

// An element whose text says how old a timestamp is, refreshed by tickAges().
export function ageSpan(ts, staleAfter) {
  return el("span", { class: "age", dataset: { ts: String(ts ?? ""), staleAfter: String(staleAfter ?? "") } });
}

export function tickAges(root = document) {
  const now = serverNow();
  for (const span of root.querySelectorAll(".age[data-ts]")) {
    const ts = Number(span.dataset.ts);
    if (!ts) { span.textContent = ""; continue; }
    const seconds = now - ts;
    const staleAfter = Number(span.dataset.staleAfter);
    const stale = staleAfter > 0 && seconds > staleAfter;
    span.textContent = age(seconds) + (stale ? " · stale" : "");
    span.closest("tr, li, .bar")?.classList.toggle("stale", stale);
  }
}

// Precision per metric: what an operator can act on (pressure 0.1 m, flow 1 MLD, pH 0.1).
const DECIMALS = { flow: 0, pressure: 1, level: 0, ph: 1, turbidity: 1, do: 1, bod: 1, fc: 0,
  chlorine: 2, conductivity: 0, tds: 0, temperature: 1, power: 0, status: 0 };
const UNITS = { flow: "MLD", pressure: "m", level: "%", ph: "", turbidity: "NTU", do: "mg/L", bod: "mg/L",
  fc: "MPN/100 ml", chlorine: "mg/L", conductivity: "µS/cm", tds: "mg/L", temperature: "°C", power: "kW" };

export function decimalsOf(metric) {
  return DECIMALS[metric] ?? 2;
}

// "12.3 m", "775 MLD", "pH 7.2": a value with its unit at the metric's precision.
export function measure(value, metric, unit) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  const text = Number(value).toFixed(decimalsOf(metric));
  if (metric === "ph") return `pH ${text}`;
  const u = unit ?? UNITS[metric] ?? "";
  return u ? `${text} ${u}` : text;
}

export function mld(value) {
  return measure(value, "flow", "MLD");
}

// Short, distinct names for the map and the bars: "CWSS I-III", "T.K. Halli WTP", "Yelahanka".
const SHORTENINGS = [
  [/\s*\(.*?\)\s*/g, " "],
  [/^Cauvery WSS Stages? /i, "CWSS "],
  [/ water treatment plants?$/i, " WTP"],
  [/ pumping station$/i, " PS"],
  [/ reservoir$/i, ""],
  [/ trunk main junction$/i, " trunk"],
  [/\s*\/.*$/, ""],
];

export function shortName(node) {
  if (!node) return "";
  if (node.short_name) return node.short_name;
  let name = node.name || node.id;
  if (node.id && name !== node.id && name.includes(node.id)) return node.id;   // "Junction J-12" -> "J-12"
  for (const [pattern, replacement] of SHORTENINGS) name = name.replace(pattern, replacement);
  return name.trim() || node.id;
}

// Short names for a whole network, made unique (a clash falls back to the id's tail).
export function shortNames(nodes) {
  const names = new Map(nodes.map((n) => [n.id, shortName(n)]));
  const seen = new Map();
  for (const [id, name] of names) seen.set(name, (seen.get(name) || 0) + 1);
  for (const [id, name] of names) if (seen.get(name) > 1) names.set(id, `${name} (${id.replace(/^[A-Z]+_/, "")})`);
  return names;
}
