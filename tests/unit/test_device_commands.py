"""Command delivery states on a fake clock: the book's rules without a server.

The same paths run against a real server and broker in
tests/integration/test_devices.py and test_device_mqtt.py.
"""
from __future__ import annotations

import json

import pytest

from app.domain.clock import ManualClock
from app.domain.records import Command, CommandParams, CommandStep, ControlMessage
from app.errors import Conflict
from app.services.commands import MemoryCommands
from app.services.device_commands import CommandBook, DeviceCommandRouter
from app.services.device_registry import DeviceRegistry
from app.services.device_repository import MemoryRegistry


class Transport:
    """Takes commands while `up`; remembers what it was handed."""

    def __init__(self, up: bool = True):
        self.up = up
        self.sent: list[tuple[str, str]] = []

    def send_command(self, command: Command) -> bool:
        if self.up:
            self.sent.append((command.device_id, command.id))
        return self.up


@pytest.fixture
def parts():
    clock = ManualClock(1_800_000_000.0)
    repository = MemoryRegistry()
    registry = DeviceRegistry(repository, clock=clock, offline_after_s=60)
    changes: list[Command] = []
    book = CommandBook(repository, registry, on_change=changes.append, expiry_s=600, clock=clock)
    registry.on_back = book.resend
    device = registry.get(registry.register({"name": "Valve box", "kind": "valve", "actuators": ["V1"],
                                             "command_timeout_s": 10})[0]["id"])
    return clock, repository, registry, book, device, changes


def control(value=40, target="V1"):
    return ControlMessage(f"c-{value}", "set_valve", target, value, "2027-01-15T08:00:00Z")


def states(command: Command) -> list[str]:
    return [step.state for step in command.history]


def test_answers_move_a_command_through_delivered_to_successful_and_every_change_is_reported(parts):
    clock, _, _, book, device, changes = parts
    transport = book.transport = Transport()
    created = book.create(device, control())
    assert created.state == "sent" and created.params == CommandParams("V1", 40)
    clock.advance(1)
    book.answer(device, created.id, {"status": "delivered"})
    done = book.answer(device, created.id, {"status": "successful", "result": {"opening": 40}})
    assert states(done) == ["queued", "sent", "delivered", "successful"] and done.result == {"opening": 40}
    assert [c.state for c in changes] == ["queued", "sent", "delivered", "successful"]
    assert len(transport.sent) == 1          # its answer (the device is heard from) sends nothing again
    with pytest.raises(Conflict):
        book.answer(device, created.id, {"status": "failed"})
    assert book.open_count() == 0


def test_a_sent_command_times_out_and_a_queued_one_expires(parts):
    clock, _, _, book, device, _ = parts
    book.create(device, control(10))                  # no transport: stays queued
    book.transport = Transport()
    sent = book.create(device, control(20))
    clock.advance(10.5)                                # past the device's command_timeout_s
    book.tick()
    listed = {c.params.value: c for c in book.listing(device.id, None, 10)}
    assert listed[20].state == "timeout" and listed[10].state == "queued"
    clock.advance(600)                                 # past expires_at
    book.tick()
    expired = book.listing(device.id, "expired", 10)
    assert [c.params.value for c in expired] == [10] and states(expired[0]) == ["queued", "expired"]
    assert book.listing(device.id, "timeout", 10)[0].id == sent.id


def test_a_command_refused_by_the_transport_waits_queued_until_the_device_is_back(parts):
    clock, _, registry, book, device, _ = parts
    transport = book.transport = Transport(up=False)          # its last will said offline
    created = book.create(device, control())
    clock.advance(30)
    book.tick()
    assert book.listing(device.id, None, 1)[0].state == "queued"   # neither sent nor timed out
    transport.up = True
    registry.observe(device, ["q"], {}, {})                   # heard from: back online
    assert transport.sent == [(device.id, created.id)]
    assert book.listing(device.id, None, 1)[0].state == "sent"
    registry.observe(device, ["q"], {}, {})                   # still online: nothing again
    assert len(transport.sent) == 1


def test_open_commands_survive_a_restart_and_go_out_again(parts):
    clock, repository, registry, book, device, _ = parts
    book.transport = Transport()
    sent = book.create(device, control(1))
    book.transport = None
    queued = book.create(device, control(2))
    finished = book.create(device, control(3))
    book.answer(device, finished.id, {"status": "successful"})
    clock.advance(9)                                   # almost timed out before the restart
    again = CommandBook(repository, registry, clock=clock)
    transport = again.transport = Transport()
    assert again.open_count() == 2 and again.resend() == 2
    assert sorted(transport.sent) == sorted([(device.id, sent.id), (device.id, queued.id)])
    clock.advance(5)                                   # the timeout starts again at the re-send
    again.tick()
    assert {c.state for c in again.listing(device.id, None, 10) if c.id != finished.id} == {"sent"}
    reply = again.answer(device, queued.id, {"status": "successful"})
    assert states(reply) == ["queued", "sent", "successful"] and reply.attempts == 1


