// What a dangerous control would do, read from the current plan, for the
// confirmation dialog: "Isolating CWSS IV cuts 770 MLD; zones West and RR Nagar
// short by about 120 MLD". It is an estimate from the plan in force (the next
// plan re-solves with the change), and the dialog says so.
import { state } from "./state.js";
import { mld, shortName } from "./format.js";

function nodeOf(id) {
  return state.network?.nodesById.get(id);
}

function label(id) {
  const node = nodeOf(id);
  if (node) return shortName(node);
  const link = state.network?.links.find((l) => l.id === id);
  return link?.name || id;
}

function flowOf(linkId) {
  return Math.abs((state.routing?.flows || []).find((f) => f.link_id === linkId)?.flow ?? 0);
}

// Zones no source can reach once `without` (node or link ids) is taken out.
function unreachableZones(without) {
  const net = state.network;
  const gone = new Set(without);
  const adjacent = new Map();
  for (const link of net.links) {
    if (gone.has(link.id) || link.status === "isolated" || link.status === "closed") continue;
    if (gone.has(link.from) || gone.has(link.to)) continue;
    if (!adjacent.has(link.from)) adjacent.set(link.from, []);
    adjacent.get(link.from).push(link.to);
  }
  const seen = new Set();
  const queue = net.nodes.filter((n) => n.kind === "source" && !gone.has(n.id) && n.status !== "isolated").map((n) => n.id);
  queue.forEach((id) => seen.add(id));
  while (queue.length) {
    for (const next of adjacent.get(queue.shift()) || []) if (!seen.has(next)) { seen.add(next); queue.push(next); }
  }
  return net.nodes.filter((n) => n.kind === "zone" && !seen.has(n.id) && !gone.has(n.id));
}

// Spread a supply cut over the zones, lowest priority first (as the plan would).
function shortZones(cut, exclude = new Set()) {
  const zones = (state.routing?.zones || []).filter((z) => !exclude.has(z.node_id))
    .map((z) => ({ ...z, priority: nodeOf(z.node_id)?.priority ?? 0 }))
    .sort((a, b) => a.priority - b.priority);
  const out = [];
  let left = cut;
  for (const z of zones) {
    if (left <= 0.5) break;
    const take = Math.min(left, z.supplied || 0);
    if (take > 0.5) { out.push([z.node_id, take]); left -= take; }
  }
  return out;
}

function zoneList(pairs) {
  return pairs.map(([id, amount]) => `${label(id)} short by about ${mld(amount)}`);
}

function zonesSentence(pairs) {
  if (!pairs.length) return "";
  const names = pairs.map(([id]) => label(id));
  const total = pairs.reduce((s, [, a]) => s + a, 0);
  const who = names.length === 1 ? `zone ${names[0]}` : `zones ${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  return `; ${who} short by about ${mld(total)}`;
}

function cutOfSource(nodeId) {
  const planned = (state.routing?.sources || []).find((s) => s.node_id === nodeId);
  const output = planned?.output ?? 0;
  const spare = (state.routing?.sources || []).filter((s) => s.node_id !== nodeId && !s.excluded)
    .reduce((sum, s) => sum + Math.max(0, (s.capacity ?? 0) - (s.output ?? 0)), 0);
  return { output, spare, deficit: Math.max(0, output - spare) };
}

function cutOfElement(id, isLink) {
  // Water through the element now, and the zones that lose every path from a source.
  const through = isLink ? flowOf(id)
    : (state.network.links.filter((l) => l.to === id).reduce((s, l) => s + flowOf(l.id), 0));
  const cutOff = unreachableZones([id]);
  const demand = new Map((state.routing?.zones || []).map((z) => [z.node_id, z.supplied ?? z.demand ?? 0]));
  return { through, cutOff: cutOff.map((z) => [z.id, demand.get(z.id) ?? z.demand ?? 0]) };
}

// -> {title, sentence, details: [...], basis} or null when the control needs no confirmation.
export function consequenceOf(action, target, value) {
  if (!state.network) return null;
  const basis = state.routing ? `Estimated from the plan of ${state.routing.generated_at ? new Date(state.routing.generated_at).toLocaleTimeString() : "now"}; the next plan re-solves with the change.`
    : "No plan yet: the effect cannot be estimated.";
  if (action === "isolate") {
    const node = nodeOf(target);
    if (node?.kind === "source") {
      const { output, spare, deficit } = cutOfSource(target);
      const short = shortZones(deficit);
      return { title: `Isolate ${label(target)}?`,
        sentence: `Isolating ${label(target)} cuts ${mld(output)}` + (short.length ? `${zonesSentence(short)}.`
          : output > 0.5 ? `; the other sources can make it up (${mld(spare)} spare), so no zone need go short.` : "."),
        details: [`Spare capacity at the other sources: ${mld(spare)}.`, ...zoneList(short)], basis };
    }
    if (node?.kind === "zone") {
      const z = (state.routing?.zones || []).find((x) => x.node_id === target);
      return { title: `Isolate ${label(target)}?`,
        sentence: `Isolating ${label(target)} cuts its whole supply: ${mld(z?.supplied ?? node.demand)} of ${mld(z?.demand ?? node.demand)} demand.`,
        details: [], basis };
    }
    const { through, cutOff } = cutOfElement(target, !node);
    return { title: `Isolate ${label(target)}?`,
      sentence: `Isolating ${label(target)} stops ${mld(through)} through it` +
        (cutOff.length ? `${zonesSentence(cutOff).replace("short by about", "lose about")} (no other path).`
          : "; the plan re-routes it through other links where capacity allows."),
      details: cutOff.map(([id, a]) => `${label(id)} loses its supply (about ${mld(a)})`), basis };
  }
  if (action === "set_pump" && (value === "off" || value === 0)) {
    const { through, cutOff } = cutOfElement(target, true);
    return { title: `Stop pump ${label(target)}?`,
      sentence: `Stopping ${label(target)} cuts ${mld(through)} of pumped flow` +
        (cutOff.length ? `${zonesSentence(cutOff).replace("short by about", "lose about")}.`
          : "; the plan moves it to other pumps where capacity allows."),
      details: cutOff.map(([id, a]) => `${label(id)} loses its supply (about ${mld(a)})`), basis };
  }
  if (action === "set_mode" && value === "auto") {
    const pending = state.decisions.filter((d) => d.state === "recommended");
    return { title: "Switch to auto mode?",
      sentence: "In auto mode the engine sends its decisions to the valves and pumps as commands, without an operator's Apply." +
        (pending.length ? ` ${pending.length} recommended decision(s) now pending will be acted on by the next plan.` : ""),
      details: pending.slice(0, 5).map((d) => d.action || d.id),
      basis: state.routing ? `The plan in force is ${state.routing.status}.` : basis };
  }
  return null;
}
