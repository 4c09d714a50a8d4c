"""End-to-end latency: a device's POST to receipt by every /live client, ours against a ceiling.

Ours is the real server (`python run.py`, InfluxDB history on, every analysis
hook on). The ceiling is bench/relay.py: a bare Flask-SocketIO relay on the
same async mode with the same coalescing interval and leading edge and no
pipeline. Both are measured in the same run by the same harness
(bench/load.py: single-threaded paced senders in 2 processes, 10 probes in
one, placed evenly among the rest of the audience, passive websocket
connections), one after the other. Latency is from the sender's clock just
before the request is written to the probe's at receipt; every sensor's
first reading goes before the clock starts and is not counted. CPU per
reading is the server process's user+system time over the load, divided by
the readings sent.

--trace runs both servers with bench/trace.py's stamps and splits every
receipt into legs (send, request, coalesce, fan-out), with the collector's
pauses and the scheduling loop's stalls. --nice runs the bench in an
autogroup of its own at that niceness (root), so that other sessions' work on
a shared machine takes less of its CPU; --pin puts the server on one CPU and
the harness on the other(s). Both change the harness, not the server, and
apply to ours and the ceiling alike.

    python bench/latency.py [rate] [clients] [interval_ms] [leading 1|0] [async_mode]
        [--rounds N] [--seconds S] [--trace] [--pin] [--nice N] [--server-root DIR] [--json FILE]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.common import QUIET, Influx, PassivePool, cpu_count, percentile  # noqa: E402
from bench.load import ProbePool, Senders, cpu_seconds  # noqa: E402
from testkit.ports import free_port  # noqa: E402
from testkit.server import ServerProcess  # noqa: E402

PREFIX = "lat-"
PROBES = 10
SECONDS = 10
# How long a server may take to answer /api/health on a loaded benchmark machine.
SERVER_START_TIMEOUT_S = 120


class Relay:
    """bench/relay.py on a free port."""

    def __init__(self, mode: str, interval_ms: int, leading_edge: bool, trace_gc: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if trace_gc:
            env.update(BENCH_TRACE="1", BENCH_TRACE_GC=str(trace_gc), BENCH_TRACE_PREFIX=PREFIX)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "relay.py"), str(self.port), mode, str(interval_ms),
             "1" if leading_edge else "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("relay did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Server(ServerProcess):
    """Our server from `script` (run.py, or bench/trace_server.py for --trace) in `root`."""

    def __init__(self, folder: Path, script: Path, root: Path = ROOT, **env: str):
        # A loaded benchmark machine may take longer than a test's start-up allowance.
        super().__init__(folder, script=script, root=root, start_timeout_s=SERVER_START_TIMEOUT_S, **env)


def spread(total: int, parts: int) -> list[int]:
    """`total` split into `parts` nearly equal counts."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def measure(url: str, pid: int, rate: int, clients: int, seconds: float = SECONDS,
            trace_gc: Path | None = None, pin: bool = False, nice: int | None = None) -> dict:
    """Hold `clients` on /live (PROBES of them timing), send `rate` readings/s for `seconds`.

    The probes sit evenly among the passive clients in the room's send order
    (probe i before the i-th tenth of them), so the figures are over the
    audience, not only its last member. `trace_gc`: the server runs with the
    trace stamps (bench/trace.py), and the result gets a `trace` breakdown.
    `pin`: the server on the last CPU, the harness on the others. `nice`: the
    server and the harness at that niceness (root: below 0 puts them ahead of
    other work on a shared machine; the same for ours and the ceiling)."""
    load_before = os.getloadavg()[0]
    harness_cpus = server_cpus = None
    if pin and cpu_count() > 1:
        server_cpus, harness_cpus = {cpu_count() - 1}, set(range(cpu_count() - 1))
    load.pin(pid, server_cpus, nice)
    passive = PassivePool(url, clients - PROBES, hold_s=seconds + 30, staged=True, cpus=harness_cpus,
                          nice=nice)
    probes = ProbePool(url, 0, PREFIX, hold_s=seconds + 120, trace=trace_gc is not None, cpus=harness_cpus,
                       nice=nice)
    for chunk in spread(clients - PROBES, PROBES):
        probes.open(1)
        passive.open(chunk)
    passive.go()
    probes.go()
    cpu_before = cpu_seconds(pid)
    senders = Senders(url, rate, seconds, PREFIX, cpus=harness_cpus, nice=nice)
    sent = senders.join()
    cpu = cpu_seconds(pid) - cpu_before
    values = probes.latencies(since=senders.start_at)
    passive.close()
    load_after = os.getloadavg()[0]
    by_probe = {}
    for sample in probes.samples:
        by_probe.setdefault(sample[0], []).append(sample[1])
    result = {"clients": passive.connected + probes.connected, "sent": sent, "samples": len(values),
              "p50": percentile(values, 0.50), "p95": percentile(values, 0.95),
              "p99": percentile(values, 0.99), "max": max(values) if values else float("nan"),
              # p99 of the first probe in the send order and of the last.
              "p99_first_probe": percentile(by_probe.get(0, []), 0.99),
              "p99_last_probe": percentile(by_probe.get(PROBES - 1, []), 0.99),
              "request_p99": percentile([1000 * (a - s) for _, _, s, a in senders.requests], 0.99),
              "cpu_ms_per_reading": 1000 * cpu / sent if sent else float("nan"),
              "cpu_share": cpu / seconds, "load_average": (load_before + load_after) / 2,
              "load_before": load_before, "load_after": load_after, "pinned": bool(server_cpus), "nice": nice,
              # Senders' and probes' own CPU per reading: what the harness costs the shared cores.
              "harness_cpu_ms_per_reading": 1000 * (senders.cpu_s + probes.cpu_s) / sent if sent else float("nan")}
    if trace_gc is not None:
        result["trace"] = breakdown(probes.samples, senders.requests, trace_gc, senders.start_at,
                                    senders.start_at + seconds)
    return result


