"""IBIC: needs, goals, measured indicators, follow-up and reports (docs/ibic.md)."""
