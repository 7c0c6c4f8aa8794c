"""Commands that drive devices and data: simulate, replay, demo (filled in below)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the tool commands to the main app."""
