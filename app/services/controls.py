"""Operator controls: valves, pumps, isolation, operating mode, alert acks.

Every control is validated against the network, applied to the control
state the routing optimiser reads and kept in the audit trail; then it is
published as `ControlApplied`, whose handlers (app/handlers.py) write it to
history, broadcast `control_update` and send it to the device. A failing
handler cannot turn an applied control into an error for the operator.
The decision engine in auto mode issues its commands through `issue()`.
"""
from __future__ import annotations

import itertools
import threading
from typing import Callable

from app.domain.clock import Clock, iso
from app.domain.events import ControlAdopted, ControlApplied, Event
from app.errors import InvalidInput, NotFound
from app.models import CONTROL_VALUES, ControlRequest
from app.services.alerts import AlertBook
from app.services.network import Network
from app.services.ids import id_prefix

MODES = ("auto", "manual")
# Actions on the server's own state: nothing to publish to a device.
LOCAL_ACTIONS = ("ack_alert", "reset_demo")
# Controls kept in memory for /api/controls.
AUDIT_KEPT = 500


def pump_speed(value) -> float:
    """A set_pump value as recorded ('on', 'off' or a percent) as a speed, percent."""
    return {"on": 100.0, "off": 0.0}[value] if isinstance(value, str) else float(value)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput("invalid control", [{"field": field, "message": message}])


