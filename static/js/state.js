// The dashboard's state: one place for what the server told us, and a cache
// in localStorage so a reload while the server is unreachable shows the last
// picture, marked stale, instead of an empty page.

const CACHE_KEY = "bhs.snapshot.v1";
const HISTORY_POINTS = 120;

export const state = {
  network: null,
  sensors: new Map(),        // sensor id -> latest record
  trends: new Map(),         // sensor id -> [[t seconds], [values]]
  routing: null,
  decisions: [],
  alerts: new Map(),         // alert id -> alarm not yet cleared-and-acknowledged (ISA-18.2)
  health: null,
  wqi: [],
  forecast: null,
  mode: null,
  simulator: null,
  live: false,               // the socket is connected
  lastDataAt: null,          // ms: when the last live reading frame arrived (for the LIVE badge)
  deliveries: [],            // recent controls from this page, newest first, with their delivery state
  fromCache: false,
  savedAt: null,
};

export function sensorSpec(id) {
  return state.network?.sensorsById?.get(id);
}

export function setNetwork(network) {
  network.nodesById = new Map(network.nodes.map((n) => [n.id, n]));
  network.sensorsById = new Map((network.sensors || []).map((s) => [s.id, s]));
  network.sensorsByNode = new Map();
  for (const s of network.sensors || []) {
    if (!network.sensorsByNode.has(s.node)) network.sensorsByNode.set(s.node, []);
    network.sensorsByNode.get(s.node).push(s);
  }
  state.network = network;
}

export function applyReadings(readings) {
  for (const r of readings) {
    state.sensors.set(r.sensor_id, r);
    let trend = state.trends.get(r.sensor_id);
    if (!trend) { trend = [[], []]; state.trends.set(r.sensor_id, trend); }
    const t = Date.parse(r.timestamp) / 1000;
    if (trend[0].length && t <= trend[0][trend[0].length - 1]) continue;
    trend[0].push(t); trend[1].push(r.value);
    if (trend[0].length > HISTORY_POINTS) { trend[0].shift(); trend[1].shift(); }
  }
}

export function applySnapshot(snapshot) {
  state.sensors.clear();
  applyReadings(snapshot.sensors || []);
  state.routing = snapshot.routing;
  state.decisions = snapshot.decisions || [];
  state.alerts = new Map((snapshot.alerts || []).map((a) => [a.id, a]));
  state.health = snapshot.health;
  state.wqi = snapshot.wqi || [];
  state.forecast = snapshot.forecast;
  if (snapshot.routing?.mode) state.mode = snapshot.routing.mode;
}

// The ISA-18.2 state of an alarm; servers without `alarm_state` get it from the legacy `state`.
export function alarmStateOf(alert) {
  if (alert.alarm_state) return alert.alarm_state;
  return { active: "active_unacknowledged", acknowledged: "active_acknowledged" }[alert.state] || "cleared_acknowledged";
}

export function applyAlert(alert) {
  if (alarmStateOf(alert) === "cleared_acknowledged") state.alerts.delete(alert.id);
  else state.alerts.set(alert.id, alert);
}

export function applyDecision(decision) {
  const at = state.decisions.findIndex((d) => d.id === decision.id);
  if (at >= 0) state.decisions[at] = { ...state.decisions[at], ...decision };
  else { state.decisions.unshift(decision); state.decisions.length = Math.min(state.decisions.length, 200); }
}

export function saveCache() {
  try {
    const payload = {
      savedAt: Date.now(),
      network: state.network && { nodes: state.network.nodes, links: state.network.links, sensors: state.network.sensors },
      snapshot: {
        sensors: [...state.sensors.values()], routing: state.routing, decisions: state.decisions.slice(0, 50),
        alerts: [...state.alerts.values()], health: state.health, wqi: state.wqi, forecast: state.forecast,
      },
    };
    localStorage.setItem(CACHE_KEY, JSON.stringify(payload));
  } catch (err) {
    console.warn("could not save the snapshot for offline use", err);
  }
}

export function loadCache() {
  try {
    const payload = JSON.parse(localStorage.getItem(CACHE_KEY) || "null");
    if (!payload?.network) return false;
    setNetwork(payload.network);
    applySnapshot(payload.snapshot);
    state.fromCache = true;
    state.savedAt = payload.savedAt;
    return true;
  } catch {
    return false;
  }
}
