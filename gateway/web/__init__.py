"""The night-staff web UI: static files served by the gateway."""

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
