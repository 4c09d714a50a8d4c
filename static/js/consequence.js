// What a dangerous control would do, for the confirmation dialog, as the server takes it
// from the plan: POST /api/control/preview re-solves the plan in force with the change and
// answers "Isolating Cauvery WSS Stage IV cuts 770 MLD; zones RR Nagar and Yelahanka /
// Dasarahalli short by 180 MLD." with the zones short and the sources changed. Nothing is
// estimated here; when the server cannot answer, the dialog says so.
import { state } from "./state.js";
import { shortName } from "./format.js";

// Isolating, stopping a pump and switching to auto mode ask first.
export function needsConfirmation(action, value) {
  return action === "isolate" || (action === "set_mode" && value === "auto")
    || (action === "set_pump" && (value === "off" || value === 0));
}

function label(id) {
  const node = state.network?.nodesById.get(id);
  if (node) return shortName(node);
  return state.network?.links.find((l) => l.id === id)?.name || id;
}

function titleOf(action, target) {
  if (action === "isolate") return `Isolate ${label(target)}?`;
  if (action === "set_pump") return `Stop pump ${label(target)}?`;
  return "Switch to auto mode?";
}

function unknown(title, why) {
  return { title, sentence: `The consequence could not be estimated (${why}).`, details: [],
           basis: "The control can still be sent; the next plan re-solves with it." };
}

// -> null (no confirmation needed), {refused} (the server would refuse the control itself:
// bad target or value, token), or {title, sentence, details, basis} for the dialog.
export async function consequenceOf(action, target, value, token) {
  if (!needsConfirmation(action, value)) return null;
  const title = titleOf(action, target);
  let reply, data;
  try {
    reply = await fetch("/api/control/preview", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ action, target, value }),
    });
    data = await reply.json().catch(() => ({}));
  } catch (err) {
    return unknown(title, `the server is unreachable: ${err.message}`);
  }
  if (!reply.ok) {
    const error = data.error || {};
    const details = (error.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
    const message = `${error.message || reply.statusText}${details ? ` (${details})` : ""}`;
    // What /api/control would refuse too is refused now; anything else is only unknown.
    if ([401, 403, 404, 422].includes(reply.status)) return { refused: `Refused (${reply.status}): ${message}` };
    return unknown(title, `${reply.status}: ${message}`);
  }
  const preview = data.preview || {};
  if (!preview.sentence) return unknown(title, "the server gave no consequence");
  return { title, sentence: preview.sentence, details: preview.details || [], basis: preview.basis || "" };
}
