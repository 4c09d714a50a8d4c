"""The `/live` namespace: snapshot on connect, node subscriptions through rooms."""
from __future__ import annotations

import logging
from typing import Callable

from flask import request
from flask_socketio import Namespace, emit, join_room, leave_room

from app import wire
from app.errors import InvalidInput, error_envelope
from app.models import MAX_ID_LENGTH
from app.realtime.broadcaster import ALL_ROOM, Broadcaster, node_room
from app.security import TokenSet
from app.services.store import DataStore

logger = logging.getLogger(__name__)

# Most nodes one subscribe call may name: bounds the rooms a client can join.
MAX_SUBSCRIBED_NODES = 500


def _refused(message: str, rule: str) -> dict:
    """A (un)subscribe acknowledgement that refuses: `ok: false` and the error envelope."""
    return {"ok": False, **error_envelope(InvalidInput.status, message, [{"field": "nodes", "message": rule}])}


def token_from(auth) -> str | None:
    if isinstance(auth, dict):
        token = auth.get("token")
        return token if isinstance(token, str) else None
    return None


def _node_list(data) -> list[str] | None:
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list) or len(nodes) > MAX_SUBSCRIBED_NODES:
        return None
    if not all(isinstance(n, str) and 0 < len(n) <= MAX_ID_LENGTH for n in nodes):
        return None
    return nodes


class LiveNamespace(Namespace):
    def __init__(self, namespace: str, store: DataStore, broadcaster: Broadcaster,
                 snapshot: Callable[[], dict], viewers: TokenSet):
        super().__init__(namespace)
        self.store = store
        self.broadcaster = broadcaster
        self.snapshot = snapshot
        self.viewers = viewers
        self._subscriptions: dict[str, set[str]] = {}

    def on_connect(self, auth=None):
        # The token comes in the connect payload only, never in the URL (where proxies log it).
        if self.viewers and not self.viewers.identify(token_from(auth)):
            raise ConnectionRefusedError("unauthorized: a viewer token is required")
        self.store.client_connected()
        join_room(ALL_ROOM)
        emit("snapshot", wire.snapshot(self.snapshot()))

    def on_disconnect(self, reason=None):
        self.store.client_disconnected()
        for node in self._subscriptions.pop(request.sid, ()):
            self.broadcaster.subscribed(node, -1)

    def on_subscribe(self, data=None):
        nodes = _node_list(data)
        if nodes is None:
            return _refused("expected {\"nodes\": [node ids]}", f"a list of at most {MAX_SUBSCRIBED_NODES} node ids")
        mine = self._subscriptions.setdefault(request.sid, set())
        for node in set(nodes) - mine:
            join_room(node_room(node))
            self.broadcaster.subscribed(node, +1)
            mine.add(node)
        leave_room(ALL_ROOM)
        return {"ok": True, "nodes": sorted(mine)}

    def on_unsubscribe(self, data=None):
        mine = self._subscriptions.get(request.sid, set())
        nodes = _node_list(data) if data else list(mine)
        if nodes is None:
            return _refused("expected {\"nodes\": [node ids]} or nothing for all", "a list of node ids")
        for node in set(nodes) & mine:
            leave_room(node_room(node))
            self.broadcaster.subscribed(node, -1)
            mine.discard(node)
        if not mine:
            self._subscriptions.pop(request.sid, None)
            join_room(ALL_ROOM)
        return {"ok": True, "nodes": sorted(mine)}
