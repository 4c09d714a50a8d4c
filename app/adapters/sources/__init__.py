"""External sources: one module per type (ogd, open_meteo, stac), one shared HTTP client,
a scheduler with a circuit breaker per source. `build_sources` reads SOURCES_FILE."""
from __future__ import annotations

import os
from pathlib import Path

from app.adapters.sources.config import SourceConfig, load_sources
from app.adapters.sources.http import SourceHttp


def adapter_for(config: SourceConfig, environ=os.environ, offload=None):
    """The adapter of one configured source (imported lazily: stac needs rasterio)."""
    if config.type == "ogd":
        from app.adapters.sources.ogd import OgdAdapter
        return OgdAdapter(config, environ)
    if config.type == "open_meteo":
        from app.adapters.sources.open_meteo import OpenMeteoAdapter
        return OpenMeteoAdapter(config)
    from app.adapters.sources.stac import StacAdapter
    return StacAdapter(config, offload=offload)


def configured_sources(path: Path, offload=None) -> list[tuple[SourceConfig, object]]:
    """(config, adapter) for every entry; raises SourcesFileError on a bad file."""
    return [(config, adapter_for(config, offload=offload)) for config in load_sources(path)]


__all__ = ["SourceHttp", "configured_sources", "adapter_for"]