def raise_group_priority(nice: int) -> None:
    """Run this bench in a scheduling group of its own at `nice` (root).

    Linux's autogroups share the CPU fairly between sessions whatever their
    processes' niceness, so a process's nice value only ranks it inside its
    own session. A new session gets a new autogroup, whose niceness then sets
    its share against everyone else's sessions; every process this bench
    starts (servers, harness) inherits it and it ends with them."""
    try:
        os.setsid()
    except PermissionError:       # already a process group leader: keep its session
        pass
    Path("/proc/self/autogroup").write_text(str(nice))


LEGS = ("send", "request", "coalesce", "fan-out")


def breakdown(samples: list[tuple], requests_sent: list[tuple], gc_file: Path, start: float, end: float) -> dict:
    """Where the readings' time went, leg by leg, for all receipts and for the slowest 1%.

    Legs: send (sender's stamp to the server's WSGI call: the sender, the
    kernel, the server's accept and request-head parsing), request (WSGI call
    to the broadcaster), coalesce (broadcaster to the frame's emit: the
    interval and the tick's lateness), fan-out (emit to the probe's receipt:
    the writes to every client before this one and the probe's own wake-up)."""
    stamped = {(sid, value): at for sid, value, at, _ in requests_sent}
    rows = []
    for probe, _, sid, value, received, t_in, t_pub, t_emit in samples:
        at = stamped.get((sid, value))
        if at is None or None in (t_in, t_pub, t_emit):
            continue
        legs = (t_in - at, t_pub - t_in, t_emit - t_pub, received - t_emit)
        rows.append((1000 * (received - at), [1000 * leg for leg in legs], probe, at, received))
    if not rows:
        return {}
    rows.sort(key=lambda r: r[0])
    tail = rows[int(0.99 * len(rows)):]
    pauses, stalls = [], []
    if gc_file.exists():
        for line in gc_file.read_text().split("\n"):
            kind, *fields = line.split() or [""]
            if kind == "gc" and start <= float(fields[0]) <= end + 2:
                pauses.append((float(fields[0]), int(fields[1]), float(fields[2])))
            elif kind == "hub" and start <= float(fields[0]) <= end + 2:
                stalls.append((float(fields[0]), float(fields[1]), float(fields[2]), float(fields[3])))
    in_tail = sum(1 for r in tail if any(r[3] <= at <= r[4] for at, _, _ in pauses))
    emits = sorted({round(t_emit, 6) for *_, t_emit in samples if t_emit})
    gaps = [1000 * (b - a) for a, b in zip(emits, emits[1:])]
    return {
        "samples": len(rows), "tail_samples": len(tail),
        "p50": {leg: percentile([r[1][i] for r in rows], 0.5) for i, leg in enumerate(LEGS)},
        "p99": {leg: percentile([r[1][i] for r in rows], 0.99) for i, leg in enumerate(LEGS)},
        "tail_mean": {leg: sum(r[1][i] for r in tail) / len(tail) for i, leg in enumerate(LEGS)},
        # How often each leg was the largest in the slowest 1%.
        "tail_largest": {leg: sum(1 for r in tail if max(r[1]) == r[1][i]) for i, leg in enumerate(LEGS)},
        "tail_probes": sorted({r[2] for r in tail}),
        "frame_gap_ms": {"p50": percentile(gaps, 0.5), "p99": percentile(gaps, 0.99),
                         "max": max(gaps) if gaps else float("nan")},
        "gc_pauses": len(pauses), "gc_max_ms": max((ms for *_, ms in pauses), default=0.0),
        "gc_gen2": sum(1 for _, g, _ in pauses if g == 2), "tail_during_gc": in_tail,
        # Every receipt (latency, legs, probe, stamped, received) and pause, for a closer look.
        "rows": rows, "pauses": pauses, "stalls": stalls, "file": str(gc_file),
        # The scheduling loop's stalls over 5 ms: how many, the longest, and
        # their wall time against the CPU the process spent meanwhile.
        "hub_stalls": len(stalls), "hub_stall_max_ms": max((s[1] for s in stalls), default=0.0),
        "hub_stall_ms": sum(s[1] for s in stalls), "hub_stall_cpu_ms": sum(s[2] for s in stalls),
        "hub_stall_system_ms": sum(s[3] for s in stalls),
    }


