// The control panel. The token (operator, or viewer where VIEWER_TOKENS is
// set) is asked for once and kept in sessionStorage only (gone when the tab
// closes); a refused control shows the server's error message. Isolating,
// stopping a pump and switching to auto mode first ask for a confirmation
// that names the consequence the server takes from the plan (consequence.js).
// Each control's delivery state is listed: the server's answer, then the
// device's command states as `command_update` events report them.
import { state } from "./state.js";
import { el, shortName } from "./format.js";
import { consequenceOf, needsConfirmation } from "./consequence.js";

const TOKEN_KEY = "bhs.operatorToken";
const DELIVERIES_SHOWN = 6;
const $ = (id) => document.getElementById(id);

export function token() { return sessionStorage.getItem(TOKEN_KEY); }

// Reads carry the token too, for servers that set VIEWER_TOKENS.
export function authorised(path) {
  return fetch(path, { headers: token() ? { Authorization: `Bearer ${token()}` } : {} });
}

export function show(message, ok) {
  const result = $("control-result");
  result.textContent = message;
  result.className = `result ${ok ? "ok" : "error"}`;
}

export async function call(path, body) {
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

// -- confirmation ---------------------------------------------------------------------
function confirmWith(consequence) {
  const dialog = $("confirm");
  $("confirm-title").textContent = consequence.title;
  $("confirm-consequence").textContent = consequence.sentence;
  $("confirm-details").replaceChildren(...consequence.details.map((d) => el("li", { text: d })));
  $("confirm-basis").textContent = consequence.basis || "";
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

// -- delivery states ------------------------------------------------------------------
function targetLabel(target) {
  const node = state.network?.nodesById.get(target);
  return node ? shortName(node) : (target || "");
}

export function renderDeliveries() {
  const root = $("deliveries");
  root.replaceChildren(...state.deliveries.slice(0, DELIVERIES_SHOWN).map((d) => el("li", { dataset: { control: d.id } },
    el("span", { text: `${d.action.replace("_", " ")} ${targetLabel(d.target)}${d.value != null && typeof d.value !== "object" ? ` → ${d.value}` : ""}` }),
    el("span", { class: `delivery ${d.state}`, title: d.detail || "", text: d.state.toUpperCase() }))));
  if (!state.deliveries.length) root.replaceChildren(el("li", { class: "muted", text: "None from this page yet." }));
}

function track(control) {
  // The server applied it; a device delivery follows where a device drives the target.
  const local = ["ack_alert", "reset_demo"].includes(control.action);
  const delivery = { id: control.id, action: control.action, target: control.target, value: control.value,
    state: local ? "applied" : "published", detail: local ? "server state" : "sent on the command topic; waiting for a device" };
  state.deliveries.unshift(delivery);
  state.deliveries.length = Math.min(state.deliveries.length, 50);
  // A registered device's command is named in the answer itself ({id, device_id, state}). Its
  // `command_update` is pushed on /live while the request is handled, so it can reach the page
  // before this answer does (and find nothing to update): the answer's state is the one to show.
  if (control.command?.id) applyCommandUpdate({ control_id: control.id, ...control.command });
  else renderDeliveries();
}

// A command record from the devices' command service (issue "devices").
export function applyCommandUpdate(command) {
  const controlId = command.control_id ?? command.control?.id;
  const match = state.deliveries.find((d) => (controlId && d.id === controlId) || d.command_id === command.id)
    || state.deliveries.find((d) => !d.command_id && d.target && d.target === (command.target ?? command.params?.target));
  if (!match) return;
  match.command_id = command.id;
  match.state = command.state || command.status || match.state;
  match.detail = `${command.device_id ? `device ${command.device_id}: ` : ""}${match.state}` +
    `${command.updated_at ? ` at ${new Date(command.updated_at).toLocaleTimeString()}` : ""}`;
  renderDeliveries();
}

export async function control(action, target, value, label) {
  if (!token()) { show("Enter the operator token first.", false); $("token").focus(); return null; }
  const asks = needsConfirmation(action, value);
  if (asks) show(`${label || action}: working out its consequence from the plan…`, true);
  const consequence = await consequenceOf(action, target, value, token());
  if (asks) show("", true);
  if (consequence?.refused) { show(consequence.refused, false); return null; }
  if (consequence && !(await confirmWith(consequence))) { show(`${label || action}: cancelled.`, false); return null; }
  const data = await call("/api/control", { action, target, value, reason: "from the dashboard" });
  if (data) { show(`${label || action} applied.`, true); track(data.control); }
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
    .map((n) => [n.id, shortName(n)]);
}

function linkLabel(link) {
  const name = (id) => { const n = state.network.nodesById.get(id); return n ? shortName(n).replace(/ GLR$/, "") : id; };
  return link.name || `${name(link.from)} → ${name(link.to)}`;
}

export function populateControls() {
  const net = state.network;
  if (!net) return;
  fill($("valve-target"), net.links.filter((l) => l.kind === "valve").map((l) => [l.id, `${linkLabel(l)}${typeof l.opening === "number" ? ` (${Math.round(l.opening)} %)` : ""}`]));
  fill($("pump-target"), net.links.filter((l) => l.kind === "pump").map((l) => [l.id, `${linkLabel(l)}${l.running === false || l.status === "closed" ? " (stopped)" : ""}`]));
  fill($("isolate-target"), [...net.nodes.filter((n) => n.kind !== "junction" || net.nodes.length < 200)
    .map((n) => [n.id, `${shortName(n)} (${n.kind.replace("_", " ")})${n.status === "isolated" ? " · isolated" : ""}`]),
                             ...net.links.filter(() => net.links.length < 200).map((l) => [l.id, `${linkLabel(l)} (${l.kind})`])]);
  fill($("sim-target"), simTargets());
}

export function showMode(mode) {
  if (mode) state.mode = mode;
  $("mode").textContent = state.mode || "–";
}

export async function refreshSimulator() {
  try {
    const reply = await authorised("/api/simulation");
    if (!reply.ok) return;
    const sim = await reply.json();
    $("sim-state").textContent = sim.running ? `(running, ${sim.events.length} event(s))` : "(stopped)";
  } catch { /* offline: leave as is */ }
}

export function wireControls(onToken, onReset) {
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
  $("reset-demo").addEventListener("click", async () => {
    const sure = await confirmWith({ title: "Reset the demo?", sentence: "Forgets ad-hoc sensors (not in the network model), every alarm and every decision.",
      details: ["The network model, controls and history stay.", "The reset is audited under your token's name."], basis: "" });
    if (!sure) return;
    const data = await call("/api/control", { action: "reset_demo", reason: "from the dashboard" });
    if (data) {
      const v = data.control.value || {};
      show(`Demo reset: ${Object.entries(v).map(([k, n]) => `${n} ${k}`).join(", ")} cleared.`, true);
      track(data.control);
      onReset();
    }
  });
  renderDeliveries();
}
