"""HTTP entry points: one blueprint module per audience."""
from app.api import control, dashboard, ingest, metrics, openapi, read, ready, simulation  # noqa: F401