def describe_trace(t: dict) -> str:
    if not t:
        return "no trace"
    legs = lambda d: " / ".join(f"{leg} {d[leg]:.1f}" for leg in LEGS)  # noqa: E731
    return (f"legs p50 [{legs(t['p50'])}], p99 [{legs(t['p99'])}], slowest 1% mean [{legs(t['tail_mean'])}] ms; "
            f"largest leg in the slowest 1%: {t['tail_largest']}; frame gap p50 {t['frame_gap_ms']['p50']:.1f} / "
            f"p99 {t['frame_gap_ms']['p99']:.1f} / max {t['frame_gap_ms']['max']:.1f} ms; GC pauses >= 0.5 ms: "
            f"{t['gc_pauses']} (gen2 {t['gc_gen2']}, max {t['gc_max_ms']:.1f} ms), slowest-1% receipts spanning "
            f"one: {t['tail_during_gc']} of {t['tail_samples']}; hub stalls > 5 ms: {t['hub_stalls']} (max "
            f"{t['hub_stall_max_ms']:.1f} ms, {t['hub_stall_ms']:.0f} ms in all, {t['hub_stall_cpu_ms']:.0f} ms of it on CPU, {t['hub_stall_system_ms']:.0f} in the kernel)")


def ours(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
         mode: str = "eventlet", influx: Influx | None = None, seconds: float = SECONDS,
         trace: bool = False, pin: bool = False, nice: int | None = None, root: Path = ROOT) -> dict:
    """Our server (from `root`, another checkout for an A/B; --trace runs this one's)."""
    own = influx is None
    influx = influx or Influx()
    folder = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    trace_gc = folder / "gc.txt" if trace else None
    try:
        env = {**QUIET, **influx.env(), "ASYNC_MODE": mode, "BROADCAST_INTERVAL_MS": str(interval_ms),
               "BROADCAST_LEADING_EDGE": "true" if leading_edge else "false"}
        if trace:
            script = ROOT / "bench" / "trace_server.py"
            env.update(BENCH_TRACE_GC=str(trace_gc), BENCH_TRACE_PREFIX=PREFIX)
        else:
            script = root / "run.py"
        server = Server(folder, script, root, **env).start()
        try:
            result = measure(server.url, server.process.pid, rate, clients, seconds, trace_gc, pin, nice)
            status = requests.get(server.url + "/api/status", timeout=10).json()
            result["tick_late_ms"] = status["broadcast"].get("tick_late_ms")
            return result
        finally:
            server.stop()
    finally:
        if own:
            influx.close()


def ceiling(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
            mode: str = "eventlet", seconds: float = SECONDS, trace: bool = False, pin: bool = False,
            nice: int | None = None) -> dict:
    trace_gc = Path(tempfile.mkdtemp(prefix="bench-latency-")) / "gc.txt" if trace else None
    relay = Relay(mode, interval_ms, leading_edge, trace_gc)
    try:
        return measure(relay.url, relay.process.pid, rate, clients, seconds, trace_gc, pin, nice)
    finally:
        relay.stop()


