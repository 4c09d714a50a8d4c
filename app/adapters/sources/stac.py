"""Sentinel-2 L2A scenes from a STAC API: water-quality indices over open water bodies.

`POST {url}/search` with `collections`, `bbox`, `datetime` and a cloud-cover
filter lists the scenes over each configured water body (a reservoir or an
intake; covered tanks are invisible from orbit). For each scene not processed
before, rasterio reads only the window over the water body from the green,
red, red-edge and NIR Cloud-Optimized GeoTIFFs, by HTTP range requests
(GDAL's /vsicurl/), never whole scenes. Over the water pixels (NDWI > 0) we
publish, at the scene's time, as `satellite:<id>` readings:
- `ndti` = (red - green) / (red + green), turbidity (Lacaux et al. 2007);
- `ndci` = (red-edge - red) / (red-edge + red), chlorophyll-a (Mishra & Mishra
  2012; it needs the red-edge band B05 besides red, green and NIR);
- `cloud_cover` (%), the scene's own.

GDAL's reader is C with its own HTTP client (libcurl), so the raster reads run
on a real OS thread (`offload`), off the event loop, with timeouts and retries
configured to match the shared session's. The search itself goes through the
shared requests.Session.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from app.adapters.sources.base import FetchResult, Observation
from app.adapters.sources.config import BANDS, StacSource
from app.adapters.sources.http import FetchFailed, SourceHttp

logger = logging.getLogger(__name__)

# NDWI (green - nir) / (green + nir) above this is open water (McFeeters 1996).
WATER_NDWI = 0.0
# Fewer water pixels than this in the window: cloud, shadow or a dry bed; no reading.
MIN_WATER_PIXELS = 4
# Scene ids remembered per water body as processed (oldest forgotten past this).
PROCESSED_KEPT = 2000
INDEX_DECIMALS = 4
GDAL_RETRIES = 2
GDAL_RETRY_DELAY_S = 0.5


def _bbox(ring: list[tuple[float, float]]) -> list[float]:
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return [min(lons), min(lats), max(lons), max(lats)]


def _scene_time(text) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class StacAdapter:
    def __init__(self, config: StacSource, offload=None):
        self.config = config
        self.offload = offload or (lambda fn, *args: fn(*args))
        self.processed: dict[str, list[str]] = {node: [] for node in config.water_bodies}

    def fetch(self, http: SourceHttp, now: float) -> FetchResult:
        c = self.config
        result = FetchResult()
        errors: list[str] = []
        start = datetime.fromtimestamp(now, timezone.utc) - timedelta(days=c.lookback_days)
        window = f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{datetime.fromtimestamp(now, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for node, ring in c.water_bodies.items():
            body = {"collections": [c.collection], "bbox": _bbox(ring), "datetime": window,
                    "limit": c.max_scenes, "query": {"eo:cloud_cover": {"lt": c.max_cloud}},
                    "sortby": [{"field": "properties.datetime", "direction": "desc"}]}
            answer = http.post_json(f"{c.base_url}/search", body)
            features = self._features(answer)
            if not features:
                # Not a failure: a cloudy week has no scene under max_cloud.
                result.warnings.append(f"{node}: no scene in the last {c.lookback_days} days "
                                       f"under {c.max_cloud:g}% cloud")
            for feature in sorted(features, key=lambda f: str(f.get("properties", {}).get("datetime"))):
                result.fetched += 1
                self._scene(node, ring, feature, http, result, errors)
        if errors and not result.observations:
            raise FetchFailed(errors[0])
        return result

    @staticmethod
    def _features(answer) -> list[dict]:
        if not isinstance(answer, dict) or answer.get("type") != "FeatureCollection":
            raise FetchFailed("answer is not a STAC FeatureCollection")
        features = answer.get("features")
        if not isinstance(features, list):
            raise FetchFailed("answer has no 'features' list")
        return [f for f in features if isinstance(f, dict)]

    def _scene(self, node: str, ring, feature: dict, http: SourceHttp, result: FetchResult,
               errors: list[str]) -> None:
        c = self.config
        scene_id = feature.get("id")
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        ts = _scene_time(props.get("datetime"))
        cloud = props.get("eo:cloud_cover")
        if not isinstance(scene_id, str) or ts is None:
            result.dropped["scene without id or datetime"] += 1
            return
        if scene_id in self.processed[node]:
            result.skipped += 1
            return
        if isinstance(cloud, (int, float)) and cloud > c.max_cloud:
            result.dropped["scene cloudier than max_cloud"] += 1
            return
        assets = feature.get("assets") if isinstance(feature.get("assets"), dict) else {}
        hrefs, scales = {}, {}
        for band, key in c.bands.items():
            asset = assets.get(key)
            if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                hrefs[band] = asset["href"]
                scales[band] = _scale(asset)
        missing = {"green", "red", "nir"} - set(hrefs)
        if missing:
            result.dropped[f"scene lacks band(s) {', '.join(sorted(missing))}"] += 1
            return
        try:
            indices = self.offload(water_indices, hrefs, scales, ring, http.timeout)
        except FetchFailed as error:
            errors.append(f"scene {scene_id}: {error.reason}")
            result.dropped["band read failed"] += 1
            return
        self._remember(node, scene_id)
        result.scenes.append(scene_id)
        if indices is None:
            result.dropped["too few water pixels (cloud, shadow or dry)"] += 1
            return
        for metric, value in indices.items():
            result.observations.append(Observation(node, metric, value, ts, None))
        if isinstance(cloud, (int, float)):
            result.observations.append(Observation(node, "cloud_cover", float(cloud), ts, "%"))

    def _remember(self, node: str, scene_id: str) -> None:
        kept = self.processed[node]
        kept.append(scene_id)
        del kept[:-PROCESSED_KEPT]


def _scale(asset: dict) -> tuple[float, float]:
    """DN -> reflectance from the asset's raster:bands (L2A: scale 1e-4, offset -0.1 since 2022)."""
    bands = asset.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        scale, offset = bands[0].get("scale", 1.0), bands[0].get("offset", 0.0)
        if isinstance(scale, (int, float)) and isinstance(offset, (int, float)):
            return float(scale), float(offset)
    return 1.0, 0.0


