"""The one HTTP client of every external source: a shared requests.Session.

- connect and read timeouts on every request;
- retries with exponential back-off for connection errors, 429 and 5xx by
  urllib3's `Retry`, which honours `Retry-After` (capped, so one server cannot
  park a source for hours);
- conditional requests: the ETag / Last-Modified of each URL's last answer go
  back as If-None-Match / If-Modified-Since, and a 304 means "nothing new";
- every answer that is not the JSON we asked for (an HTTP error, an HTML page,
  malformed, truncated or oversized) becomes `FetchFailed` with a plain reason.

Secrets (API keys) that travel in URLs are masked in those reasons and in
urllib3's own log lines.
"""
from __future__ import annotations

import json
import logging
import re
import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Largest answer read into memory; a bigger one is refused, not parsed.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Characters of an error body quoted in a reason.
QUOTED_CHARS = 120
USER_AGENT = "bengaluru-heart-system/1 (+external sources)"
MASK = "***"


class FetchFailed(Exception):
    """A fetch that gave us nothing usable; `reason` is shown in /api/sources."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotModified(Exception):
    """The server answered 304: what we have is current."""


class _MaskSecrets(logging.Filter):
    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            masked = mask(text, self.secrets)
            if masked != text:
                record.msg, record.args = masked, None
        return True


def mask(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class SourceHttp:
    def __init__(self, connect_timeout_s: float, read_timeout_s: float, retries: int,
                 backoff_s: float, retry_after_max_s: float):
        self.timeout = (connect_timeout_s, read_timeout_s)
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                      backoff_factor=backoff_s, status_forcelist=RETRY_STATUSES,
                      # STAC search is a POST but only reads; retrying it is safe.
                      allowed_methods=frozenset({"GET", "HEAD", "POST"}),
                      respect_retry_after_header=True, retry_after_max=int(retry_after_max_s),
                      raise_on_status=False)
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.secrets: set[str] = set()
        self._validators: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._filter = _MaskSecrets(self.secrets)
        for name in ("urllib3.connectionpool", "urllib3.util.retry"):
            logging.getLogger(name).addFilter(self._filter)

    def add_secret(self, value: str) -> None:
        self.secrets.add(value)

    def close(self) -> None:
        self.session.close()
        for name in ("urllib3.connectionpool", "urllib3.util.retry"):
            logging.getLogger(name).removeFilter(self._filter)

    def get_json(self, url: str, params: dict | None = None, conditional: bool = True):
        return self._json("GET", url, params=params, conditional=conditional)

    def post_json(self, url: str, body: dict):
        return self._json("POST", url, body=body, conditional=False)

    def _json(self, method: str, url: str, params=None, body=None, conditional=True):
        key = url + "?" + json.dumps(params or {}, sort_keys=True)
        headers = {}
        if conditional:
            with self._lock:
                known = self._validators.get(key, {})
            if "etag" in known:
                headers["If-None-Match"] = known["etag"]
            if "last_modified" in known:
                headers["If-Modified-Since"] = known["last_modified"]
        try:
            with self.session.request(method, url, params=params, json=body, headers=headers,
                                      timeout=self.timeout, stream=True) as reply:
                if reply.status_code == 304:
                    raise NotModified()
                content = self._read(reply)
                status, ctype = reply.status_code, reply.headers.get("Content-Type", "")
                validators = {"etag": reply.headers.get("ETag"),
                              "last_modified": reply.headers.get("Last-Modified")}
        except (NotModified, FetchFailed):
            raise
        except requests.Timeout:
            raise FetchFailed(f"timed out (connect {self.timeout[0]:g}s, read {self.timeout[1]:g}s)") from None
        except requests.ConnectionError as error:
            raise FetchFailed(self._mask(f"connection failed: {_root_cause(error)}")) from None
        except requests.RequestException as error:
            raise FetchFailed(self._mask(f"request failed: {_root_cause(error)}")) from None
        looks_html = "html" in ctype.lower() or content.lstrip()[:1] == b"<"
        if status >= 400:
            what = "an HTML error page" if looks_html else _quote(content)
            raise FetchFailed(f"HTTP {status} after retries: {what}" if status in RETRY_STATUSES
                              else f"HTTP {status}: {what}")
        if status != 200:
            raise FetchFailed(f"unexpected HTTP {status}")
        if not content.strip():
            raise FetchFailed("empty answer (no body)")
        if looks_html:
            raise FetchFailed("an HTML page instead of JSON (a portal or error page)")
        try:
            data = json.loads(content)
        except ValueError as error:
            raise FetchFailed(f"malformed JSON: {error}") from None
        if conditional:
            kept = {k: v for k, v in validators.items() if v}
            with self._lock:
                if kept:
                    self._validators[key] = kept
                else:
                    self._validators.pop(key, None)
        return data

    def forget(self, url: str, params: dict | None = None) -> None:
        """Drop a URL's validators, so its next fetch is unconditional."""
        with self._lock:
            self._validators.pop(url + "?" + json.dumps(params or {}, sort_keys=True), None)

    def _read(self, reply: requests.Response) -> bytes:
        chunks, size = [], 0
        for chunk in reply.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise FetchFailed(f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MB")
            chunks.append(chunk)
        return b"".join(chunks)

    def _mask(self, text: str) -> str:
        return mask(text, self.secrets)


def _root_cause(error: Exception) -> str:
    """The innermost message of a requests/urllib3 error chain, shortened."""
    text = str(error)
    match = re.search(r"\(Caused by \w+\((.*)\)\)$", text)
    if match:
        text = match.group(1)
    if "Connection refused" in text:
        return "connection refused"
    if "IncompleteRead" in text or "Connection broken" in text:
        return f"answer cut short (truncated): {text[:QUOTED_CHARS]}"
    return text[:200]


def _quote(content: bytes) -> str:
    text = content.decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text[:QUOTED_CHARS]) if text else "no body"
