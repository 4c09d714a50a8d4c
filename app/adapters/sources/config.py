"""The sources file (SOURCES_FILE): one entry per external source, checked at start.

The shape is the one users and tests depend on (README, sources.example.json);
fields may be added, never changed. A bad file stops the start with a message
naming the entry and the field (`SourcesFileError`).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Union, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

# Shortest fetch interval accepted: tests run sources every few seconds.
MIN_INTERVAL_S = 5
# The bands a STAC source reads, in the order they are read.
Band = Literal["red", "green", "nir", "rededge"]
BANDS = get_args(Band)
# Node ids become part of sensor ids (`<node>.<metric>`), so they keep to that alphabet.
NODE_ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,48}$")]
METRIC = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
SOURCE_ID = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
ENV_NAME = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class SourcesFileError(ValueError):
    """The sources file cannot be used; the message names the entry and field."""


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SOURCE_ID
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    interval_s: Annotated[float, Field(ge=MIN_INTERVAL_S)]
    # Our own addition: a source can be listed but not fetched.
    enabled: bool = True

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def provenance(self) -> str:
        """The `source` field of this source's readings."""
        return f"api:{self.id}"

    @property
    def secret_env(self) -> str | None:
        return None


class OgdSource(SourceConfig):
    """A resource of the Open Government Data platform (CPCB/KSPCB quality, CWC storage)."""

    type: Literal["ogd"]
    resource_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    api_key_env: ENV_NAME | None = None
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    station_field: str
    time_field: str
    time_format: str = "%d-%m-%Y %H:%M:%S"
    timezone: str = "Asia/Kolkata"
    stations: dict[str, NODE_ID] = Field(min_length=1)
    metrics: dict[METRIC, str] = Field(min_length=1)
    # Additions: units per metric, and `filters[field]=value` sent with every page.
    units: dict[METRIC, str] = {}
    filters: dict[str, str] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("time_format")
    @classmethod
    def _usable_format(cls, value: str) -> str:
        try:
            datetime.strptime(datetime(2024, 1, 2, 3, 4, 5).strftime(value), value)
        except ValueError as error:
            raise ValueError(f"time_format {value!r} does not parse its own output: {error}") from None
        return value

    @property
    def secret_env(self) -> str | None:
        return self.api_key_env


class OpenMeteoSource(SourceConfig):
    """Hourly weather at one point: observed hours as readings, forecast hours as covariates."""

    type: Literal["open_meteo"]
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    node_id: NODE_ID
    past_days: Annotated[int, Field(ge=0, le=92)] = 1
    # Addition: how many forecast days to ask for (the covariates' horizon).
    forecast_days: Annotated[int, Field(ge=1, le=16)] = 2


Ring = Annotated[list[tuple[float, float]], Field(min_length=3)]


class StacSource(SourceConfig):
    """Sentinel-2 L2A scenes over open water bodies, from a STAC API."""

    type: Literal["stac"]
    collection: str = "sentinel-2-l2a"
    max_cloud: Annotated[float, Field(ge=0, le=100)] = 20
    lookback_days: Annotated[int, Field(ge=1, le=365)] = 10
    water_bodies: dict[NODE_ID, Ring] = Field(min_length=1)
    # Additions: the asset keys of the bands (Earth Search names by default) and
    # the scenes read per fetch, newest first.
    bands: dict[Band, str] = {
        "green": "green", "red": "red", "rededge": "rededge1", "nir": "nir"}
    max_scenes: Annotated[int, Field(ge=1, le=50)] = 5

    @property
    def provenance(self) -> str:
        return f"satellite:{self.id}"

    @field_validator("water_bodies")
    @classmethod
    def _lon_lat(cls, bodies):
        for name, ring in bodies.items():
            for lon, lat in ring:
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError(f"{name}: [{lon}, {lat}] is not a [longitude, latitude] pair")
        return bodies


AnySource = Annotated[Union[OgdSource, OpenMeteoSource, StacSource], Field(discriminator="type")]


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[AnySource]


_ENTRY = TypeAdapter(AnySource)


def parse_sources(data) -> list[SourceConfig]:
    """Check the decoded file; raise SourcesFileError naming the entry and field."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise SourcesFileError('the sources file must be {"sources": [...]}')
    extra = sorted(set(data) - {"sources"})
    if extra:
        raise SourcesFileError(f"unknown top-level field(s): {', '.join(extra)}")
    sources, seen = [], set()
    for index, entry in enumerate(data["sources"]):
        name = entry.get("id") if isinstance(entry, dict) else None
        label = f"entry {index}" + (f" ({name!r})" if isinstance(name, str) else "")
        try:
            source = _ENTRY.validate_python(entry)
        except ValidationError as error:
            problems = []
            for problem in error.errors(include_url=False, include_input=False):
                loc = [str(p) for p in problem["loc"]]
                # The discriminated union puts the type name first; it is not a field.
                if loc and isinstance(entry, dict) and loc[0] == entry.get("type"):
                    loc = loc[1:]
                problems.append(f"field '{'.'.join(loc) or 'type'}': {problem['msg']}")
            raise SourcesFileError(f"sources file, {label}: " + "; ".join(problems)) from None
        if source.id in seen:
            raise SourcesFileError(f"sources file, {label}: field 'id': duplicate id {source.id!r}")
        seen.add(source.id)
        sources.append(source)
    return sources


def load_sources(path: Path) -> list[SourceConfig]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SourcesFileError(f"cannot read the sources file {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SourcesFileError(f"sources file {path} is not JSON: {error}") from None
    return parse_sources(data)
