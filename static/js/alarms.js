// The alarm panel, by ISA-18.2: four states (acknowledgement and clearing are
// independent), four severities, shelving for a chosen time, a summary with
// counts per state, "acknowledge all visible", and an optional cue (visual
// always, sound if the operator turns it on) for a new critical alarm.
import { alarmStateOf, state } from "./state.js";
import { ageSpan, el, serverNow, tsOf } from "./format.js";
import { nodeShort } from "./panels.js";

const SEVERITY = { critical: ["▲", "CRITICAL", 4], major: ["◆", "MAJOR", 3], minor: ["●", "MINOR", 2], warning: ["○", "WARNING", 1] };
const STATE_TEXT = {
  active_unacknowledged: "ACTIVE · UNACK", active_acknowledged: "ACTIVE · ACK",
  cleared_unacknowledged: "CLEARED · UNACK", cleared_acknowledged: "CLEARED · ACK",
};
const SUMMARY = [
  ["active_unacknowledged", "active unack"], ["active_acknowledged", "active ack"],
  ["cleared_unacknowledged", "cleared unack"],
];
const SHELVE_FOR = [["900", "15 min"], ["3600", "1 h"], ["28800", "8 h"]];
const SOUND_KEY = "bhs.alarmSound";
const $ = (id) => document.getElementById(id);

export function isShelved(alert) {
  if (!alert.shelved) return false;
  return !alert.shelved_until || Date.parse(alert.shelved_until) > serverNow() * 1000;
}

export function visibleAlarms() {
  const showShelved = $("show-shelved")?.checked;
  return [...state.alerts.values()]
    .filter((a) => showShelved || !isShelved(a))
    .sort((a, b) => (b.acknowledged === false) - (a.acknowledged === false)
      || (SEVERITY[b.severity]?.[2] ?? 0) - (SEVERITY[a.severity]?.[2] ?? 0)
      || (b.raised_at > a.raised_at ? 1 : -1));
}

export function renderSummary(root) {
  const counts = Object.fromEntries(SUMMARY.map(([k]) => [k, 0]));
  let shelved = 0;
  for (const a of state.alerts.values()) {
    if (isShelved(a)) { shelved += 1; continue; }
    const s = alarmStateOf(a);
    if (s in counts) counts[s] += 1;
  }
  root.replaceChildren(...SUMMARY.map(([key, label]) => el("span", {
    class: `count ${key}${counts[key] && key.endsWith("unacknowledged") ? " hot" : ""}`, dataset: { state: key },
    text: `${counts[key]} ${label}` })),
  el("span", { class: "count shelved", dataset: { state: "shelved" }, text: `${shelved} shelved` }));
  $("shelved-count").textContent = shelved ? `(${shelved})` : "";
  return { ...counts, shelved };
}

export function renderAlarms(root, countEl, { ack, shelve, unshelve }) {
  const alarms = visibleAlarms();
  const unacked = alarms.filter((a) => !a.acknowledged).length;
  countEl.textContent = alarms.length ? `${alarms.length} shown, ${unacked} unacknowledged` : "none";
  root.replaceChildren(...alarms.map((a) => {
    const alarmState = alarmStateOf(a);
    const [icon, word] = SEVERITY[a.severity] || ["●", (a.severity || "").toUpperCase()];
    const shelved = isShelved(a);
    const duration = el("select", { class: "small shelve-for", "aria-label": "Shelve for" },
      ...SHELVE_FOR.map(([v, t]) => el("option", { value: v, text: t })));
    const buttons = [];
    if (!a.acknowledged) buttons.push(el("button", { type: "button", class: "small ack", text: "Acknowledge", onclick: () => ack(a) }));
    if (shelved) buttons.push(el("button", { type: "button", class: "small unshelve", text: "Unshelve", onclick: () => unshelve(a) }));
    else buttons.push(duration, el("button", { type: "button", class: "small shelve", text: "Shelve",
      onclick: () => shelve(a, Number(duration.value)) }));
    return el("li", { class: `${alarmState.startsWith("cleared") ? "cleared" : "active"}${shelved ? " shelved" : ""}`,
                      dataset: { alert: a.id, state: alarmState, severity: a.severity } },
      el("span", { class: `sev ${a.severity}`, text: `${icon} ${word}` }),
      el("span", { class: `alarm-state ${alarmState}`, text: STATE_TEXT[alarmState] || alarmState }),
      el("span", { class: "reason", text: a.message }),
      el("div", { class: "meta" }, `${a.node_id ? nodeShort(a.node_id) + " · " : ""}raised `, ageSpan(tsOf(a.raised_at)),
        a.acknowledged_by ? ` · acknowledged by ${a.acknowledged_by}` : "",
        shelved ? ` · shelved by ${a.shelved_by || "?"} until ${new Date(a.shelved_until).toLocaleTimeString()}` : ""),
      el("div", { class: "actions" }, ...buttons));
  }));
  if (!alarms.length) root.replaceChildren(el("li", { class: "muted", text: "No alarms to show." }));
}

// The cue: a new (or newly escalated / returned) critical alarm that is not shelved.
let audio = null;
export function cueIfNewCritical(alert) {
  const fresh = ["raised", "reactivated", "escalated"].includes(alert.last_action) || (!alert.last_action && alert.state === "active");
  if (alert.severity !== "critical" || !fresh || isShelved(alert)) return false;
  const panel = $("alarms-panel");
  panel.classList.remove("cue");
  void panel.offsetWidth;        // restart the animation
  panel.classList.add("cue");
  if ($("cue-sound").checked) beep();
  return true;
}

function beep() {
  try {
    audio ||= new AudioContext();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.35);
  } catch { /* no audio device: the visual cue stays */ }
}

export function wireAlarmOptions(redraw) {
  const sound = $("cue-sound");
  sound.checked = localStorage.getItem(SOUND_KEY) === "on";
  sound.addEventListener("change", () => localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off"));
  $("show-shelved").addEventListener("change", redraw);
}
