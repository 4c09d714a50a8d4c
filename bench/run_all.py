"""The benchmark suite: one command, one table (goal, measured, ceiling), JSON and a chart.

    python bench/run_all.py                                # the default mode (eventlet), ~15 min
    python bench/run_all.py --modes eventlet,gevent,threading   # the async-mode study as well
    python bench/run_all.py --soak 60 --skip dashboard     # shorter

Every benchmark starts the real server (`python run.py`) and, where relevant,
a real Mosquitto and InfluxDB, on 127.0.0.1; every load is bounded in count
and time. Ceilings run in the same invocation with the same load generator:
a bare Flask app / Flask-SocketIO relay on the same async mode
(bench/relay.py), a bare paho subscriber, raw InfluxDB POSTs. Bench scripts
that other parts of the project add to bench/ are run too, and their closing
lines go in the table. Writes bench/results/run_all.json and run_all.png.
Nothing here fails: it prints.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import clients, dashboard_fps, http_ingest, latency, memory, mqtt_ingest, routing_solve  # noqa: E402
from bench.common import Influx, cpu_count  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# Scripts this runner knows; any other bench/*.py with a __main__ is run as it is.
KNOWN = {"__init__", "common", "load", "relay", "run_all", "clients", "dashboard_fps", "http_ingest",
         "latency", "memory", "mqtt_ingest", "routing_solve", "influx_write", "profile", "interval_study",
         "ab_ingest"}
# Seconds another helper's script may run before it is stopped.
OTHER_SCRIPT_TIMEOUT_S = 600


class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, name: str, measured: float | None, unit: str, goal: float | None = None,
            better: str = "higher", ceiling: float | None = None, detail: str = "", method: str = "",
            mode: str = "eventlet") -> None:
        met = None
        if goal is not None and measured is not None:
            met = measured >= goal if better == "higher" else measured < goal
        ratio = None
        if ceiling and measured is not None:
            ratio = measured / ceiling
        row = {"name": name, "mode": mode, "measured": measured, "unit": unit, "goal": goal,
               "better": better, "ceiling": ceiling, "ratio": ratio, "met": met, "detail": detail,
               "method": method}
        self.rows.append(row)
        print(f"  {name} [{mode}]: {fmt(measured, unit)}"
              + (f" (ceiling {fmt(ceiling, unit)})" if ceiling else "") + (f"; {detail}" if detail else ""),
              flush=True)

    def markdown(self) -> str:
        lines = ["| benchmark | mode | goal | measured | ceiling | ours / ceiling | met | method |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            goal = "" if r["goal"] is None else f"{'>=' if r['better'] == 'higher' else '<'} {fmt(r['goal'], r['unit'])}"
            measured = fmt(r["measured"], r["unit"]) + (f" ({r['detail']})" if r["detail"] else "")
            ceiling = fmt(r["ceiling"], r["unit"]) if r["ceiling"] else ""
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
            met = {True: "yes", False: "**no**", None: ""}[r["met"]]
            lines.append(f"| {r['name']} | {r['mode']} | {goal} | {measured} | {ceiling} | {ratio} | {met} | "
                         f"{r['method']} |")
        return "\n".join(lines)


def fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


# -- the benches ---------------------------------------------------------------------

def ingest_rows(table: Table, mode: str, seconds: int) -> None:
    h = http_ingest.run(seconds, mode)
    table.add("HTTP batched ingest", h["batched_readings_per_s"], "readings/s", 50_000, mode=mode,
              method="wrk, 8 connections, 500 readings/request; auth, rate limit, InfluxDB on, 10 /live clients")
    table.add("HTTP single-reading ingest", h["single_requests_per_s"], "requests/s", 2_000,
              ceiling=h["ceiling_single_requests_per_s"], mode=mode,
              detail=f"{h.get('single_cpu_ms', float('nan')):.2f} ms CPU/request",
              method="wrk, 8 connections, 1 reading/request; same server; ceiling: bare Flask app on the same server")


def latency_rows(table: Table, mode: str, influx: Influx, interval_ms: int, repeats: int) -> None:
    for rate, audience, goal in ((500, 50, 50.0), (1000, 200, 100.0)):
        runs = [latency.compare(rate, audience, interval_ms, True, mode, influx) for _ in range(repeats)]
        ours = statistics.median(r["ours"]["p99"] for r in runs)
        ceiling = statistics.median(r["ceiling"]["p99"] for r in runs)
        last = runs[-1]["ours"]
        late = (runs[-1]["ours"].get("tick_late_ms") or {}).get("p99")
        table.add(f"latency p99, {rate}/s to {audience} clients", ours, "ms", goal, "lower", ceiling, mode=mode,
                  detail=f"p50 {statistics.median(r['ours']['p50'] for r in runs):.0f} ms, "
                         f"{statistics.median(r['ours']['cpu_ms_per_reading'] for r in runs):.2f} ms CPU/reading, "
                         f"harness {last['harness_cpu_ms_per_reading']:.2f} ms CPU/reading, "
                         f"tick late p99 {late} ms, load {last['load_average']:.1f}",
                  method=f"POST to receipt, {interval_ms} ms frames, leading edge; median of {repeats}; "
                         "ceiling: bare Flask-SocketIO relay, same mode and interval")


def clients_rows(table: Table, mode: str) -> None:
    c = clients.run(1000, mode=mode)
    table.add("/live clients held", c["clients"], "clients", 1000, mode=mode,
              detail=f"RSS {c['rss_mb']:.0f} MB; fan-out p99 {c['fanout_p99']:.0f} ms",
              method="passive websocket clients + 10 probes, 10 updates/s")


def mqtt_rows(table: Table) -> None:
    from testkit.services import MosquittoBroker
    mqtt_ingest.MESSAGES = 50_000
    broker = MosquittoBroker(Path(tempfile.mkdtemp(prefix="bench-mq-"))).start()
    try:
        ceiling = mqtt_ingest.bare(broker)
        ours = mqtt_ingest.ours(broker, Path(tempfile.mkdtemp(prefix="bench-mq-server-")))
    finally:
        broker.stop()
    table.add("MQTT ingest", ours, "msg/s", 0.6 * ceiling, ceiling=ceiling,
              detail="goal: 60% of the bare subscriber",
              method="50k QoS 1 messages by mosquitto_pub -l; ceiling: bare paho subscriber")


def influx_rows(table: Table) -> None:
    # influx_write monkey-patches eventlet at import, so it runs in its own process.
    out = subprocess.run([sys.executable, "-c", "import json; from bench.influx_write import run; "
                          "print(json.dumps(run()))"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    table.add("InfluxDB writes", r["ours_points_per_s"], "points/s", 0.5 * r["raw_points_per_s"],
              ceiling=r["raw_points_per_s"], detail="goal: 50% of raw POSTs",
              method=f"bench/influx_write.py, {r['points']:,} points, repository vs raw line-protocol POSTs")


def routing_rows(table: Table) -> None:
    from app.adapters.network_files import load_network
    from app.config import BUNDLED_NETWORK
    from app.services.network import Network
    from app.services.routing import RoutingInputs, RoutingModel

    def median_ms(network, repeats):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            RoutingModel(network).solve(RoutingInputs(demand={}))
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    table.add("routing solve, bundled network", median_ms(load_network(BUNDLED_NETWORK), 20), "ms", 10, "lower",
              method="build + solve, HiGHS, median of 20")
    table.add("routing solve, 1,000 nodes / 3,000 links", median_ms(routing_solve.synthetic(), 7), "ms", 150,
              "lower", method="build + solve, HiGHS, median of 7")


def dashboard_rows(table: Table) -> None:
    d = dashboard_fps.run()
    table.add("dashboard frame rate", d["fps"], "fps", 55, detail=f"p99 frame {d['p99_frame_ms']:.0f} ms",
              method="headless Chromium, simulator + 500 readings/s, 10 s of rAF")


def memory_rows(table: Table, soak_s: float) -> None:
    m = memory.per_10k_sensors()
    table.add("memory per 10,000 sensors", m["per_10k_sensors_mb"], "MB", method="RSS before/after 10k sensors x 120 points")
    s = memory.soak(soak_s)
    table.add(f"memory growth over a {s['seconds']:.0f} s soak", s["growth_mb_per_min_second_half"], "MB/min",
              1.0, "lower", detail=f"{s['rss_start_mb']:.0f} -> {s['rss_end_mb']:.0f} MB",
              method="simulator + 1,000 readings/s + 20 clients, InfluxDB; slope of the 2nd half")


def other_scripts(table: Table, timeout_s: float = OTHER_SCRIPT_TIMEOUT_S) -> None:
    """Bench scripts added by other parts of the project: run as they are, closing lines kept."""
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.stem in KNOWN or "__main__" not in path.read_text():
            continue
        started = time.time()
        # A session of its own, so a script stopped at its timeout takes the
        # servers and brokers it started with it.
        proc = subprocess.Popen([sys.executable, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
            lines = [line.strip() for line in stdout.splitlines() if line.strip()]
            summary = "; ".join(lines[-3:])[:300] if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
            summary = f"stopped after {timeout_s:.0f} s"
        table.add(f"bench/{path.name}", None, "", detail=summary.replace("|", "/"),
                  method=f"its own defaults, {time.time() - started:.0f} s")


# -- output ----------------------------------------------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return (f"{cpu_count()} cores ({model}), {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f}")


def chart(rows: list[dict], path: Path) -> None:
    """Each row's measured figure and ceiling as a share of its goal (1 = the goal; right is better)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def score(value, row):
        if value is None or row["goal"] in (None, 0) or value != value or value == 0:
            return None
        return value / row["goal"] if row["better"] == "higher" else row["goal"] / value

    shown = [r for r in rows if score(r["measured"], r) is not None]
    labels = [f"{r['name']} [{r['mode']}]" for r in shown]
    ours = [score(r["measured"], r) for r in shown]
    ceilings = [score(r["ceiling"], r) for r in shown]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
    y = range(len(shown))
    ax.barh(list(y), ours, color=["#2e7d32" if v >= 1 else "#c62828" for v in ours], label="ours")
    ax.scatter([c for c in ceilings if c is not None], [i for i, c in zip(y, ceilings) if c is not None],
               marker="|", s=300, color="black", label="ceiling", zorder=3)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of the goal (log; right of the dashed line = goal met)")
    ax.set_title(f"bench/run_all.py, {datetime.date.today()}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="eventlet", help="comma-separated async modes for ingest, latency, clients")
    parser.add_argument("--soak", type=float, default=300, help="soak seconds (default 300)")
    parser.add_argument("--interval-ms", type=int, default=None, help="BROADCAST_INTERVAL_MS (default: the product's)")
    parser.add_argument("--repeats", type=int, default=2, help="latency runs per row (median)")
    parser.add_argument("--skip", default="", help="comma-separated: modes,mqtt,influx,routing,dashboard,memory,others")
    parser.add_argument("--out", default="run_all", help="name of the JSON and PNG under bench/results/")
    parser.add_argument("--other-timeout", type=float, default=OTHER_SCRIPT_TIMEOUT_S,
                        help="seconds each of the other parts' scripts may run")
    parser.add_argument("--nice", type=int, default=None,
                        help="run every bench in an autogroup of its own at this niceness (root; bench/latency.py)")
    args = parser.parse_args()
    if args.nice is not None:
        latency.raise_group_priority(args.nice)
    skip = set(filter(None, args.skip.split(",")))
    interval = args.interval_ms
    if interval is None:
        from app.config import Settings
        interval = Settings.model_fields["broadcast_interval_ms"].default
    table = Table()
    started = time.time()
    influx = Influx()
    try:
        for mode in ([] if "modes" in skip else args.modes.split(",")):
            print(f"Ingest, latency and clients on {mode} ...", flush=True)
            ingest_rows(table, mode, 10)
            latency_rows(table, mode, influx, interval, args.repeats)
            clients_rows(table, mode)
    finally:
        influx.close()
    for name, step in (("mqtt", lambda: mqtt_rows(table)), ("influx", lambda: influx_rows(table)),
                       ("routing", lambda: routing_rows(table)), ("dashboard", lambda: dashboard_rows(table)),
                       ("memory", lambda: memory_rows(table, args.soak)), ("others", lambda: other_scripts(table, args.other_timeout))):
        if name in skip:
            continue
        print(f"{name} ...", flush=True)
        try:
            step()
        except Exception as error:    # one broken bench must not lose the others' figures
            table.add(name, None, "", detail=f"failed: {error}"[:200])
    RESULTS.mkdir(exist_ok=True)
    about = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "machine": machine(), "minutes": round((time.time() - started) / 60, 1),
             "interval_ms": interval, "modes": args.modes, "nice": args.nice}
    (RESULTS / f"{args.out}.json").write_text(json.dumps({**about, "rows": table.rows}, indent=1))
    chart(table.rows, RESULTS / f"{args.out}.png")
    print()
    print(f"Results, {about['date']}, {about['machine']}; {about['minutes']} min "
          "(a shared machine: other engineers' tests ran on the same cores)")
    print()
    print(table.markdown())
    print(f"\nwrote {RESULTS / (args.out + '.json')} and {RESULTS / (args.out + '.png')}")


if __name__ == "__main__":
    main()
