"""Real services for the tests, from Debian's packages, on free loopback ports.

Each is installed if missing (apt-get), started with its own config and data
folder under the test's temporary directory, and stopped at the end.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from testkit.forwarding import LoopbackProxy
from testkit.ports import free_port

_apt_updated = False


def ensure_installed(binary: str, package: str) -> str:
    global _apt_updated
    path = shutil.which(binary)
    if path:
        return path
    if not _apt_updated:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], check=True,
                   capture_output=True, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    path = shutil.which(binary)
    assert path, f"{package} installed but {binary} not found"
    return path


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout}s")


class InfluxServer:
    """influxd 1.6.7 (Debian's only InfluxDB), bound to 127.0.0.1 with its own folders.

    Debian has no InfluxDB 2.x, whose /api/v2/write our client uses; see
    V2WriteBridge for how the tests bridge that.
    """

    def __init__(self, folder: Path):
        self.binary = ensure_installed("influxd", "influxdb")
        self.folder = folder
        self.http_port, self.rpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config = folder / "influxdb.conf"
        text = subprocess.run([self.binary, "config"], capture_output=True, text=True, check=True).stdout
        text = text.replace("/var/lib/influxdb", str(folder))
        text = re.sub(r'^bind-address = ".*"', f'bind-address = "127.0.0.1:{self.rpc_port}"', text, flags=re.M)
        text = re.sub(r'(\[http\][^\[]*?bind-address = )"[^"]*"', rf'\1"127.0.0.1:{self.http_port}"', text, flags=re.S)
        text = re.sub(r"reporting-enabled = true", "reporting-enabled = false", text)
        text = re.sub(r"(\[monitor\][^\[]*?store-enabled = )true", r"\1false", text, flags=re.S)
        text = re.sub(r"(\[http\][^\[]*?log-enabled = )true", r"\1false", text, flags=re.S)
        self.config.write_text("reporting-disabled = true\n" + text)
        self.process: subprocess.Popen | None = None

    def start(self) -> "InfluxServer":
        log = open(self.folder / "influxd.log", "ab")
        self.process = subprocess.Popen([self.binary, "-config", str(self.config)], stdout=log, stderr=log)
        wait_until(lambda: requests.get(self.url + "/ping", timeout=1).status_code == 204, 30, "influxd")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, db: str, text: str) -> list[dict]:
        reply = requests.post(self.url + "/query", params={"db": db, "q": text, "epoch": "ns"}, timeout=10)
        reply.raise_for_status()
        rows = []
        for series in reply.json()["results"][0].get("series", []):
            rows += [dict(zip(series["columns"], values)) for values in series["values"]]
        return rows

    def count(self, db: str, measurement: str = "sensor_reading", where: str = "") -> int:
        """Points in `measurement` (the largest per-field count); 0 when none match.

        count(*) answers one column per field the measurement has ever had, and
        null for a field no selected point carries (e.g. `quality`, written
        only on flagged readings), so nulls count as 0.
        """
        rows = self.query(db, f'SELECT count(*) FROM "{measurement}" {where}')
        return max((v or 0 for k, v in rows[0].items() if k.startswith("count")), default=0) if rows else 0


# influxd 1.6.7 reads unknown precisions as nanoseconds (STACK-NOTES), so map them.
_PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


class V2WriteBridge(LoopbackProxy):
    """Tests only: maps POST /api/v2/write?bucket=B&precision=P to 1.x's /write?db=B.

    Everything else (/query, /ping) passes through unchanged, so the
    production code talks to this exactly as to an InfluxDB 2.x server.
    """

    REPLY_HEADERS = ("content-type", "x-influxdb-version", "x-influxdb-build")   # version detection
    UNREACHABLE_STATUS = 503

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        parsed = urlparse(path)
        if parsed.path == "/api/v2/write":
            params = parse_qs(parsed.query)
            # As 1.8 does: bucket "db" or "db/rp".
            db, _, rp = params.get("bucket", [""])[0].partition("/")
            mapped = {"db": db, "precision": _PRECISION.get(params.get("precision", ["ns"])[0], "n"),
                      **({"rp": rp} if rp else {})}
            path = "/write?" + urlencode(mapped)
        status, kept, content = self.forward(method, path, headers, body)
        if status != self.UNREACHABLE_STATUS and not any(k.lower() == "content-type" for k in kept):
            kept["Content-Type"] = "application/json"
        return status, kept, content


class MosquittoBroker:
    """Mosquitto with its own config and persistence folder, on a free loopback port.

    It silently drops messages past `max_queued_messages` (default 1,000 per
    client, even at QoS 1; STACK-NOTES), so the limit is set deliberately.
    """

    # The dynamic-security admin that `mosquitto_ctrl dynsec init` creates (dynsec=True).
    ADMIN_USER, ADMIN_PASSWORD = "bhs-admin", "test-dynsec-admin"

    def __init__(self, folder: Path, max_queued: int = 100_000, dynsec: bool = False):
        self.binary = ensure_installed("mosquitto", "mosquitto")
        ctrl = ensure_installed("mosquitto_ctrl", "mosquitto-clients")
        self.folder = folder
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        (folder / "data").mkdir(exist_ok=True)
        self.config = folder / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if dynsec:
            # Logins and ACLs from the plugin only; the admin may drive it over $CONTROL.
            state = folder / "dynamic-security.json"
            subprocess.run([ctrl, "dynsec", "init", str(state), self.ADMIN_USER, self.ADMIN_PASSWORD],
                           check=True, capture_output=True)
            plugin = next(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
            access = (f"allow_anonymous false\nplugin {plugin}\nplugin_opt_config_file {state}\n")
            self.url = f"mqtt://{self.ADMIN_USER}:{self.ADMIN_PASSWORD}@127.0.0.1:{self.port}"
        # As root it would drop to the mosquitto user and fail to write here.
        self.config.write_text(
            f"user root\nlistener {self.port} 127.0.0.1\n{access}"
            f"persistence true\npersistence_location {folder / 'data'}/\nautosave_interval 1\n"
            f"max_queued_messages {max_queued}\nmax_inflight_messages 100\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> "MosquittoBroker":
        import socket
        log = open(self.folder / "mosquitto.log", "ab")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)

        def accepting():
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_until(accepting, 15, "mosquitto")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


if __name__ == "__main__":
    # `python -m testkit.services bridge <upstream-url> <port>`: a bridge in its own
    # process, so a benchmark doesn't pay for it in the process it measures.
    import sys
    _, kind, upstream, port = sys.argv
    V2WriteBridge(upstream, int(port)).server.serve_forever()

