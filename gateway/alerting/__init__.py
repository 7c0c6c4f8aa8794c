"""Alerting: detector decisions become alerts with a stored lifecycle, delivered live."""
