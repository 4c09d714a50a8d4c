"""One frame is encoded once per audience and the same string goes to every client.

Against a real Flask-SocketIO server in this process (its test clients stand
in for websockets): we watch the Engine.IO packets the server hands to each
client's transport.
"""
from __future__ import annotations

import time

from flask import Flask
from flask_socketio import Namespace, SocketIO, join_room

from app.realtime.broadcaster import ALL_ROOM, Broadcaster, node_room
from testkit.readings import reading

CLIENTS = 5


class Joins(Namespace):
    def on_connect(self, auth=None):
        join_room(ALL_ROOM)

    def on_subscribe(self, data):
        join_room(node_room(data))


def test_a_frame_is_encoded_once_and_the_same_string_reaches_every_client():
    app = Flask(__name__)
    socketio = SocketIO(app, async_mode="threading")
    socketio.on_namespace(Joins("/live"))
    clients = [socketio.test_client(app, namespace="/live") for _ in range(CLIENTS)]
    clients[0].emit("subscribe", "Z1", namespace="/live")
    sent = []
    deliver = socketio.server._send_eio_packet

    def watch(eio_sid, eio_packet):
        sent.append((eio_sid, eio_packet))
        deliver(eio_sid, eio_packet)

    socketio.server._send_eio_packet = watch
    caster = Broadcaster(socketio, "/live", 0.01, 1, deadband=lambda s: 0.0)
    caster.subscribed("Z1", +1)
    caster.start()
    try:
        caster.publish([reading("a", 1.0, node_id="Z1"), reading("b", 2.0, node_id="Z2")])
        deadline = time.monotonic() + 5
        while len(sent) < CLIENTS + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        caster.stop()
    frames = [c.get_received("/live") for c in clients]
    assert all(len(f) == 1 and f[0]["name"] == "sensor_update" for f in frames[1:])
    assert [r["sensor_id"] for r in frames[1][0]["args"][0]["readings"]] == ["a", "b"]
    assert [r["sensor_id"] for f in frames[0] for r in f["args"][0]["readings"]] == ["a", "b", "a"]
    # Audience `all`: one packet object for all five clients, so one encoding and one string.
    to_all = [p for _, p in sent if '"b"' in p.data]
    assert len(to_all) == CLIENTS and len({id(p) for p in to_all}) == 1
    assert len({id(p.encode()) for p in to_all}) == 1
    # The node room's frame is its own (one subscriber here).
    assert len([p for _, p in sent if '"b"' not in p.data]) == 1
