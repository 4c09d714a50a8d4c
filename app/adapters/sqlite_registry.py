"""The device registry in an embedded SQLite database (the default, in the instance folder).

Three tables: `devices` (configuration and last state as JSON, the token's
digest in its own unique column for lookup), `commands` (one row per command,
its record as JSON, state and device indexed) and `audit`. WAL journal with
synchronous=NORMAL: a commit costs no fsync, and a crash loses at most the
last moments, never the database.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from app.domain.records import Command, CommandParams, CommandStep
from app.services.device_repository import OPEN_STATES, Device, RegistryRepository

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ts REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device_id, created_ts);
CREATE INDEX IF NOT EXISTS commands_by_state ON commands (state, created_ts);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    entry TEXT NOT NULL
);
"""
_STATE_FIELDS = ("last_seen", "last_keys", "unmapped", "attributes")


def _command_row(command: Command) -> str:
    """A command's `record` column: its fields as JSON (`last_sent_at` once it has been sent)."""
    data = asdict(command)
    if data["last_sent_at"] is None:
        del data["last_sent_at"]
    return json.dumps(data)


def _command(row: str) -> Command:
    data = json.loads(row)
    return Command(**{**data, "params": CommandParams(**data["params"]),
                      "history": [CommandStep(**step) for step in data["history"]]})


class SqliteRegistry(RegistryRepository):
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's greenlets/threads, behind a lock.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _run(self, sql: str, params=()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- devices ----------------------------------------------------------------
    def devices(self) -> list[Device]:
        found = []
        for _id, digest, config, state in self._run(
                "SELECT id, token_digest, config, state FROM devices ORDER BY id"):
            found.append(Device(**json.loads(config), **json.loads(state), token_digest=digest))
        return found

    def save_device(self, device: Device) -> None:
        data = asdict(device)
        digest = data.pop("token_digest")
        state = {name: data.pop(name) for name in _STATE_FIELDS}
        self._run("INSERT OR REPLACE INTO devices (id, token_digest, config, state) VALUES (?, ?, ?, ?)",
                  (device.id, digest, json.dumps(data), json.dumps(state)))

    def save_states(self, devices: list[Device]) -> None:
        rows = [(json.dumps({name: getattr(d, name) for name in _STATE_FIELDS}), d.id) for d in devices]
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("UPDATE devices SET state = ? WHERE id = ?", rows)

    def delete_device(self, device_id: str) -> None:
        self._run("DELETE FROM devices WHERE id = ?", (device_id,))

    # -- commands ---------------------------------------------------------------
    def save_command(self, command: Command) -> None:
        self._run("INSERT OR REPLACE INTO commands (id, device_id, state, created_ts, record) "
                  "VALUES (?, ?, ?, ?, ?)",
                  (command.id, command.device_id, command.state, command.created_ts, _command_row(command)))

    def commands(self, device_id=None, state=None, limit=100) -> list[Command]:
        where, params = [], []
        if device_id is not None:
            where.append("device_id = ?")
            params.append(device_id)
        if state is not None:
            where.append("state = ?")
            params.append(state)
        sql = "SELECT record FROM commands"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_ts DESC LIMIT ?"
        return [_command(r) for (r,) in self._run(sql, (*params, limit))]

    def open_commands(self) -> list[Command]:
        marks = ", ".join("?" * len(OPEN_STATES))
        return [_command(r) for (r,) in self._run(
            f"SELECT record FROM commands WHERE state IN ({marks}) ORDER BY created_ts", OPEN_STATES)]

    # -- audit --------------------------------------------------------------------
    def add_audit(self, entry: dict) -> None:
        self._run("INSERT INTO audit (at, entry) VALUES (?, ?)", (entry["at_ts"], json.dumps(entry)))

    def audit(self, limit=100) -> list[dict]:
        return [json.loads(r) for (r,) in self._run(
            "SELECT entry FROM audit ORDER BY seq DESC LIMIT ?", (limit,))]

    def close(self) -> None:
        with self._lock:
            self._db.close()