def water_indices(hrefs: dict[str, str], scales: dict[str, tuple[float, float]], ring,
                  timeout: tuple[float, float]) -> dict[str, float] | None:
    """Read the window over `ring` from each band; NDTI/NDCI means over its water pixels.

    Runs on a real thread (GDAL blocks). Raises FetchFailed on a read error.
    """
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom
    from rasterio.windows import Window, from_bounds

    options = {
        # Open only the file asked for, and only over HTTP ranges.
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, int(timeout[0]))),
        "GDAL_HTTP_TIMEOUT": str(max(1, int(timeout[1]))),
        "GDAL_HTTP_MAX_RETRY": str(GDAL_RETRIES),
        "GDAL_HTTP_RETRY_DELAY": str(GDAL_RETRY_DELAY_S),
        "GDAL_HTTP_MULTIRANGE": "NO",
        "VSI_CACHE": "FALSE",
        # No memory of earlier answers (a failed read would be remembered, a new scene missed).
        "CPL_VSIL_CURL_NON_CACHED": "/vsicurl/",
    }
    geometry = {"type": "Polygon", "coordinates": [[list(p) for p in ring] + [list(ring[0])]]}
    arrays: dict[str, np.ndarray] = {}
    shape = transform = None
    try:
        with rasterio.Env(**options):
            for band in BANDS:
                if band not in hrefs:
                    continue
                with rasterio.open(hrefs[band]) as src:
                    shape_here = transform_geom("EPSG:4326", src.crs, geometry)
                    xs = [p[0] for p in shape_here["coordinates"][0]]
                    ys = [p[1] for p in shape_here["coordinates"][0]]
                    win = from_bounds(min(xs), min(ys), max(xs), max(ys), src.transform)
                    win = win.round_offsets().round_lengths().intersection(
                        Window(0, 0, src.width, src.height))
                    if shape is None:        # the first band (red, 10 m) sets the grid
                        shape = (int(win.height), int(win.width))
                        transform = src.window_transform(win)
                        footprint = shape_here
                    data = src.read(1, window=win, out_shape=shape, masked=True,
                                    resampling=Resampling.bilinear).astype("float64")
                scale, offset = scales.get(band, (1.0, 0.0))
                arrays[band] = data.filled(np.nan) * scale + offset
    except RasterioError as error:
        raise FetchFailed(f"cannot read band {band}: {str(error)[:160]}") from None
    except ValueError as error:      # the window misses the raster
        raise FetchFailed(f"band {band}: water body outside the scene ({error})") from None
    inside = geometry_mask([footprint], out_shape=shape, transform=transform, invert=True)
    green, red, nir = arrays["green"], arrays["red"], arrays["nir"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndwi = (green - nir) / (green + nir)
        water = inside & np.isfinite(ndwi) & (ndwi > WATER_NDWI) & (green > 0) & (red > 0)
        if int(water.sum()) < MIN_WATER_PIXELS:
            return None
        out = {"ndti": float(np.nanmean(((red - green) / (red + green))[water]))}
        if "rededge" in arrays:
            rededge = arrays["rededge"]
            ndci = ((rededge - red) / (rededge + red))[water]
            if np.isfinite(ndci).any():
                out["ndci"] = float(np.nanmean(ndci))
    return {k: round(v, INDEX_DECIMALS) for k, v in out.items()}
