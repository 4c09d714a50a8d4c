"""A real server process: `python run.py` on a free port, as a user starts it.

Its settings come from the environment; it is stopped with SIGTERM.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from testkit.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_TOKEN = "test-operator-token"
# How long a server may take to answer /api/health after it is started.
START_TIMEOUT_S = 30


class ServerProcess:
    """`python run.py` on a free port, with its output kept in a log file.

    `script` and `root` let a benchmark start another entry point (bench/trace_server.py)
    or another checkout the same way.
    """

    def __init__(self, tmp_path: Path, *, script: Path | str = "run.py", root: Path = ROOT,
                 start_timeout_s: float = START_TIMEOUT_S, **env: str):
        self.script, self.root, self.start_timeout_s = script, root, start_timeout_s
        self.port = int(env.pop("PORT", 0)) or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1", "PORT": str(self.port), "SIMULATOR": "off",
            "OPERATOR_TOKENS": f"ops={OPERATOR_TOKEN}",
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, str(self.script)], cwd=self.root, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {self.start_timeout_s}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
