// The control panel. The token (operator, or viewer where VIEWER_TOKENS is
// set) is asked for once and kept in sessionStorage only (gone when the tab
// closes); a refused control shows the server's error message.
import { state } from "./state.js";
import { el } from "./format.js";

const TOKEN_KEY = "bhs.operatorToken";
const $ = (id) => document.getElementById(id);

export function token() { return sessionStorage.getItem(TOKEN_KEY); }

// Reads carry the token too, for servers that set VIEWER_TOKENS.
export function authorised(path) {
  return fetch(path, { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
}

function show(message, ok) {
  const result = $("control-result");
  result.textContent = message;
  result.className = `result ${ok ? "ok" : "error"}`;
}

async function call(path, body) {
  if (!token()) { show("Enter the operator token first.", false); $("token").focus(); return null; }
  try {
    const reply = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token()}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      const error = data.error || {};
      const details = (error.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
      show(`Refused (${reply.status}): ${error.message || reply.statusText}${details ? ` (${details})` : ""}`, false);
      return null;
    }
    return data;
  } catch (err) {
    show(`Not sent: the server is unreachable (${err.message}).`, false);
    return null;
  }
}

export async function control(action, target, value, label) {
  const data = await call("/api/control", { action, target, value, reason: "from the dashboard" });
  if (data) show(`${label || action} applied.`, true);
  return data;
}

function fill(select, items) {
  const current = select.value;
  select.replaceChildren(...items.map(([value, label]) => el("option", { value, text: label })));
  if (items.some(([v]) => v === current)) select.value = current;
}

function simTargets() {
  const kind = $("sim-event").value;
  const net = state.network;
  if (!net) return [];
  if (kind === "pump_failure") return net.links.filter((l) => l.kind === "pump").map((l) => [l.id, linkLabel(l)]);
  const nodeKind = kind === "leak" || kind === "demand_surge" ? "zone" : "source";
  return net.nodes.filter((n) => n.kind === nodeKind && !(kind === "source_outage" && n.id.includes("GROUNDWATER")))
    .map((n) => [n.id, n.name]);
}

function linkLabel(link) {
  const name = (id) => state.network.nodesById.get(id)?.name.replace(/ GLR$/, "") ?? id;
  return link.name || `${name(link.from)} → ${name(link.to)}`;
}

export function populateControls() {
  const net = state.network;
  if (!net) return;
  fill($("valve-target"), net.links.filter((l) => l.kind === "valve").map((l) => [l.id, linkLabel(l)]));
  fill($("pump-target"), net.links.filter((l) => l.kind === "pump").map((l) => [l.id, linkLabel(l)]));
  fill($("isolate-target"), [...net.nodes.map((n) => [n.id, `${n.name} (${n.kind.replace("_", " ")})`]),
                             ...net.links.map((l) => [l.id, `${linkLabel(l)} (${l.kind})`])]);
  fill($("sim-target"), simTargets());
}

export function showMode(mode) {
  $("mode").textContent = mode || "–";
}

export async function refreshSimulator() {
  try {
    const reply = await authorised("/api/simulation");
    if (!reply.ok) return;
    const sim = await reply.json();
    $("sim-state").textContent = sim.running ? `(running, ${sim.events.length} event(s))` : "(stopped)";
  } catch { /* offline: leave as is */ }
}

export function wireControls(onToken) {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (value) {
      sessionStorage.setItem(TOKEN_KEY, value); $("token").value = ""; show("Token kept for this tab.", true);
      onToken();
    }
  });
  $("token-forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); show("Token forgotten.", true); });
  for (const button of document.querySelectorAll("[data-control=set_mode]")) {
    button.addEventListener("click", async () => {
      const data = await control("set_mode", null, button.dataset.value, `Mode ${button.dataset.value}`);
      if (data) showMode(data.control.value);
    });
  }
  $("valve-set").addEventListener("click", () =>
    control("set_valve", $("valve-target").value, Number($("valve-value").value), "Valve setting"));
  $("pump-on").addEventListener("click", () => control("set_pump", $("pump-target").value, "on", "Pump start"));
  $("pump-off").addEventListener("click", () => control("set_pump", $("pump-target").value, "off", "Pump stop"));
  $("isolate").addEventListener("click", () => control("isolate", $("isolate-target").value, null, "Isolation"));
  $("restore").addEventListener("click", () => control("restore", $("isolate-target").value, null, "Restore"));
  $("sim-event").addEventListener("change", () => fill($("sim-target"), simTargets()));
  $("sim-start").addEventListener("click", async () => { if (await call("/api/simulation/start")) { show("Simulator started.", true); refreshSimulator(); } });
  $("sim-stop").addEventListener("click", async () => { if (await call("/api/simulation/stop")) { show("Simulator stopped.", true); refreshSimulator(); } });
  $("sim-trigger").addEventListener("click", async () => {
    const body = { event: $("sim-event").value, target: $("sim-target").value,
                   magnitude: Number($("sim-magnitude").value), duration_s: Number($("sim-duration").value) };
    const data = await call("/api/simulation/trigger", body);
    if (data) { show(`Triggered ${body.event} at ${body.target}.`, true); refreshSimulator(); }
  });
}
