"""The Open Government Data platform's resource API (data.gov.in), for CPCB/KSPCB
water-quality stations and CWC reservoir storage.

`GET {url}/resource/{resource_id}?api-key=…&format=json&offset=…&limit=…&filters[f]=v`
answers `{"records": [...], "total": N, "count": n, "offset": o, "limit": l}`.
We page through `total`; when the server stops short, what came is kept and the
shortfall is a counted reason. Values are strings, with "NA", "-" or "" for missing.
"""
from __future__ import annotations

import math
import os
from datetime import datetime
from zoneinfo import ZoneInfo

from app.adapters.sources.base import FetchResult, Observation, number
from app.adapters.sources.config import OgdSource
from app.adapters.sources.http import FetchFailed, NotModified, SourceHttp

# Most pages one fetch reads, whatever `total` claims.
MAX_PAGES = 200


class OgdAdapter:
    def __init__(self, config: OgdSource, environ=os.environ):
        self.config = config
        self.api_key = environ.get(config.api_key_env, "") if config.api_key_env else ""
        self.zone = ZoneInfo(config.timezone)

    def fetch(self, http: SourceHttp, now: float) -> FetchResult:
        c = self.config
        if self.api_key:
            http.add_secret(self.api_key)
        url = f"{c.base_url}/resource/{c.resource_id}"
        result = FetchResult()
        offset, total, pages, first = 0, None, 0, None
        while pages < MAX_PAGES:
            params = {"format": "json", "offset": offset, "limit": c.page_size,
                      **{f"filters[{k}]": v for k, v in c.filters.items()}}
            if self.api_key:
                params["api-key"] = self.api_key
            first = first or params
            try:
                # Only the first page is asked conditionally: unchanged first page, unchanged resource.
                page = http.get_json(url, params, conditional=offset == 0)
            except NotModified:
                result.not_modified = True
                return result
            pages += 1
            records = self._records(page, offset)
            if total is None:
                total = self._total(page, len(records))
            if not records:
                break
            for record in records:
                self._map(record, result)
            result.fetched += len(records)
            offset += len(records)
            if offset >= total:
                break
        if offset == 0:
            # Not remembered as current: the next fetch asks for everything again.
            http.forget(url, first)
            raise FetchFailed("empty answer: no records" + (" (total 0)" if total == 0 else ""))
        if total is not None and offset < total:
            short = total - offset
            result.dropped[f"server stopped short of total ({offset} of {total})"] += short
            result.warnings.append(f"got {offset} of {total} records; the server served no more")
        return result

    @staticmethod
    def _records(page, offset: int) -> list:
        if not isinstance(page, dict):
            raise FetchFailed(f"unexpected answer: a JSON {type(page).__name__}, not an object")
        if "records" not in page:
            message = page.get("message") or page.get("error") or ""
            raise FetchFailed("answer has no 'records'" + (f": {str(message)[:120]}" if message else ""))
        records = page["records"]
        if not isinstance(records, list):
            raise FetchFailed("'records' is not a list")
        return records

    @staticmethod
    def _total(page: dict, served: int) -> int:
        total = page.get("total")
        try:
            total = int(total)
        except (TypeError, ValueError):
            return served       # no usable total: take the page as everything
        return max(total, 0)

    def _map(self, record, result: FetchResult) -> None:
        c = self.config
        if not isinstance(record, dict):
            result.dropped["record is not an object"] += 1
            return
        node = c.stations.get(str(record.get(c.station_field, "")).strip())
        if node is None:
            result.dropped["unmapped station"] += 1
            return
        ts = self._time(record.get(c.time_field))
        if ts is None:
            result.dropped[f"missing or unreadable {c.time_field}"] += 1
            return
        for metric, column in c.metrics.items():
            raw = record.get(column)
            try:
                value = number(raw)
            except ValueError:
                result.dropped[f"{metric}: not a number"] += 1
                continue
            if value is None:
                result.dropped[f"{metric}: missing value"] += 1
                continue
            result.observations.append(Observation(node, metric, value, ts, c.units.get(metric)))

    def _time(self, text) -> float | None:
        if not isinstance(text, str) or not text.strip():
            return None
        try:
            moment = datetime.strptime(text.strip(), self.config.time_format)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        ts = moment.timestamp()
        return ts if math.isfinite(ts) else None
