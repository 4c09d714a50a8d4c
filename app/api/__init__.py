"""HTTP entry points: one blueprint module per audience."""
from app.api import alerts, control, dashboard, ingest, metrics, openapi, read, simulation, sources  # noqa: F401
