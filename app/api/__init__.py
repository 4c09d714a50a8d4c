"""HTTP entry points: one blueprint module per audience."""
from app.api import control, ingest, read, simulation  # noqa: F401
