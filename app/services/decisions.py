"""The decision feed: each decision's life from `recommended` to `applied`,
`dismissed` or `superseded`, and the commands it carries.

In auto mode a decision is applied at once: its commands go to the devices.
In manual mode it is recommended, and an operator applies it (the same
commands, sent the same way) or dismisses it; both are audited. A newer
decision on the same topic (the network plan, or one zone's leak)
supersedes older recommended ones, so only the latest can be applied.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
import threading
from typing import Callable

from app.domain.clock import Clock, iso
from app.domain.events import DecisionMade, Event
from app.domain.records import Action, Decision
from app.errors import Conflict, NotFound
from app.services.controls import ControlService
from app.services.history import HistoryRepository
from app.services.ids import id_prefix
from app.services.store import DataStore

STATES = ("recommended", "applied", "dismissed", "superseded")
# Decisions that can still be looked up by id (apply, dismiss): more than the feed shows.
KEPT = 1000


class DecisionBook:
    def __init__(self, store: DataStore, history: HistoryRepository, controls: ControlService,
                 publish: Callable[[Event], None], clock: Clock,
                 on_published: Callable[[Decision], None] = lambda decision: None):
        self.store = store
        self.history = history
        self.controls = controls
        self.publish_event = publish
        self.clock = clock
        self.on_published = on_published
        self._ids = itertools.count(1)
        self._prefix = id_prefix(clock)     # time and random: unique across restarts and instances
        self._lock = threading.Lock()
        self._by_id: OrderedDict[str, Decision] = OrderedDict()
        self._open: dict[str, list[str]] = {}   # topic -> ids still recommended

    def new(self, kind: str, action: str, target: str, reason: str, confidence: float,
            confidence_reason: str, topic: str, actions: list[Action] | None = None,
            evidence: dict | None = None) -> Decision:
        """A decision, not yet published. Without `actions`, its one action is itself."""
        now = iso(self.clock())
        return Decision(f"d{self._prefix}-{next(self._ids)}", now, kind, action, target, reason, confidence,
                        confidence_reason, topic, actions or [Action(kind, target, action, causes=None)],
                        state="recommended", state_at=now, evidence=evidence)

    def publish(self, decision: Decision) -> Decision:
        auto = self.controls.mode == "auto"     # one reading: an operator may switch meanwhile
        superseded = []
        with self._lock:
            for old_id in self._open.pop(decision.topic, []):
                old = self._by_id.get(old_id)
                if old is not None and old.state == "recommended":
                    self._set(old, "superseded", None)
                    superseded.append(old)
            self._by_id[decision.id] = decision
            while len(self._by_id) > KEPT:
                self._by_id.popitem(last=False)
            if not auto:
                self._open.setdefault(decision.topic, []).append(decision.id)
        self.store.add_decisions([decision])
        self._record(decision)
        for old in superseded:
            self._changed(old)
        if auto:
            # Applied before it is announced: /live and the cluster learn it as applied
            # (its history has both states, recommended then applied).
            self._apply(decision, "engine", "engine")
        self.publish_event(DecisionMade(decision))
        self.on_published(decision)
        return decision

    def apply(self, decision_id: str, operator: str) -> Decision:
        """An operator applies a recommended decision: its commands go out as in auto mode."""
        decision = self._recommended(decision_id, "applied")
        return self._apply(decision, operator, "decision")

    def dismiss(self, decision_id: str, operator: str) -> Decision:
        decision = self._recommended(decision_id, "dismissed")
        with self._lock:
            self._set(decision, "dismissed", operator)
        self._changed(decision)
        return decision

    def get(self, decision_id: str) -> Decision:
        decision = self._by_id.get(decision_id)
        if decision is None:
            raise NotFound(f"no decision '{decision_id}'")
        return decision

    # -- inside ------------------------------------------------------------------------
    def _recommended(self, decision_id: str, wanted: str) -> Decision:
        decision = self.get(decision_id)
        if decision.state != "recommended":
            raise Conflict(f"decision '{decision_id}' is {decision.state}: only a recommended "
                           f"decision can be {wanted}")
        return decision

    def _apply(self, decision: Decision, operator: str, origin: str) -> Decision:
        with self._lock:
            self._set(decision, "applied", operator)
            topic = self._open.get(decision.topic, [])
            if decision.id in topic:
                topic.remove(decision.id)
        sent = []
        for action in decision.actions:
            command = action.command
            if command:
                control = self.controls.issue(command.action, command.target, command.value,
                                              decision.reason, operator=operator, origin=origin)
                sent.append(control["id"])
        decision.commands = sent
        if origin != "engine":
            self._changed(decision)
        else:
            self._record(decision)    # publish() announces it, applied
        return decision

    def _set(self, decision: Decision, state: str, operator: str | None) -> None:
        decision.state = state
        decision.state_at = iso(self.clock())
        decision.state_by = operator

    def _changed(self, decision: Decision) -> None:
        self._record(decision)
        self.publish_event(DecisionMade(decision))

    def _record(self, decision: Decision) -> None:
        """Each state of a decision is a `decision` point: the audit trail."""
        self.history.write_event(
            "decision", {"kind": decision.kind, "target": decision.target, "state": decision.state},
            {"id": decision.id, "action": decision.action, "reason": decision.reason,
             "confidence": float(decision.confidence), "by": decision.state_by or ""},
            self.clock())
