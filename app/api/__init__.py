"""HTTP entry points: one blueprint module per audience."""
from app.api import (alerts, control, dashboard, ingest, metrics, openapi, read, ready,  # noqa: F401
                     simulation, sources)