def test_the_router_says_which_command_a_control_became(parts):
    _, _, registry, book, device, _ = parts
    inner = MemoryCommands()
    router = DeviceCommandRouter(inner, registry, book)
    became = router.publish("V1", control())
    assert (became.id, became.device_id, became.state) == (book.listing(device.id, None, 1)[0].id, device.id, "queued")
    assert became.control_id == "c-40" and became.params == CommandParams("V1", 40)
    assert router.publish("V2", control(5, "V2")) is None and inner.desired["V2"] == control(5, "V2")


def test_a_device_is_online_once_it_polls_or_answers_and_back_after_a_silence(parts):
    clock, _, registry, _, device, _ = parts
    backs: list[str] = []
    registry.on_back = backs.append
    assert registry.view(device)["status"] == "never_seen"
    registry.heard(device)
    registry.heard(device)
    assert registry.view(registry.get(device.id))["status"] == "online" and backs == [device.id]
    clock.advance(61)
    assert registry.view(registry.get(device.id))["status"] == "offline"
    registry.heard(device)
    assert backs == [device.id, device.id]


def test_a_device_that_polls_over_http_gets_its_commands_from_its_polls_not_the_broker(parts):
    clock, _, _, book, device, _ = parts
    transport = book.transport = Transport()
    assert book.poll(device, 0) == []
    created = book.create(device, control())
    assert created.state == "queued" and transport.sent == []
    clock.advance(30)                                  # no timeout while it waits for the poll
    book.tick()
    fetched = book.poll(device, 0)
    assert [c.id for c in fetched] == [created.id]
    assert book.listing(device.id, None, 1)[0].state == "sent"
    clock.advance(10.5)                                # its timeout runs from the fetch
    book.tick()
    assert book.listing(device.id, None, 1)[0].state == "timeout"
    clock.advance(66)                                  # it stopped polling: the broker again
    book.create(device, control(5))
    assert len(transport.sent) == 1


def test_the_sqlite_registry_reads_the_command_rows_it_always_wrote_and_writes_them_the_same(tmp_path):
    """A row as earlier versions saved it (the record as JSON) comes back as a Command
    and is saved again byte for byte: open commands survive an upgrade too."""
    from app.adapters.sqlite_registry import SqliteRegistry
    row = {"id": "cmd-0123456789ab", "device_id": "dev-1", "control_id": "c1-1", "method": "set_valve",
           "params": {"target": "V1", "value": 40.0}, "state": "sent", "timeout_s": 30.0,
           "created_at": "2026-12-01T12:00:00Z", "created_ts": 1796126400.0,
           "expires_at": "2026-12-02T12:00:00Z", "expires_ts": 1796212800.0, "updated_at": "2026-12-01T12:00:01Z",
           "attempts": 1, "result": None, "history": [{"state": "queued", "at": "2026-12-01T12:00:00Z"},
                                                      {"state": "sent", "at": "2026-12-01T12:00:01Z"}],
           "deadline_ts": 1796126431.0, "http_fetched": False, "last_sent_at": "2026-12-01T12:00:01Z"}
    registry = SqliteRegistry(tmp_path / "devices.db")
    registry._run("INSERT INTO commands (id, device_id, state, created_ts, record) VALUES (?, ?, ?, ?, ?)",
                  (row["id"], "dev-1", "sent", row["created_ts"], json.dumps(row)))
    [command] = registry.open_commands()
    assert command.params == CommandParams("V1", 40.0) and command.history[1] == CommandStep("sent", row["updated_at"])
    assert command.deadline_ts == row["deadline_ts"] and command.last_sent_at == row["last_sent_at"]
    registry.save_command(command)
    queued = Command(**{**row, "id": "cmd-queued", "state": "queued", "params": CommandParams("V1", 1.0),
                        "history": [], "last_sent_at": None})
    registry.save_command(queued)
    records = dict(registry._run("SELECT id, record FROM commands"))
    assert records[row["id"]] == json.dumps(row)
    assert "last_sent_at" not in json.loads(records["cmd-queued"])     # never sent: no such key, as before
    assert [c.id for c in registry.commands("dev-1", "queued")] == ["cmd-queued"]
    registry.close()
