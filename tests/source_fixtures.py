"""Loopback fixture servers for the external sources: OGD pages, Open-Meteo, STAC + COGs.

Each serves its type's documented shape from the recorded-style files in
tests/fixtures/sources/, re-stamped to the present, and can be told to fail
in the ways real agencies' servers do (`fail(kind, mode, times)`):
`hang` (answers only after HANG_S: a read timeout), `500`, `429` (with
Retry-After: 1), `malformed` (cut-off JSON), `html` (a portal page),
`empty` (no records / no hours), `truncated` (Content-Length larger than the
body). `ogd_total` larger than the records makes the server stop short.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
IST = timezone(timedelta(hours=5, minutes=30))
# How long a `hang` fault holds the answer: past the tests' read timeout, and bounded.
HANG_S = 2.5
HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>Service unavailable</body></html>"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def ogd_time(ts: float) -> str:
    """A time as the KSPCB resource writes it: IST, dd-mm-YYYY HH:MM:SS."""
    return datetime.fromtimestamp(ts, IST).strftime("%d-%m-%Y %H:%M:%S")


class SourceFixtureServer:
    def __init__(self):
        self.lock = threading.Lock()
        now = time.time()
        self.ogd_records = copy.deepcopy(recorded("ogd_kspcb_wq.json")["records"])
        self.stamp_ogd(now - 600)
        self.ogd_total: int | None = None          # None: the number of records
        self.ogd_meta = {k: v for k, v in recorded("ogd_kspcb_wq.json").items() if k != "records"}
        self.weather_hours = self.make_weather(now)
        self.stac_scenes: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}
        self.requests: list[dict] = []
        self.range_bytes = 0
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fixture._handle(self, "GET", b"")

            def do_HEAD(self):
                fixture._handle(self, "HEAD", b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fixture._handle(self, "POST", body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "SourceFixtureServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what is served ------------------------------------------------------
    def stamp_ogd(self, ts: float) -> None:
        for record in self.ogd_records:
            record["last_update"] = ogd_time(ts)

    @staticmethod
    def make_weather(now: float, past_hours: int = 24, ahead_hours: int = 48) -> list[tuple[float, float, float]]:
        first = int(now // 3600) * 3600 - past_hours * 3600
        hours = []
        for k in range(past_hours + ahead_hours):
            ts = first + k * 3600
            hour = (ts / 3600 + 5.5) % 24
            temperature = 24 + 6 * __import__("math").sin((hour - 9) / 24 * 6.283)
            rain = 2.0 if 15 <= hour < 18 else 0.0
            hours.append((ts, round(temperature, 1), rain))
        return hours

    def fail(self, kind: str, mode: str | None, times: int | None = None) -> None:
        """Make requests of `kind` (ogd, open_meteo, stac, cog) fail; `times=None`: until cleared."""
        with self.lock:
            if mode is None:
                self.faults.pop(kind, None)
            else:
                self.faults[kind] = [mode, times]

    def seen(self, kind: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["kind"] == kind]

    # -- the handler ---------------------------------------------------------
    def _kind(self, path: str) -> str:
        if path.startswith("/resource/"):
            return "ogd"
        if path == "/v1/forecast":
            return "open_meteo"
        if path.endswith("/search"):
            return "stac"
        return "cog"

    def _fault(self, kind: str) -> str | None:
        with self.lock:
            entry = self.faults.get(kind)
            if not entry:
                return None
            mode, times = entry
            if times is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self.faults[kind]
            return mode

    def _handle(self, h: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        parsed = urlparse(h.path)
        kind = self._kind(parsed.path)
        with self.lock:
            self.requests.append({"kind": kind, "method": method, "path": parsed.path,
                                  "query": parse_qs(parsed.query), "headers": dict(h.headers),
                                  "body": body, "at": time.time()})
        mode = self._fault(kind)
        if mode == "hang":
            time.sleep(HANG_S)
            mode = None
        if mode == "500":
            return self._send(h, 500, b'{"error": "internal"}')
        if mode == "429":
            return self._send(h, 429, b'{"error": "rate limited"}', headers={"Retry-After": "1"})
        if mode == "html":
            return self._send(h, 200, HTML_PAGE, "text/html; charset=utf-8")
        if mode == "malformed":
            return self._send(h, 200, b'{"records": [{"station_code": "KA-TKH-01", "ph": ')
        if mode == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "5000")
            h.end_headers()
            h.wfile.write(b'{"records": [')
            h.wfile.flush()
            h.close_connection = True
            return
        if kind == "ogd":
            return self._ogd(h, parse_qs(parsed.query), empty=mode == "empty")
        if kind == "open_meteo":
            return self._open_meteo(h, empty=mode == "empty")
        if kind == "stac":
            return self._stac(h, empty=mode == "empty")
        return self._file(h, parsed.path, method)

    def _send(self, h, status: int, content: bytes, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(content)

    def _conditional(self, h, content: bytes) -> bool:
        """Answer 304 when the client holds the current ETag; else send with one."""
        etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
        if h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return True
        self._send(h, 200, content, headers={"ETag": etag})
        return False

    def _ogd(self, h, query: dict, empty: bool) -> None:
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["10"])[0])
        with self.lock:
            records = [] if empty else self.ogd_records
            total = 0 if empty else (self.ogd_total if self.ogd_total is not None else len(records))
            page = records[offset:offset + limit]
            answer = {**self.ogd_meta, "records": page, "total": total, "count": len(page),
                      "limit": str(limit), "offset": str(offset)}
        self._conditional(h, json.dumps(answer).encode())

    def _open_meteo(self, h, empty: bool) -> None:
        answer = recorded("open_meteo_forecast.json")
        with self.lock:
            hours = [] if empty else list(self.weather_hours)
        answer["hourly"] = {
            "time": [datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M") for ts, _, _ in hours],
            "temperature_2m": [t for _, t, _ in hours],
            "precipitation": [r for _, _, r in hours]}
        self._send(h, 200, json.dumps(answer).encode())

    def _stac(self, h, empty: bool) -> None:
        template = recorded("stac_search.json")
        features = []
        with self.lock:
            scenes = [] if empty else list(self.stac_scenes)
        for scene in scenes:
            feature = json.loads(json.dumps(template["features"][0]).replace("{base}", self.url)
                                 .replace("{scene}", scene["id"]))
            feature["id"] = scene["id"]
            feature["properties"]["datetime"] = scene["datetime"]
            feature["properties"]["eo:cloud_cover"] = scene["cloud"]
            features.append(feature)
        answer = {**template, "features": features, "numberReturned": len(features),
                  "numberMatched": len(features), "context": {"returned": len(features), "matched": len(features)}}
        self._send(h, 200, json.dumps(answer).encode(), "application/geo+json")

    def _file(self, h, path: str, method: str) -> None:
        with self.lock:
            data = self.files.get(path)
        if data is None:
            return self._send(h, 404, b'{"error": "not found"}')
        match = re.match(r"bytes=(\d+)-(\d*)$", h.headers.get("Range") or "")
        if method == "HEAD" or not match:
            if method == "GET":
                with self.lock:
                    self.range_bytes += len(data)
            return self._send(h, 200, data, "image/tiff", headers={"Accept-Ranges": "bytes"})
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        part = data[start:end + 1]
        with self.lock:
            self.range_bytes += len(part)
        h.send_response(206)
        h.send_header("Content-Type", "image/tiff")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        h.send_header("Content-Length", str(len(part)))
        h.end_headers()
        h.wfile.write(part)


# A tiny Sentinel-2-like scene: reflectances of open water and of land (L2A, DN = (r + 0.1) / 1e-4).
SCENE_BOUNDS = (77.30, 12.94, 77.35, 12.98)
SCENE_SIZE = (320, 400)          # rows, columns at "10 m"; red-edge at half that
LAKE = (77.325, 12.96, 0.012, 0.007)   # centre lon, lat and half-axes (degrees)
WATER = {"green": 0.08, "red": 0.06, "rededge": 0.05, "nir": 0.02}
LAND = {"green": 0.07, "red": 0.09, "rededge": 0.15, "nir": 0.30}
BAND_FILES = {"green": "B03.tif", "red": "B04.tif", "rededge": "B05.tif", "nir": "B08.tif"}


def expected_indices() -> dict[str, float]:
    w = WATER
    return {"ndti": (w["red"] - w["green"]) / (w["red"] + w["green"]),
            "ndci": (w["rededge"] - w["red"]) / (w["rededge"] + w["red"])}


def add_scene(fixture: SourceFixtureServer, folder: Path, scene_id: str, when: float, cloud: float) -> int:
    """Write the scene's four bands as Cloud-Optimized GeoTIFFs and serve them; returns their bytes."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_bounds

    total = 0
    for band, name in BAND_FILES.items():
        factor = 2 if band == "rededge" else 1
        rows, cols = SCENE_SIZE[0] // factor, SCENE_SIZE[1] // factor
        transform = from_bounds(*SCENE_BOUNDS, cols, rows)
        lon = SCENE_BOUNDS[0] + (np.arange(cols) + 0.5) * (SCENE_BOUNDS[2] - SCENE_BOUNDS[0]) / cols
        lat = SCENE_BOUNDS[3] - (np.arange(rows) + 0.5) * (SCENE_BOUNDS[3] - SCENE_BOUNDS[1]) / rows
        glon, glat = np.meshgrid(lon, lat)
        lake = ((glon - LAKE[0]) / LAKE[2]) ** 2 + ((glat - LAKE[1]) / LAKE[3]) ** 2 <= 1
        reflectance = np.where(lake, WATER[band], LAND[band])
        dn = np.round((reflectance + 0.1) / 1e-4).astype("uint16")
        path = folder / f"{scene_id}-{name}"
        with rasterio.open(path, "w", driver="COG", width=cols, height=rows, count=1, dtype="uint16",
                           crs="EPSG:4326", transform=transform, nodata=0, blocksize=128,
                           compress="NONE", overviews="NONE") as dst:
            dst.write(dn, 1)
        data = path.read_bytes()
        total += len(data)
        with fixture.lock:
            fixture.files[f"/cogs/{scene_id}/{name}"] = data
    with fixture.lock:
        fixture.stac_scenes.append({"id": scene_id, "datetime": datetime.fromtimestamp(when, timezone.utc)
                                    .strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "cloud": cloud})
    return total