def compare(rate: int, clients: int, interval_ms: int = 50, leading_edge: bool = True,
            mode: str = "eventlet", influx: Influx | None = None, seconds: float = SECONDS,
            trace: bool = False, pin: bool = False, nice: int | None = None, root: Path = ROOT) -> dict:
    """Ours, then the ceiling, with the same harness: {"ours", "ceiling", "ratio"} (p99 over p99)."""
    a = ours(rate, clients, interval_ms, leading_edge, mode, influx, seconds, trace, pin, nice, root)
    b = ceiling(rate, clients, interval_ms, leading_edge, mode, seconds, trace, pin, nice)
    return {"rate": rate, "clients": clients, "interval_ms": interval_ms, "leading_edge": leading_edge,
            "mode": mode, "ours": a, "ceiling": b, "ratio": a["p99"] / b["p99"] if b["p99"] else float("nan")}


def describe(r: dict) -> str:
    o, c = r["ours"], r["ceiling"]
    return (f"{r['mode']} {r['rate']}/s, {o['clients']} clients, {r['interval_ms']} ms "
            f"{'leading edge' if r['leading_edge'] else 'plain tick'}{', pinned' if o.get('pinned') else ''}{'' if o.get('nice') is None else ', nice %d' % o['nice']}: "
            f"ours p50 {o['p50']:.1f} / p95 {o['p95']:.1f} / p99 {o['p99']:.1f} ms "
            f"(first probe p99 {o['p99_first_probe']:.1f}, last {o['p99_last_probe']:.1f}; request p99 "
            f"{o['request_p99']:.1f} ms), {o['cpu_ms_per_reading']:.2f} ms CPU/reading, tick late "
            f"{o.get('tick_late_ms')}, load {o['load_before']:.2f}->{o['load_after']:.2f}; "
            f"ceiling p50 {c['p50']:.1f} / p95 {c['p95']:.1f} / p99 {c['p99']:.1f} ms (first probe p99 "
            f"{c['p99_first_probe']:.1f}, last {c['p99_last_probe']:.1f}; request p99 {c['request_p99']:.1f} ms), "
            f"{c['cpu_ms_per_reading']:.2f} ms CPU/reading, load {c['load_before']:.2f}->{c['load_after']:.2f}; "
            f"harness {o['harness_cpu_ms_per_reading']:.2f} / {c['harness_cpu_ms_per_reading']:.2f} ms CPU/reading; "
            f"p99 ratio {r['ratio']:.2f} ({o['samples']} / {c['samples']} samples)")


if __name__ == "__main__":
    import argparse
    import json
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rate", type=int, nargs="?", default=500)
    parser.add_argument("clients", type=int, nargs="?", default=50)
    parser.add_argument("interval_ms", type=int, nargs="?", default=50)
    parser.add_argument("leading", nargs="?", default="1", help="leading edge 1|0")
    parser.add_argument("mode", nargs="?", default="eventlet")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of ours and the ceiling")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--trace", action="store_true", help="stamp each leg of the trip (bench/trace.py)")
    parser.add_argument("--pin", action="store_true", help="server on the last CPU, the harness on the others")
    parser.add_argument("--nice", type=int, help="niceness of the server and the harness (root: e.g. -10)")
    parser.add_argument("--server-root", type=Path, default=ROOT, help="run ours from another checkout")
    parser.add_argument("--json", type=Path, help="write every round's results here")
    args = parser.parse_args()
    if args.nice is not None:
        raise_group_priority(args.nice)
    shared = Influx()
    runs = []
    try:
        for _ in range(args.rounds):
            r = compare(args.rate, args.clients, args.interval_ms, args.leading != "0", args.mode, shared,
                        args.seconds, args.trace, args.pin, args.nice, args.server_root)
            runs.append(r)
            print(describe(r), flush=True)
            if args.trace:
                print(f"  ours:    {describe_trace(r['ours'].get('trace', {}))}", flush=True)
                print(f"  ceiling: {describe_trace(r['ceiling'].get('trace', {}))}", flush=True)
    finally:
        shared.close()
    if len(runs) > 1:
        print(f"median of {len(runs)}: ours p99 {statistics.median(r['ours']['p99'] for r in runs):.1f} ms, "
              f"ceiling p99 {statistics.median(r['ceiling']['p99'] for r in runs):.1f} ms, ratio "
              f"{statistics.median(r['ratio'] for r in runs):.2f}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
