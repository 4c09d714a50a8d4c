"""Dashboard frame rate with the full network simulated and extra load.

Opens the dashboard in Debian's headless Chromium (Playwright), with the
simulator on (145 sensors) plus 500 readings/s over HTTP across 500 more
sensors, selects a node (so its trend charts redraw), and records
requestAnimationFrame intervals for 10 s. Run: python bench/dashboard_fps.py
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import start_server  # noqa: E402
from testkit.browser import CHROMIUM_ARGS  # noqa: E402
from testkit.services import ensure_installed  # noqa: E402

SECONDS = 10
# How long the page may take to go live and draw the map: on a loaded shared
# machine Chromium's first layout alone took over 30 s (Playwright's default).
READY_TIMEOUT_S = 180
MEASURE = """() => new Promise((done) => {
  const gaps = []; let last = performance.now(); const end = last + %d;
  function tick(now) { gaps.push(now - last); last = now; if (now < end) requestAnimationFrame(tick); else done(gaps); }
  requestAnimationFrame(tick);
})""" % (SECONDS * 1000)


def load(url: str, stop: threading.Event) -> None:
    session = requests.Session()
    k = 0
    while not stop.is_set():
        try:
            session.post(url + "/api/sensors", timeout=10,
                         json=[{"sensor_id": f"fps-{(k * 50 + i) % 500}", "value": float(k + i)} for i in range(50)])
        except requests.RequestException:   # a slow answer under load: keep loading
            pass
        k += 1
        time.sleep(0.1)


def run() -> dict:
    from playwright.sync_api import sync_playwright
    server = start_server(SIMULATOR="on")
    stop = threading.Event()
    loader = threading.Thread(target=load, args=(server.url, stop), daemon=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=ensure_installed("chromium", "chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(server.url, timeout=READY_TIMEOUT_S * 1000)
            page.wait_for_selector("#connection.live", timeout=READY_TIMEOUT_S * 1000)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not page.evaluate("() => !!(window.bhsMap && bhsMap.nodes().length)"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the map was not drawn within {READY_TIMEOUT_S} s")
                time.sleep(0.2)
            page.evaluate("() => bhsMap.getElementById('Z_SOUTH').emit('tap')")   # its trend charts redraw
            loader.start()
            time.sleep(2)
            gaps = page.evaluate(MEASURE)
            browser.close()
    finally:
        stop.set()
        server.stop()
    gaps = gaps[1:]
    return {"fps": 1000 / statistics.mean(gaps), "p99_frame_ms": sorted(gaps)[int(0.99 * len(gaps))],
            "long_frames": sum(g > 50 for g in gaps), "frames": len(gaps)}


if __name__ == "__main__":
    r = run()
    print(f"dashboard: {r['fps']:.0f} fps mean over {r['frames']} frames, p99 frame {r['p99_frame_ms']:.1f} ms, "
          f"{r['long_frames']} frames over 50 ms (simulator + 500 readings/s)")
