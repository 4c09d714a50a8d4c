"""The core reads time only through the injected clock (app/domain/clock.py).

Walks the source of app/services and app/domain and fails on a direct read
of the wall or monotonic clock anywhere but the clock module, except the
real-time plumbing listed in REAL_TIME (each with why it must stay real).
A new `time.time()` in a service would run on wall seconds under a
simulated clock, the distortion this keeps out.
"""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
CLOCK_MODULE = "domain/clock.py"
READS = {("time", name) for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                                     "perf_counter_ns", "process_time", "localtime", "gmtime", "ctime")}
# These convert a given time; only called without one do they read the clock.
CONVERTERS = {("time", "localtime"), ("time", "gmtime"), ("time", "ctime")}
READS |= {(owner, name) for owner in ("datetime", "date") for name in ("now", "utcnow", "today")}
# (file under app/, read) -> why it stays on real time.
REAL_TIME = {
    ("services/routing.py", "time.perf_counter"): "the solver's duration (solve_ms) is CPU time",
    ("services/metrics.py", "time.monotonic"): "uptime and throughput rates per real second",
    # Leases, heartbeats and stream trimming between processes and Redis.
    ("services/cluster/leadership.py", "time.monotonic"): "the leader lease",
    ("services/cluster/leadership.py", "time.time"): "when this instance took the lease",
    ("services/cluster/leader_only.py", "time.monotonic"): "the leader lease",
    ("services/cluster/node.py", "time.time"): "instance heartbeats",
    ("services/cluster/ports.py", "time.time"): "the in-memory Redis stand-ins' TTLs",
    ("services/cluster/ports.py", "time.monotonic"): "the in-memory Redis stand-ins' TTLs",
    ("services/cluster/rooms.py", "time.time"): "instance heartbeats",
}


def direct_reads(source: str) -> list[tuple[int, str]]:
    """(line, "module.name") of every reference to a clock-reading function, aliases resolved."""
    tree = ast.parse(source)
    # Local name -> the module or class it stands for ("t" for `import time as t`).
    names = {"time": "time", "datetime": "datetime", "date": "date"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("time", "datetime"):
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if (node.module, alias.name) in READS:       # from time import time
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
                elif alias.name in ("datetime", "date"):
                    names[alias.asname or alias.name] = alias.name
    given = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call) and node.args}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in given and \
                (names.get(getattr(node.value, "id", "")), node.attr) in CONVERTERS:
            continue
        owner = node.value
        if isinstance(owner, ast.Name):
            owner_name = names.get(owner.id)
        elif isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name) \
                and names.get(owner.value.id) == "datetime":
            owner_name = owner.attr                            # datetime.datetime.now
        else:
            continue
        if (owner_name, node.attr) in READS:
            found.append((node.lineno, f"{owner_name}.{node.attr}"))
    return sorted(found)


def test_the_core_reads_time_only_through_the_clock():
    offenders = []
    files = [*(APP / "services").rglob("*.py"), *(APP / "domain").rglob("*.py")]
    assert len(files) > 30      # the walk found the core
    for path in files:
        name = path.relative_to(APP).as_posix()
        if name == CLOCK_MODULE:
            continue
        for line, read in direct_reads(path.read_text()):
            if (name, read) not in REAL_TIME:
                offenders.append(f"app/{name}:{line}: {read}")
    assert not offenders, ("read time through the injected clock (app/domain/clock.py), or list "
                           "real-time plumbing in REAL_TIME with why:\n" + "\n".join(offenders))


def test_the_walk_sees_each_way_of_reading_the_clock():
    source = ("import time as t, datetime\nfrom time import monotonic\nfrom datetime import datetime as dt\n"
              "a = t.time()\nb = datetime.datetime.now()\nc = dt.utcnow()\nd = t.sleep\n"
              "e = datetime.fromtimestamp(0)\nf = t.gmtime(0)\ng = t.localtime()\n")
    assert [read for _, read in direct_reads(source)] == \
        ["time.monotonic", "time.time", "datetime.now", "datetime.utcnow", "time.localtime"]
