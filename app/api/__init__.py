"""HTTP entry points: one blueprint module per audience."""
from app.api import (alerts, control, dashboard, ingest, metrics, openapi, read, ready,  # noqa: F401
                     simulation, sources)
from app.api import device_api, devices  # noqa: F401
