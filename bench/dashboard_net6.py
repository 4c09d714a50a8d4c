"""The dashboard's map at EPANET Net6 size (3,356 nodes, 3,892 links).

Starts a server with NETWORK_FILE set to wntr's bundled Net6.inp, opens the
dashboard in Debian's headless Chromium at 1366x768 and prints how long the
map took to build (Cytoscape.js with the level of detail for large networks),
how many labels it shows, whether any label boxes overlap, and the frame
times over 5 s while idle and while zooming. Run: python bench/dashboard_net6.py
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import start_server  # noqa: E402
from testkit.browser import CHROMIUM_ARGS  # noqa: E402
from testkit.services import ensure_installed  # noqa: E402

SECONDS = 5
# Frame gaps while zooming between `low` and `high` times the fitted zoom (0: idle).
FRAMES = """([low, high]) => { const base = bhsMap.zoom(); return new Promise((done) => {
  const gaps = []; let last = performance.now(); const end = last + %d; let k = 0;
  function tick(now) {
    gaps.push(now - last); last = now;
    if (high) { k += 1; bhsMap.zoom({ level: base * (low + (high - low) * Math.abs(Math.sin(k / 30))), renderedPosition: { x: 300, y: 300 } }); }
    if (now < end) requestAnimationFrame(tick); else done(gaps);
  }
  requestAnimationFrame(tick);
}).then((gaps) => { bhsMap.zoom(base); return gaps; }); }""" % (SECONDS * 1000)
OVERLAPS = """() => {
  const boxes = bhsMap.elements().filter((e) => e.visible() && e.style('label') && !e.hasClass('nolabel'))
    .map((e) => e.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true }));
  let n = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) n++;
  }
  return [boxes.length, n];
}"""


def net6() -> Path:
    import wntr
    return Path(wntr.__file__).parent / "library" / "networks" / "Net6.inp"


def run() -> dict:
    from playwright.sync_api import sync_playwright
    server = start_server(SIMULATOR="on", NETWORK_FILE=str(net6()))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=ensure_installed("chromium", "chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            opened = time.monotonic()
            page.goto(server.url)
            while not page.evaluate("() => !!(window.bhsMap && bhsMap.nodes().length)"):
                time.sleep(0.1)
            shown_after = time.monotonic() - opened
            build_ms, nodes, links = page.evaluate("() => [bhsMapBuildMs, bhsMap.nodes().length, bhsMap.edges().length]")
            labels, overlapping = page.evaluate(OVERLAPS)
            idle = page.evaluate(FRAMES, [0, 0])[1:]
            zooming = page.evaluate(FRAMES, [1, 2])[1:]          # the overview: links and works
            detail = page.evaluate(FRAMES, [3, 6])[1:]           # zoomed in: every node, culled to the view
            browser.close()
    finally:
        server.stop()

    def p95(gaps):
        return sorted(gaps)[int(0.95 * len(gaps))]
    return {"nodes": nodes, "links": links, "build_ms": build_ms, "shown_after_s": shown_after,
            "labels": labels, "overlapping": overlapping,
            "idle_fps": 1000 / statistics.mean(idle), "idle_p95_ms": p95(idle),
            "zoom_fps": 1000 / statistics.mean(zooming), "zoom_p95_ms": p95(zooming),
            "detail_fps": 1000 / statistics.mean(detail), "detail_p95_ms": p95(detail),
            "load": os.getloadavg()[0]}


if __name__ == "__main__":
    r = run()
    print(f"Net6 map: {r['nodes']} nodes, {r['links']} links; built in {r['build_ms']} ms, on screen "
          f"{r['shown_after_s']:.1f} s after opening; {r['labels']} labels, {r['overlapping']} overlapping; "
          f"idle {r['idle_fps']:.0f} fps (p95 frame {r['idle_p95_ms']:.0f} ms), zooming the overview "
          f"{r['zoom_fps']:.0f} fps (p95 {r['zoom_p95_ms']:.0f} ms), zooming in the detail {r['detail_fps']:.0f} fps "
          f"(p95 {r['detail_p95_ms']:.0f} ms); machine load average {r['load']:.1f}")