class ControlService:
    def __init__(self, network: Network, alerts: AlertBook, publish: Callable[[Event], None],
                 clock: Clock, mode: str = "manual"):
        self.network = network
        self.alerts = alerts
        self.publish = publish
        self.clock = clock
        self.mode = mode
        self.valve_open: dict[str, float] = {}     # link -> 0..100 %
        self.pump_speed: dict[str, float] = {}     # link -> 0..100 % (off = 0)
        self.isolated: set[str] = set()
        # reset_demo(operator) -> what was cleared; set by the composition root.
        self.reset_demo: Callable[[str], dict] | None = None
        self._ids = itertools.count(1)
        self._prefix = id_prefix(clock)
        self._lock = threading.Lock()
        self.audit: list[dict] = []

    # -- what the optimiser reads ----------------------------------------------
    def link_factors(self) -> dict[str, float]:
        factors = {link: pct / 100 for link, pct in self.valve_open.items()}
        factors.update({link: pct / 100 for link, pct in self.pump_speed.items()})
        return factors

    def link_settings(self) -> dict[str, dict]:
        """What operators have set on each controlled link, for /api/network:
        valves' `opening` and pumps' `running` (and `speed`), percent."""
        settings = {}
        for link in self.network.links.values():
            if link.kind == "valve":
                settings[link.id] = {"opening": self.valve_open.get(link.id, 100.0)}
            elif link.kind == "pump":
                speed = self.pump_speed.get(link.id, 100.0)
                settings[link.id] = {"running": speed > 0, "speed": speed}
        return settings

    def link_status(self) -> dict[str, str]:
        status = {}
        for link in self.network.links.values():
            if link.id in self.isolated or link.from_ in self.isolated or link.to in self.isolated:
                status[link.id] = "isolated"
            elif self.pump_speed.get(link.id) == 0 or self.valve_open.get(link.id) == 0:
                status[link.id] = "closed"
        return status

    # -- applying a control -------------------------------------------------------
    def apply(self, request: ControlRequest, operator: str, source_ip: str | None = None) -> dict:
        """An operator's control: changes the state the next plan is built on."""
        value = self._validate_and_apply(request, operator)
        return self._send(request, value, operator, "operator", source_ip)

    def issue(self, action: str, target: str, value, reason: str, operator: str = "engine",
              origin: str = "engine") -> dict:
        """A decision's command (auto mode, or an operator applying a recommendation):
        sent to the device and audited, but not a constraint on the next plan (it *is*
        the plan). `origin` is "engine" in auto mode, "decision" when applied by hand."""
        request = ControlRequest(action=action, target=target, value=value, reason=reason)
        return self._send(request, value, operator, origin, None)

    def _send(self, request: ControlRequest, value, operator: str, origin: str,
              source_ip: str | None) -> dict:
        control = {
            "id": f"c{self._prefix}-{next(self._ids)}", "action": request.action,
            "target": request.target, "value": value, "reason": request.reason,
            "operator": operator, "origin": origin, "timestamp": iso(self.clock()),
            "source_ip": source_ip, "result": "applied",
        }
        with self._lock:
            self.audit.append(control)
            del self.audit[:-AUDIT_KEPT]
        public = {k: v for k, v in control.items() if k != "source_ip"}
        self.publish(ControlApplied(public, source_ip))
        return public

    def adopt(self, control: dict) -> None:
        """A control applied on another instance of a cluster: the same state here.

        That instance validated it, sent the command, audited and broadcast
        it; here it only changes what the next plan is built on. Alarm acks
        travel as alarm transitions of their own.
        """
        action, target, value = control["action"], control.get("target"), control.get("value")
        if control.get("origin") == "operator":
            if action == "set_mode":
                self.mode = value
            elif action == "isolate":
                self.isolated.add(target)
            elif action == "restore":
                self.isolated.discard(target)
            elif action == "set_valve":
                self.valve_open[target] = float(value)
            elif action == "set_pump":
                self.pump_speed[target] = pump_speed(value)
        with self._lock:
            self.audit.append(dict(control))
            del self.audit[:-AUDIT_KEPT]
        self.publish(ControlAdopted(dict(control)))

    def recent(self, limit: int) -> list[dict]:
        with self._lock:
            return list(reversed(self.audit))[:limit]

    def validate(self, request: ControlRequest):
        """The control's value as apply() would record it, or the error apply() would raise;
        changes nothing (the what-if preview checks a control this way)."""
        action, target, value = request.action, request.target, request.value
        net = self.network
        if action == "set_mode":
            mode = str(value or target or "").lower()
            if mode not in MODES:
                raise _bad("value", f"set_mode takes 'auto' or 'manual', not {value!r}")
            return mode
        if action == "reset_demo":
            if self.reset_demo is None:
                raise _bad("action", "reset_demo is not available on this server")
            return None
        if not target:
            raise _bad("target", f"{action} needs a target ({CONTROL_VALUES[action]})")
        if action == "ack_alert":
            return self.alerts.get(target).id
        if action in ("isolate", "restore"):
            if target not in net.nodes and target not in net.links:
                raise NotFound(f"no node or link '{target}'")
            return action == "isolate"
        link = net.links.get(target)
        if link is None:
            raise NotFound(f"no link '{target}'")
        if action == "set_valve":
            if link.kind != "valve":
                raise _bad("target", f"'{target}' is a {link.kind}, not a valve")
            return self._percent(value, "set_valve takes the opening, a number 0-100 (%), e.g. 40")
        # set_pump
        if link.kind != "pump":
            raise _bad("target", f"'{target}' is a {link.kind}, not a pump")
        if isinstance(value, str) and value.lower() in ("on", "off"):
            speed = 100.0 if value.lower() == "on" else 0.0
        else:
            speed = self._percent(value, "set_pump takes 'on', 'off' or a speed 0-100 (%), "
                                         f"e.g. 'off' or 80; not {value!r}")
        return "off" if speed == 0 else ("on" if speed == 100 else speed)

    def _validate_and_apply(self, request: ControlRequest, operator: str):
        value = self.validate(request)
        action, target = request.action, request.target
        if action == "set_mode":
            self.mode = value
        elif action == "reset_demo":
            return self.reset_demo(operator)
        elif action == "ack_alert":
            return self.alerts.acknowledge(target, operator).id
        elif action in ("isolate", "restore"):
            (self.isolated.add if action == "isolate" else self.isolated.discard)(target)
        elif action == "set_valve":
            self.valve_open[target] = value
        else:
            self.pump_speed[target] = pump_speed(value)
        return value

    @staticmethod
    def _percent(value, expected: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise _bad("value", expected)
        return float(value)
